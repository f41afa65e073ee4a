"""The Tracker and its Outbox against a real local MLflow store, with an outage injected at chosen calls."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from search.outbox import Outbox
from search.tracking import TOKEN_TAG, Tracker


class FlakyTracker(Tracker):
    """A Tracker whose MLflow connection drops for the next `failures` log_batch calls."""

    def __init__(self, uri: str):
        super().__init__(uri)
        self.failures = 0
        real = self.client.log_batch

        def log_batch(*args, **kwargs):
            if self.failures:
                self.failures -= 1
                raise requests.exceptions.ConnectionError("connection refused")
            return real(*args, **kwargs)

        self.client.log_batch = log_batch


@pytest.fixture
def tracker(tmp_path) -> FlakyTracker:
    return FlakyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _runs(tracker: Tracker, experiment_id: str) -> list:
    return tracker.client.search_runs([experiment_id])


def _until_outage_seen(outbox: Outbox, timeout: float = 30.0) -> None:
    """Wait until the writer thread has met the injected outage (it then holds its writes)."""
    deadline = time.monotonic() + timeout
    while outbox.retry_at <= time.monotonic():
        assert time.monotonic() < deadline, "the writer never tried the failing call"
        time.sleep(0.01)


def test_a_run_created_before_the_outage_is_completed_not_duplicated(tracker) -> None:
    experiment = tracker.experiment("outage", None)
    outbox = Outbox(tracker, retry_seconds=3600.0)
    tracker.failures = 1  # the run is created, then its params are lost
    run_id = outbox.start_run(experiment, "t000", tags={"bandsearch.role": "trial"}, params={"lr": 0.01})
    _until_outage_seen(outbox)
    assert outbox.resolve(run_id) == run_id and run_id.startswith(Outbox.PLACEHOLDER)
    outbox.finish(run_id, "FINISHED")
    assert len(outbox.queue) == 2

    assert outbox.flush(force=True)
    runs = _runs(tracker, experiment)
    assert len(runs) == 1
    assert runs[0].info.run_id == outbox.resolve(run_id)
    assert runs[0].data.params == {"lr": "0.01"} and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags[TOKEN_TAG]


def test_writes_wait_in_order_and_link_the_run_when_it_exists(tracker) -> None:
    experiment = tracker.experiment("order", None)
    outbox = Outbox(tracker, retry_seconds=3600.0)
    linked = []
    first = outbox.resolve(outbox.start_run(experiment, "t000", tags={}, params={"lr": 0.1}, linked=linked.append),
                           wait=30.0)
    tracker.failures = 1
    outbox.log(first, metrics={"val_accuracy": 0.5}, step=1)
    second = outbox.start_run(experiment, "t001", tags={}, params={"lr": 0.2}, linked=linked.append)
    _until_outage_seen(outbox)
    assert not first.startswith(Outbox.PLACEHOLDER) and outbox.resolve(second, wait=1.0) == second
    assert not outbox.flush()  # the retry interval has not passed
    assert linked == [first]  # callbacks run on the caller's thread, at flush

    assert outbox.flush(force=True)
    assert linked == [first, outbox.resolve(second)]
    history = tracker.client.get_metric_history(first, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.5)]
    assert sorted(r.data.params["lr"] for r in _runs(tracker, experiment)) == ["0.1", "0.2"]


def test_separate_launches_never_share_a_token(tracker) -> None:
    experiment = tracker.experiment("tokens", None)
    for _ in range(2):
        outbox = Outbox(tracker)
        outbox.start_run(experiment, "band 500 Hz", tags={})
        assert outbox.flush(force=True)
    tokens = {r.data.tags[TOKEN_TAG] for r in _runs(tracker, experiment)}
    assert len(tokens) == 2


def test_a_new_experiment_is_a_model_training_one(tracker) -> None:
    experiment = tracker.client.get_experiment(tracker.experiment("kind", None))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_run_ends_renamed_when_asked(tracker) -> None:
    experiment = tracker.experiment("names", None)
    outbox = Outbox(tracker)
    kept, renamed = (outbox.start_run(experiment, name, tags={}) for name in ("t000", "t001"))
    outbox.finish(kept, "FAILED")
    outbox.finish(renamed, "KILLED", name="t001 (pruned)")
    assert outbox.flush(force=True)
    kept, renamed = outbox.resolve(kept), outbox.resolve(renamed)
    runs = {r.info.run_id: r.info for r in _runs(tracker, experiment)}
    assert (runs[kept].run_name, runs[kept].status) == ("t000", "FAILED")
    assert (runs[renamed].run_name, runs[renamed].status) == ("t001 (pruned)", "KILLED")


def test_the_driver_does_not_wait_on_a_slow_store(tracker) -> None:
    """Writes return at once while the writer thread is held inside MLflow; they all land, in order."""
    experiment = tracker.experiment("slow", None)
    real, release = tracker.client.log_batch, threading.Event()

    def held_log_batch(*args, **kwargs):
        assert release.wait(60.0)
        return real(*args, **kwargs)

    tracker.client.log_batch = held_log_batch
    outbox = Outbox(tracker)
    run_id = outbox.start_run(experiment, "t000", tags={}, params={"lr": 0.1})
    for step in range(5):
        outbox.log(run_id, metrics={"loss": float(step)}, step=step)
    assert len(outbox.queue) == 6  # every call returned while the first write is still held
    release.set()
    assert outbox.flush(force=True)
    history = tracker.client.get_metric_history(outbox.resolve(run_id), "loss")
    assert sorted(m.step for m in history) == list(range(5))


class _Broken(BaseException):
    """What no `except Exception` catches: a bug in the writer's path, not an outage."""


def test_a_write_that_breaks_the_writer_is_dropped_and_the_writes_after_it_land(tracker) -> None:
    experiment = tracker.experiment("broken", None)
    real = tracker.client.log_batch

    def breaking_on_step_0(*args, **kwargs):
        if any(metric.step == 0 for metric in kwargs.get("metrics", ())):
            raise _Broken("a store plugin's bug")  # every time: retrying it would never end
        return real(*args, **kwargs)

    tracker.client.log_batch = breaking_on_step_0
    outbox = Outbox(tracker)
    run_id = outbox.start_run(experiment, "t000", tags={})
    for step in range(3):
        outbox.log(run_id, metrics={"loss": float(step)}, step=step)
    flushed = threading.Event()
    threading.Thread(target=lambda: outbox.flush(force=True) and flushed.set(), daemon=True).start()
    assert flushed.wait(30.0), "a broken write kept the outbox retrying forever"
    history = tracker.client.get_metric_history(outbox.resolve(run_id), "loss")
    assert sorted(m.step for m in history) == [1, 2]
