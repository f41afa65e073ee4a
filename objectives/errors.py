"""The one error type of the task and training halves: a configuration value is invalid."""

from __future__ import annotations


class InvalidConfig(ValueError):
    """A configuration value is invalid; `key` is the dotted key relative to the object.

    Callers that know the file (the YAML loader) prefix the key with the file and the key path.
    """

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
