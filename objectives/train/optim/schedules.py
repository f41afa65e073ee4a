"""Learning-rate schedules and the batch-size ramp, as pure functions of training progress.

Progress is measured in epochs (fractional inside an epoch), not steps, so a schedule keeps
its shape when the batch-size ramp changes the number of steps per epoch. Every schedule
starts with the same optional linear warmup; the table holds what happens after it.
Adding a schedule is one `SCHEDULES` entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from objectives.errors import InvalidConfig
from objectives.train.optim.hyperparameters import resolve

# (epochs since the warmup ended, epochs left to decay over after warmup, hyperparameters) -> factor
Decay = Callable[[float, float, Mapping[str, Any]], float]


@dataclass(frozen=True)
class ScheduleSpec:
    decay: Decay
    defaults: Mapping[str, Any]


SCHEDULES: dict[str, ScheduleSpec] = {
    # Cosine decay to zero at the end of training.
    "cosine": ScheduleSpec(lambda since, span, h: 0.5 * (1.0 + math.cos(math.pi * min(1.0, since / span))), {}),
    # Divide by 10 every 3 epochs: the classic ResNet recipe, scaled to 10-epoch trials.
    "step": ScheduleSpec(
        lambda since, span, h: h["gamma"] ** math.floor(since / h["every_epochs"]),
        {"gamma": 0.1, "every_epochs": 3},
    ),
    # Gamma per epoch, applied smoothly every step: 0.8 leaves about a tenth of the rate after
    # 10 epochs, like the step default.
    "exponential": ScheduleSpec(lambda since, span, h: h["gamma"] ** since, {"gamma": 0.8}),
    # No decay (SVRG's analysis assumes it).
    "constant": ScheduleSpec(lambda since, span, h: 1.0, {}),
}


def schedule_spec(name: str) -> ScheduleSpec:
    try:
        return SCHEDULES[name]
    except KeyError:
        raise InvalidConfig("schedule", f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}") from None


def resolve_schedule(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    return resolve(name, schedule_spec(name).defaults, given)


def warmup_then(decay: Decay, start: float, end: float, epochs: float, warmup_epochs: float,
                base_lr: float, h: Mapping[str, Any]) -> float:
    """The rate for the step that takes training from `start` to `end` epochs of progress.

    During warmup the rate rises linearly with the progress reached at the end of the
    step, so the first step already moves the weights (base_lr / warmup steps).
    """
    if warmup_epochs > 0 and start < warmup_epochs:
        return base_lr * min(1.0, end / warmup_epochs)
    span = max(epochs - warmup_epochs, 1e-12)
    return base_lr * decay(start - warmup_epochs, span, h)


def ramp_batch_size(epoch: int, batch_size: int, ramp_from: int | None, ramp_epochs: int) -> int:
    """Batch size of 1-based `epoch`: geometric from `ramp_from` to `batch_size` over
    `ramp_epochs` epochs (16 -> 128 over 3 epochs: 16, 32, 64, then 128), then constant."""
    if ramp_from is None or epoch > ramp_epochs:
        return batch_size
    return round(ramp_from * (batch_size / ramp_from) ** ((epoch - 1) / ramp_epochs))


def batch_lr_factor(batch: int, batch_size: int, reference_batch: int | None) -> float:
    """Linear scaling rule (Goyal et al. 2017): the rate is proportional to the batch.

    With a reference batch, `lr` is the rate at that batch; without one, `lr` is the rate
    at the configured `batch_size`, and ramp epochs with smaller batches get less.
    """
    return batch / (reference_batch or batch_size)
