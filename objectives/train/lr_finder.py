"""The learning-rate range test (Smith 2015/2017); the rules that turn its curve into a
suggestion, and its settings, are in lr_rules.py.

The learning rate rises exponentially from `min_lr` to `max_lr` over `steps` mini-batch
steps; the loss is smoothed with a bias-corrected moving average, and the test stops when
it diverges (smoothed loss above `divergence_factor` x the best so far, or NaN/inf). The
model, the optimizer and the RNG are left exactly as they were.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from objectives.task.dataset import BandDataset
from objectives.train.lr_rules import SUGGESTIONS, RangeTestSettings
from objectives.train.models import ModelConfig, build_model
from objectives.train.optim import build_optimizer, optimizer_spec
from objectives.train.passes import GradientPasses


@dataclass
class RangeTestResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stop_reason: str = "completed"  # completed | diverged | non-finite
    diverged_lr: float | None = None  # the learning rate at which the test stopped, if it did

    def suggestion(self, rule: str) -> float | None:
        return SUGGESTIONS[rule](self.lrs, self.smoothed)


def range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], torch.Tensor],
    settings: RangeTestSettings,
    update: Callable[[], None] | None = None,
) -> RangeTestResult:
    """Run the test; `loss_fn()` returns the loss of the next mini-batch (with grad).

    `update` applies the step after backward (default `optimizer.step()`); optimizers that
    need more than the batch gradient (SVRG, the Adam->SGD switch) pass their hooked step.
    """
    update = update or optimizer.step
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_rng = torch.get_rng_state()
    was_training = model.training
    model.train()
    result = RangeTestResult()
    ratio = settings.max_lr / settings.min_lr
    average, best = 0.0, math.inf
    try:
        for step in range(settings.steps):
            lr = settings.min_lr * ratio ** (step / (settings.steps - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn()
            value = loss.item()
            if not math.isfinite(value):
                result.stop_reason, result.diverged_lr = "non-finite", lr
                break
            average = settings.smoothing * average + (1 - settings.smoothing) * value
            smoothed = average / (1 - settings.smoothing ** (step + 1))  # bias correction
            result.lrs.append(lr)
            result.losses.append(value)
            result.smoothed.append(smoothed)
            if smoothed > settings.divergence_factor * best:
                result.stop_reason, result.diverged_lr = "diverged", lr
                break
            best = min(best, smoothed)
            model.zero_grad(set_to_none=True)
            loss.backward()
            update()
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        torch.set_rng_state(saved_rng)
        model.train(was_training)
    return result


def band_range_test(
    data: BandDataset, model_config: ModelConfig, optimizer: str, hyperparameters: dict, settings: RangeTestSettings
) -> RangeTestResult:
    """The range test of `optimizer` on a band's training data, from a fresh model, stepping
    exactly as the training loop does (same gradient passes, hooked optimizers included)."""
    torch.manual_seed(settings.seed)
    model = build_model(model_config, data.input_shape, data.n_classes)
    hooked = optimizer_spec(optimizer).hooked
    opt = build_optimizer(optimizer, model.parameters(), settings.min_lr, hyperparameters)
    passes = GradientPasses(model, data.train_x, data.train_y, None, replay=hooked, mask_seed=settings.seed)
    passes.epoch, passes.batch_size = 1, settings.batch_size
    order = torch.Generator().manual_seed(settings.seed)
    batches: list[torch.Tensor] = []

    def loss_fn() -> torch.Tensor:
        if not batches:
            batches.extend(torch.randperm(len(data.train_x), generator=order).split(settings.batch_size))
            if len(batches[-1]) < 2:  # a batch of one breaks BatchNorm
                batches.pop()
        return passes.loss(batches.pop(0))

    return range_test(model, opt, loss_fn, settings, update=(lambda: opt.step(passes)) if hooked else None)
