"""Contract tests over the optimizer table: a new entry is tested the moment it is added."""

from __future__ import annotations

import pytest
import torch
from conftest import deterministic

from objectives.errors import InvalidConfig
from objectives.task.dataset import BandDataset
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.models import ModelConfig
from objectives.train.optim import OPTIMIZERS, resolve_hyperparameters


def small_problem(n_train: int = 512, n_features: int = 12, n_classes: int = 4) -> BandDataset:
    """Clusters around random class centres: learnable in a few epochs by the task's MLP."""
    generator = torch.Generator().manual_seed(0)
    centres = 1.5 * torch.randn(n_classes, n_features, generator=generator)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, n_classes, (n,), generator=generator)
        return centres[y] + torch.randn(n, n_features, generator=generator), y

    (train_x, train_y), (val_x, val_y) = draw(n_train), draw(n_train // 4)
    return BandDataset(train_x, train_y, val_x, val_y, n_classes)


def _train(name: str):
    # 6 epochs: the Adam->SGD switch (default epoch 5) runs both phases.
    config = TrainConfig(optimizer=name, lr=0.02, epochs=6, batch_size=32, model=ModelConfig(settings={"hidden": 16}))
    config.validate()
    return train(config, small_problem(), device="cpu")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_lowers_the_loss_and_repeats_under_a_seed(name: str) -> None:
    first, second = _train(name), _train(name)
    losses = [epoch["train_loss"] for epoch in first.history]
    assert losses[-1] < 0.9 * losses[0], losses
    assert [deterministic(e) for e in first.history] == [deterministic(e) for e in second.history]
    assert deterministic(first.dynamics) == deterministic(second.dynamics)


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
        ("svrg", {"interval": 0}, "interval"),
        ("svrg", {"interval": "batch"}, "interval"),
        ("adam_sgd", {"switch_epoch": 11}, "switch_epoch"),
        ("adam_sgd", {"switch_epoch": 1}, "switch_epoch"),
        ("adam_sgd", {"beta2": -0.5}, "beta2"),
    ],
)
def test_bad_hyperparameters_name_their_key(name, given, key) -> None:
    with pytest.raises(InvalidConfig) as err:
        TrainConfig(optimizer=name, optimizer_params=given).validate()
    assert err.value.key == f"optimizer_params.{key}"


def test_unknown_optimizer() -> None:
    with pytest.raises(InvalidConfig, match="unknown optimizer 'lbfgs'"):
        TrainConfig(optimizer="lbfgs").validate()
