"""The driver: one Optuna study per band, W trials in flight on Ray, results told back.

Optuna's storage is the source of truth; MLflow is the record people browse. Each trial's
MLflow run id is a user attribute of the Optuna trial and each run carries the trial's
study, number and id. The driver owns every run's lifecycle, so a crashed worker never
leaves a run (or a trial) RUNNING, and a crashed driver's leftovers are failed and
retried on the next launch. With `--storage-proxy` the driver also serves the storage to
the workers (search/proxy.py); on a multi-node cluster it first checks that every node
reaches the storage and MLflow. MLflow writes go through an Outbox: an outage delays them,
never a trial.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from objectives.errors import InvalidConfig
from objectives.plain import to_dict
from search import baselines, cluster, reach
from search.config import BandPlan, StudyConfig
from search.errors import BandsearchError
from search.lr_finder import LrFinder
from search.lr_tables import finder_table, log_tables, study_table
from search.proxy import StorageProxy
from search.settings import Settings
from search.storage import (
    ATTR,
    band_study_name,
    link_run,
    mask,
    open_storage,
    run_id_of,
    study_attrs,
)
from search.strategies import build_pruner, build_sampler
from search.tracking import Outbox, Tracker
from search.worker import TrialJob, TrialOutcome

log = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"
BUDGET_ATTR = "budget"  # trials per band asked by the latest launch

# How each outcome ends in Optuna and in MLflow.
_STATES = {
    "complete": (TrialState.COMPLETE, "FINISHED"),
    "pruned": (TrialState.PRUNED, "KILLED"),
    "diverged": (TrialState.PRUNED, "KILLED"),
    "failed": (TrialState.FAIL, "FAILED"),
    "lost": (TrialState.FAIL, "FAILED"),
}
# The MLflow status of a run left open by a dead driver, from its trial's state in Optuna.
_RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}
# How long a finishing launch keeps retrying MLflow writes held back by an outage.
_DRAIN_SECONDS = 120.0
_UNSENT = "mlflow_unsent_writes"  # band study attribute: driver writes MLflow never got


class Progress(Protocol):
    def update(self, band: BandRun) -> None: ...


@dataclass
class Flight:
    """A trial asked from its band's study, with its MLflow run: prepared, then submitted."""

    band: BandRun
    trial: optuna.Trial
    run_id: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class BandRun:
    """One band's study, its MLflow parent run and what has happened in it so far."""

    plan: BandPlan
    study: optuna.Study
    parent_run_id: str  # empty until the first launch opens it
    budget: int
    data: Any = None
    baselines: Any = None  # Ray reference to the classical baselines' metrics, while they run
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_STATES, 0) | {"running": 0})
    started: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.plan.band.name

    @property
    def finished(self) -> int:
        """Trials that count against the budget: every ended trial but those retried."""
        return sum(self.counts[state] for state in _STATES if state != "lost")

    @property
    def remaining(self) -> int:
        return self.budget - self.finished - self.counts["running"]

    def best(self) -> optuna.trial.FrozenTrial | None:
        try:
            return self.study.best_trial
        except ValueError:
            return None


def run_name(number: int, config: dict[str, Any]) -> str:
    """Readable in the MLflow run list: `t007 adam lr=3.2e-03 bs=64`."""
    return f"t{number:03d} {config['optimizer']} lr={config['lr']:.1e} bs={config['batch_size']}"


def flat_params(config: dict[str, Any]) -> dict[str, Any]:
    """A train config as MLflow params: the optimizer's hyperparameters under their own names,
    the schedule's as `schedule.<key>`."""
    params = {key: value for key, value in config.items()
              if key not in ("optimizer_params", "schedule_params", "model")}
    params.update(config["optimizer_params"])
    params.update({f"schedule.{key}": value for key, value in config.get("schedule_params", {}).items()})
    params.update({f"model.{key}": value for key, value in config["model"].items()})
    return params


def snapshot(config: StudyConfig, plan: BandPlan) -> dict[str, Any]:
    """What a band study was created from; a resumed launch must match it."""
    return {
        "band": to_dict(plan.band),
        "task": to_dict(config.task),
        "training": to_dict(config.training),
        "space": plan.space_raw,
    }


class Launch:
    """Run (or resume) every band study of `config` under the name `study_name`."""

    def __init__(self, config: StudyConfig, study_name: str, settings: Settings, progress: Progress | None = None):
        self.config = config
        self.study_name = study_name
        self.settings = settings
        self.progress = progress
        self.tracker = Outbox(Tracker(settings.tracking_uri))
        self.proxy: StorageProxy | None = None
        self.worker_storage_url = settings.storage_url  # the proxy's URL when there is one
        self.in_flight: dict[Any, Flight] = {}
        self.ready: deque[Flight] = deque()  # prepared, not yet submitted
        self.baselines_started = False
        self.bands: list[BandRun] = []
        self.experiment_id = ""
        self.gpus = 0.0

    # -- setup -----------------------------------------------------------------------

    def prepare(self) -> None:
        """Reach MLflow and the storage, create or resume each band's study. No Ray yet."""
        self.tracker.tracker.check()
        storage = open_storage(self.settings.storage_url)
        self.experiment_id = self.tracker.tracker.experiment(self.study_name, self.settings.artifact_root)
        search = self.config.search
        for index, plan in enumerate(self.config.bands):
            study = optuna.create_study(
                study_name=band_study_name(self.study_name, plan.band.name),
                storage=storage,
                sampler=build_sampler(search.sampler, search.seed + index),
                pruner=build_pruner(search.pruner),
                direction="maximize",
                load_if_exists=True,
            )
            self.bands.append(self._open_band(study, plan))

    def _open_band(self, study: optuna.Study, plan: BandPlan) -> BandRun:
        wanted = snapshot(self.config, plan)
        attrs = study_attrs(study)
        if attrs:
            changed = sorted(key for key in wanted if attrs.get(key) != wanted[key])
            if changed:
                raise BandsearchError(
                    f"{self.config.source}: study {self.study_name!r} band {plan.band.name} was created from "
                    f"a different {' and '.join(changed)} (see {attrs.get('config_file')}); "
                    "resume with the original file or choose a new --study name"
                )
        else:
            study.set_user_attr(ATTR, {**wanted, "config_file": str(self.config.source),
                                       "experiment_id": self.experiment_id})
        study.set_user_attr(BUDGET_ATTR, self.config.search.trials_per_band)
        band = BandRun(plan, study, study.user_attrs.get(PARENT_RUN_ATTR, ""), self.config.search.trials_per_band)
        self._recover(band)
        return band

    def _open_parent_runs(self) -> None:
        """Each band's MLflow parent run: created on the first launch, reopened on a resume."""
        for band in self.bands:
            if band.parent_run_id:
                self.tracker.reopen(band.parent_run_id)
                if band.study.user_attrs.get(_UNSENT):  # an earlier launch ended with MLflow down
                    self.tracker.log(band.parent_run_id,
                                     tags={"bandsearch.mlflow_lost_writes": band.study.user_attrs[_UNSENT]})
                continue
            band.parent_run_id = self.tracker.start_run(
                self.experiment_id,
                f"band {band.name} Hz",
                tags={"bandsearch.study": self.study_name, "bandsearch.band": band.name,
                      "optuna.study_name": band.study.study_name, "bandsearch.role": "band"},
                params={"band.center_hz": band.plan.band.center_hz, "band.width_hz": band.plan.band.width_hz,
                        "storage": mask(self.settings.storage_url)},
            )
            band.study.set_user_attr(PARENT_RUN_ATTR, band.parent_run_id)

    def _recover(self, band: BandRun) -> None:
        """Count what is done; fail and retry trials a dead driver left RUNNING, and close the
        MLflow runs it left open (also those it created but had not yet linked to their trial)."""
        open_runs = self.tracker.tracker.open_runs(self.experiment_id, band.study.study_name)
        trials = band.study.get_trials(deepcopy=False)
        states = {frozen.number: frozen.state for frozen in trials}
        for frozen in trials:
            if frozen.state == TrialState.RUNNING:
                run_id = frozen.user_attrs.get("mlflow_run_id", "")
                self._fail(band, optuna.trial.Trial(band.study, frozen._trial_id), run_id or None,
                           "lost", "the driver stopped while this trial ran")
                open_runs.pop(run_id, None)
            elif frozen.state == TrialState.COMPLETE:
                band.counts["complete"] += 1
            elif frozen.state == TrialState.PRUNED:
                band.counts["diverged" if frozen.user_attrs.get("stop_reason") == "diverged" else "pruned"] += 1
            elif frozen.state == TrialState.FAIL:
                band.counts["lost" if frozen.user_attrs.get("retried") else "failed"] += 1
        for run_id, number in open_runs.items():
            status = _RUN_STATUS.get(states.get(number), "FAILED")
            self.tracker.log(run_id, tags={"bandsearch.closed_by": "recovery: the driver stopped before closing it"})
            self.tracker.finish(run_id, status)

    # -- the loop ------------------------------------------------------------------

    def connect(self, address: str | None = None, num_cpus: int | None = None) -> None:
        """Join Ray, serve the storage if asked, check every node reaches the storage and
        MLflow, and start building each band's dataset (once, shared by its trials)."""
        cluster.connect(address, num_cpus=num_cpus)
        if self.settings.storage_proxy and self.proxy is None:
            self.proxy = StorageProxy(open_storage(self.settings.storage_url), self.settings.storage_proxy)
            self.proxy.start()
            self.worker_storage_url = self.proxy.url(cluster.node_ip())
        if cluster.node_count() > 1:
            reach.require(cluster.on_every_node, {"the study storage": self.worker_storage_url,
                                                  "MLflow": self.settings.tracking_uri})
        missing = [band for band in self.bands if band.data is None]
        refs = cluster.datasets(self.config.task, [b.plan.band for b in missing], self.settings.cache_dir)
        for band in missing:
            band.data = refs[band.name]
            band.started = time.monotonic()
        self.gpus = cluster.gpus_per_trial(self.config.search.gpus_per_trial, self.config.search.workers)
        self._seed_from_finder()

    def _seed_from_finder(self) -> None:
        """Resolve `lr: {from: lr_finder}` ranges, running the range tests that are missing."""
        needs = {band.name: band.plan.space.finder_optimizers() for band in self.bands}
        if not any(needs.values()):
            return
        finder = LrFinder(self.config, self.study_name, self.settings)
        results = finder.run(finder.tasks({name: opts for name, opts in needs.items() if opts}),
                             {band.name: band.data for band in self.bands})
        for band in self.bands:
            suggestions = {task.optimizer: (result or {}).get("suggestion")
                           for task, result in results.items() if task.band == band.name}
            try:
                space = band.plan.space.resolve(suggestions)
            except InvalidConfig as err:
                raise BandsearchError(f"{self.config.source}: bands {band.name}: space.{err.key}: {err.message}") from None
            band.plan = dataclasses.replace(band.plan, space=space)

    def run(self, address: str | None = None, num_cpus: int | None = None) -> list[BandRun]:
        """Run every band to its budget. On any interruption, end open trials and runs cleanly."""
        if not self.bands:
            self.prepare()
        self._open_parent_runs()
        if all(band.remaining <= 0 for band in self.bands):
            self._close(interrupted=False)
            return self.bands
        self.connect(address, num_cpus)
        interrupted = True
        try:
            while self._fill() or self.in_flight:
                ref = cluster.wait_one(list(self.in_flight), timeout=1.0)
                if ref is not None:
                    flight = self.in_flight.pop(ref)
                    if self.ready:  # the freed worker gets the prepared trial before anything else
                        self._submit(self.ready.popleft())
                    outcome, error, lost = cluster.result(ref)
                    self._finish(flight, outcome, error, lost)
                    self._fill()
                    self._record(flight, outcome)
                self.tracker.flush()
                for band in self.bands:
                    self._show(band)
            interrupted = False
        finally:
            if interrupted:
                self._abandon()
            self._close(interrupted)
            if self.proxy is not None:
                self.proxy.stop()
                self.proxy = None
        return self.bands

    def _fill(self) -> bool:
        """Submit trials until W are in flight, then prepare the next one (asked, sampled, its
        MLflow run open), so a worker that frees up gets it without waiting on the driver."""
        while len(self.in_flight) < self.config.search.workers:
            flight = self.ready.popleft() if self.ready else self._prepare_next()
            if flight is None:
                break
            self._submit(flight)
        if not self.ready and (flight := self._prepare_next()) is not None:
            self.ready.append(flight)
        if not self.ready and len(self.in_flight) < self.config.search.workers and not self.baselines_started:
            self._start_baselines()
        return bool(self.in_flight)

    def _start_baselines(self) -> None:
        """The classical baselines of each band that has none yet: started once every trial
        is, on the workers the last trials leave idle, so they never delay a trial."""
        self.baselines_started = True
        for band in self.bands:
            if (band.baselines is None and self.config.baselines.methods
                    and baselines.ATTR not in band.study.user_attrs):
                band.baselines = baselines.start(self.config.task, band.plan.band, self.config.baselines,
                                                 self.settings.cache_dir)

    def _prepare_next(self) -> Flight | None:
        """A trial of the band with the most budget left; None once every budget is taken."""
        while True:
            band = max(self.bands, key=lambda b: b.remaining)
            if band.remaining <= 0:
                return None
            flight = self._prepare(band)
            if flight is not None:
                return flight

    def _prepare(self, band: BandRun) -> Flight | None:
        """Ask and sample a trial and open its MLflow run; None if the sampled point is invalid."""
        trial = band.study.ask()
        try:
            sampled = band.plan.space.sample(trial)
            config = band.plan.train_config(self.config.training, sampled)
            config.validate(self.config.task.n_train)
        except InvalidConfig as err:  # e.g. Nesterov drawn with momentum 0: a bad point, not a bad study
            self._fail(band, trial, None, "failed", f"invalid configuration: {err}")
            return None
        config_dict = to_dict(config)
        run_id = self.tracker.start_run(
            self.experiment_id,
            run_name(trial.number, config_dict),
            tags={
                "bandsearch.study": self.study_name,
                "bandsearch.band": band.name,
                "bandsearch.role": "trial",
                "optuna.study_name": band.study.study_name,
                "optuna.trial_number": trial.number,
                "optuna.trial_id": trial._trial_id,
                **({"bandsearch.retry_of": trial.user_attrs["retry_of"]} if "retry_of" in trial.user_attrs else {}),
            },
            params=flat_params(config_dict),
            parent_id=band.parent_run_id,
            linked=lambda run_id: link_run(band.study, trial, run_id),
        )
        trial.set_user_attr("train_config", config_dict)
        band.counts["running"] += 1
        return Flight(band, trial, run_id, config_dict)

    def _submit(self, flight: Flight) -> None:
        run_id = self.tracker.resolve(flight.run_id)
        job = TrialJob(
            storage_url=self.worker_storage_url,
            study_name=flight.band.study.study_name,
            trial_id=flight.trial._trial_id,
            trial_number=flight.trial.number,
            pruner=self.config.search.pruner,
            tracking_uri=self.settings.tracking_uri,
            run_id="" if run_id.startswith(Outbox.PLACEHOLDER) else run_id,  # MLflow down: the driver logs
            train_config=flight.config,
            threads=max(1, int(self.config.search.cpus_per_trial)),
        )
        ref = cluster.submit(job, flight.band.data, self.config.search.cpus_per_trial, self.gpus)
        self.in_flight[ref] = flight

    def _finish(self, flight: Flight, outcome: TrialOutcome | None, error: str | None, lost: bool) -> None:
        """Tell Optuna how the trial ended. MLflow is written by `_record`, after the next
        trial has been started, so a worker never waits on the tracking store."""
        band, trial = flight.band, flight.trial
        band.counts["running"] -= 1
        if outcome is None:
            self._fail(band, trial, flight.run_id, "lost" if lost else "failed", error or "unknown error")
        elif outcome.state == "failed":
            self._fail(band, trial, flight.run_id, "failed", outcome.error or "")
        else:
            if outcome.state == "diverged":
                trial.set_user_attr("stop_reason", "diverged")
            if "final_val_angle_error_deg" in outcome.metrics:
                trial.set_user_attr(baselines.NET_ERROR_ATTR, outcome.metrics["final_val_angle_error_deg"])
            state, _ = _STATES[outcome.state]
            band.study.tell(trial, outcome.value if state == TrialState.COMPLETE else None, state=state)
            band.counts[outcome.state] += 1

    def _record(self, flight: Flight, outcome: TrialOutcome | None) -> None:
        """The finished trial's summary and final status in MLflow; the band's best so far."""
        if outcome is None:
            return  # _fail has written the run
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
            self.tracker.finish(flight.run_id, _STATES[outcome.state][1])
        best = flight.band.best()
        if best is not None:
            self.tracker.log(flight.band.parent_run_id, metrics={"best_val_accuracy": best.value},
                             step=flight.band.finished)

    def _fail(self, band: BandRun, trial: optuna.Trial, run_id: str | None, kind: str, reason: str) -> None:
        """End `trial` as FAIL. A `lost` trial (worker or driver died) is re-queued with its
        parameters, up to max_retries, with its lineage recorded on both sides."""
        attempt = trial.user_attrs.get("attempt", 0) + 1
        retry = kind == "lost" and attempt <= self.config.search.max_retries
        trial.set_user_attr("fail_reason", reason[-2000:])
        if retry:
            trial.set_user_attr("retried", True)
        band.study.tell(trial, state=TrialState.FAIL)
        band.counts["lost" if retry else "failed"] += 1
        if retry:
            band.study.enqueue_trial(
                trial.params, user_attrs={"retry_of": trial.number, "attempt": attempt}, skip_if_exists=False
            )
        log.warning("band %s trial %d failed (%s): %s", band.name, trial.number, kind, reason.splitlines()[-1:] )
        if run_id:
            self.tracker.log(run_id, tags={"bandsearch.state": kind, "bandsearch.error": reason[-4000:],
                                           "bandsearch.retried": retry})
            self.tracker.log_text(run_id, reason, "error.txt")
            self.tracker.finish(run_id, "FAILED")

    def _abandon(self) -> None:
        """Interrupted: cancel trials in flight, fail them and the prepared ones (re-queued for
        the next launch)."""
        cluster.cancel(list(self.in_flight))
        for flight in [*self.in_flight.values(), *self.ready]:
            flight.band.counts["running"] -= 1
            self._fail(flight.band, flight.trial, flight.run_id, "lost", "the launch was interrupted")
        self.in_flight.clear()
        self.ready.clear()

    def _close(self, interrupted: bool) -> None:
        for band in self.bands:
            if band.baselines is not None and not interrupted:
                baselines.record(band.study, self.tracker, band.parent_run_id, band.baselines)
                band.baselines = None
            best = band.best()
            if best is not None:
                config = flat_params(best.user_attrs["train_config"])
                self.tracker.log(band.parent_run_id, tags={
                    "best.trial_number": best.number,
                    "best.val_accuracy": f"{best.value:.4f}",
                    "best.mlflow_run_id": run_id_of(band.study, best),
                    **{f"best.{key}": value for key, value in config.items()},
                })
            done = band.remaining <= 0 and not interrupted
            self.tracker.finish(band.parent_run_id, "FINISHED" if done else "KILLED")
            self._show(band)
        unsent = self.tracker.drain(_DRAIN_SECONDS)
        if unsent:
            log.error("MLflow at %s stayed unreachable: %d writes lost (recorded on the band runs when "
                      "MLflow is back, as the tag bandsearch.mlflow_lost_writes)", mask(self.settings.tracking_uri),
                      unsent)
            for band in self.bands:
                band.study.set_user_attr(_UNSENT, band.study.user_attrs.get(_UNSENT, 0) + unsent)

    def _show(self, band: BandRun) -> None:
        if self.progress is not None:
            self.progress.update(band)


def launch(config: StudyConfig, study_name: str, settings: Settings, progress: Progress | None = None,
           address: str | None = None, num_cpus: int | None = None) -> list[BandRun]:
    """Create or resume the study and run every band to its budget."""
    run = Launch(config, study_name, settings, progress)
    run.prepare()
    bands = run.run(address=address, num_cpus=num_cpus)
    publish_tables(settings, study_name)
    return bands


def publish_tables(settings: Settings, study_name: str) -> None:
    """Log the per-frequency learning-rate tables of the study to MLflow. A finished study
    never fails on this: the tables can be logged again with `bandsearch lr-table`."""
    tables = [study_table(settings.storage_url, study_name), finder_table(settings.storage_url, study_name)]
    try:
        log_tables(settings.tracking_uri, settings.artifact_root, study_name, [t for t in tables if t.cells])
    except Exception as err:  # MLflow down at the very end: the study itself is complete
        log.warning("could not log the learning-rate tables to MLflow (%s); run `bandsearch lr-table %s` later",
                    err, study_name)


def summarize(bands: Iterable[BandRun]) -> list[dict[str, Any]]:
    rows = []
    for band in bands:
        best = band.best()
        rows.append({
            "band": band.name,
            "complete": band.counts["complete"],
            "pruned": band.counts["pruned"] + band.counts["diverged"],
            "failed": band.counts["failed"],
            "best": best.value if best else None,
            "config": best.user_attrs.get("train_config") if best else None,
            "best_run_id": run_id_of(band.study, best) if best else None,
            "angle_error_deg": best.user_attrs.get(baselines.NET_ERROR_ATTR) if best else None,
            "baselines": band.study.user_attrs.get(baselines.ATTR),
            "parent_run_id": band.parent_run_id,
        })
    return rows
