"""`Launch`: run (or resume) every band study of a config, W trials in flight, to the exact budget.

Each pass of the loop hands a freed worker the trial prepared while it trained (asked, sampled,
its MLflow run queued), tells Optuna how the finished one ended and prepares the next; MLflow is
written by the Outbox's own thread. Trials run through a `TrialRunner`: search/cluster.py (Ray)
by default, or any object with its four calls.
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from typing import Any

from objectives.errors import InvalidConfig
from objectives.plain import to_dict
from search import baselines, cluster, ray_connection
from search.config import StudyConfig
from search.driver.bands import BandRun, close_parent_run, open_parent_runs, open_studies
from search.driver.connect import check_reach, check_user_code, resolve_lr_ranges, serve_storage, start_datasets
from search.driver.outcomes import Flight, Outcomes
from search.driver.recovery import recover
from search.driver.run_params import flat_params, run_name
from search.driver.seams import Progress, TrialRunner
from search.driver.transfer import Neighbours
from search.errors import BandsearchError
from search.jobs import TrialJob
from search.outbox import Outbox
from search.proxy import StorageProxy
from search.settings import Settings
from search.studies import BASELINES, BUDGET, PARENT_RUN, TRAIN_CONFIG, UNSENT_WRITES, link_run, trial_id
from search.tracking import Tracker
from search.transfer import lineage_tags
from search.uris import mask

log = logging.getLogger(__name__)

# How long a finishing launch keeps retrying MLflow writes held back by an outage.
_DRAIN_SECONDS = 120.0
# How long a submission waits for the MLflow writer to create the trial's run (for live curves
# from the worker); past that the worker runs without it and the driver logs its epochs.
_RUN_WAIT_SECONDS = 1.0


class Launch:
    """Run (or resume) every band study of `config` under the name `study_name`."""

    def __init__(self, config: StudyConfig, study_name: str, settings: Settings, progress: Progress | None = None,
                 runner: TrialRunner = cluster):
        self.config = config
        self.study_name = study_name
        self.settings = settings
        self.progress = progress
        self.runner = runner
        self.tracker = Outbox(Tracker(settings.tracking_uri))
        self.outcomes = Outcomes(self.tracker, config.search.max_retries)
        self.proxy: StorageProxy | None = None
        self.worker_storage_url = settings.storage_url  # the proxy's URL when there is one
        self.in_flight: dict[Any, Flight] = {}
        self.ready: deque[Flight] = deque()  # prepared, not yet submitted
        self.baselines_started = False
        self.bands: list[BandRun] = []
        self.neighbours: Neighbours | None = None  # under `transfer: {from: neighbours}`: the bands' turns
        self.experiment_id = ""
        self.gpus = 0.0

    def prepare(self) -> None:
        """Reach MLflow and the storage, create or resume each band's study and clean up what a
        dead driver left; no Ray needed (a launch joins it meanwhile, search/driver/start.py)."""
        self.tracker.tracker.check()
        self.experiment_id = self.tracker.tracker.experiment(self.study_name, self.settings.artifact_root)
        budget, open_runs = self.config.search.trials_per_band, self.tracker.tracker.open_runs(self.experiment_id)
        for plan, study in open_studies(self.config, self.study_name, self.settings, self.experiment_id):
            band = BandRun(plan, study, study.user_attrs.get(PARENT_RUN, ""), budget)
            recover(band, self.tracker, open_runs.get(study.study_name, {}), self.outcomes)
            if band.finished > budget:
                raise BandsearchError(
                    f"study {self.study_name!r} band {band.name} has {band.finished} finished trials, more than "
                    f"the budget of {budget} per band; give --trials {band.finished} or more (or a new --study)")
            study.set_user_attr(BUDGET, budget)
            self.bands.append(band)
        if (transfer := self.config.search.transfer) and transfer.study is None:
            self.neighbours = Neighbours(transfer, self.study_name, self.bands)

    def connect(self, address: str | None = None, num_cpus: int | None = None) -> None:
        """Join Ray (shipping the user's modules to every node), check a trial fits a node,
        serve the storage if asked, check every node reaches the storage and MLflow, start each
        band's dataset and resolve learning rates taken from the LR finder."""
        ray_connection.connect(address, num_cpus=num_cpus, py_modules=self.config.user_modules())
        self.gpus = cluster.gpus_per_trial(self.config.search.gpus_per_trial, self.config.search.workers)
        cluster.check_fits(self.config.search.cpus_per_trial, self.gpus)
        if self.settings.storage_proxy and self.proxy is None:
            self.proxy = serve_storage(self.settings)
            self.worker_storage_url = self.proxy.url(cluster.node_ip())
        check_reach(self.worker_storage_url, self.settings.tracking_uri)
        check_user_code(self.config)
        start_datasets(self.config, self.settings, self.bands)
        resolve_lr_ranges(self.config, self.study_name, self.settings, self.bands)

    def run(self, address: str | None = None, num_cpus: int | None = None) -> list[BandRun]:
        """Run every band to its budget. On any interruption, end open trials and runs cleanly."""
        if not self.bands:
            self.prepare()
        open_parent_runs(self.bands, self.tracker, self.experiment_id, self.study_name, self.settings.storage_url)
        if all(band.remaining <= 0 for band in self.bands):
            self._close(interrupted=False)
            return self.bands
        self.connect(address, num_cpus)
        try:
            self.loop()
        finally:
            if self.proxy is not None:
                self.proxy.stop()
                self.proxy = None
        return self.bands

    def loop(self) -> None:
        """Keep W trials in flight until every band has its budget, then close the band runs;
        on any interruption, fail what is open (re-queued for the next launch) first."""
        interrupted = True
        try:
            while self._fill() or self.in_flight:
                ref = self.runner.wait_one(list(self.in_flight), timeout=1.0)
                if ref is not None:
                    flight = self.in_flight.pop(ref)
                    if self.ready:  # the freed worker gets the prepared trial before anything else
                        self._submit(self.ready.popleft())
                    outcome, error, lost = self.runner.result(ref)
                    self.outcomes.tell(flight, outcome, error, lost)
                    self._fill()
                    self.outcomes.record(flight, outcome)
                self.tracker.flush()
                for band in self.bands:
                    self._show(band)
            interrupted = False
        finally:
            if interrupted:
                self._abandon()
            self._close(interrupted)

    def _fill(self) -> bool:
        """Submit trials until W are in flight, then prepare the next one, so a worker that
        frees up gets it without waiting on the driver."""
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
            if band.baselines is None and self.config.baselines.methods and BASELINES not in band.study.user_attrs:
                band.baselines = baselines.start(self.config.task, band.plan.band, self.config.baselines,
                                                 self.settings.cache_dir)

    def _prepare_next(self) -> Flight | None:
        """A trial of the band with the most budget left (or in turn); None once all are taken."""
        while True:
            band = self.neighbours.next_band() if self.neighbours else max(self.bands, key=lambda b: b.remaining)
            if band is None or band.remaining <= 0:
                return None
            flight = self._prepare(band)
            if flight is not None:
                return flight

    def _prepare(self, band: BandRun) -> Flight | None:
        """Ask and sample a trial and open its MLflow run; None if the sampled point is invalid."""
        trial = band.study.ask()
        try:
            config = band.plan.train_config(self.config.training, band.plan.space.sample(trial))
            config.validate(self.config.task.n_train)
        except InvalidConfig as err:  # e.g. Nesterov drawn with momentum 0: a bad point, not a bad study
            self.outcomes.fail(band, trial, None, "failed", f"invalid configuration: {err}")
            return None
        except BaseException as err:  # the sampler failed or Ctrl-C: the launch stops, the trial is not left RUNNING
            self.outcomes.fail(band, trial, None, "failed" if isinstance(err, Exception) else "lost",
                               traceback.format_exc())
            raise
        config_dict = to_dict(config)
        run_id = self.tracker.start_run(
            self.experiment_id,
            run_name(trial.number, config_dict),
            tags={"bandsearch.study": self.study_name, "bandsearch.band": band.name, "bandsearch.role": "trial",
                  "optuna.study_name": band.study.study_name, "optuna.trial_number": trial.number,
                  "optuna.trial_id": trial_id(trial), **lineage_tags(trial.user_attrs)},
            params=flat_params(config_dict),
            parent_id=band.parent_run_id,
            linked=lambda run_id: link_run(band.study, trial, run_id),
        )
        trial.set_user_attr(TRAIN_CONFIG, config_dict)
        band.counts["running"] += 1
        return Flight(band, trial, run_id, config_dict)

    def _submit(self, flight: Flight) -> None:
        run_id = self.tracker.resolve(flight.run_id, wait=_RUN_WAIT_SECONDS)
        job = TrialJob(
            storage_url=self.worker_storage_url,
            study_name=flight.band.study.study_name,
            trial_id=trial_id(flight.trial),
            trial_number=flight.trial.number,
            pruner=self.config.search.pruner,
            tracking_uri=self.settings.tracking_uri,
            run_id="" if run_id.startswith(Outbox.PLACEHOLDER) else run_id,  # MLflow down: the driver logs
            train_config=flight.config,
            threads=max(1, int(self.config.search.cpus_per_trial)),
            objective=self.config.objective,
        )
        ref = self.runner.submit(job, flight.band.data, self.config.search.cpus_per_trial, self.gpus)
        self.in_flight[ref] = flight
        log.info("band %s trial %d submitted", flight.band.name, flight.trial.number)

    def _abandon(self) -> None:
        """Interrupted: cancel trials in flight, fail them and the prepared ones (re-queued)."""
        self.runner.cancel(list(self.in_flight))
        for flight in [*self.in_flight.values(), *self.ready]:
            flight.band.counts["running"] -= 1
            self.outcomes.fail(flight.band, flight.trial, flight.run_id, "lost", "the launch was interrupted")
        self.in_flight.clear()
        self.ready.clear()

    def _close(self, interrupted: bool) -> None:
        """Store finished baselines, close each band's parent run (tagged with its best), drain MLflow."""
        for band in self.bands:
            if band.baselines is not None and not interrupted:
                baselines.record(band.study, self.tracker, band.parent_run_id, band.baselines)
                band.baselines = None
            close_parent_run(band, self.tracker, interrupted)
            self._show(band)
        unsent = self.tracker.drain(_DRAIN_SECONDS)
        for band in self.bands:
            band.parent_run_id = self.tracker.resolve(band.parent_run_id)
        if unsent:
            log.error("MLflow at %s stayed unreachable: %d writes lost (recorded on the band runs when "
                      "MLflow is back, as the tag bandsearch.mlflow_lost_writes)", mask(self.settings.tracking_uri),
                      unsent)
            for band in self.bands:
                band.study.set_user_attr(UNSENT_WRITES, band.study.user_attrs.get(UNSENT_WRITES, 0) + unsent)

    def _show(self, band: BandRun) -> None:
        if self.progress is not None:
            self.progress.update(band)
