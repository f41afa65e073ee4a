"""Typed configuration of the audio angle task: the array, the bands and one training run.

These dataclasses are plain data. `validate()` raises `InvalidConfig` naming the
offending key relative to the object, so callers that know the file (the YAML loader)
can prefix it with the file and the key path.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

SPEED_OF_SOUND = 343.0  # m/s in air at about 20 °C


class InvalidConfig(ValueError):
    """A configuration value is invalid; `key` is the dotted key relative to the object."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class ArrayConfig:
    """A microphone array in the horizontal plane; azimuth is counter-clockwise from +x.

    `linear`: n_mics on the x axis, `spacing_m` apart, centred. `circular`: n_mics evenly on
    a circle of `radius_m`, mic 0 on +x. `custom`: explicit (x, y) `positions_m` in channel
    order, as read from a recordings folder's array.json.
    """

    geometry: str = "linear"
    n_mics: int = 4
    # 4.5 cm keeps the array alias-free up to c/(2d) = 3.8 kHz, above the 3 kHz band's top edge.
    spacing_m: float = 0.045
    # 3.5 cm: a 6-mic ring has neighbours 3.5 cm apart, alias-free to 4.9 kHz (a ReSpeaker-sized board).
    radius_m: float = 0.035
    positions_m: tuple[tuple[float, float], ...] = ()

    def validate(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise InvalidConfig("geometry", f"unknown geometry {self.geometry!r}; use one of {list(GEOMETRIES)}")
        if self.n_mics < 2:
            raise InvalidConfig("n_mics", f"needs at least 2 microphones, got {self.n_mics}")
        if self.geometry == "linear" and not self.spacing_m > 0:
            raise InvalidConfig("spacing_m", f"must be > 0 metres, got {self.spacing_m}")
        if self.geometry == "circular" and not self.radius_m > 0:
            raise InvalidConfig("radius_m", f"must be > 0 metres, got {self.radius_m}")
        if self.geometry == "custom" and len(self.positions_m) != self.n_mics:
            raise InvalidConfig(
                "positions_m", f"a custom array needs n_mics={self.n_mics} (x, y) positions, got "
                f"{len(self.positions_m)}; custom arrays come from a recordings folder's array.json",
            )
        if min(self._neighbour_distances()) <= 0:
            raise InvalidConfig("positions_m", "two microphones share a position")

    def positions(self) -> tuple[tuple[float, float], ...]:
        """(x, y) in metres per microphone, in channel order."""
        return GEOMETRIES[self.geometry](self)

    def _neighbour_distances(self) -> list[float]:
        points = self.positions()
        return [min(math.dist(p, q) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)]

    @property
    def span_deg(self) -> float:
        """Azimuths the array can tell apart: 180 on a line (mirror angles look alike), else 360."""
        points = self.positions()
        x0, y0 = points[0]
        far = max(points, key=lambda p: math.dist(p, points[0]))
        # Collinear iff every point has zero cross product with the line through mic 0 and the farthest mic.
        collinear = all(
            abs((far[0] - x0) * (y - y0) - (far[1] - y0) * (x - x0)) < 1e-9 for x, y in points
        )
        return 180.0 if collinear else 360.0

    @property
    def alias_free_hz(self) -> float:
        """Highest frequency with no spatial aliasing: every mic within half a wavelength of a neighbour."""
        return SPEED_OF_SOUND / (2 * max(self._neighbour_distances()))


def _linear(array: ArrayConfig) -> tuple[tuple[float, float], ...]:
    return tuple(((i - (array.n_mics - 1) / 2) * array.spacing_m, 0.0) for i in range(array.n_mics))


def _circular(array: ArrayConfig) -> tuple[tuple[float, float], ...]:
    step = 2 * math.pi / array.n_mics
    return tuple((array.radius_m * math.cos(i * step), array.radius_m * math.sin(i * step)) for i in range(array.n_mics))


# The geometry table: a new layout is a function from the config to (x, y) positions.
GEOMETRIES = {"linear": _linear, "circular": _circular, "custom": lambda array: tuple(array.positions_m)}


@dataclass(frozen=True)
class Band:
    """A frequency band: the source is band-limited to [center - width/2, center + width/2]."""

    name: str
    center_hz: float
    width_hz: float

    @property
    def low_hz(self) -> float:
        return self.center_hz - self.width_hz / 2

    @property
    def high_hz(self) -> float:
        return self.center_hz + self.width_hz / 2

    def validate(self, sample_rate: int, array: ArrayConfig) -> None:
        nyquist = sample_rate / 2
        if not self.center_hz > 0:
            raise InvalidConfig("center_hz", f"must be > 0 Hz, got {self.center_hz}")
        if self.center_hz >= nyquist:
            raise InvalidConfig(
                "center_hz",
                f"{self.center_hz} Hz is at or above Nyquist ({nyquist} Hz for sample_rate "
                f"{sample_rate}); lower the band or raise task.sample_rate",
            )
        if not 0 < self.width_hz < 2 * self.center_hz:
            raise InvalidConfig(
                "width_hz", f"must be in (0, 2*center_hz) = (0, {2 * self.center_hz}), got {self.width_hz}"
            )
        if self.high_hz >= nyquist:
            raise InvalidConfig(
                "width_hz", f"the band's top edge {self.high_hz} Hz reaches Nyquist ({nyquist} Hz)"
            )
        if self.high_hz > array.alias_free_hz:
            raise InvalidConfig(
                "center_hz",
                f"the band's top edge {self.high_hz:.0f} Hz is above the array's alias-free limit "
                f"{array.alias_free_hz:.0f} Hz (microphones up to "
                f"{SPEED_OF_SOUND / (2 * array.alias_free_hz):.3f} m from their nearest neighbour); "
                "move the microphones closer (task.array.spacing_m or radius_m) or lower the band",
            )


@dataclass(frozen=True)
class TaskConfig:
    """Everything that determines a band's dataset (and so its cache key)."""

    sample_rate: int = 16000
    # 4096 samples = 0.26 s at 16 kHz: 15 STFT frames of 512, enough to average phase noise.
    clip_samples: int = 4096
    n_fft: int = 512
    array: ArrayConfig = field(default_factory=ArrayConfig)
    # 19 angle classes over 0-180 degrees: a linear array cannot tell mirror angles apart
    # (a planar array's classes cover 0-360: give it more, e.g. 36).
    n_angle_bins: int = 19
    # In-band SNR range; low enough that the 500 Hz band stays well below 100 %.
    snr_db: tuple[float, float] = (0.0, 20.0)
    n_train: int = 6000
    n_val: int = 2000
    seed: int = 0
    # Where clips come from, with their shares (objectives/sources.py). Free field alone keeps
    # the quick start at about a minute on 2 cores; rooms and folders are opt-in.
    sources: tuple[Any, ...] = field(default_factory=lambda: _default_sources())

    def validate(self) -> None:
        try:
            self.array.validate()
        except InvalidConfig as err:
            raise InvalidConfig(f"array.{err.key}", err.message) from None
        if self.sample_rate <= 0:
            raise InvalidConfig("sample_rate", f"must be > 0, got {self.sample_rate}")
        if self.n_fft < 16 or self.clip_samples < self.n_fft:
            raise InvalidConfig("clip_samples", f"must be >= n_fft ({self.n_fft}) and n_fft >= 16")
        if self.n_angle_bins < 2:
            raise InvalidConfig("n_angle_bins", f"needs at least 2 classes, got {self.n_angle_bins}")
        low, high = self.snr_db
        if low > high:
            raise InvalidConfig("snr_db", f"low ({low}) > high ({high}); give [low, high]")
        for key in ("n_train", "n_val"):
            if getattr(self, key) < 1:
                raise InvalidConfig(key, f"must be >= 1, got {getattr(self, key)}")
        from objectives.sources import validate_sources

        validate_sources(self)

    @property
    def class_width_deg(self) -> float:
        return self.array.span_deg / self.n_angle_bins


def _default_sources() -> tuple[Any, ...]:
    from objectives.sources import FreeField  # sources.py builds on this module

    return (FreeField(),)


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 128
    dropout: float = 0.1

    def validate(self) -> None:
        if self.hidden < 1:
            raise InvalidConfig("hidden", f"must be >= 1, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise InvalidConfig("dropout", f"must be in [0, 1), got {self.dropout}")


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
    target_accuracy: float = 0.9  # the dynamics report the first epoch reaching it
    dynamics_every: int = 4  # measure the vector dynamics on one step in this many (1: every step)

    def validate(self, n_train: int | None = None) -> None:
        from objectives.optimizers import validate_optimizer
        from objectives.schedules import resolve_schedule

        validate_optimizer(self.optimizer, self.optimizer_params, self.epochs)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidConfig("lr", f"must be a finite number > 0, got {self.lr}")
        if self.batch_size < 1:
            raise InvalidConfig("batch_size", f"must be >= 1, got {self.batch_size}")
        if n_train is not None and self.batch_size > n_train:
            raise InvalidConfig(
                "batch_size",
                f"{self.batch_size} is larger than the training set ({n_train} clips); "
                "lower it or raise task.n_train",
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
        if not 0 < self.target_accuracy <= 1:
            raise InvalidConfig("target_accuracy", f"must be in (0, 1], got {self.target_accuracy}")
        if self.dynamics_every < 1:
            raise InvalidConfig("dynamics_every", f"must be >= 1 (1 measures every step), got {self.dynamics_every}")
        try:
            self.model.validate()
        except InvalidConfig as err:
            raise InvalidConfig(f"model.{err.key}", err.message) from None

    def _validate_batches(self) -> None:
        if self.clip_norm is not None and not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise InvalidConfig("clip_norm", f"must be a finite number > 0 (or null: no clipping), got {self.clip_norm}")
        if self.lr_reference_batch is not None and self.lr_reference_batch < 1:
            raise InvalidConfig("lr_reference_batch", f"must be >= 1 (or null: off), got {self.lr_reference_batch}")
        if self.ramp_from_batch_size is not None and not 1 <= self.ramp_from_batch_size <= self.batch_size:
            raise InvalidConfig(
                "ramp_from_batch_size",
                f"must be in [1, batch_size={self.batch_size}] (or null: no ramp), got {self.ramp_from_batch_size}",
            )
        if self.ramp_from_batch_size is not None and not 1 <= self.ramp_epochs <= self.epochs:
            raise InvalidConfig("ramp_epochs", f"must be in [1, epochs={self.epochs}], got {self.ramp_epochs}")


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML/JSON-friendly data (tuples become lists)."""
    return _plain(dataclasses.asdict(obj))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def task_from_dict(data: dict[str, Any]) -> TaskConfig:
    """The inverse of `to_dict` for a TaskConfig (lists back to tuples, sources by kind)."""
    from objectives.sources import source_from_dict

    data = dict(data)
    array = dict(data.pop("array", {}))
    if "positions_m" in array:
        array["positions_m"] = tuple(tuple(point) for point in array["positions_m"])
    if "snr_db" in data:
        data["snr_db"] = tuple(data["snr_db"])
    if "sources" in data:
        data["sources"] = tuple(source_from_dict(source) for source in data["sources"])
    return TaskConfig(array=ArrayConfig(**array), **data)


def train_from_dict(data: dict[str, Any]) -> TrainConfig:
    data = dict(data)
    model = ModelConfig(**data.pop("model", {}))
    return TrainConfig(model=model, **data)
