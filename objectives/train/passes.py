"""The gradient passes the training loop offers optimizers that need more than `.grad`.

SVRG needs the current mini-batch's gradient again at its snapshot weights, and the
full-data gradient; the Adam->SGD switch needs the epoch. Such an optimizer's spec says
`hooked`, and the loop calls `step(hooks)` instead of `step()`; a plain torch optimizer
never sees any of this.

Choices for the extra passes (all of them: the snapshot-point gradient and the full pass):
- They run in training mode. BatchNorm normalises with the batch's own statistics and
  dropout is active, so every evaluation is of the same stochastic function f_B that the
  training steps use; SVRG's correction is unbiased only for that function. Eval mode
  would make the full gradient that of a different, deterministic network.
- The snapshot-point gradient replays the random state of the step's own forward pass,
  so it sees the same dropout masks: the two gradients then differ only through the
  weights, and their difference cancels the mini-batch noise as the method intends.
- The full pass splits the data in a fixed order into chunks of at least the training
  batch size (BatchNorm sees batches like the steps'), and draws its dropout masks from
  a fixed seed of its own: it neither consumes nor depends on the training stream.
- Every buffer (BatchNorm running statistics) is restored afterwards: running statistics
  are what evaluation uses, and they must come from the training steps alone, once each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn


class StepHooks(Protocol):
    """What a hooked optimizer may ask of the training loop during `step(hooks)`."""

    epoch: int  # 1-based epoch of the current step

    def batch_gradient(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Gradient of the current mini-batch's loss at the current weights, with the
        same dropout masks as the step's own pass; buffers untouched."""
        ...

    def full_gradient(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Gradient of the mean loss over the whole training set at the current weights."""
        ...

    def clip(self) -> None:
        """Clip `.grad` to the configured global norm (no-op when clipping is off)."""
        ...


def _rng_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


class GradientPasses:
    """Forward passes of `model` on one training set; implements StepHooks."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, clip_norm: float | None,
                 replay: bool, mask_seed: int):
        self.model, self.x, self.y = model, x, y
        self.clip_norm = clip_norm
        self.replay = replay  # remember each step's random state (only hooked optimizers need it)
        self.mask_seed = mask_seed
        self.device = x.device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = list(model.buffers())
        self.epoch, self.batch_size = 0, 1
        self.index: torch.Tensor | None = None
        self.rng: torch.Tensor | None = None
        self.full_seconds, self.full_passes = 0.0, 0

    def loss(self, index: torch.Tensor) -> torch.Tensor:
        """The step's own forward pass on the clips `index`."""
        self.index = index
        if self.replay:
            self.rng = _rng_state(self.device)
        return F.cross_entropy(self.model(self.x[index]), self.y[index])

    @contextmanager
    def _buffers_untouched(self) -> Iterator[None]:
        saved = [b.clone() for b in self.buffers]
        try:
            yield
        finally:
            if saved:
                torch._foreach_copy_(self.buffers, saved)

    def batch_gradient(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        after = _rng_state(self.device)
        _set_rng_state(self.device, self.rng)
        try:
            with self._buffers_untouched(), torch.enable_grad():
                loss = F.cross_entropy(self.model(self.x[self.index]), self.y[self.index])
                return list(torch.autograd.grad(loss, params))
        finally:
            _set_rng_state(self.device, after)

    def full_batches(self) -> list[torch.Tensor]:
        """The full pass's fixed partition: chunks of at least the current batch size."""
        n = len(self.x)
        return list(torch.arange(n, device=self.device).tensor_split(max(1, n // self.batch_size)))

    def full_gradient(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        started = time.perf_counter()
        total = [torch.zeros_like(p) for p in params]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self._buffers_untouched(), torch.enable_grad():
            torch.manual_seed(self.mask_seed)
            for index in self.full_batches():
                loss = F.cross_entropy(self.model(self.x[index]), self.y[index]) * (len(index) / len(self.x))
                torch._foreach_add_(total, torch.autograd.grad(loss, params))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.full_seconds += time.perf_counter() - started
        self.full_passes += 1
        return total

    def clip(self) -> None:
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm, foreach=True)
