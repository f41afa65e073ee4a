"""BoundedTPESampler: TPE exactly while a study is small, a bounded model once it is large."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from search.samplers import KEEP_BEST, BoundedTPESampler, recent_and_best
from search.strategies import build_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    y = trial.suggest_float("y", 0, 1) if kind == "a" else trial.suggest_float("z", 1e-4, 1, log=True)
    return (x - 1) ** 2 + y


def _frozen(number: int, value: float | None, state: TrialState = TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    trial = create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                         params={}, distributions={})
    trial.number = number
    return trial


def test_the_window_keeps_running_best_and_recent_trials() -> None:
    trials = [_frozen(n, float(n)) for n in range(100)] + [_frozen(100, None, TrialState.RUNNING)]
    kept = recent_and_best(trials, history=10, maximize=False, keep_best=5)
    assert [t.number for t in kept] == [0, 1, 2, 3, 4, *range(90, 101)]
    kept = recent_and_best(trials, history=10, maximize=True, keep_best=5)
    assert [t.number for t in kept] == [*range(90, 101)]  # the best five are among the recent ones
    assert recent_and_best(trials, history=100, maximize=False) == trials
    failed = [*trials[:100], _frozen(100, None, TrialState.FAIL), _frozen(101, None, TrialState.RUNNING)]
    kept = recent_and_best(failed, history=10, maximize=False, keep_best=5)
    assert [t.number for t in kept] == [0, 1, 2, 3, 4, *range(90, 100), 101]  # a failure takes no place


def _pruned_objective(trial: optuna.Trial) -> float:
    """_objective's value reported over 9 steps, nearer to it at each, so that a pruner acts."""
    value = _objective(trial)
    for step in range(1, 10):
        trial.report(value + 1.0 / step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


def _hyperband() -> optuna.pruners.HyperbandPruner:
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9)


@pytest.mark.parametrize("pruned", [False, True])
def test_a_study_within_the_history_samples_exactly_as_tpe(pruned) -> None:
    options = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 5, "seed": 3}
    # One study name: Hyperband assigns a trial's bracket from it.
    studies = [optuna.create_study(study_name="same", sampler=sampler, pruner=_hyperband() if pruned else None)
               for sampler in
               (optuna.samplers.TPESampler(**options), BoundedTPESampler(history=60, **options))]
    for study in studies:
        study.optimize(_pruned_objective if pruned else _objective, n_trials=60)
    assert [t.params for t in studies[0].trials] == [t.params for t in studies[1].trials]
    assert not pruned or sum(t.state == TrialState.PRUNED for t in studies[1].trials) >= 10


class _Recording(BoundedTPESampler):
    """Counts the trials each of TPE's density estimates is built from."""

    sizes: list[int]

    def _build_parzen_estimator(self, study, search_space, trials, handle_below):
        self.sizes.append(len(trials))
        return super()._build_parzen_estimator(study, search_space, trials, handle_below)


@pytest.mark.parametrize("history", [30, None])
def test_a_large_study_models_at_most_the_history_and_the_best(history) -> None:
    sampler = _Recording(history=history, multivariate=True, group=True, n_startup_trials=5, seed=0)
    sampler.sizes = []
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=120)
    late = sampler.sizes[-20:]
    if history is None:
        assert max(late) > history_bound(30)  # plain TPE models far more than the bound
    else:
        assert max(late) <= history_bound(history)
    assert study.best_value < 0.5  # and it still finds the optimum's neighbourhood


def history_bound(history: int) -> int:
    return history + KEEP_BEST


def test_the_default_sampler_is_bounded() -> None:
    sampler = build_sampler({"name": "tpe"}, seed=0)
    assert isinstance(sampler, BoundedTPESampler) and sampler.history is not None


class _CountingStorage(optuna.storages.InMemoryStorage):
    reads = 0

    def get_all_trials(self, *args, **kwargs):
        self.reads += 1
        return super().get_all_trials(*args, **kwargs)


def _reads_per_ask(sampler: optuna.samplers.BaseSampler) -> float:
    """Storage reads of all trials per ask, with four trials in flight (constant liar reads them)."""
    storage = _CountingStorage()
    study = optuna.create_study(storage=storage, sampler=sampler)
    study.optimize(_objective, n_trials=20)
    in_flight = [study.ask() for _ in range(4)]
    for trial in in_flight:
        _objective(trial)
    storage.reads = 0
    for _ in range(10):
        trial = study.ask()
        study.tell(trial, _objective(trial))
    return storage.reads / 10


def test_one_storage_read_per_ask_with_trials_in_flight() -> None:
    options = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 5, "seed": 0}
    baseline = _reads_per_ask(optuna.samplers.RandomSampler(seed=0))  # what ask and tell read anyway
    plain = _reads_per_ask(optuna.samplers.TPESampler(**options))
    bounded = _reads_per_ask(BoundedTPESampler(history=500, **options))
    assert bounded - baseline <= 1.0 < plain - baseline
