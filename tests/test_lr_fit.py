"""lr(f): the least-squares line against scipy, its 95 % prediction interval's coverage by
simulation, and the per-optimizer fits from the learning-rate tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from search.lr_fit import fit_tables, write_files
from search.lr_tables import Cell, LrTable
from search.stats import fit_line


def test_the_line_is_scipys_least_squares_line() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(2, 4, 7)
    y = 1.5 - 0.7 * x + rng.normal(0, 0.2, 7)
    line, reference = fit_line(x, y), stats.linregress(x, y)
    assert line.slope == pytest.approx(reference.slope) and line.intercept == pytest.approx(reference.intercept)
    # scipy's standard error of the slope is the residual sd over sqrt(Sxx)
    assert line.residual_sd / math.sqrt(line.sxx) == pytest.approx(reference.stderr)


def test_the_prediction_interval_covers_a_new_observation_95_percent_of_the_time() -> None:
    """4,000 data sets of 5 points from a known line with Gaussian noise; a new point at a
    frequency outside the fitted ones falls inside the interval in 95 % of them (a 99.9 %
    binomial bound: ±0.011)."""
    rng = np.random.default_rng(1)
    x, x0, runs = np.log10([500, 800, 1000, 2000, 3000]), math.log10(5000), 4000
    inside = 0
    for _ in range(runs):
        line = fit_line(x, -2 - 0.5 * x + rng.normal(0, 0.3, len(x)))
        y0 = -2 - 0.5 * x0 + rng.normal(0, 0.3)
        centre, half = line.predict(x0)
        inside += abs(y0 - centre) <= half
    assert inside / runs == pytest.approx(0.95, abs=0.011)


def _table(name: str, rates: dict[tuple[str, str], float]) -> LrTable:
    table = LrTable(name, name, sorted({band for band, _ in rates}), sorted({o for _, o in rates}))
    table.cells = {key: Cell(lr) for key, lr in rates.items()}
    return table


def test_an_exact_power_law_is_recovered_and_predicted(tmp_path) -> None:
    centres = {"500": 500.0, "1000": 1000.0, "3000": 3000.0}
    rate = lambda hz: 0.01 * (hz / 1000) ** -0.5
    table = _table("study_best", {**{(b, "adam"): rate(hz) for b, hz in centres.items()},
                                  ("500", "sgd"): 0.1, ("3000", "sgd"): 0.05, ("1000", "svrg"): 0.02})
    fits = {fit.optimizer: fit for fit in fit_tables([table], centres)}
    assert set(fits) == {"adam", "sgd"}  # svrg: one band, no line
    assert fits["adam"].source == "study" and fits["adam"].line.slope == pytest.approx(-0.5)
    lr, low, high = fits["adam"].predict(2000)
    assert lr == pytest.approx(rate(2000)) and low == pytest.approx(lr) and high == pytest.approx(lr)
    lr, low, high = fits["sgd"].predict(1000)  # two bands: the line, no interval
    assert lr == pytest.approx(math.sqrt(0.1 * 0.05) * (1000 / math.sqrt(500 * 3000)) ** fits["sgd"].line.slope)
    assert math.isnan(low) and math.isnan(high)
    files = write_files(list(fits.values()), tmp_path)
    assert [f.name for f in files] == ["lr_fit.md", "lr_fit.png"] and files[1].stat().st_size > 10_000
    assert "| adam | study | 3 | -0.50 | 1.00e-02 |" in files[0].read_text()
