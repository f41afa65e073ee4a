"""One trial, as run on a worker: rebuild the Optuna trial from the shared storage, train,
report every epoch (pruning and MLflow), and return what happened.

Nothing here knows about Ray: cluster.py wraps `run_trial` as a task.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from functools import lru_cache
from typing import Any

import optuna
import torch

from objectives.task.dataset import BandDataset
from objectives.train.config import train_from_dict
from objectives.train.loop import train
from objectives.train.reporter import Diverged, StopTraining
from search.jobs import TrialJob, TrialOutcome
from search.storage import open_storage
from search.strategies import build_pruner
from search.uris import is_remote_tracking, mask

log = logging.getLogger(__name__)


def batch_seconds(tracking_uri: str) -> float:
    """How often a worker sends a trial's buffered epochs to MLflow. A tracking server or
    Databricks is cheap to reach, so curves stay live (2 s). A store the worker would open
    itself (sqlite, postgresql, a folder) costs each worker process ~0.65 s more (MLflow's
    SQLAlchemy store) and, for SQLite, competes for its one writer: 30 s, so only trials
    longer than that open it; shorter ones hand their epochs to the driver, which has the
    store open anyway."""
    return 2.0 if is_remote_tracking(tracking_uri) else 30.0


@lru_cache(maxsize=16)
def _study(storage_url: str, study_name: str, pruner_json: str) -> optuna.Study:
    # The sampler is the driver's business; a worker only reports and asks to prune.
    return optuna.load_study(
        study_name=study_name,
        storage=open_storage(storage_url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=build_pruner(json.loads(pruner_json)),
    )


class MissingMetric(Exception):
    """The objective's metric is not among what the trial reported or returned."""

    def __init__(self, metric: str, where: str, found: Any):
        super().__init__(f"objective.metric: {metric!r} is not among the metrics {where}: {sorted(found)}")


class TrialReporter:
    """Per epoch: the objective's metric to Optuna (for pruning; not in a multi-objective study,
    which Optuna cannot prune) and every metric to MLflow.

    MLflow gets the buffered epochs in one batch every `flush_seconds` (one call per epoch
    would cost more than a short epoch; `batch_seconds` gives the interval per store); what
    is still buffered at the end goes back to the driver, which logs it in the same call as
    the trial's summary. A trial shorter than `flush_seconds` thus never opens MLflow on the
    worker. If MLflow is unreachable the epochs stay buffered and the next attempt waits
    `retry_seconds`. Without a run id (the driver created the run during an outage) nothing
    is sent from here.
    """

    def __init__(self, trial: optuna.Trial, run_id: str, tracking_uri: str, flush_seconds: float,
                 retry_seconds: float = 10.0, metric: str = "val_accuracy", prunable: bool = True):
        self.trial = trial
        self.metric = metric
        self.prunable = prunable
        self.pruned = False
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.flushed_at = time.monotonic()
        self.pending: list[tuple[int, dict[str, float]]] = []
        self.last: dict[str, float] = {}
        self.epoch = 0
        self.seconds = 0.0  # time spent reporting, not training

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        started = time.perf_counter()
        self.epoch, self.last = epoch, metrics
        self.pending.append((epoch, metrics))
        if time.monotonic() - self.flushed_at >= self.flush_seconds:
            self.flush()
        if self.prunable:  # a multi-objective study's metrics are checked once, at the end
            if self.metric not in metrics:
                raise MissingMetric(self.metric, f"reported at epoch {epoch}", metrics)
            self.trial.report(float(metrics[self.metric]), epoch)
            self.pruned = self.trial.should_prune()
        self.seconds += time.perf_counter() - started
        if self.pruned:
            raise StopTraining(f"pruned after epoch {epoch}")

    def flush(self) -> None:
        """Send buffered epochs in one batch; keep them if MLflow is down, for a later retry."""
        if not self.pending or not self.run_id or time.monotonic() < self.flushed_at:
            return
        self.flushed_at = time.monotonic()
        # Imported here, not at the top: MLflow costs a worker process ~1 s to import, paid
        # on its first trial, and a trial shorter than `flush_seconds` never needs it.
        from search.tracking import tracker_for

        try:
            tracker_for(self.tracking_uri).log_epochs(self.run_id, self.pending)
        except Exception as err:
            self.flushed_at += self.retry_seconds
            log.warning("MLflow unreachable, keeping %d epochs for later: %s", len(self.pending), mask(str(err)))
            return
        self.pending.clear()


def _built_in(job: TrialJob, data: BandDataset, reporter: TrialReporter) -> tuple[dict[str, Any], dict[str, float]]:
    """The built-in training loop: (its last epoch's metrics, the trial's summary metrics)."""
    result = train(train_from_dict(job.train_config), data, reporter)
    return result.history[-1], {"best_val_accuracy": result.best_val_accuracy,
                                "final_val_angle_error_deg": result.history[-1]["val_angle_error_deg"],
                                **result.dynamics}


def _users(job: TrialJob, data: BandDataset, reporter: TrialReporter) -> tuple[dict[str, Any], dict[str, float]]:
    """The user's objective.function: (what it returned over its last report, the same as `final_*`)."""
    returned = job.objective.load()(dict(job.train_config), data, reporter)
    if not isinstance(returned, dict):
        raise TypeError(f"objective.function: {job.objective.function} returned {type(returned).__name__}, "
                        "not a dict of final metrics")
    return {**reporter.last, **returned}, {f"final_{key}": value for key, value in returned.items()}


def _value(final: dict[str, Any], metric: str) -> float:
    """An objective's metric among the final metrics, as a number."""
    if metric not in final:
        raise MissingMetric(metric, "reported or returned", final)
    try:
        return float(final[metric])
    except (TypeError, ValueError):
        raise TypeError(f"objective.metric: {metric!r} is {final[metric]!r}, not a number") from None


def run_trial(job: TrialJob, data: BandDataset, node: str = "") -> TrialOutcome:
    """Run the trial's configuration on `data` through the study's objective (the built-in loop
    or the user's function); never raises for a bad configuration or a failing function."""
    started = time.perf_counter()
    torch.set_num_threads(job.threads)
    study = _study(job.storage_url, job.study_name, json.dumps(job.pruner, sort_keys=True))
    reporter = TrialReporter(optuna.trial.Trial(study, job.trial_id), job.run_id, job.tracking_uri,
                             flush_seconds=batch_seconds(job.tracking_uri), metric=job.objective.metric,
                             prunable=not job.objective.multi)
    outcome = TrialOutcome(state="complete", node=node)
    training_started = time.perf_counter()
    try:
        final, outcome.metrics = (_built_in if job.objective.built_in else _users)(job, data, reporter)
        values = [_value(final, metric) for metric, _ in job.objective.goals]
        outcome.value, *outcome.further = values
        infinite = next((m for (m, _), v in zip(job.objective.goals, values) if not math.isfinite(v)), None)
        if reporter.pruned:  # the user's function caught StopTraining and returned anyway
            outcome.state = "pruned"
        elif infinite is not None:
            outcome.state, outcome.error = "diverged", f"objective.metric {infinite!r} is {final[infinite]}"
    except StopTraining:
        outcome.state, outcome.value = "pruned", reporter.last.get(reporter.metric)
    except Diverged as err:
        outcome.state, outcome.error = "diverged", str(err)
    except Exception:
        outcome.state, outcome.error = "failed", traceback.format_exc()
    outcome.train_seconds = time.perf_counter() - training_started - reporter.seconds
    outcome.epochs = reporter.epoch
    outcome.unsent = reporter.pending
    outcome.trial_seconds = time.perf_counter() - started
    return outcome
