"""The folder source: the user's own recordings (array.json, labels.csv, audio files)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.errors import InvalidConfig

if TYPE_CHECKING:
    import torch

    from objectives.task.config import Band, TaskConfig
    from objectives.task.synthesis import Clips


@dataclass(frozen=True)
class Folder:
    """The user's recordings: a folder with array.json, labels.csv and audio files
    (objectives/task/sources/recordings.py). Array, sample rate and clip counts come from the folder."""

    kind: str = field(default="folder", init=False)
    path: str = ""
    # A quarter of the recordings held out when labels.csv has no split column.
    val_fraction: float = 0.25

    # recordings.py imports soundfile: loaded only when a folder source is used.
    def validate(self, task: TaskConfig) -> None:
        from objectives.task.sources.recordings import RecordingsError, check_task, index_folder

        if not 0 < self.val_fraction < 1:
            raise InvalidConfig("val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        try:
            check_task(index_folder(Path(self.path), task.clip_samples, task.seed, self.val_fraction), task)
        except RecordingsError as err:
            raise InvalidConfig("path", str(err)) from None

    def clips(self, task: TaskConfig, band: Band, split: str, n: int, generator: torch.Generator,
              cache_dir: Path | None) -> Iterator[Clips]:
        from objectives.task.sources.recordings import folder_clips, index_folder

        index = index_folder(Path(self.path), task.clip_samples, task.seed, self.val_fraction)
        yield from folder_clips(index, task, band, split)

    def fingerprint(self) -> str:
        from objectives.task.sources.recordings import fingerprint

        return fingerprint(Path(self.path))
