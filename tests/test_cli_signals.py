"""SIGTERM to a running `bandsearch launch` ends it like Ctrl-C: open trials failed (retried on
the next launch), nothing left RUNNING in Optuna or MLflow, one line, exit code 143."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import tiny_config, write_yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(400)


def _trials(journal: Path) -> list[optuna.trial.FrozenTrial]:
    if not journal.exists():
        return []
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return [trial for summary in optuna.get_all_study_summaries(storage)
            for trial in optuna.load_study(study_name=summary.study_name, storage=storage).get_trials()]


def _wait_for_a_training_trial(journal: Path, launch: subprocess.Popen, timeout: float) -> None:
    """Until a trial is RUNNING in Optuna and has reported an epoch (it trains on a worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if launch.poll() is not None:
            raise AssertionError(f"launch ended early (rc {launch.returncode}): {launch.communicate()[1]}")
        if any(t.state == TrialState.RUNNING and t.intermediate_values for t in _trials(journal)):
            return
        time.sleep(0.5)
    raise AssertionError(f"no trial was training after {timeout:.0f} s")


def test_sigterm_fails_open_trials_and_exits_143_with_one_line(tmp_path: Path) -> None:
    # Long trials (200 epochs): one is surely mid-training when the signal comes.
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(search={"trials_per_band": 2, "workers": 1},
                                                           training={"epochs": 200}))
    runs = tmp_path / "runs"
    launch = subprocess.Popen([sys.executable, "-m", "search.cli", "launch", str(space), "--study", "sig",
                               "--run-dir", str(runs), "--num-cpus", "1", "--quiet"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_a_training_trial(runs / "optuna.journal", launch, timeout=240)
        launch.send_signal(signal.SIGTERM)
        _, stderr = launch.communicate(timeout=120)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()
    assert launch.returncode == 143, stderr
    for dump in ("Traceback", "Fatal Python error", "Stack (most recent call first)", "*** SIG", "Aborted"):
        assert dump not in stderr, stderr
    assert "terminated: open trials were failed and will be retried on the next launch" in stderr
    trials = _trials(runs / "optuna.journal")
    assert trials and not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert any(t.state == TrialState.FAIL for t in trials)
    dumped = subprocess.run([sys.executable, str(HERE / "read_mlflow.py"), f"sqlite:///{runs / 'mlflow.db'}", "sig"],
                            check=True, capture_output=True, text=True)
    mlflow_runs = json.loads(dumped.stdout)["runs"]
    assert mlflow_runs and not [r["name"] for r in mlflow_runs if r["status"] == "RUNNING"]
