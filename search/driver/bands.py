"""A band's study: created or resumed, its MLflow parent run, and its counts during a launch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from objectives.plain import to_dict
from objectives.train.models import model_from_dict
from search.config import BandPlan, StudyConfig
from search.driver.run_params import flat_params
from search.driver.transfer import seed_from_study
from search.errors import BandsearchError
from search.objective import Objective
from search.settings import Settings
from search.space import BRANCHES
from search.storage import open_storage
from search.strategies import build_pruner, build_sampler
from search.studies import (
    BASELINES,
    NET_ERROR,
    PARENT_RUN,
    PARETO_TAGGED,
    SNAPSHOT,
    UNSENT_WRITES,
    band_study_name,
    best_trial,
    metric_of,
    multi_objective,
    pareto_front,
    run_id_of,
    score,
    snapshot,
    train_config,
)
from search.uris import mask

# How a trial can end; `lost` (worker or driver died) is retried and does not count.
OUTCOMES = ("complete", "pruned", "diverged", "failed", "lost")


@dataclass
class BandRun:
    """One band's study, its MLflow parent run and what has happened in it so far."""

    plan: BandPlan
    study: optuna.Study
    parent_run_id: str  # empty until the first launch opens it
    budget: int
    data: Any = None  # the band's dataset (a Ray reference) once connected
    baselines: Any = None  # Ray reference to the classical baselines' metrics, while they run
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0) | {"running": 0})
    started: float = field(default_factory=time.monotonic)
    best_logged: float | None = None  # the best value last logged on the parent run

    @property
    def name(self) -> str:
        return self.plan.band.name

    @property
    def finished(self) -> int:
        """Trials that count against the budget: every ended trial but those retried."""
        return sum(self.counts[state] for state in OUTCOMES if state != "lost")

    @property
    def remaining(self) -> int:
        return self.budget - self.finished - self.counts["running"]

    def best(self) -> optuna.trial.FrozenTrial | None:
        return best_trial(self.study)


def creation_record(config: StudyConfig, plan: BandPlan) -> dict[str, Any]:
    """What a band study was created from; a resumed launch must match it. The objective is
    recorded only when it is not the built-in loop's, so studies from before it still match."""
    objective = {} if config.objective.record() == Objective().record() else {"objective": config.objective.record()}
    return {
        "band": to_dict(plan.band),
        "task": to_dict(config.task),
        "training": to_dict(config.training),
        "space": plan.space_raw,
        **objective,
    }


def _today(record: dict[str, Any]) -> dict[str, Any]:
    """A creation record to compare, its model with every setting it is built with: a model
    recorded before the model table existed (`{hidden, dropout}`) is the MLP's."""
    training = record.get("training")
    if not isinstance(training, dict) or "model" not in training:
        return record
    model = model_from_dict(training["model"])
    built = {**model.plain(), **model.resolved()}
    return {**record, "training": {**training, "model": built}}


def branch_order(space: Any) -> dict[str, list[str]]:
    """The names under each mapping that is a choice (`space.optimizer`, `space.schedule`), in the
    file's order: Optuna takes them as a categorical's choices, whose order is part of it."""
    if not isinstance(space, dict):
        return {}
    return {kind: list(space[kind]) for kind in BRANCHES if isinstance(space.get(kind), dict)}


def open_studies(config: StudyConfig, study_name: str, settings: Settings,
                 experiment_id: str) -> list[tuple[BandPlan, optuna.Study]]:
    """Create or resume each band's study, in the objective's direction; a resume with a changed
    band, task, training, space or objective is refused (it would mix incomparable trials)."""
    storage = open_storage(settings.storage_url)
    opened = []
    for index, plan in enumerate(config.bands):
        study = optuna.create_study(
            study_name=band_study_name(study_name, plan.band.name),
            storage=storage,
            sampler=build_sampler(config.search.sampler, config.search.seed + index),
            pruner=build_pruner(config.search.pruner),
            directions=[direction for _, direction in config.objective.goals],
            load_if_exists=True,
        )
        record, found = creation_record(config, plan), snapshot(study)
        if found:
            wanted, found = _today(record), _today(found)
            compared = wanted.keys() | {"objective"}
            changed = sorted(key for key in compared if found.get(key) != wanted.get(key))
            if not changed and branch_order(found.get("space")) != branch_order(wanted["space"]):
                changed = [f"order of choices ({branch_order(found.get('space'))} then, "
                           f"{branch_order(wanted['space'])} now: Optuna's categorical keeps its order)"]
            if changed:
                raise BandsearchError(
                    f"{config.source}: study {study_name!r} band {plan.band.name} was created from "
                    f"a different {' and '.join(changed)} (see {found.get('config_file')}); "
                    "resume with the original file or choose a new --study name"
                )
        else:
            study.set_user_attr(SNAPSHOT, {**record, "config_file": str(config.source), "experiment_id": experiment_id})
            if config.search.transfer and config.search.transfer.study:  # from an earlier study's nearest bands
                seed_from_study(study, plan, config.search.transfer, settings.storage_url)
        opened.append((plan, study))
    return opened


def open_parent_runs(bands: list[BandRun], tracker: Any, experiment_id: str, study_name: str,
                     storage_url: str) -> None:
    """Each band's MLflow parent run: created on the first launch, reopened on a resume."""
    for band in bands:
        if band.parent_run_id:
            tracker.reopen(band.parent_run_id)
            if band.study.user_attrs.get(UNSENT_WRITES):  # an earlier launch ended with MLflow down
                tracker.log(band.parent_run_id,
                            tags={"bandsearch.mlflow_lost_writes": band.study.user_attrs[UNSENT_WRITES]})
            continue
        band.parent_run_id = tracker.start_run(
            experiment_id,
            f"band {band.name} Hz",
            tags={"bandsearch.study": study_name, "bandsearch.band": band.name,
                  "optuna.study_name": band.study.study_name, "bandsearch.role": "band"},
            params={"band.center_hz": band.plan.band.center_hz, "band.width_hz": band.plan.band.width_hz,
                    "storage": mask(storage_url)},
            linked=lambda run_id, study=band.study: study.set_user_attr(PARENT_RUN, run_id),
        )


def close_parent_run(band: BandRun, tracker: Any, interrupted: bool) -> None:
    """Tag the band's parent run with its best trial and end it: FINISHED once the budget is done."""
    best = band.best()
    if best is not None:
        tracker.log(band.parent_run_id, tags={
            "best.trial_number": best.number, f"best.{metric_of(band.study)}": f"{score(best):.4f}",
            "best.mlflow_run_id": run_id_of(band.study, best),
            **{f"best.{key}": value for key, value in flat_params(train_config(best)).items()},
        })
    tag_pareto_front(band, tracker)
    tracker.finish(band.parent_run_id, "FINISHED" if band.remaining <= 0 and not interrupted else "KILLED")


def tag_pareto_front(band: BandRun, tracker: Any) -> None:
    """A multi-objective band's front in MLflow (filter runs on `tags.bandsearch.pareto = 'true'`):
    the tag goes on its trials' runs, and turns false on those a later trial pushed off it. Sent
    again at every close (a write lost to an MLflow outage is repaired by the next launch)."""
    study = band.study
    if not multi_objective(study):
        return
    front = {trial.number for trial in pareto_front(study)}
    tagged = set(study.user_attrs.get(PARETO_TAGGED, []))
    trials = study.get_trials(deepcopy=False)
    for number in sorted(front | tagged):
        if run_id := run_id_of(study, trials[number]):
            tracker.log(run_id, tags={"bandsearch.pareto": str(number in front).lower()})
    tracker.log(band.parent_run_id, tags={"pareto.size": str(len(front))})
    study.set_user_attr(PARETO_TAGGED, sorted(front))


def summary_row(band: BandRun) -> dict[str, Any]:
    """The launch's closing line for one band: counts, best value and config, baselines."""
    best = band.best()
    return {
        "band": band.name,
        "complete": band.counts["complete"],
        "pruned": band.counts["pruned"] + band.counts["diverged"],
        "failed": band.counts["failed"],
        "metric": metric_of(band.study),
        "best": score(best) if best else None,
        "config": train_config(best) if best else None,
        "best_run_id": run_id_of(band.study, best) if best else None,
        "angle_error_deg": best.user_attrs.get(NET_ERROR) if best else None,
        "baselines": band.study.user_attrs.get(BASELINES),
        "pareto": len(pareto_front(band.study)) if multi_objective(band.study) else None,
        "parent_run_id": band.parent_run_id,
    }
