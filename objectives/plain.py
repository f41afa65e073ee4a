"""Config dataclasses as plain YAML/JSON-friendly data (the form stored in Optuna and MLflow)."""

from __future__ import annotations

import dataclasses
from typing import Any


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain data: nested dataclasses become dicts, tuples lists."""
    return _plain(dataclasses.asdict(obj))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
