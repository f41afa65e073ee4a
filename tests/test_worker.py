"""The worker's side of a trial: what it imports, and when it sends epochs to MLflow."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from services import env

from search.tracking import Tracker
from search.worker import TrialReporter, batch_seconds


def test_importing_the_worker_does_not_load_mlflow() -> None:
    # Every trial task imports search.worker; MLflow (~1 s per worker process) must wait
    # until a trial sends a batch itself.
    probe = "import sys, search.worker; print('mlflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env(), check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("uri", "seconds"), [
    ("http://127.0.0.1:5000", 2.0), ("HTTPS://mlflow.example.org", 2.0), ("databricks", 2.0),
    ("sqlite:////tmp/mlflow.db", 30.0), ("postgresql://u@db/mlflow", 30.0), ("/data/mlruns", 30.0),
])
def test_batches_are_frequent_to_a_server_and_rare_to_a_store_the_worker_opens(uri, seconds) -> None:
    assert batch_seconds(uri) == seconds


@pytest.fixture
def run(tmp_path) -> tuple[Tracker, str]:
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracker.experiment("worker", None)
    return tracker, tracker.client.create_run(experiment).info.run_id


def _reporter(tracker: Tracker, run_id: str, flush_seconds: float) -> TrialReporter:
    study = optuna.create_study(direction="maximize")
    return TrialReporter(study.ask(), run_id, tracker.uri, flush_seconds=flush_seconds)


def _epochs(tracker: Tracker, run_id: str) -> list[int]:
    return [m.step for m in tracker.client.get_metric_history(run_id, "val_accuracy")]


def test_epochs_of_a_trial_shorter_than_the_interval_stay_for_the_driver(run) -> None:
    tracker, run_id = run
    reporter = _reporter(tracker, run_id, flush_seconds=batch_seconds(tracker.uri))
    for epoch in (1, 2, 3):
        reporter.report(epoch, {"val_accuracy": 0.1 * epoch})
    assert [epoch for epoch, _ in reporter.pending] == [1, 2, 3]
    assert _epochs(tracker, run_id) == []


def test_epochs_past_the_interval_are_sent_by_the_worker(run) -> None:
    tracker, run_id = run
    reporter = _reporter(tracker, run_id, flush_seconds=0.0)
    for epoch in (1, 2):
        reporter.report(epoch, {"val_accuracy": 0.1 * epoch})
    assert reporter.pending == []
    assert _epochs(tracker, run_id) == [1, 2]
