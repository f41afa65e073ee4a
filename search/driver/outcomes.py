"""How a trial's end maps to Optuna and MLflow: states, retries with lineage, and the summary.

| outcome | Optuna | MLflow |
| complete | COMPLETE with its value | FINISHED |
| pruned, diverged | PRUNED (`stop_reason=diverged`) | KILLED, named `t007 (pruned) ...` |
| failed (error in the trial, an invalid sampled point) | FAIL | FAILED |
| lost (worker, node or driver died) | FAIL, re-queued with its parameters up to max_retries | FAILED |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from search.driver.bands import BandRun
from search.driver.run_params import run_name
from search.jobs import TrialOutcome
from search.studies import ATTEMPT, FAIL_REASON, NET_ERROR, RETRIED, RETRY_OF, STOP_REASON, metric_of, score

log = logging.getLogger(__name__)

STATES = {
    "complete": (TrialState.COMPLETE, "FINISHED"),
    "pruned": (TrialState.PRUNED, "KILLED"),
    "diverged": (TrialState.PRUNED, "KILLED"),
    "failed": (TrialState.FAIL, "FAILED"),
    "lost": (TrialState.FAIL, "FAILED"),
}
# The MLflow status of a run left open by a dead driver, from its trial's state in Optuna.
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}


@dataclass
class Flight:
    """A trial asked from its band's study, with its MLflow run: prepared, then submitted."""

    band: BandRun
    trial: optuna.Trial
    run_id: str
    config: dict[str, Any] = field(default_factory=dict)


class Outcomes:
    """Tells Optuna and writes MLflow (through the driver's Outbox) how each trial ended."""

    def __init__(self, tracker: Any, max_retries: int):
        self.tracker = tracker
        self.max_retries = max_retries

    def tell(self, flight: Flight, outcome: TrialOutcome | None, error: str | None, lost: bool) -> None:
        """Tell Optuna how the trial ended. MLflow is written by `record`, after the next
        trial has been started, so a worker never waits on the tracking store."""
        band, trial = flight.band, flight.trial
        band.counts["running"] -= 1
        if outcome is None:
            self.fail(band, trial, flight.run_id, "lost" if lost else "failed", error or "unknown error")
        elif outcome.state == "failed":
            self.fail(band, trial, flight.run_id, "failed", outcome.error or "")
        else:
            if outcome.state == "diverged":
                trial.set_user_attr(STOP_REASON, "diverged")
            if "final_val_angle_error_deg" in outcome.metrics:
                trial.set_user_attr(NET_ERROR, outcome.metrics["final_val_angle_error_deg"])
            state, _ = STATES[outcome.state]
            values = [outcome.value, *outcome.further] if outcome.further else outcome.value
            band.study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)
            band.counts[outcome.state] += 1

    def record(self, flight: Flight, outcome: TrialOutcome | None) -> None:
        """The finished trial's summary and final status in MLflow; the band's best so far."""
        if outcome is None:
            return  # `fail` has written the run
        metrics = {"trial_seconds": outcome.trial_seconds, "train_seconds": outcome.train_seconds,
                   "epochs_run": outcome.epochs, **outcome.metrics}
        if outcome.value is not None:
            metrics["objective"] = outcome.value
        tags = {"bandsearch.state": outcome.state, "bandsearch.node": outcome.node}
        if outcome.state == "diverged":
            tags["bandsearch.stop_reason"] = outcome.error
        # The epochs the worker did not send (a short trial, or MLflow down), with the summary.
        self.tracker.log_epochs(flight.run_id, [*outcome.unsent, (0, metrics)], tags=tags)
        if outcome.state != "failed":
            state, status = STATES[outcome.state]
            pruned = state == TrialState.PRUNED
            self.tracker.finish(flight.run_id, status,
                                name=run_name(flight.trial.number, flight.config, outcome.state) if pruned else None)
        band, best = flight.band, flight.band.best()
        if best is not None and score(best) != band.best_logged:  # the best-so-far curve, at its changes
            band.best_logged = score(best)
            self.tracker.log(band.parent_run_id, metrics={f"best_{metric_of(band.study)}": score(best)},
                             step=band.finished)

    def fail(self, band: BandRun, trial: optuna.Trial, run_id: str | None, kind: str, reason: str) -> None:
        """End `trial` as FAIL. A `lost` trial (worker or driver died) is re-queued with its
        parameters, up to max_retries, with its lineage recorded on both sides."""
        attempt = trial.user_attrs.get(ATTEMPT, 0) + 1
        retry = kind == "lost" and attempt <= self.max_retries
        trial.set_user_attr(FAIL_REASON, reason[-2000:])
        if retry:
            trial.set_user_attr(RETRIED, True)
        band.study.tell(trial, state=TrialState.FAIL)
        band.counts["lost" if retry else "failed"] += 1
        if retry:
            band.study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number, ATTEMPT: attempt},
                                     skip_if_exists=False)
        log.warning("band %s trial %d failed (%s): %s", band.name, trial.number, kind, reason.splitlines()[-1:])
        if run_id:
            self.tracker.log(run_id, tags={"bandsearch.state": kind, "bandsearch.error": reason[-4000:],
                                           "bandsearch.retried": retry})
            self.tracker.log_text(run_id, reason, "error.txt")
            self.tracker.finish(run_id, "FAILED")
