"""How a running launch shows itself: a live per-band view (rich), JSON lines, or nothing."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from search.driver.bands import BandRun
from search.studies import score


def _eta(band: BandRun, since: int) -> float | None:
    """Seconds left, from this launch's pace (trials finished before it do not count)."""
    done = band.finished - since
    todo = band.budget - band.finished
    if done <= 0 or todo <= 0:
        return None
    return (time.monotonic() - band.started) / done * todo


class LiveProgress:
    """One bar per band: finished/budget, best so far, trial states, elapsed and ETA."""

    def __init__(self, console: Console | None = None):
        self.progress = Progress(
            TextColumn("[bold]band {task.fields[band]:>6} Hz"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TextColumn("[dim]{task.fields[states]}"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=console,
        )
        self.tasks: dict[str, int] = {}
        self.start_counts: dict[str, int] = {}

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, band: BandRun) -> None:
        if band.name not in self.tasks:
            self.tasks[band.name] = self.progress.add_task("", total=band.budget, band=band.name,
                                                           best="-", states="", eta="-")
            self.start_counts[band.name] = band.finished
        best = band.best()
        c = band.counts
        eta = _eta(band, self.start_counts[band.name])
        self.progress.update(
            self.tasks[band.name], completed=min(band.finished, band.budget), total=band.budget,
            best=f"{score(best):.3f}" if best else "-",
            states=f"{c['complete']} done {c['pruned'] + c['diverged']} pruned {c['failed']} failed "
                   f"{c['running']} running",
            eta=f"{eta:.0f}s" if eta is not None else "-",
        )


class JsonLinesProgress:
    """One JSON object per line whenever a band's counts change: for scripts and CI logs."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.last: dict[str, tuple] = {}
        self.start_counts: dict[str, int] = {}

    def __enter__(self) -> JsonLinesProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def update(self, band: BandRun) -> None:
        self.start_counts.setdefault(band.name, band.finished)
        state = tuple(sorted(band.counts.items()))
        if self.last.get(band.name) == state:
            return
        self.last[band.name] = state
        best = band.best()
        eta = _eta(band, self.start_counts[band.name])
        record = {
            "band": band.name, "budget": band.budget, "finished": band.finished, **band.counts,
            "best": score(best) if best else None, "best_trial": best.number if best else None,
            "elapsed_s": round(time.monotonic() - band.started, 1), "eta_s": round(eta, 1) if eta else None,
        }
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()
