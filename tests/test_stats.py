"""Intervals over seeds and the rule that claims need separated intervals; the Kaplan–Meier
median and the log-rank test for censored epochs to the target, against scipy and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from search.stats import earlier, fmt, km_median, logrank, mean_ci, paired_interval, separated, sign


def test_mean_ci_is_the_t_interval() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027, sd = 1, n = 3
    assert mean == pytest.approx(2.0) and half == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert math.isnan(mean_ci([5.0])[1]) and fmt([5.0]) == "5.000"
    assert fmt([]) == "-"


def test_the_paired_interval_is_the_normal_one_on_a_large_sample() -> None:
    # Differences of correct/incorrect per item (-1, 0, 1): the bootstrap interval of their mean
    # matches mean ± 1.96 sd / sqrt(n) from first principles.
    rng = np.random.default_rng(3)
    a, b = rng.random(4000) < 0.55, rng.random(4000) < 0.5
    differences = a.astype(float) - b.astype(float)
    mean, low, high = paired_interval(differences)
    half = 1.96 * differences.std(ddof=1) / math.sqrt(len(differences))
    assert mean == pytest.approx(differences.mean())
    assert low == pytest.approx(mean - half, abs=0.002) and high == pytest.approx(mean + half, abs=0.002)


def test_claims_only_where_intervals_separate() -> None:
    assert separated([0.90, 0.91, 0.92], [0.70, 0.71, 0.72]) == 1
    assert separated([0.70, 0.71, 0.72], [0.90, 0.91, 0.92]) == -1
    assert separated([0.70, 0.90, 0.80], [0.75, 0.85, 0.95]) == 0  # overlapping: no claim
    assert separated([0.9], [0.1]) == 0  # one seed has no interval: no claim
    # a stricter level widens the intervals: what separates at 95 % may not at 99.9 %
    assert separated([1.0, 1.1, 1.2], [0.5, 0.6, 0.7]) == 1
    assert separated([1.0, 1.1, 1.2], [0.5, 0.6, 0.7], level=0.999) == 0
    assert sign([0.2, 0.3, 0.4]) == 1 and sign([-0.2, -0.3, -0.4]) == -1 and sign([-0.1, 0.2, 0.3]) == 0


def _censored(times: np.ndarray, reached: np.ndarray) -> stats.CensoredData:
    return stats.CensoredData(uncensored=times[reached], right=times[~reached])


def test_logrank_statistic_by_hand() -> None:
    # a reaches at 3, 3 and never in 10 epochs; b at 5, 5, 5. At t = 3: 6 at risk, 2 events, 3 of
    # them a's: E = 1, V = 2 (1/2)(1/2)(4/5) = 0.4. At t = 5: 4 at risk (1 of a), 3 events:
    # E = 3/4, V = 3 (1/4)(3/4)(1/3) = 0.1875. O - E = 2 - 1.75.
    z, p = logrank(([3, 3, 10], [True, True, False]), ([5, 5, 5], [True] * 3))
    assert z == pytest.approx(0.25 / math.sqrt(0.5875))
    reference = stats.logrank(_censored(np.array([3.0, 3, 10]), np.array([True, True, False])),
                              _censored(np.array([5.0, 5, 5]), np.array([True] * 3)))
    assert z == pytest.approx(reference.statistic)


@pytest.mark.parametrize("censor", [0.0, 0.3])
def test_logrank_statistic_agrees_with_scipy(censor: float) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        a, b = rng.integers(1, 8, 6).astype(float), rng.integers(2, 10, 5).astype(float)
        ra, rb = rng.random(6) >= censor, rng.random(5) >= censor
        z, _ = logrank((a, ra), (b, rb))
        assert z == pytest.approx(stats.logrank(_censored(a, ra), _censored(b, rb)).statistic)


def test_exact_p_is_the_share_of_label_arrangements_as_extreme() -> None:
    # Three 4s against three 5s: of the C(6, 3) = 20 ways to label them, only this one and its
    # mirror are as extreme, so p = 2 / 20: no claim with 3 seeds, though intervals would have none.
    assert logrank(([4] * 3, [True] * 3), ([5] * 3, [True] * 3))[1] == pytest.approx(0.1)
    assert earlier(([4] * 3, [True] * 3), ([5] * 3, [True] * 3)) == 0
    # With 5 seeds each: p = 2 / C(10, 5) = 2 / 252, and the earlier sample wins.
    assert logrank(([4] * 5, [True] * 5), ([5] * 5, [True] * 5))[1] == pytest.approx(2 / 252)
    assert earlier(([4] * 5, [True] * 5), ([5] * 5, [True] * 5)) == 1
    assert earlier(([5] * 5, [True] * 5), ([4] * 5, [True] * 5)) == -1
    # Identical samples (a zero-width tie) and seeds that never reach the target: no claim.
    assert logrank(([4] * 3, [True] * 3), ([4] * 3, [True] * 3)) == (0.0, 1.0)
    assert earlier(([3, 3, 10], [True, True, False]), ([5, 5, 5], [True] * 3)) == 0


def test_drawn_arrangements_give_the_asymptotic_p_on_large_samples() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.exponential(1.0, 40), rng.exponential(2.5, 40)
    ra, rb = rng.random(40) < 0.8, rng.random(40) < 0.8
    z, p = logrank((a, ra), (b, rb))  # C(80, 40) arrangements: drawn
    reference = stats.logrank(_censored(a, ra), _censored(b, rb))
    assert p == pytest.approx(reference.pvalue, abs=0.02) and reference.pvalue < 0.05
    assert earlier((a, ra), (b, rb)) == 1


@pytest.mark.parametrize("times,reached", [
    ([1, 2, 3, 4], [True] * 4),
    ([2, 3, 3, 5, 8, 8], [True, False, True, True, False, True]),
    ([3, 3, 10], [True, True, False]),
    ([1, 4, 4, 6, 6, 7], [False, True, False, True, True, True]),
])
def test_km_median_is_where_scipys_survival_curve_first_reaches_half(times, reached) -> None:
    curve = stats.ecdf(_censored(np.array(times, float), np.array(reached))).sf
    expected = min(t for t in curve.quantiles if curve.evaluate(t) <= 0.5 + 1e-12)
    assert km_median(times, reached) == expected


def test_km_median_not_reached_while_the_curve_stays_above_half() -> None:
    assert math.isnan(km_median([3, 10, 10], [True, False, False]))
    assert math.isnan(km_median([10, 10], [False, False]))
