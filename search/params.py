"""One entry of a search space: a range, a list of choices, a constant, or a learning rate
taken from the LR finder or from an earlier study's lr(f) fit; parsed from YAML and turned into
one `trial.suggest_*` call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from objectives.errors import InvalidConfig


class Param(Protocol):
    def suggest(self, trial: optuna.Trial, name: str) -> Any: ...
    def bounds(self) -> list[Any]: ...


@dataclass(frozen=True)
class Range:
    low: float  # int when `integer`
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        if self.integer:
            return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def bounds(self) -> list[Any]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def bounds(self) -> list[Any]:
        return list(self.choices)


@dataclass(frozen=True)
class Fixed:
    value: Any

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.value

    def bounds(self) -> list[Any]:
        return [self.value]


@dataclass(frozen=True)
class LrFrom:
    """A learning-rate range taken from elsewhere: [s/F, s*F] (log) around a rate s known only
    at launch. Resolved before any trial by `Space.resolve`."""

    factor: float
    missing = "no learning rate to centre the range on"  # why there is no s, and what to do

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        raise RuntimeError("an lr taken from elsewhere must be resolved before sampling")

    def bounds(self) -> list[Any]:
        return []

    def around(self, suggestion: float) -> Range:
        return Range(suggestion / self.factor, suggestion * self.factor, log=True)


@dataclass(frozen=True)
class FromFinder(LrFrom):
    """`lr: {from: lr_finder, factor: F}`: around the range test's suggestion for this band and
    optimizer."""

    missing = ("the LR finder has no suggestion for this optimizer (it diverged at once or never ran); run "
               "`bandsearch lr-find` with a lower min_lr, or give an explicit range")


@dataclass(frozen=True)
class FromFit(LrFrom):
    """`lr: {from: lr_fit, study: NAME, factor: F}`: around the rate the lr(f) fit of study NAME's
    best trials predicts at this band's centre (search/lr_fit.py)."""

    study: str = ""
    missing = ("the study has no lr(f) fit for this optimizer (it needs best trials of it in two bands); "
               "give an explicit range or another study")


def number(value: Any, key: str) -> float:
    """YAML 1.1 reads `1e-4` (no dot) as a string: accept numeric strings too."""
    if isinstance(value, bool):
        raise InvalidConfig(key, f"must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidConfig(key, f"must be a number, got {value!r}") from None


def parse_param(key: str, raw: Any, integer: bool) -> Param:
    if not isinstance(raw, Mapping):
        return Fixed(raw)
    if "choices" in raw:
        extra = sorted(set(raw) - {"choices"})
        if extra:
            raise InvalidConfig(f"{key}.{extra[0]}", "a choices entry takes only `choices`")
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise InvalidConfig(f"{key}.choices", "must be a non-empty list")
        return Choice(tuple(choices))
    unknown = sorted(set(raw) - {"low", "high", "log", "step"})
    if unknown:
        raise InvalidConfig(
            f"{key}.{unknown[0]}", "unknown key; a range takes low, high, log, step (or give choices)"
        )
    for bound in ("low", "high"):
        if bound not in raw:
            raise InvalidConfig(key, f"a range needs `{bound}` (or give `choices`, or a constant)")
    low, high = number(raw["low"], f"{key}.low"), number(raw["high"], f"{key}.high")
    log = bool(raw.get("log", False))
    step = number(raw["step"], f"{key}.step") if raw.get("step") is not None else None
    if low > high:
        raise InvalidConfig(key, f"low ({low:g}) > high ({high:g}); make low <= high")
    if log and low <= 0:
        raise InvalidConfig(key, f"a log range needs low > 0, got low={low:g}")
    if log and step is not None:
        raise InvalidConfig(key, "a log range cannot have a step")
    if integer and not (low.is_integer() and high.is_integer()):
        raise InvalidConfig(key, f"must be whole numbers, got low={low:g}, high={high:g}")
    if integer:
        return Range(int(low), int(high), log=log, step=int(step) if step else None, integer=True)
    return Range(low, high, log=log, step=step)
