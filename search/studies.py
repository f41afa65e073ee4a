"""How bandsearch lays out its records in Optuna: study names, every user-attribute key, and
the helpers that read them back. Nothing else in search/ spells an attribute key.

A study named S is one Optuna study per band, `S/<band>`. Its study attributes hold what it
was created from and its links to MLflow; each trial's attributes hold its full train
config, its MLflow run and, for retries, its lineage. LR range-test results live in one
study of their own (`FINDER_STUDY`), keyed by everything that determines them, and the
launch leases (which driver runs which study) in another (`LEASE_STUDY`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from objectives.train.models import ModelConfig, model_from_dict
from search.errors import BandsearchError
from search.storage import open_storage
from search.uris import mask

# -- band study attributes ------------------------------------------------------------
# band, task, training, space, objective (only when not the built-in loop's), config_file,
# experiment_id: a resume must match
SNAPSHOT = "bandsearch"
BUDGET = "budget"  # trials per band asked by the latest launch
PARENT_RUN = "mlflow_parent_run_id"  # the band's MLflow parent run
# Trial number -> MLflow run id, for runs created after their trial ended (MLflow was down
# when the trial started; a finished trial's attributes are frozen).
LATE_RUNS = "mlflow_late_runs"
UNSENT_WRITES = "mlflow_unsent_writes"  # driver writes MLflow never got (an outage outlasted the launch)
BASELINES = "baselines"  # the classical baselines' metrics on the band's test clips

# -- trial attributes -----------------------------------------------------------------
TRAIN_CONFIG = "train_config"  # the full TrainConfig as plain data
RUN_ID = "mlflow_run_id"
RETRY_OF = "retry_of"  # the trial number this one repeats
ATTEMPT = "attempt"  # 1 for the first retry of a trial, 2 for the next...
RETRIED = "retried"  # this failed trial was re-queued
FAIL_REASON = "fail_reason"
STOP_REASON = "stop_reason"  # "diverged" on a pruned trial whose loss went NaN/inf
NET_ERROR = "val_angle_error_deg"  # the network's final mean angle error
PARETO_TAGGED = "pareto_front"  # a multi-objective band: the trial numbers its runs' tags put on the front

# -- the LR finder's store ------------------------------------------------------------
FINDER_STUDY = "bandsearch:lr-finder"  # holds every range-test result, as study attributes
FINDER_PREFIX = "lr-finder/"  # ... under keys starting with this

# -- launch leases (search/lease.py) --------------------------------------------------
LEASE_STUDY = "bandsearch:leases"  # one trial, a ticket, per launch that asked for a study's lease
LEASE_FOR = "study"  # ticket user attributes: the study it is for,
LEASE_OWNER = "owner"  # a token unique to the launch,
LEASE_HOST, LEASE_PID = "host", "pid"  # where its driver runs,
LEASE_SINCE = "since"  # when it asked (Unix time),
LEASE_AFTER = "after"  # the number of the holder's ticket it succeeds (-1: none),
LEASE_HEARTBEAT = "heartbeat"  # and its last renewal (Unix time)


# A study name is also an MLflow experiment and a folder name (reports, artifacts): no `/`,
# no leading `.` (so no `..`), nothing a shell or a URL would mangle.
_STUDY_NAME = re.compile(r"[A-Za-z0-9_ -][A-Za-z0-9_. -]*")


def check_study_name(name: str) -> str:
    """`name`, if it can name a study; else the clear error with the rule."""
    if not _STUDY_NAME.fullmatch(name):
        raise BandsearchError(f"study name {name!r}: use letters, digits, '-', '_', '.' and spaces, "
                              "not starting with '.'")
    return name


def band_study_name(study: str, band: str) -> str:
    return f"{study}/{band}"


def open_band_studies(storage_url: str, study: str) -> dict[str, optuna.Study]:
    """Every band study of `study`, by band name; a clear error if there is none."""
    storage = open_storage(storage_url)
    prefix = f"{study}/"
    # Names only: Optuna's study summaries would copy every trial of every band first.
    names = [s.study_name for s in storage.get_all_studies() if s.study_name.startswith(prefix)]
    if not names:
        raise BandsearchError(
            f"no study named {study!r} in {mask(storage_url)}; `bandsearch studies` lists what is there"
        )
    return {name.removeprefix(prefix): optuna.load_study(study_name=name, storage=storage) for name in names}


def snapshot(study: optuna.Study) -> dict[str, Any]:
    """What the band study was created from ({} before its first launch)."""
    return study.user_attrs.get(SNAPSHOT, {})


def study_model(studies: Iterable[optuna.Study]) -> ModelConfig:
    """The model the band studies train: training.model of their creation record."""
    found = next((model for study in studies if (model := snapshot(study).get("training", {}).get("model"))), None)
    return model_from_dict(found) if found else ModelConfig()


def experiment_of(studies: Iterable[optuna.Study]) -> str | None:
    """The MLflow experiment id of a study, from its band studies (None before its first launch)."""
    return next((found for study in studies if (found := snapshot(study).get("experiment_id"))), None)


def objective_of(study: optuna.Study) -> dict[str, Any]:
    """What the band study optimises: {function (None: the built-in loop), metric, direction}."""
    return snapshot(study).get("objective") or {"function": None, "metric": "val_accuracy",
                                                "direction": study.directions[0].name.lower()}


def metric_of(study: optuna.Study) -> str:
    """The name of the metric a trial's value is (val_accuracy for the built-in loop)."""
    return objective_of(study)["metric"]


def objective_metrics(study: optuna.Study) -> list[str]:
    """The metrics the band study optimises, the first one first (one unless multi-objective)."""
    return [goal["metric"] for goal in objective_of(study).get("objectives", [])] or [metric_of(study)]


def multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def score(trial: FrozenTrial) -> float | None:
    """A finished trial's value on the study's first objective (the one it has if it has one)."""
    return trial.values[0] if trial.values else None


def _order(study: optuna.Study) -> Callable[[FrozenTrial], tuple]:
    """Best first on the first objective, then on the next ones, then the earliest."""
    signs = [-1 if d == optuna.study.StudyDirection.MAXIMIZE else 1 for d in study.directions]
    return lambda t: (*(sign * value for sign, value in zip(signs, t.values, strict=True)), t.number)


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The completed trials no other one beats on every objective, best first on the first
    objective (then the next ones, then the earliest); a single-objective study's is its best trial."""
    if not multi_objective(study):
        best = best_trial(study)
        return [best] if best else []
    return sorted(study.best_trials, key=_order(study))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial (of a multi-objective study: its front's best on the first
    objective), or None while there is none."""
    if multi_objective(study):
        front = pareto_front(study)
        return front[0] if front else None
    try:
        return study.best_trial
    except ValueError:
        return None


def train_config(trial: FrozenTrial) -> dict[str, Any]:
    return trial.user_attrs[TRAIN_CONFIG]


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The completed trials, best first on the study's first objective (ties: on the next ones,
    then the earliest), so a multi-objective study's first is its front's best."""
    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=_order(study))


def best_per_optimizer(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The best completed trial of each optimizer the study tried, on its first objective."""
    best: dict[str, FrozenTrial] = {}
    for trial in ranked(study):
        best.setdefault(train_config(trial)["optimizer"], trial)
    return best


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial: what a worker needs to rebuild it. Optuna keeps it private
    (`_trial_id`, the reason for the minor-version pin in pyproject.toml)."""
    return trial._trial_id


def live_trial(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """A handle to write to a trial found RUNNING in the storage (to fail it after a crash)."""
    return optuna.trial.Trial(study, trial_id(frozen))


def link_run(study: optuna.Study, trial: optuna.Trial, run_id: str) -> None:
    """Record `run_id` as the MLflow run of `trial`: on the trial while it runs, else on the study."""
    try:
        trial.set_user_attr(RUN_ID, run_id)
    except UpdateFinishedTrialError:
        study.set_user_attr(LATE_RUNS, {**study.user_attrs.get(LATE_RUNS, {}), str(trial.number): run_id})


def run_id_of(study: optuna.Study, trial: FrozenTrial) -> str:
    """The MLflow run of `trial` ("" if it never got one)."""
    return trial.user_attrs.get(RUN_ID) or study.user_attrs.get(LATE_RUNS, {}).get(str(trial.number), "")
