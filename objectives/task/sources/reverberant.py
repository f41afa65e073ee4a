"""The reverberant source: shoebox rooms, a cached bank of impulse responses convolved with
fresh sources; validation sees held-out rooms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.errors import InvalidConfig
from objectives.plain import plain_fields
from objectives.task.sources.base import WALL_M, check_range, check_share

if TYPE_CHECKING:
    import torch

    from objectives.task.config import Band, TaskConfig
    from objectives.task.synthesis import Clips


@dataclass(frozen=True)
class Reverberant:
    """Shoebox rooms simulated with pyroomacoustics: a cached bank of impulse responses,
    convolved with fresh source signals (objectives/task/sources/rooms.py). Validation uses held-out rooms."""

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
    # Training clips also hear each room turned by the ring's symmetries (rotations by 360/M
    # degrees, and the mirror image): 2M orientations per room for the cost of one.
    symmetric_views: bool = False

    def validate(self, task: TaskConfig) -> None:
        check_share(self.share)
        check_range("rt60_s", self.rt60_s, 0.0)
        check_range("distance_m", self.distance_m, 0.0)
        # The array sits near the room's centre; every source must stay 0.3 m off the walls.
        if not self.room_m[0] >= 2 * (self.distance_m[1] + WALL_M) or self.room_m[0] > self.room_m[1]:
            raise InvalidConfig("room_m", f"must be [low, high] with low >= 2 x (distance_m high + {WALL_M}) = "
                                f"{2 * (self.distance_m[1] + WALL_M):g} m so every source fits, "
                                f"got {list(self.room_m)}")
        if not 1 <= self.held_out_rooms < self.n_rooms:
            raise InvalidConfig("held_out_rooms", f"must be in [1, n_rooms - 1 = {self.n_rooms - 1}], "
                                f"got {self.held_out_rooms}: training and test need rooms of their own")
        if self.positions_per_room < 1:
            raise InvalidConfig("positions_per_room", f"must be >= 1, got {self.positions_per_room}")
        if not isinstance(self.symmetric_views, bool):
            raise InvalidConfig("symmetric_views", f"must be true or false, got {self.symmetric_views!r}")
        if self.symmetric_views and task.array.geometry != "circular":
            raise InvalidConfig("symmetric_views", f"needs a ring of evenly spaced microphones (task.array.geometry: "
                                f"circular), whose rotations map microphones onto microphones; the array is "
                                f"{task.array.geometry}")

    def plain(self) -> dict:
        """The YAML form; `symmetric_views` only when on, so that banks, caches and studies from
        before it still match."""
        data = plain_fields(self)
        if not self.symmetric_views:
            del data["symmetric_views"]
        return data

    def clips(self, task: TaskConfig, band: Band, split: str, n: int, generator: torch.Generator,
              cache_dir: Path | None) -> Iterator[Clips]:
        from objectives.task.sources.rooms import load_or_build_bank, reverberant_clips  # torch, numpy

        bank = load_or_build_bank(self, task, cache_dir)
        yield from reverberant_clips(bank, task, band, split, n, generator, self.symmetric_views and split == "train")

    def fingerprint(self) -> str:
        return ""
