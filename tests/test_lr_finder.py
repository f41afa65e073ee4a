"""The LR range test: where it says SGD diverges, what it suggests, and that it leaves no trace."""

from __future__ import annotations

import math

import pytest
import torch

from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import generate
from objectives.train.lr_finder import SUGGESTIONS, RangeTestSettings, band_range_test, range_test
from objectives.train.models import ModelConfig
from objectives.train.optim import OPTIMIZERS


def _noisy_quadratic(curvature: float, seed: int = 0):
    """loss = L/2 |w - xi|^2 with fresh noise xi each step: plain SGD is stable iff lr < 2/L."""
    generator = torch.Generator().manual_seed(seed)
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.ones(10, dtype=torch.float64))

    def loss() -> torch.Tensor:
        noise = 0.1 * torch.randn(10, generator=generator, dtype=torch.float64)
        return 0.5 * curvature * (model.w - noise).pow(2).sum()

    return model, torch.optim.SGD(model.parameters(), lr=1e-3), loss


@pytest.mark.parametrize("curvature", [1.0, 4.0, 50.0])
@pytest.mark.parametrize("rule", sorted(SUGGESTIONS))
def test_suggestion_lies_below_the_stability_limit_and_divergence_is_found_near_it(curvature, rule) -> None:
    limit = 2 / curvature
    model, optimizer, loss = _noisy_quadratic(curvature)
    result = range_test(model, optimizer, loss, RangeTestSettings(min_lr=1e-4, max_lr=100, steps=200))
    assert result.stop_reason == "diverged"
    assert limit <= result.diverged_lr <= 1.6 * limit
    suggestion = result.suggestion(rule)
    assert suggestion is not None and suggestion < limit


def test_model_optimizer_and_rng_are_restored_bit_for_bit() -> None:
    model, optimizer, loss = _noisy_quadratic(4.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):  # give the optimizer state (momentum buffers) worth restoring
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    before_w = model.w.detach().clone()
    before_state = {k: v.clone() for k, v in optimizer.state[model.w].items()}
    before_groups = [dict(g, params=None) for g in optimizer.param_groups]
    rng = torch.get_rng_state()
    range_test(model, optimizer, loss, RangeTestSettings(min_lr=1e-4, max_lr=100, steps=60))
    assert torch.equal(model.w, before_w)
    assert all(torch.equal(optimizer.state[model.w][k], v) for k, v in before_state.items())
    assert [dict(g, params=None) for g in optimizer.param_groups] == before_groups
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_nan_mid_test_ends_it_cleanly_with_the_points_before() -> None:
    model, optimizer, loss = _noisy_quadratic(1.0)
    calls = {"n": 0}

    def poisoned() -> torch.Tensor:
        calls["n"] += 1
        value = loss()
        return value * float("nan") if calls["n"] == 20 else value

    result = range_test(model, optimizer, poisoned, RangeTestSettings(min_lr=1e-4, max_lr=1e-2, steps=50))
    assert result.stop_reason == "non-finite" and len(result.lrs) == 19
    assert all(math.isfinite(v) for v in result.smoothed)
    assert result.diverged_lr == pytest.approx(1e-4 * 100 ** (19 / 49))
    assert torch.isfinite(model.w).all()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_in_the_table_runs_on_the_angle_task(name: str) -> None:
    task = TaskConfig(n_train=400, n_val=100, clip_samples=2048)
    data = generate(task, Band("b", 1000.0, 300.0))
    settings = RangeTestSettings(steps=30, batch_size=32)
    result = band_range_test(data, ModelConfig(settings={"hidden": 16}), name, {}, settings)
    assert len(result.lrs) >= 5 and result.lrs == sorted(result.lrs)
    assert result.suggestion("minimum") is not None


@pytest.mark.parametrize("name", sorted(n for n, spec in OPTIMIZERS.items() if spec.hooked))
def test_hooked_optimizers_are_restored_after_the_test(name: str) -> None:
    from objectives.train.models import build_model
    from objectives.train.optim import build_optimizer
    from objectives.train.passes import GradientPasses

    task = TaskConfig(n_train=300, n_val=100, clip_samples=2048)
    data = generate(task, Band("b", 1000.0, 300.0))
    torch.manual_seed(0)
    model = build_model(ModelConfig(settings={"hidden": 16}), data.input_shape, data.n_classes)
    optimizer = build_optimizer(name, model.parameters(), 1e-3, {})
    passes = GradientPasses(model, data.train_x, data.train_y, None, replay=True, mask_seed=0)
    passes.epoch, passes.batch_size = 1, 32
    for _ in range(3):
        model.zero_grad()
        passes.loss(torch.arange(32)).backward()
        optimizer.step(passes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    saved = repr(optimizer.state_dict())
    index = iter(torch.arange(300).split(32))
    range_test(model, optimizer, lambda: passes.loss(next(index)), RangeTestSettings(steps=8),
               update=lambda: optimizer.step(passes))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert repr(optimizer.state_dict()) == saved
