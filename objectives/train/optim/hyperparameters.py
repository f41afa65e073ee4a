"""Valid values of every named hyperparameter, shared by the optimizer and schedule tables.

A hyperparameter name means the same thing wherever it appears (`momentum` of SGD, RMSProp
or the Adam->SGD switch), so its valid range is defined once, here. `epochs` is passed when
the training length is known; checks that depend on it are skipped otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from objectives.errors import InvalidConfig

Check = Callable[[Any, "int | None"], None]


def _in_range(low: float, high: float, low_open: bool = False, high_open: bool = True,
              integer: bool = False) -> Check:
    def check(value: Any, epochs: int | None) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidConfig("", f"must be a number, got {value!r}")
        if integer and not float(value).is_integer():
            raise InvalidConfig("", f"must be a whole number, got {value!r}")
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise InvalidConfig("", f"must be in {left}{low}, {high}{right}, got {value}")
    return check


def _boolean(value: Any, epochs: int | None) -> None:
    if not isinstance(value, bool):
        raise InvalidConfig("", f"must be true or false, got {value!r}")


def _interval(value: Any, epochs: int | None) -> None:
    """SVRG's outer interval: 'epoch' (a snapshot per epoch) or a number of steps m >= 1."""
    if value == "epoch":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidConfig("", f"must be 'epoch' or a whole number of steps >= 1, got {value!r}")


def _switch_epoch(value: Any, epochs: int | None) -> None:
    """The first epoch run with SGD: Adam needs one epoch before it to measure the hand-over."""
    _in_range(2, math.inf, integer=True)(value, epochs)
    if epochs is not None and value > epochs:
        raise InvalidConfig(
            "", f"switch epoch {value} is beyond the training length (training.epochs = {epochs}); "
            f"choose 2 to {epochs}"
        )


CHECKS: dict[str, Check] = {
    "momentum": _in_range(0.0, 1.0),
    "beta1": _in_range(0.0, 1.0),
    "beta2": _in_range(0.0, 1.0),
    "alpha": _in_range(0.0, 1.0),
    "weight_decay": _in_range(0.0, math.inf),
    "nesterov": _boolean,
    "interval": _interval,
    "switch_epoch": _switch_epoch,
    "gamma": _in_range(0.0, 1.0, low_open=True, high_open=False),  # 1 means no decay
    "every_epochs": _in_range(1, math.inf, integer=True),
}


# Hyperparameters that take whole numbers: a space range over them suggests integers.
INTEGERS = frozenset({"interval", "switch_epoch", "every_epochs"})


def check_hyperparameter(name: str, value: Any, epochs: int | None = None) -> None:
    """Raise InvalidConfig (keyed by `name`) if `value` is not valid for `name`."""
    try:
        CHECKS[name](value, epochs)
    except InvalidConfig as err:
        raise InvalidConfig(name, err.message) from None


def resolve(kind: str, defaults: Mapping[str, Any], given: Mapping[str, Any],
            epochs: int | None = None) -> dict[str, Any]:
    """`given` over `defaults`, every value checked; unknown names are errors."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InvalidConfig(unknown[0], f"{kind} has no hyperparameter {unknown[0]!r}; it takes {sorted(defaults)}")
    values = {**defaults, **given}
    for key, value in values.items():
        check_hyperparameter(key, value, epochs)
    return values
