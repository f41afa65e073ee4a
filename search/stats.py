"""Means with 95 % intervals over seeds, and claims made only where intervals separate."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy import stats


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the two-sided t interval); half-width is nan for one value."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, half


def fmt(values: Sequence[float], digits: int = 3) -> str:
    mean, half = mean_ci(values)
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def separated(a: Sequence[float], b: Sequence[float]) -> int:
    """+1 if a's interval lies wholly above b's, -1 if below, 0 if they overlap (no claim)."""
    (ma, ha), (mb, hb) = mean_ci(a), mean_ci(b)
    if any(math.isnan(x) for x in (ma, ha, mb, hb)):
        return 0
    if ma - ha > mb + hb:
        return 1
    if ma + ha < mb - hb:
        return -1
    return 0
