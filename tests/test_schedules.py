"""Schedules, the batch-size ramp, the linear scaling rule, clipping and the Adam->SGD hand-over."""

from __future__ import annotations

import pytest
import torch
from test_optimizers import small_problem

from objectives.errors import InvalidConfig
from objectives.train.config import Target, TrainConfig
from objectives.train.loop import train
from objectives.train.models import ModelConfig
from objectives.train.optim.adam_sgd import AdamSGD
from objectives.train.optim.schedules import SCHEDULES, batch_lr_factor, ramp_batch_size, warmup_then


def _rate(name: str, start: float, **h) -> float:
    spec = SCHEDULES[name]
    return warmup_then(spec.decay, start, start + 0.1, epochs=10, warmup_epochs=1, base_lr=1.0,
                       h={**spec.defaults, **h})


def test_step_exponential_and_constant_decay_after_warmup() -> None:
    assert _rate("step", 0.0) == pytest.approx(0.1)  # warmup: progress 0.1 of 1 epoch
    assert [_rate("step", t, gamma=0.5, every_epochs=2) for t in (1.0, 2.9, 3.0, 5.0)] == [1.0, 1.0, 0.5, 0.25]
    assert _rate("exponential", 3.5, gamma=0.8) == pytest.approx(0.8 ** 2.5)
    assert _rate("constant", 9.9) == 1.0
    assert _rate("cosine", 5.5) == pytest.approx(0.5)


def test_batch_size_ramp_and_linear_scaling() -> None:
    assert [ramp_batch_size(e, 128, 16, 3) for e in range(1, 6)] == [16, 32, 64, 128, 128]
    assert [ramp_batch_size(e, 128, None, 3) for e in range(1, 3)] == [128, 128]
    assert batch_lr_factor(32, 128, None) == 0.25  # the ramp scales the rate with the batch
    assert batch_lr_factor(128, 128, 64) == 2.0  # linear scaling rule against the reference


def test_the_loop_follows_the_ramp_and_scales_the_rate() -> None:
    config = TrainConfig(optimizer="sgd", lr=0.05, epochs=4, batch_size=64, ramp_from_batch_size=16, ramp_epochs=2,
                         schedule="constant", lr_reference_batch=32, model=ModelConfig(settings={"hidden": 8}))
    config.validate(512)
    history = train(config, small_problem(), device="cpu").history
    assert [e["batch_size"] for e in history] == [16, 32, 64, 64]
    assert [e["lr"] for e in history] == pytest.approx([0.025, 0.05, 0.1, 0.1])


def test_clipping_bounds_every_step() -> None:
    # Plain SGD: each step moves lr * ||clipped g|| <= lr * clip_norm; without clipping it moves more.
    base = dict(optimizer="sgd", lr=0.5, epochs=2, batch_size=32, schedule="constant",
                optimizer_params={"momentum": 0.0}, model=ModelConfig(settings={"hidden": 8}))
    steps = 2 * (512 // 32)
    clipped = train(TrainConfig(**base, clip_norm=0.1), small_problem(), device="cpu").dynamics
    free = train(TrainConfig(**base), small_problem(), device="cpu").dynamics
    assert clipped["summary.grad_norm_first"] > 0.1  # clipping was active
    assert clipped["summary.path_length"] <= steps * 0.5 * 0.1 * (1 + 1e-5)
    assert free["summary.path_length"] > 2 * clipped["summary.path_length"]


@pytest.mark.parametrize(
    "changes,key",
    [
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"clip_norm": 0.0}, "clip_norm"),
        ({"ramp_from_batch_size": 128}, "ramp_from_batch_size"),
        ({"ramp_from_batch_size": 16, "ramp_epochs": 11}, "ramp_epochs"),
        ({"lr_reference_batch": 0}, "lr_reference_batch"),
        ({"schedule": "linear"}, "schedule"),
        ({"schedule": "step", "schedule_params": {"gamma": 0.0}}, "schedule_params.gamma"),
        ({"schedule": "step", "schedule_params": {"every_epochs": 0}}, "schedule_params.every_epochs"),
        ({"target": Target(fraction_of_best=1.5)}, "target.fraction_of_best"),
        ({"target": Target(fraction_of_best=0.9, accuracy=0.9)}, "target"),
        ({"dynamics_every": 0}, "dynamics_every"),
    ],
)
def test_bad_training_settings_name_their_key(changes, key) -> None:
    with pytest.raises(InvalidConfig) as err:
        TrainConfig(**changes).validate()
    assert err.value.key == key


class _Hooks:
    def __init__(self):
        self.epoch = 1

    def clip(self) -> None:
        pass


def test_switch_hands_sgd_the_step_length_adam_was_taking() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(256, 8), torch.randn(256)
    model = torch.nn.Linear(8, 1)
    params = list(model.parameters())
    optimizer, hooks = AdamSGD(params, 0.01, switch_epoch=3, betas=(0.9, 0.999), momentum=0.9,
                                   weight_decay=0.0), _Hooks()
    moved, pushed = 0.0, 0.0
    for step in range(40):  # 10 steps per epoch; epoch 2 is Adam's last
        hooks.epoch = 1 + step // 10
        index = torch.arange(step % 10 * 25, step % 10 * 25 + 25)
        loss = torch.nn.functional.mse_loss(model(x[index]).squeeze(1), y[index])
        model.zero_grad()
        loss.backward()
        before = [p.detach().clone() for p in params]
        grad_norm = torch.cat([p.grad.reshape(-1) for p in params]).norm().item()
        optimizer.step(hooks)
        length = torch.cat([(p - b).reshape(-1) for p, b in zip(params, before)]).norm().item()
        if hooks.epoch == 2:
            moved, pushed = moved + length, pushed + 0.01 * grad_norm
    assert optimizer.scale == pytest.approx((1 - 0.9) * moved / pushed, rel=1e-5)
    assert optimizer.adam is None and isinstance(optimizer.sgd, torch.optim.SGD)
    assert optimizer.sgd.param_groups[0]["lr"] == pytest.approx(0.01 * optimizer.scale)
    assert all(set(state) == {"momentum_buffer"} for state in optimizer.state.values())
