"""Cross-band transfer from an earlier study: the settings' errors, and two real launches where
the second study's bands start from the first's nearest bands, learning rates moved along its
lr(f) fit, with the lineage on the Optuna trial and the MLflow run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import services
from conftest import tiny_config, write_yaml
from optuna.trial import TrialState
from read_mlflow import dump

from search.config import load_config
from search.driver.transfer import neighbour_order
from search.errors import BandsearchError
from search.lr_fit import study_fits
from search.storage import open_storage


@pytest.mark.parametrize(("transfer", "message"), [
    ({"from": "nearby"}, "search.transfer.from: must be neighbours (this launch's bands) or {study: NAME}"),
    ({"from": {"study": "a"}, "top_k": 0}, "search.transfer.top_k: must be a whole number >= 1"),
    ({"from": {"study": "a"}, "lr_scaling": "linear"}, "search.transfer.lr_scaling: must be one of"),
    ({"from": {"study": "a"}, "window": 3}, "search.transfer.window: unknown key"),
    ({"from": {"name": "a"}}, "search.transfer.from: must be neighbours (this launch's bands) or {study: NAME}"),
])
def test_bad_transfer_settings_are_refused_naming_the_key(tmp_path: Path, transfer: dict, message: str) -> None:
    with pytest.raises(BandsearchError) as caught:
        load_config(write_yaml(tmp_path / "t.yaml", tiny_config(search={"transfer": transfer})))
    assert f"{tmp_path / 't.yaml'}: {message}" in str(caught.value)


def test_neighbour_order_starts_in_the_middle_and_grows_one_neighbour_at_a_time() -> None:
    centres = {f"b{i}": 25 * 2 ** (i / 3) for i in range(24)}  # 1/3-octave bands, shuffled by name below
    order = neighbour_order(dict(sorted(centres.items(), key=lambda item: item[0][::-1])))
    assert sorted(order) == sorted(centres)
    assert order[0] in ("b11", "b12")  # the log-middle of 25 Hz to 25·2^(23/3) Hz
    for placed in range(1, len(order) + 1):  # those placed are always adjacent bands
        indices = sorted(int(name[1:]) for name in order[:placed])
        assert indices == list(range(indices[0], indices[0] + placed))
    assert neighbour_order({"only": 1000.0}) == ["only"]


def _launch(space: Path, study: str, run_dir: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "search.cli", "launch", str(space), "--study", study, "--run-dir",
                           run_dir, "--quiet", "--num-cpus", "2"], cwd=cwd, capture_output=True, text=True,
                          env=services.env())
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_new_study_starts_from_the_nearest_bands_of_an_earlier_one(tmp_path: Path) -> None:
    run_dir, journal = str(tmp_path / "runs"), f"{tmp_path / 'runs'}/optuna.journal"
    space = tiny_config()["space"]
    del space["optimizer"]["sgd"]  # one optimizer: its lr(f) fit exists for sure
    _launch(write_yaml(tmp_path / "a.yaml", tiny_config(space=space, search={"trials_per_band": 3})),
            "first", run_dir, tmp_path)
    bands = [{"name": "1000", "center_hz": 1000}, {"name": "2400", "center_hz": 2400}]
    second = tiny_config(space=space, bands=bands,
                         search={"trials_per_band": 3, "transfer": {"from": {"study": "first"}, "top_k": 2}})
    _launch(write_yaml(tmp_path / "b.yaml", second), "second", run_dir, tmp_path)
    storage = open_storage(journal)
    source = {band: optuna.load_study(study_name=f"first/{band}", storage=storage) for band in ("500", "3000")}
    slope = study_fits(journal, "first")["adam"].line.slope
    runs = {r["tags"]["optuna.trial_number"] + "/" + r["tags"]["bandsearch.band"]: r
            for r in dump(f"sqlite:///{run_dir}/mlflow.db", "second")["runs"]
            if r["tags"].get("bandsearch.role") == "trial"}
    for band, hz, nearest in (("1000", 1000, "500"), ("2400", 2400, "3000")):
        trials = optuna.load_study(study_name=f"second/{band}", storage=storage).get_trials()
        assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 3
        best = sorted(source[nearest].get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -t.value)[:2]
        for trial, origin in zip(trials[:2], best):
            lineage = trial.user_attrs["transfer_from"]
            factor = (hz / int(nearest)) ** slope
            assert (lineage["study"], lineage["band"], lineage["trial"]) == ("first", nearest, origin.number)
            assert lineage["lr_factor"] == pytest.approx(factor)
            low, high = 1e-4, 1e-2  # the space's adam range: the moved rate is clipped into it
            assert trial.params["adam.lr"] == pytest.approx(min(max(origin.params["adam.lr"] * factor, low), high))
            assert {k: v for k, v in trial.params.items() if k != "adam.lr"} == {
                k: v for k, v in origin.params.items() if k != "adam.lr"}
            tag = runs[f"{trial.number}/{band}"]["tags"]["bandsearch.transfer_from"]
            assert tag.startswith(f"first/{nearest} trial {origin.number} (lr x ") and not math.isnan(factor)
        assert "transfer_from" not in trials[2].user_attrs
