"""Typed configuration of one training run: the model, the optimizer and its hyperparameters,
the schedule and the budget. `validate()` raises `InvalidConfig` naming the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from objectives.errors import InvalidConfig
from objectives.train.models import ModelConfig, model_from_dict
from objectives.train.optim import validate_optimizer
from objectives.train.optim.schedules import resolve_schedule

TARGET_KINDS = ("fraction_of_best", "accuracy")


@dataclass(frozen=True)
class Target:
    """The validation accuracy whose first epoch counts as "reached": an absolute accuracy, or a
    fraction of the best accuracy any re-run of the band reached (the report resolves that one)."""

    fraction_of_best: float | None = 0.9
    accuracy: float | None = None

    def validate(self) -> None:
        given = [kind for kind in TARGET_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise InvalidConfig("target", "give exactly one of fraction_of_best (e.g. {fraction_of_best: 0.9}) "
                                f"or accuracy (e.g. {{accuracy: 0.9}}), got {given or 'neither'}")
        value = getattr(self, given[0])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise InvalidConfig(f"target.{given[0]}", f"must be a number in (0, 1], got {value!r}")


def target_from_dict(data: Any) -> Target:
    """`{fraction_of_best: f}` or `{accuracy: a}` (a key set to null counts as absent); validated."""
    if not isinstance(data, Mapping):
        raise InvalidConfig("target", f"must be a mapping, {{fraction_of_best: 0.9}} or {{accuracy: 0.9}}: {data!r}")
    unknown = sorted(set(data) - set(TARGET_KINDS))
    if unknown:
        raise InvalidConfig(f"target.{unknown[0]}", f"unknown key; target takes one of {list(TARGET_KINDS)}")
    target = Target(**{kind: data.get(kind) for kind in TARGET_KINDS})
    target.validate()
    return target


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the optimizer and its hyperparameters, the schedule and the budget."""

    optimizer: str = "adam"
    lr: float = 1e-3
    # Hyperparameters of the chosen optimizer only (momentum, beta1, ...); defaults fill the rest.
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    warmup_epochs: int = 0
    epochs: int = 10
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    # Warmup then cosine: what every trial ran before schedules became a choice.
    schedule: str = "cosine"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    clip_norm: float | None = None  # max global gradient norm; None: no clipping
    # Linear scaling rule: `lr` is the rate at this batch size, scaled by batch / it. None: off.
    lr_reference_batch: int | None = None
    # Batch-size ramp: start at this batch size and grow to batch_size over ramp_epochs. None: off.
    ramp_from_batch_size: int | None = None
    ramp_epochs: int = 3  # 16 -> 128 doubles each epoch over 3 epochs
    # What counts as reached; for an absolute target each run's dynamics log its first epoch.
    target: Target = field(default_factory=Target)
    dynamics_every: int = 4  # measure the vector dynamics on one step in this many (1: every step)

    def validate(self, n_train: int | None = None) -> None:
        validate_optimizer(self.optimizer, self.optimizer_params, self.epochs)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidConfig("lr", f"must be a finite number > 0, got {self.lr}")
        if self.batch_size < 1:
            raise InvalidConfig("batch_size", f"must be >= 1, got {self.batch_size}")
        if n_train is not None and self.batch_size > n_train:
            raise InvalidConfig(
                "batch_size",
                f"{self.batch_size} is larger than the training set ({n_train} clips); "
                "lower it or make the training set larger (task.n_train, or recordings in a folder source)",
            )
        if self.epochs < 1:
            raise InvalidConfig("epochs", f"must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise InvalidConfig(
                "warmup_epochs", f"must be in [0, epochs={self.epochs}], got {self.warmup_epochs}"
            )
        try:
            resolve_schedule(self.schedule, self.schedule_params)
        except InvalidConfig as err:
            key = err.key if err.key == "schedule" else f"schedule_params.{err.key}"
            raise InvalidConfig(key, err.message) from None
        self._validate_batches()
        self.target.validate()
        if self.dynamics_every < 1:
            raise InvalidConfig("dynamics_every", f"must be >= 1 (1 measures every step), got {self.dynamics_every}")
        try:
            self.model.validate()
        except InvalidConfig as err:
            raise InvalidConfig(f"model.{err.key}", err.message) from None

    def _validate_batches(self) -> None:
        if self.clip_norm is not None and not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise InvalidConfig("clip_norm",
                                f"must be a finite number > 0 (or null: no clipping), got {self.clip_norm}")
        if self.lr_reference_batch is not None and self.lr_reference_batch < 1:
            raise InvalidConfig("lr_reference_batch", f"must be >= 1 (or null: off), got {self.lr_reference_batch}")
        if self.ramp_from_batch_size is not None and not 1 <= self.ramp_from_batch_size <= self.batch_size:
            raise InvalidConfig(
                "ramp_from_batch_size",
                f"must be in [1, batch_size={self.batch_size}] (or null: no ramp), got {self.ramp_from_batch_size}",
            )
        if self.ramp_from_batch_size is not None and not 1 <= self.ramp_epochs <= self.epochs:
            raise InvalidConfig("ramp_epochs", f"must be in [1, epochs={self.epochs}], got {self.ramp_epochs}")


def train_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from plain data; a trial recorded before `target` existed kept `target_accuracy`,
    an absolute target."""
    data = dict(data)
    model = model_from_dict(data.pop("model", {}))
    if "target_accuracy" in data:
        data["target"] = {"accuracy": data.pop("target_accuracy")}
    target = target_from_dict(data.pop("target")) if "target" in data else Target()
    return TrainConfig(model=model, target=target, **data)
