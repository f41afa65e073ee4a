"""The driver's scheduling and outcome mapping, without Ray: a fake runner stands in for the
four calls of search/cluster.py, while Optuna (a journal file) and MLflow (sqlite) are real."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import tiny_config
from optuna.trial import TrialState
from read_mlflow import dump

from search.config import parse_config
from search.driver.bands import open_parent_runs
from search.driver.loop import Launch
from search.errors import BandsearchError
from search.settings import Settings
from search.worker import TrialJob, TrialOutcome

Result = tuple[TrialOutcome | None, str | None, bool]


class FakeRunner:
    """Runs a trial the moment it is submitted: its result is `result_of(job)`. Finishes trials
    in submission order and remembers how many were in flight at most."""

    def __init__(self, result_of: Callable[[TrialJob], Result], interrupt_after: int | None = None):
        self.result_of = result_of
        self.interrupt_after = interrupt_after
        self.results: dict[int, Result] = {}
        self.running: set[int] = set()  # submitted, not yet returned by wait_one
        self.ids = itertools.count()
        self.max_in_flight = 0
        self.collected = 0
        self.cancelled: list[int] = []

    def submit(self, job: TrialJob, data: Any, cpus: float, gpus: float) -> int:
        assert data == f"data of {job.study_name.split('/')[-1]}"  # each band's own dataset
        ref = next(self.ids)
        self.results[ref] = self.result_of(job)
        self.running.add(ref)
        self.max_in_flight = max(self.max_in_flight, len(self.running))
        return ref

    def wait_one(self, pending: list[int], timeout: float | None = None) -> int | None:
        if self.interrupt_after is not None and self.collected >= self.interrupt_after:
            raise KeyboardInterrupt
        if not pending:
            return None
        self.running.discard(min(pending))
        return min(pending)

    def result(self, ref: int) -> Result:
        self.collected += 1
        return self.results.pop(ref)

    def cancel(self, refs: Sequence[int]) -> None:
        self.cancelled += refs
        self.running.difference_update(refs)


def complete(job: TrialJob) -> Result:
    lr = job.train_config["lr"]
    return TrialOutcome(state="complete", value=1.0 - abs(lr - 0.01), epochs=3), None, False


def make_launch(tmp_path: Path, runner: FakeRunner, trials: int, workers: int, max_retries: int = 1,
                **changes: Any) -> Launch:
    config = parse_config(tiny_config(search={"trials_per_band": trials, "workers": workers,
                                              "max_retries": max_retries, **changes.pop("search", {})},
                                      baselines={"methods": []}, **changes), source="unit.yaml")  # baselines: Ray
    launch = Launch(config, "unit", Settings.resolve(run_dir=str(tmp_path)), runner=runner)
    launch.prepare()
    open_parent_runs(launch.bands, launch.tracker, launch.experiment_id, "unit", launch.settings.storage_url)
    for band in launch.bands:
        band.data = f"data of {band.name}"
    return launch


def runs_by_role(launch: Launch) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for run in dump(launch.settings.tracking_uri, "unit")["runs"]:
        runs.setdefault(run["tags"]["bandsearch.role"], []).append(run)
    return runs


def test_every_band_gets_its_exact_budget_with_at_most_w_in_flight(tmp_path: Path) -> None:
    runner = FakeRunner(complete)
    launch = make_launch(tmp_path, runner, trials=5, workers=3)
    launch.loop()
    assert runner.max_in_flight == 3
    for band in launch.bands:
        trials = band.study.get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 5 and band.finished == 5
    runs = runs_by_role(launch)
    assert len(runs["trial"]) == 10 and {r["status"] for r in runs["trial"]} == {"FINISHED"}
    assert {r["status"] for r in runs["band"]} == {"FINISHED"}
    best = max(launch.bands[0].study.get_trials(), key=lambda t: t.value)
    parent = next(r for r in runs["band"] if r["tags"]["bandsearch.band"] == launch.bands[0].name)
    assert parent["tags"]["best.trial_number"] == str(best.number)


def test_bands_transferring_from_neighbours_take_turns_middle_out_each_seeded_from_those_before(
        tmp_path: Path) -> None:
    submitted: list[str] = []

    def record(job: TrialJob) -> Result:
        submitted.append(job.study_name.split("/")[-1])
        return complete(job)

    bands = [{"name": str(hz), "center_hz": hz} for hz in (250, 500, 1000, 3000)]
    launch = make_launch(tmp_path, FakeRunner(record), trials=5, workers=2, bands=bands,
                         search={"transfer": {"from": "neighbours", "top_k": 2}})
    launch.loop()
    # middle out: 1000 Hz is nearest the log-middle (866 Hz), then always the band nearest to those placed
    assert submitted == ["1000"] * 5 + ["500"] * 5 + ["250"] * 5 + ["3000"] * 5
    studies = {band.name: band.study for band in launch.bands}
    assert all("transfer_from" not in trial.user_attrs for trial in studies["1000"].get_trials())
    for band, nearest in (("500", "1000"), ("250", "500"), ("3000", "1000")):
        trials = studies[band].get_trials()
        seeded_at = trials[0].datetime_start  # asked right after the seeds were enqueued
        finished = [t for t in studies[nearest].get_trials() if t.datetime_complete <= seeded_at]
        assert len(finished) >= 2
        best = sorted(finished, key=lambda t: (-t.value, t.number))[:2]
        assert [t.user_attrs["transfer_from"]["band"] for t in trials[:2]] == [nearest, nearest]
        assert [t.user_attrs["transfer_from"]["trial"] for t in trials[:2]] == [t.number for t in best]
        assert {t.user_attrs["transfer_from"]["study"] for t in trials[:2]} == {"unit"}
        assert all("transfer_from" not in t.user_attrs for t in trials[2:])
        assert [t.params["optimizer"] for t in trials[:2]] == [t.params["optimizer"] for t in best]
    # one band run before 500 Hz: nothing to fit lr(f) to, the rate goes over as it is
    assert [t.user_attrs["transfer_from"]["lr_factor"] for t in studies["500"].get_trials()[:2]] == [1.0, 1.0]
    assert [runs["tags"]["bandsearch.transfer_from"].startswith("unit/") for runs in runs_by_role(launch)["trial"]
            if runs["tags"]["bandsearch.band"] != "1000" and runs["tags"]["optuna.trial_number"] in ("0", "1")] == [
        True] * 6


def test_each_outcome_maps_to_its_optuna_and_mlflow_state(tmp_path: Path) -> None:
    script = iter([
        (None, "ActorDiedError: the worker died", True),  # lost: retried with the same parameters
        (None, "Traceback: ZeroDivisionError", False),  # an exception escaped the trial
        (TrialOutcome(state="failed", error="Traceback: bad"), None, False),
        (TrialOutcome(state="diverged", error="loss nan at epoch 1", epochs=1), None, False),
        (TrialOutcome(state="pruned", value=0.1, epochs=1), None, False),
    ])
    runner = FakeRunner(lambda job: next(script, None) or complete(job))
    launch = make_launch(tmp_path, runner, trials=3, workers=1)
    launch.loop()
    trials = {t.number: t for band in launch.bands for t in band.study.get_trials()
              if band.name == launch.bands[0].name}
    # Bands are served by most budget left, so band 0 (500 Hz) gets trials 0, 1 (retry of 0), 2...
    lost, retry = trials[0], next(t for t in trials.values() if t.user_attrs.get("retry_of") == 0)
    assert lost.state == TrialState.FAIL and lost.user_attrs["retried"] is True
    assert retry.params == lost.params and retry.user_attrs["attempt"] == 1
    states = sorted(t.state.name for band in launch.bands for t in band.study.get_trials())
    assert states.count("FAIL") == 3 and states.count("PRUNED") == 2 and states.count("COMPLETE") == 2
    assert sum(band.finished for band in launch.bands) == 6  # the lost trial does not count
    diverged = [t for band in launch.bands for t in band.study.get_trials() if t.user_attrs.get("stop_reason")]
    assert [t.state for t in diverged] == [TrialState.PRUNED]
    by_state = {}
    for run in runs_by_role(launch)["trial"]:  # the MLflow status, and the mark after the trial number
        mark = re.match(r"t\d{3}( \([^)]*\))? ", run["name"]).group(1) or ""
        by_state.setdefault(run["tags"]["bandsearch.state"], set()).add((run["status"], mark.strip()))
    assert by_state == {"lost": {("FAILED", "")}, "failed": {("FAILED", "")}, "complete": {("FINISHED", "")},
                        "diverged": {("KILLED", "(pruned: diverged)")}, "pruned": {("KILLED", "(pruned)")}}


def test_a_lost_trial_is_retried_only_max_retries_times(tmp_path: Path) -> None:
    runner = FakeRunner(lambda job: (None, "node died", True))
    launch = make_launch(tmp_path, runner, trials=1, workers=1, max_retries=2)
    launch.loop()
    for band in launch.bands:
        attempts = [t.user_attrs.get("attempt", 0) for t in band.study.get_trials()]
        assert attempts == [0, 1, 2] and band.finished == 1 and band.counts["failed"] == 1


def test_an_interrupted_loop_leaves_nothing_running(tmp_path: Path) -> None:
    runner = FakeRunner(complete, interrupt_after=2)
    launch = make_launch(tmp_path, runner, trials=4, workers=2)
    with pytest.raises(KeyboardInterrupt):
        launch.loop()
    assert len(runner.cancelled) == 2
    trials = [t for band in launch.bands for t in band.study.get_trials()]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # Two finished, two in flight and one prepared: the last three are failed for a retry.
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    assert sum(t.state == TrialState.FAIL and t.user_attrs.get("retried") for t in trials) == 3
    runs = runs_by_role(launch)
    assert not [r for r in runs["trial"] + runs["band"] if r["status"] == "RUNNING"]
    assert {r["status"] for r in runs["band"]} == {"KILLED"}


def test_a_budget_below_the_finished_count_is_refused(tmp_path: Path) -> None:
    make_launch(tmp_path, FakeRunner(complete), trials=3, workers=2).loop()
    with pytest.raises(BandsearchError, match="band 500 has 3 finished trials, more than the budget of 2"):
        make_launch(tmp_path, FakeRunner(complete), trials=2, workers=2)
    resumed = make_launch(tmp_path, FakeRunner(complete), trials=4, workers=2)
    resumed.loop()
    assert [band.finished for band in resumed.bands] == [4, 4]


def test_a_trial_asked_but_never_sampled_by_a_dead_driver_is_retried_afresh(tmp_path: Path) -> None:
    first = make_launch(tmp_path, FakeRunner(complete), trials=2, workers=1)
    orphan = first.bands[0].study.ask()  # the driver died between ask() and sampling
    resumed = make_launch(tmp_path, FakeRunner(complete), trials=2, workers=1)
    resumed.loop()
    trials = {t.number: t for t in resumed.bands[0].study.get_trials()}
    assert trials[orphan.number].state == TrialState.FAIL and trials[orphan.number].params == {}
    (retry,) = [t for t in trials.values() if t.user_attrs.get("retry_of") == orphan.number]
    assert retry.state == TrialState.COMPLETE and set(retry.params) >= {"optimizer", "batch_size"}
    assert resumed.bands[0].finished == 2


class _BrokenSampler:
    """A sampler that fails on its third draw (as TPE does when a study's choices changed order)."""

    def __init__(self, sampler):
        self.sampler, self.draws = sampler, 0

    def __getattr__(self, name: str):
        return getattr(self.sampler, name)

    def sample_independent(self, *args):
        self.draws += 1
        if self.draws == 3:
            raise ValueError("CategoricalDistribution does not support dynamic value space.")
        return self.sampler.sample_independent(*args)


def test_a_failing_sampler_stops_the_launch_and_leaves_nothing_running(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, FakeRunner(complete), trials=4, workers=2)
    for band in launch.bands:
        band.study.sampler = _BrokenSampler(optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(ValueError, match="dynamic value space"):
        launch.loop()
    trials = [t for band in launch.bands for t in band.study.get_trials()]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    broken = [t for t in trials if "dynamic value space" in t.user_attrs.get("fail_reason", "")]
    assert len(broken) == 1 and broken[0].state == TrialState.FAIL
    runs = runs_by_role(launch)
    assert not [r for r in runs.get("trial", []) + runs["band"] if r["status"] == "RUNNING"]
