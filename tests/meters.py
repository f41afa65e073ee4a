"""Several dynamics meters on one training run, for the sampling test and its benchmark."""

from __future__ import annotations

from objectives.train.dynamics import Dynamics


class Meters:
    """Several meters on one training run: the exact one first (what the loop sees), then the sampled."""

    def __init__(self, meters: list[Dynamics]):
        self.meters, self.epochs, self.summaries = meters, [[] for _ in meters], []

    def __getattr__(self, hook: str):
        return lambda *args: [getattr(meter, hook)(*args) for meter in self.meters][0]

    def end_epoch(self, *args) -> dict[str, float]:
        for history, meter in zip(self.epochs, self.meters):
            history.append(meter.end_epoch(*args))
        return self.epochs[0][-1]

    def summary(self) -> dict[str, float]:
        self.summaries = [meter.summary() for meter in self.meters]
        return self.summaries[0]
