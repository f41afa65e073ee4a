"""Contract tests over the optimizer table: a new entry is tested the moment it is added."""

from __future__ import annotations

import pytest
import torch

from objectives.config import InvalidConfig, TrainConfig
from objectives.optimizers import OPTIMIZERS, build_optimizer, resolve_hyperparameters


def _problem():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=generator)
    y = (x @ torch.randn(8, 1, generator=generator)).squeeze(1)
    return x, y


def _train(name: str, steps: int = 60) -> list[float]:
    torch.manual_seed(0)
    x, y = _problem()
    model = torch.nn.Linear(8, 1)
    optimizer = build_optimizer(name, model.parameters(), lr=0.01, given={})
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_lowers_the_loss_and_repeats_under_a_seed(name: str) -> None:
    losses = _train(name)
    assert losses[-1] < 0.9 * losses[0]
    assert _train(name) == losses


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_defaults_are_valid(name: str) -> None:
    assert resolve_hyperparameters(name, {}) == dict(OPTIMIZERS[name].defaults)


@pytest.mark.parametrize(
    "name,given,key",
    [
        ("adam", {"beta1": 1.0}, "beta1"),
        ("sgd", {"momentum": -0.1}, "momentum"),
        ("adamw", {"weight_decay": -1e-3}, "weight_decay"),
        ("sgd", {"nesterov": True, "momentum": 0.0}, "nesterov"),
        ("sgd", {"betas": 0.9}, "betas"),
    ],
)
def test_bad_hyperparameters_name_their_key(name, given, key) -> None:
    with pytest.raises(InvalidConfig) as err:
        TrainConfig(optimizer=name, optimizer_params=given).validate()
    assert err.value.key == f"optimizer_params.{key}"


def test_unknown_optimizer() -> None:
    with pytest.raises(InvalidConfig, match="unknown optimizer 'lbfgs'"):
        TrainConfig(optimizer="lbfgs").validate()
