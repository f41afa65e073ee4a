"""Typed configuration of the audio angle task: the bands, everything that shapes a band's data,
and the classical baselines scored on it.

These dataclasses are plain data. `validate()` raises `InvalidConfig` naming the
offending key relative to the object, so callers that know the file (the YAML loader)
can prefix it with the file and the key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from objectives.errors import InvalidConfig
from objectives.task.array import SPEED_OF_SOUND, ArrayConfig
from objectives.task.sources import FreeField, source_from_dict, validate_sources


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
    # Where clips come from, with their shares (objectives/task/sources/). Free field alone keeps
    # the quick start at about a minute on 2 cores; rooms and folders are opt-in.
    sources: tuple[Any, ...] = (FreeField(),)

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
        validate_sources(self)

    @property
    def class_width_deg(self) -> float:
        return self.array.span_deg / self.n_angle_bins


# Method name in the YAML and in metric keys -> pyroomacoustics.doa algorithm.
METHODS = {"music": "MUSIC", "srp_phat": "SRP"}


@dataclass(frozen=True)
class BaselineSettings:
    """The `baselines` section of a study YAML."""

    methods: list[str] = field(default_factory=lambda: list(METHODS))  # [] turns the baselines off
    # 500 test clips score a band in a few seconds on one core and pin accuracy to about ±2 %.
    max_clips: int = 500

    def validate(self) -> None:
        if not isinstance(self.methods, list):
            raise InvalidConfig("methods", f"must be a list of {list(METHODS)}, got {self.methods!r}")
        unknown = [method for method in self.methods if method not in METHODS]
        if unknown:
            raise InvalidConfig("methods", f"unknown method {unknown[0]!r}; use any of {list(METHODS)} or []")
        if self.max_clips < 1:
            raise InvalidConfig("max_clips", f"must be >= 1, got {self.max_clips}")


def task_from_dict(data: dict[str, Any]) -> TaskConfig:
    """The inverse of `to_dict` for a TaskConfig (lists back to tuples, sources by kind)."""
    data = dict(data)
    array = dict(data.pop("array", {}))
    if "positions_m" in array:
        array["positions_m"] = tuple(tuple(point) for point in array["positions_m"])
    if "snr_db" in data:
        data["snr_db"] = tuple(data["snr_db"])
    if "sources" in data:
        data["sources"] = tuple(source_from_dict(source) for source in data["sources"])
    return TaskConfig(array=ArrayConfig(**array), **data)
