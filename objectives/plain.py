"""Config dataclasses as plain YAML/JSON-friendly data (the form stored in Optuna and MLflow)."""

from __future__ import annotations

import dataclasses
from typing import Any


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain data: nested dataclasses become dicts (or what their `plain()`
    gives: the form their YAML takes), tuples lists."""
    return _plain(obj)


def plain_fields(obj: Any) -> dict[str, Any]:
    """Every field of a config dataclass as plain data (for a `plain()` that leaves some out)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _plain(value: Any) -> Any:
    if hasattr(value, "plain"):
        return value.plain()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_fields(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
