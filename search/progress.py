"""A live per-band view of a running launch (rich)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from search.orchestrator import BandRun


class LaunchProgress:
    """One bar per band: finished/budget, best so far, trial states, elapsed and ETA."""

    def __init__(self, console: Console | None = None):
        self.progress = Progress(
            TextColumn("[bold]band {task.fields[band]:>6} Hz"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TextColumn("[dim]{task.fields[states]}"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=console,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> LaunchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, band: BandRun) -> None:
        if band.name not in self.tasks:
            self.tasks[band.name] = self.progress.add_task("", total=band.budget, band=band.name,
                                                           best="-", states="", eta="-")
        best = band.best()
        counts = band.counts
        states = (f"{counts['complete']} done {counts['pruned'] + counts['diverged']} pruned "
                  f"{counts['failed']} failed {counts['running']} running")
        finished = band.finished
        elapsed = time.monotonic() - band.started
        todo = max(0, band.budget - finished)
        eta = f"{elapsed / finished * todo:.0f}s" if finished and todo else "-"
        self.progress.update(
            self.tasks[band.name], completed=min(finished, band.budget), total=band.budget,
            best=f"{best.value:.3f}" if best else "-", states=states, eta=eta,
        )
