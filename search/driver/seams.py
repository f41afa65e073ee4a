"""The two seams of the driver's loop: where trials run and who is told of progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from search.driver.bands import BandRun
from search.jobs import TrialJob, TrialOutcome


class Progress(Protocol):
    def update(self, band: BandRun) -> None: ...


class TrialRunner(Protocol):
    """Where trials run: the four calls of search/cluster.py the loop uses."""

    def submit(self, job: TrialJob, data: Any, cpus: float, gpus: float) -> Any: ...
    def wait_one(self, pending: list[Any], timeout: float | None = None) -> Any | None: ...
    def result(self, ref: Any) -> tuple[TrialOutcome | None, str | None, bool]: ...
    def cancel(self, refs: Sequence[Any]) -> None: ...
