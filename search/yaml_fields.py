"""YAML mappings into config dataclasses: unknown keys refused, numbers checked, every error
naming its key path."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from objectives.errors import InvalidConfig


def build_dataclass(cls: type, data: Any, key: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, recursing into dataclass fields."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(key, f"must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidConfig(f"{key}.{unknown[0]}", f"unknown key; {key} takes {sorted(fields)}")
    values = {}
    for name, value in data.items():
        default = (fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING
                   else fields[name].default)
        if dataclasses.is_dataclass(default):
            value = build_dataclass(type(default), value, f"{key}.{name}")
        elif isinstance(default, tuple):
            if not isinstance(value, list) or len(value) != len(default):
                raise InvalidConfig(f"{key}.{name}", f"must be a list of {len(default)} values, got {value!r}")
            value = tuple(value)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidConfig(f"{key}.{name}", f"must be a number, got {value!r}")
            if isinstance(default, int) and fields[name].type in ("int", int) and not float(value).is_integer():
                raise InvalidConfig(f"{key}.{name}", f"must be a whole number, got {value!r}")
        values[name] = value
    return cls(**values)


def checked(key: str, make: Any) -> Any:
    """`make()` (a check or a parse), its InvalidConfig keys prefixed with `key`."""
    try:
        return make()
    except InvalidConfig as err:
        raise InvalidConfig(f"{key}.{err.key}", err.message) from None
