"""The embedded MLflow store (sqlite in the run folder) under launches started at the same
moment: created once under its lock, never left half-migrated, shared by all of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, write_yaml
from read_mlflow import dump
from services import _stop, env

from search.mlflow_store import open_client, sqlite_file
from search.settings import default_tracking_uri

pytestmark = pytest.mark.timeout(120)


def test_the_sqlite_file_of_a_tracking_uri() -> None:
    assert sqlite_file("sqlite:////runs/mlflow.db") == Path("/runs/mlflow.db")
    assert sqlite_file("sqlite:///runs/mlflow.db?timeout=9") == Path("runs/mlflow.db")
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("http://u:p@host:5000") is None


def test_a_fresh_store_is_created_whole_beside_its_lock(tmp_path: Path) -> None:
    uri = default_tracking_uri(tmp_path / "new")
    open_client(uri).create_experiment("first")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["mlflow.db", "mlflow.db.lock"]
    assert {e.name for e in open_client(uri).search_experiments()} == {"Default", "first"}


@pytest.mark.distributed  # four local Ray clusters at once: minutes on 2 cores
@pytest.mark.timeout(600)
def test_four_launches_started_together_share_one_store(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(
        bands=[{"name": "1000", "center_hz": 1000}], search={"trials_per_band": 2, "workers": 1},
        task={"n_train": 200, "n_val": 100}, training={"epochs": 1, "model": {"hidden": 8}},
        baselines={"methods": []}))
    run_dir = tmp_path / "runs"
    studies = [f"together-{n}" for n in range(4)]
    launch_env = {key: value for key, value in env().items() if key not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    launches = []
    try:
        for study in studies:
            with open(tmp_path / f"{study}.log", "wb") as log:
                launches.append(subprocess.Popen(
                    [sys.executable, "-m", "search.cli", "launch", str(space), "--study", study, "--run-dir",
                     str(run_dir), "--num-cpus", "1", "--quiet"],
                    cwd=tmp_path, env=launch_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        codes = [launch.wait(timeout=540) for launch in launches]
    finally:
        for launch in launches:
            _stop(launch)
    logs = {study: (tmp_path / f"{study}.log").read_text()[-2000:] for study in studies}
    assert codes == [0, 0, 0, 0], logs

    uri = default_tracking_uri(run_dir)
    assert set(studies) <= {e.name for e in open_client(uri).search_experiments()}
    for study in studies:
        runs = dump(uri, study)["runs"]
        roles = sorted(r["tags"].get("bandsearch.role") for r in runs)
        assert roles.count("trial") == 2 and roles.count("band") == 1, (study, roles)
        assert not [r for r in runs if r["status"] == "RUNNING"], study
