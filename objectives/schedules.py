"""Learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warmup from base_lr/warmup_steps to base_lr, then cosine decay to zero.

    Warmup starts above zero so the first step already moves the weights.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
