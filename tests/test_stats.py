"""Intervals over seeds and the rule that claims need separated intervals."""

from __future__ import annotations

import math

import pytest

from search.stats import fmt, mean_ci, separated


def test_mean_ci_is_the_t_interval() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027, sd = 1, n = 3
    assert mean == pytest.approx(2.0) and half == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert math.isnan(mean_ci([5.0])[1]) and fmt([5.0]) == "5.000"
    assert fmt([]) == "-"


def test_claims_only_where_intervals_separate() -> None:
    assert separated([0.90, 0.91, 0.92], [0.70, 0.71, 0.72]) == 1
    assert separated([0.70, 0.71, 0.72], [0.90, 0.91, 0.92]) == -1
    assert separated([0.70, 0.90, 0.80], [0.75, 0.85, 0.95]) == 0  # overlapping: no claim
    assert separated([0.9], [0.1]) == 0  # one seed has no interval: no claim
