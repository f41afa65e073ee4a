"""Where a band's clips come from: the table of data sources.

Each source is a frozen dataclass of its YAML parameters (`task.sources: [{kind: ...}]`)
with `clips(task, band, split, n, generator, cache_dir)` yielding chunks of `Clips` for a
split, "train" or "val". Synthetic sources draw `n` clips (their share of the split); a
folder yields every clip its split holds. Modules with heavy imports (pyroomacoustics,
soundfile) load only when their source is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from objectives.config import Band, InvalidConfig, TaskConfig
from objectives.synthesis import Clips, synthesize

WALL_M = 0.3  # closest a source may come to a wall
CHUNK = 500  # clips made at once: bounds memory at about 60 MB per chunk


def _check_share(share: float) -> None:
    if not share > 0:
        raise InvalidConfig("share", f"must be > 0 (the relative amount of this source), got {share}")


def _check_range(key: str, pair: tuple[float, float], minimum: float) -> None:
    low, high = pair
    if not minimum < low <= high:
        raise InvalidConfig(key, f"must be [low, high] with {minimum} < low <= high, got {list(pair)}")


@dataclass(frozen=True)
class FreeField:
    """Far-field plane waves with the exact inter-mic phase, no room (objectives/synthesis.py)."""

    kind: str = field(default="free_field", init=False)
    share: float = 1.0

    def validate(self, task: TaskConfig) -> None:
        _check_share(self.share)

    def clips(self, task: TaskConfig, band: Band, split: str, n: int, generator: torch.Generator,
              cache_dir: Path | None) -> Iterator[Clips]:
        for start in range(0, n, CHUNK):
            yield synthesize(task, band, min(CHUNK, n - start), generator)

    def fingerprint(self) -> str:
        return ""  # the parameters say it all


@dataclass(frozen=True)
class Reverberant:
    """Shoebox rooms simulated with pyroomacoustics: a cached bank of impulse responses,
    convolved with fresh source signals (objectives/rooms.py). Validation uses held-out rooms."""

    kind: str = field(default="reverberant", init=False)
    share: float = 1.0
    # Living rooms and offices: RT60 0.2-0.45 s. Simulation time grows with the cube of the
    # RT60 (image-source order): the default bank takes about a minute, once, then is cached.
    rt60_s: tuple[float, float] = (0.2, 0.45)
    # Beyond about 1 m the source is far-field for a 10 cm array; 2 m fits the smallest room.
    distance_m: tuple[float, float] = (1.0, 2.0)
    room_m: tuple[float, float] = (5.0, 8.0)  # length and width drawn here; height 2.5-3.5 m
    n_rooms: int = 10
    held_out_rooms: int = 2  # rooms only the validation (test) set sees
    positions_per_room: int = 12  # source positions simulated per room, spread over all classes

    def validate(self, task: TaskConfig) -> None:
        _check_share(self.share)
        _check_range("rt60_s", self.rt60_s, 0.0)
        _check_range("distance_m", self.distance_m, 0.0)
        # The array sits near the room's centre; every source must stay 0.3 m off the walls.
        if not self.room_m[0] >= 2 * (self.distance_m[1] + WALL_M) or self.room_m[0] > self.room_m[1]:
            raise InvalidConfig("room_m", f"must be [low, high] with low >= 2 x (distance_m high + {WALL_M}) = "
                                f"{2 * (self.distance_m[1] + WALL_M):g} m so every source fits, got {list(self.room_m)}")
        if not 1 <= self.held_out_rooms < self.n_rooms:
            raise InvalidConfig("held_out_rooms", f"must be in [1, n_rooms - 1 = {self.n_rooms - 1}], "
                                f"got {self.held_out_rooms}: training and test need rooms of their own")
        if self.positions_per_room < 1:
            raise InvalidConfig("positions_per_room", f"must be >= 1, got {self.positions_per_room}")

    def clips(self, task: TaskConfig, band: Band, split: str, n: int, generator: torch.Generator,
              cache_dir: Path | None) -> Iterator[Clips]:
        from objectives.rooms import load_or_build_bank, reverberant_clips

        yield from reverberant_clips(load_or_build_bank(self, task, cache_dir), task, band, split, n, generator)

    def fingerprint(self) -> str:
        return ""


@dataclass(frozen=True)
class Folder:
    """The user's recordings: a folder with array.json, labels.csv and audio files
    (objectives/recordings.py). Array, sample rate and clip counts come from the folder."""

    kind: str = field(default="folder", init=False)
    path: str = ""
    # A quarter of the recordings held out when labels.csv has no split column.
    val_fraction: float = 0.25

    def validate(self, task: TaskConfig) -> None:
        from objectives.recordings import RecordingsError, check_task, index_folder

        if not 0 < self.val_fraction < 1:
            raise InvalidConfig("val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        try:
            check_task(index_folder(Path(self.path), task.clip_samples, task.seed, self.val_fraction), task)
        except RecordingsError as err:
            raise InvalidConfig("path", str(err)) from None

    def clips(self, task: TaskConfig, band: Band, split: str, n: int, generator: torch.Generator,
              cache_dir: Path | None) -> Iterator[Clips]:
        from objectives.recordings import folder_clips, index_folder

        index = index_folder(Path(self.path), task.clip_samples, task.seed, self.val_fraction)
        yield from folder_clips(index, task, band, split)

    def fingerprint(self) -> str:
        from objectives.recordings import fingerprint

        return fingerprint(Path(self.path))


# The table of sources: a new kind is one dataclass with validate/clips/fingerprint and one line here.
SOURCES: dict[str, type] = {"free_field": FreeField, "reverberant": Reverberant, "folder": Folder}


def validate_sources(task: TaskConfig) -> None:
    """Known kinds with valid parameters; a folder stands alone (it brings its own array)."""
    if not task.sources:
        raise InvalidConfig("sources", "needs at least one source, e.g. [{kind: free_field}]")
    kinds = [source.kind for source in task.sources]
    if "folder" in kinds and len(kinds) > 1:
        raise InvalidConfig("sources", "a folder source cannot be mixed with others: it brings its own "
                            "array and sample rate; list it alone")
    for i, source in enumerate(task.sources):
        if source.kind not in SOURCES:
            raise InvalidConfig(f"sources[{i}].kind", f"unknown source {source.kind!r}; use one of {list(SOURCES)}")
        try:
            source.validate(task)
        except InvalidConfig as err:
            raise InvalidConfig(f"sources[{i}].{err.key}", err.message) from None


def source_from_dict(data: dict[str, Any]) -> Any:
    """A source from plain data (`to_dict` output): lists back to tuples."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in SOURCES:
        raise InvalidConfig("kind", f"unknown source {kind!r}; use one of {list(SOURCES)}")
    return SOURCES[kind](**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def split_counts(task: TaskConfig, split: str) -> list[int]:
    """Clips each source contributes to a split: its share of n_train or n_val, summing exactly."""
    total = task.n_train if split == "train" else task.n_val
    shares = [getattr(source, "share", 1.0) for source in task.sources]  # a folder stands alone: no share
    counts = [int(total * share / sum(shares)) for share in shares]
    counts[0] += total - sum(counts)
    return counts


def source_clips(task: TaskConfig, band: Band, split: str, generator: torch.Generator,
                 cache_dir: Path | None) -> Iterator[Clips]:
    """Every chunk of clips of a split, source by source, in a fixed order (deterministic)."""
    for source, n in zip(task.sources, split_counts(task, split)):
        yield from source.clips(task, band, split, n, generator, cache_dir)
