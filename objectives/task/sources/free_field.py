"""The free-field source: far-field plane waves with the exact inter-mic phase, no room."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.task.sources.base import CHUNK, check_share

if TYPE_CHECKING:
    import torch

    from objectives.task.config import Band, TaskConfig
    from objectives.task.synthesis import Clips


@dataclass(frozen=True)
class FreeField:
    """Far-field plane waves with the exact inter-mic phase, no room (objectives/task/synthesis.py)."""

    kind: str = field(default="free_field", init=False)
    share: float = 1.0

    def validate(self, task: TaskConfig) -> None:
        check_share(self.share)

    def clips(self, task: TaskConfig, band: Band, split: str, n: int, generator: torch.Generator,
              cache_dir: Path | None) -> Iterator[Clips]:
        from objectives.task.synthesis import synthesize  # torch: loaded when clips are made, never to validate

        for start in range(0, n, CHUNK):
            yield synthesize(task, band, min(CHUNK, n - start), generator)

    def fingerprint(self) -> str:
        return ""  # the parameters say it all
