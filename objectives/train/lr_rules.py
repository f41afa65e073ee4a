"""What the learning-rate range test is set to (the `lr_finder` section of a study YAML), and
the rules that turn its curve into a suggestion. Plain data and numpy, no torch: a config is
validated without loading the training stack."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from objectives.errors import InvalidConfig


@dataclass(frozen=True)
class RangeTestSettings:
    min_lr: float = 1e-6
    max_lr: float = 10.0
    # 80 steps of 64 clips is under one epoch of the default task: the test costs less than training.
    steps: int = 80
    batch_size: int = 64
    smoothing: float = 0.9  # weight of the past in the moving average of the loss
    divergence_factor: float = 4.0
    rule: str = "steepest"
    seed: int = 0

    def validate(self) -> None:
        if not 0 < self.min_lr < self.max_lr:
            raise InvalidConfig("min_lr", f"need 0 < min_lr < max_lr, got {self.min_lr} and {self.max_lr}")
        if self.steps < 5:
            raise InvalidConfig("steps", f"must be >= 5, got {self.steps}")
        if self.batch_size < 1:
            raise InvalidConfig("batch_size", f"must be >= 1, got {self.batch_size}")
        if not 0 <= self.smoothing < 1:
            raise InvalidConfig("smoothing", f"must be in [0, 1), got {self.smoothing}")
        if self.divergence_factor <= 1:
            raise InvalidConfig("divergence_factor", f"must be > 1, got {self.divergence_factor}")
        if self.rule not in SUGGESTIONS:
            raise InvalidConfig("rule", f"unknown rule {self.rule!r}; choose one of {sorted(SUGGESTIONS)}")


# -- suggestion rules: (learning rates, smoothed losses) -> a learning rate or None ----------

Rule = Callable[[Sequence[float], Sequence[float]], "float | None"]


def _descending_part(lrs: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to its minimum: what comes after is the climb to divergence."""
    end = int(np.argmin(losses)) + 1
    return np.log10(np.asarray(lrs[:end])), np.asarray(losses[:end])


def steepest(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """The learning rate where the smoothed loss falls fastest per decade (before its minimum)."""
    log_lr, loss = _descending_part(lrs, losses)
    if len(loss) < 3:
        return None
    slope = np.gradient(loss, log_lr)
    return float(10 ** log_lr[int(np.argmin(slope))])


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """Two thirds into the longest stretch where the smoothed loss keeps falling (fastai's valley)."""
    loss = np.asarray(losses)
    best_start, best_end, start = 0, 0, 0
    for i in range(1, len(loss) + 1):
        if i == len(loss) or loss[i] >= loss[i - 1]:
            if i - 1 - start > best_end - best_start:
                best_start, best_end = start, i - 1
            start = i
    if best_end - best_start < 2:
        return None
    return float(lrs[best_start + (2 * (best_end - best_start)) // 3])


def minimum_over_ten(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """A tenth of the learning rate at the lowest smoothed loss (the classic rule of thumb)."""
    if len(losses) < 3:
        return None
    return float(lrs[int(np.argmin(losses))] / 10)


SUGGESTIONS: dict[str, Rule] = {"steepest": steepest, "valley": valley, "minimum": minimum_over_ten}
