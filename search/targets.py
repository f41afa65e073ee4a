"""Epochs to the target validation accuracy, per re-run seed, from its per-epoch history.

The report resolves the target the same way for both forms of `training.target`: an absolute
accuracy as given, a relative one as that fraction of the best validation accuracy any re-run
of the band reached (every optimizer, seed and epoch). A seed that never reaches it is
censored at the number of epochs it trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from objectives.train.config import Target
from search.stats import Censored, earlier, km_median

BandTimes = dict[str, dict[str, Censored]]  # band -> optimizer -> its seeds' epochs to the target


def band_times(by_band: Mapping[str, Sequence[Any]], target: Target) -> tuple[dict[str, float], BandTimes]:
    """Per band, the accuracy to reach and, per optimizer, its seeds' epochs to it; `by_band` holds
    each band's re-runs (search.report.Rerun)."""
    thresholds = {band: threshold(target, [h for rerun in reruns for h in rerun.histories])
                  for band, reruns in by_band.items()}
    times = {band: {rerun.optimizer: epochs_to(rerun.histories, thresholds[band]) for rerun in reruns}
             for band, reruns in by_band.items()}
    return thresholds, times


def threshold(target: Target, histories: Sequence[Sequence[dict[str, Any]]]) -> float:
    """The accuracy to reach, given every history of the band's re-runs."""
    if target.accuracy is not None:
        return target.accuracy
    return target.fraction_of_best * max(epoch["val_accuracy"] for history in histories for epoch in history)


def describe(target: Target) -> str:
    if target.accuracy is not None:
        return f"{target.accuracy:.0%} validation accuracy"
    return f"{target.fraction_of_best:.0%} of the best validation accuracy any re-run of the band reached"


def epochs_to(histories: Sequence[Sequence[dict[str, Any]]], accuracy: float) -> tuple[list[int], list[bool]]:
    """Per history: the first epoch reaching `accuracy` and True, or the epochs trained and False."""
    epochs, reached = [], []
    for history in histories:
        first = next((epoch["epoch"] for epoch in history if epoch["val_accuracy"] >= accuracy), None)
        epochs.append(int(first) if first is not None else len(history))
        reached.append(first is not None)
    return epochs, reached


def median_text(times: Censored) -> str:
    """The Kaplan–Meier median in epochs, or "not reached" when the curve never drops to 0.5."""
    median = km_median(*times)
    return "not reached" if math.isnan(median) else f"{median:g}"


def faster_claims(times: BandTimes) -> list[str]:
    """Pairwise claims per band ({band: {optimizer: times}}) where the log-rank test decides at 5 %."""
    claims = []
    for band, by_optimizer in times.items():
        for a, b in ((a, b) for a in by_optimizer for b in by_optimizer if a < b):
            side = earlier(by_optimizer[a], by_optimizer[b])
            if side:
                winner, loser = (a, b) if side > 0 else (b, a)
                claims.append(f"- band {band} Hz: **{winner}** reaches the target faster than {loser}")
    return claims or ["- no difference is significant at 5 % (exact log-rank test: with K seeds against K "
                      "its smallest two-sided p is 2 / C(2K, K), 0.1 for K = 3)"]
