"""The optimizer table: a name, its hyperparameters with defaults, and how to build it.

Adding an optimizer is one `OPTIMIZERS` entry (plus a choice in a space YAML); the
contract tests in tests/test_optimizers.py pick it up automatically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from objectives.config import InvalidConfig

Build = Callable[[Iterable[torch.nn.Parameter], float, Mapping[str, Any]], torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    build: Build
    defaults: Mapping[str, Any]
    summary: str


def _betas(h: Mapping[str, Any]) -> tuple[float, float]:
    return (h["beta1"], h["beta2"])


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        lambda p, lr, h: torch.optim.SGD(
            p, lr=lr, momentum=h["momentum"], nesterov=h["nesterov"], weight_decay=h["weight_decay"]
        ),
        {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
        "SGD with (Nesterov) momentum",
    ),
    "adam": OptimizerSpec(
        lambda p, lr, h: torch.optim.Adam(p, lr=lr, betas=_betas(h), weight_decay=h["weight_decay"]),
        {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0},
        "Adam (L2 penalty as weight decay)",
    ),
    "adamw": OptimizerSpec(
        lambda p, lr, h: torch.optim.AdamW(p, lr=lr, betas=_betas(h), weight_decay=h["weight_decay"]),
        {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-2},
        "Adam with decoupled weight decay",
    ),
    "rmsprop": OptimizerSpec(
        lambda p, lr, h: torch.optim.RMSprop(
            p, lr=lr, alpha=h["alpha"], momentum=h["momentum"], weight_decay=h["weight_decay"]
        ),
        {"alpha": 0.99, "momentum": 0.0, "weight_decay": 0.0},
        "RMSProp",
    ),
    "adagrad": OptimizerSpec(
        lambda p, lr, h: torch.optim.Adagrad(p, lr=lr, weight_decay=h["weight_decay"]),
        {"weight_decay": 0.0},
        "AdaGrad",
    ),
}

# Valid range of each hyperparameter name, shared by every optimizer that uses it:
# (low, high, high_is_inclusive).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "momentum": (0.0, 1.0, False),
    "beta1": (0.0, 1.0, False),
    "beta2": (0.0, 1.0, False),
    "alpha": (0.0, 1.0, False),
    "weight_decay": (0.0, math.inf, False),
}


def optimizer_spec(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise InvalidConfig(
            "optimizer", f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}"
        ) from None


def check_hyperparameter(name: str, value: Any) -> None:
    """Raise InvalidConfig if `value` is outside the valid range of hyperparameter `name`."""
    if name == "nesterov":
        if not isinstance(value, bool):
            raise InvalidConfig(name, f"must be true or false, got {value!r}")
        return
    low, high, inclusive = _RANGES[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidConfig(name, f"must be a number, got {value!r}")
    above = value > high if inclusive else value >= high
    if value < low or above:
        bracket = "]" if inclusive else ")"
        raise InvalidConfig(name, f"must be in [{low}, {high}{bracket}, got {value}")


def resolve_hyperparameters(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's full hyperparameters: `given` over the defaults, each checked."""
    spec = optimizer_spec(name)
    unknown = sorted(set(given) - set(spec.defaults))
    if unknown:
        raise InvalidConfig(
            unknown[0],
            f"{name} has no hyperparameter {unknown[0]!r}; it takes {sorted(spec.defaults)}",
        )
    params = {**spec.defaults, **given}
    for key, value in params.items():
        check_hyperparameter(key, value)
    if params.get("nesterov") and params.get("momentum", 0.0) <= 0:
        raise InvalidConfig("nesterov", "Nesterov momentum needs momentum > 0")
    return params


def validate_optimizer(name: str, given: Mapping[str, Any]) -> None:
    try:
        resolve_hyperparameters(name, given)
    except InvalidConfig as err:
        if err.key == "optimizer":
            raise
        raise InvalidConfig(f"optimizer_params.{err.key}", err.message) from None


def build_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], lr: float, given: Mapping[str, Any]
) -> torch.optim.Optimizer:
    return optimizer_spec(name).build(params, lr, resolve_hyperparameters(name, given))
