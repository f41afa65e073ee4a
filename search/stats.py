"""Means with 95 % intervals over seeds, and claims made only where intervals separate; a paired
bootstrap interval of a mean difference (two methods scored on the same items); for
times that may be censored (a seed that never reaches the target), the Kaplan–Meier median and
an exact two-sample log-rank test."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Censored = tuple[Sequence[float], Sequence[bool]]  # times, and whether each ended in the event (else censored)
EXACT_LIMIT = 100_000  # label arrangements enumerated exactly; beyond, this many drawn at random


def _t_quantile(level: float, dof: int) -> float:
    """The two-sided `level` quantile of Student's t (scipy takes half a second to load: loaded
    on first use, not with every command that imports this module)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, dof))


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the two-sided t interval); half-width is nan for one value."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    half = _t_quantile(level, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, half


def fmt(values: Sequence[float], digits: int = 3) -> str:
    mean, half = mean_ci(values)
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def paired_interval(differences: Sequence[float], level: float = 0.95, resamples: int = 10_000,
                    seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-item differences between two methods scored on the same
    items, and its percentile bootstrap interval (items resampled with replacement)."""
    values = np.asarray(differences, dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(values), (resamples, len(values)))
    means = values[draws].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(low), float(high)


def separated(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> int:
    """+1 if a's interval lies wholly above b's, -1 if below, 0 if they overlap (no claim)."""
    (ma, ha), (mb, hb) = mean_ci(a, level), mean_ci(b, level)
    if any(math.isnan(x) for x in (ma, ha, mb, hb)):
        return 0
    if ma - ha > mb + hb:
        return 1
    if ma + ha < mb - hb:
        return -1
    return 0


def sign(values: Sequence[float], level: float = 0.95) -> int:
    """+1 if the interval of the mean lies wholly above 0, -1 if below, 0 otherwise (or one value)."""
    return separated(values, [0.0, 0.0], level)


def km_median(times: Sequence[float], reached: Sequence[bool]) -> float:
    """Kaplan–Meier median: the first time the survival estimate drops to 0.5 or below; nan when
    it never does. A time with reached False is censored there (never reached within it)."""
    survival = 1.0
    for t in sorted({t for t, r in zip(times, reached) if r}):
        at_risk = sum(1 for u in times if u >= t)
        events = sum(1 for u, r in zip(times, reached) if r and u == t)
        survival *= 1 - events / at_risk
        if survival <= 0.5:
            return float(t)
    return math.nan


def _logrank_z(times: np.ndarray, reached: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The log-rank statistic (O - E) / sqrt(V) of group True, for each row of `groups` (arrangements x n)."""
    event_times = np.unique(times[reached])
    at_risk = (times[None, :] >= event_times[:, None]).astype(float)  # distinct event times x n
    events = ((times[None, :] == event_times[:, None]) & reached[None, :]).astype(float)
    n, d = at_risk.sum(axis=1), events.sum(axis=1)
    n_a, d_a = groups @ at_risk.T, groups @ events.T  # arrangements x event times
    share = n_a / n
    excess = (d_a - d * share).sum(axis=1)
    variance = (d * share * (1 - share) * (n - d) / np.maximum(n - 1, 1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, excess / np.sqrt(variance), 0.0)


def logrank(a: Censored, b: Censored) -> tuple[float, float]:
    """(z, two-sided p) of the log-rank test that a and b, each (times, reached), reach their
    event equally early; z > 0: a earlier. p is exact under the permutation of group labels
    (every arrangement while there are at most EXACT_LIMIT, else that many drawn, seeded)."""
    times = np.asarray([*a[0], *b[0]], dtype=float)
    reached = np.asarray([*a[1], *b[1]], dtype=bool)
    size, n_a = len(times), len(a[0])
    observed = _logrank_z(times, reached, (np.arange(size) < n_a)[None, :].astype(float))[0]
    exact = math.comb(size, n_a) <= EXACT_LIMIT
    groups = _every_arrangement(size, n_a) if exact else _drawn_arrangements(size, n_a)
    extreme = int((np.abs(_logrank_z(times, reached, groups)) >= abs(observed) - 1e-9).sum())
    return float(observed), extreme / len(groups) if exact else (1 + extreme) / (1 + len(groups))


def _every_arrangement(size: int, n_a: int) -> np.ndarray:
    """One row per way of choosing which n_a of `size` samples form group a (1.0 marks them)."""
    groups = np.zeros((math.comb(size, n_a), size))
    for row, chosen in enumerate(itertools.combinations(range(size), n_a)):
        groups[row, list(chosen)] = 1.0
    return groups


def _drawn_arrangements(size: int, n_a: int) -> np.ndarray:
    """EXACT_LIMIT arrangements drawn uniformly (seeded: the same data give the same p)."""
    rows = np.tile(np.arange(size) < n_a, (EXACT_LIMIT, 1))
    return np.random.default_rng(0).permuted(rows, axis=1).astype(float)


def earlier(a: Censored, b: Censored, alpha: float = 0.05) -> int:
    """+1 if a reaches its event significantly earlier than b (log-rank, two-sided, at alpha),
    -1 if later, 0 if the test does not decide (ties, too few seeds)."""
    z, p = logrank(a, b)
    return int(np.sign(z)) if p < alpha else 0


@dataclass(frozen=True)
class Line:
    """Least squares y = intercept + slope x over n points; `predict` gives the 95 % prediction
    interval of a new observation at x (t with n - 2 degrees of freedom), none below 3 points."""

    slope: float
    intercept: float
    n: int
    residual_sd: float  # nan below 3 points
    x_mean: float
    sxx: float

    def predict(self, x: float, level: float = 0.95) -> tuple[float, float]:
        """(the line at x, the interval's half-width; nan when it has no degrees of freedom)."""
        y = self.intercept + self.slope * x
        if self.n < 3:
            return y, math.nan
        spread = self.residual_sd * math.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        return y, _t_quantile(level, self.n - 2) * spread


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> Line:
    """The least-squares line through (xs, ys); a single point, or a single x, gives slope 0."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    sxx = float(((x - x.mean()) ** 2).sum())
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / sxx) if sxx > 0 else 0.0
    intercept = float(y.mean() - slope * x.mean())
    residuals = y - intercept - slope * x
    sd = math.sqrt(float((residuals ** 2).sum()) / (len(x) - 2)) if len(x) > 2 and sxx > 0 else math.nan
    return Line(slope, intercept, len(x), sd, float(x.mean()), sxx)
