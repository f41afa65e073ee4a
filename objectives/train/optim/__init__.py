"""The optimizer table: a name, its hyperparameters with defaults, and how to build it.

Adding a torch optimizer is one `OPTIMIZERS` entry (plus a choice in a space YAML); the
contract tests in tests/test_optimizers.py pick it up automatically. An optimizer that needs
more from the training loop than `.grad` (SVRG's extra gradients, the switch's epoch) says
`hooked=True`: the loop then calls `step(hooks)` with the StepHooks of objectives/train/passes.py
and leaves gradient clipping to it, since only it knows which gradient it applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from objectives.errors import InvalidConfig
from objectives.train.optim.hyperparameters import resolve

if TYPE_CHECKING:
    import torch

Build = Callable[[Iterable["torch.nn.Parameter"], float, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class OptimizerSpec:
    build: Build
    defaults: Mapping[str, Any]
    hooked: bool = False  # step(hooks) instead of step(); see the module docstring


def _betas(h: Mapping[str, Any]) -> tuple[float, float]:
    return (h["beta1"], h["beta2"])


# torch is imported when an optimizer is built, never to validate a config (a study file loads in
# well under a second, torch takes seconds).
def _torch_optim() -> Any:
    import torch.optim

    return torch.optim


def _svrg(p: Iterable[torch.nn.Parameter], lr: float, h: Mapping[str, Any]) -> Any:
    from objectives.train.optim.svrg import SVRG

    return SVRG(p, lr=lr, interval=h["interval"], weight_decay=h["weight_decay"])


def _adam_sgd(p: Iterable[torch.nn.Parameter], lr: float, h: Mapping[str, Any]) -> Any:
    from objectives.train.optim.adam_sgd import AdamSGD

    return AdamSGD(p, lr, switch_epoch=h["switch_epoch"], betas=_betas(h), momentum=h["momentum"],
                   weight_decay=h["weight_decay"])


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        lambda p, lr, h: _torch_optim().SGD(
            p, lr=lr, momentum=h["momentum"], nesterov=h["nesterov"], weight_decay=h["weight_decay"]
        ),
        {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    ),
    # Adam's weight_decay is an L2 penalty; AdamW's is decoupled from the adaptive step.
    "adam": OptimizerSpec(
        lambda p, lr, h: _torch_optim().Adam(p, lr=lr, betas=_betas(h), weight_decay=h["weight_decay"]),
        {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0},
    ),
    "adamw": OptimizerSpec(
        lambda p, lr, h: _torch_optim().AdamW(p, lr=lr, betas=_betas(h), weight_decay=h["weight_decay"]),
        {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-2},
    ),
    "rmsprop": OptimizerSpec(
        lambda p, lr, h: _torch_optim().RMSprop(
            p, lr=lr, alpha=h["alpha"], momentum=h["momentum"], weight_decay=h["weight_decay"]
        ),
        {"alpha": 0.99, "momentum": 0.0, "weight_decay": 0.0},
    ),
    "adagrad": OptimizerSpec(
        lambda p, lr, h: _torch_optim().Adagrad(p, lr=lr, weight_decay=h["weight_decay"]),
        {"weight_decay": 0.0},
    ),
    "svrg": OptimizerSpec(
        _svrg,
        # A snapshot per epoch: the paper's m = 2n/batch for convex problems is ~2 epochs;
        # one epoch keeps the snapshot closer on non-convex networks.
        {"interval": "epoch", "weight_decay": 0.0},
        hooked=True,
    ),
    "adam_sgd": OptimizerSpec(
        _adam_sgd,
        # Switch at half of the default 10 epochs.
        {"switch_epoch": 5, "beta1": 0.9, "beta2": 0.999, "momentum": 0.9, "weight_decay": 0.0},
        hooked=True,
    ),
}


def optimizer_spec(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise InvalidConfig(
            "optimizer", f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}"
        ) from None


def resolve_hyperparameters(name: str, given: Mapping[str, Any], epochs: int | None = None) -> dict[str, Any]:
    """The optimizer's full hyperparameters: `given` over the defaults, each checked."""
    params = resolve(name, optimizer_spec(name).defaults, given, epochs)
    if params.get("nesterov") and params.get("momentum", 0.0) <= 0:
        raise InvalidConfig("nesterov", "Nesterov momentum needs momentum > 0")
    return params


def validate_optimizer(name: str, given: Mapping[str, Any], epochs: int | None = None) -> None:
    try:
        resolve_hyperparameters(name, given, epochs)
    except InvalidConfig as err:
        if err.key == "optimizer":
            raise
        raise InvalidConfig(f"optimizer_params.{err.key}", err.message) from None


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, given: Mapping[str, Any]) -> Any:
    """A torch optimizer, or a hooked one (`optimizer_spec(name).hooked`) taking step(hooks)."""
    return optimizer_spec(name).build(params, lr, resolve_hyperparameters(name, given))
