"""lr(f): the least-squares line against scipy, its 95 % prediction interval's coverage by
simulation, and the per-optimizer fits from the learning-rate tables."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import services
from conftest import tiny_config, write_yaml
from scipy import stats

from objectives.errors import InvalidConfig
from search.lr_fit import fit_tables, study_fits, write_files
from search.lr_tables import Cell, LrTable
from search.space import parse_space
from search.stats import fit_line
from search.storage import open_storage


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


@pytest.mark.parametrize(("lr", "message"), [
    ({"from": "lr_fit", "factor": 3}, "lr.study: required"),
    ({"from": "lr_fit", "study": "a", "window": 3}, "lr.window: unknown key; `from: lr_fit` takes ['factor', 'study']"),
    ({"from": "lr_fits", "study": "a"}, "lr.from: unknown source 'lr_fits'; use lr_finder or lr_fit"),
])
def test_a_bad_fit_source_is_refused_naming_the_key(lr: dict, message: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        parse_space({"optimizer": {"adam": {}}, "lr": lr}, n_train=400, epochs=3)
    assert str(caught.value).startswith(message)


@pytest.mark.slow
def test_a_space_takes_its_lr_range_from_an_earlier_studys_fit(tmp_path: Path) -> None:
    """Study `first` (adam only, two bands) through the CLI, then `second` whose adam range is
    [p/3, 3p] around the rate first's lr(f) predicts at each of its bands, one of them new
    (2000 Hz); an optimizer `first` never ran has no fit and stops the launch, naming the key."""
    run_dir = str(tmp_path / "runs")
    adam_only = tiny_config()["space"]
    del adam_only["optimizer"]["sgd"]
    first = write_yaml(tmp_path / "first.yaml", tiny_config(space=adam_only, search={"trials_per_band": 3}))
    assert _launch(first, run_dir, tmp_path).returncode == 0
    fit = study_fits(f"{run_dir}/optuna.journal", "first")["adam"]
    space = tiny_config()["space"]
    space["optimizer"]["adam"]["lr"] = {"from": "lr_fit", "study": "first", "factor": 3}
    del space["optimizer"]["sgd"]
    bands = [{"name": "500", "center_hz": 500}, {"name": "2000", "center_hz": 2000}]
    second = write_yaml(tmp_path / "second.yaml", tiny_config(bands=bands, space=space, search={"trials_per_band": 3}))
    done = _launch(second, run_dir, tmp_path)
    assert done.returncode == 0, done.stderr
    for band, hz in (("500", 500), ("2000", 2000)):
        predicted = fit.predict(hz)[0]
        study = optuna.load_study(study_name=f"second/{band}", storage=open_storage(f"{run_dir}/optuna.journal"))
        assert all(predicted / 3 <= t.params["adam.lr"] <= predicted * 3 for t in study.trials)
        assert study.trials[0].distributions["adam.lr"].low == pytest.approx(predicted / 3)
    space["optimizer"]["sgd"] = {"lr": {"from": "lr_fit", "study": "first"}}
    third = write_yaml(tmp_path / "third.yaml", tiny_config(space=space, search={"trials_per_band": 3}))
    refused = _launch(third, run_dir, tmp_path)
    assert refused.returncode == 2 and "space.optimizer.sgd.lr: the study has no lr(f) fit" in refused.stderr


def _launch(space: Path, run_dir: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", "launch", str(space), "--run-dir", run_dir, "--quiet",
                           "--num-cpus", "2"], cwd=cwd, capture_output=True, text=True, env=services.env())
