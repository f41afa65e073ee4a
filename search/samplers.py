"""TPE as the driver runs it: one storage read per ask, and a bounded history, so the driver's cost
per trial stays small and stops growing with the study.

Optuna's TPE with `constant_liar` reads every trial from the storage several times per ask (once
per parameter group, to see the trials in flight): over an RDB or the gRPC proxy each read
fetches every running trial again (about 150 ms per ask with 16 in flight, measured by
tests/benchmarks/scale.py). In bandsearch the driver is a study's only asker, so every trial in
flight was sampled before the ask began: one snapshot per ask (Optuna's per-ask trial cache) sees
them all.

TPE also models every finished trial at every ask: its cost grows linearly with the study
(about 30 ms per ask at 1,000 trials on the default space, against 5 ms at 10), and one driver
asks for every band of a launch. TPE splits the trials into the best ones ("below", at most 25
by Optuna's default gamma) and the rest ("above"), which it already weights down the older they
are. With `history`, TPE sees at each ask the best `keep_best` completed trials, the `history`
most recent finished ones and every running one: the "below" set is unchanged, only the oldest
"above" trials leave the model. Up to `history` finished trials it is TPE exactly.
tests/benchmarks/tpe_history.py measures what the bound costs in search quality.

Within one ask TPE also repeats work for every parameter group (on the default space, one per
optimizer and one for the parameters every trial has): it splits the same trials into "below" and
"above" and re-reads the study's direction once per pruned trial. Here the split is made once per
ask, the direction read once, and each finished trial given to the grouped search space once, not
at every ask. Proposals are TPE's, unchanged (tests/test_samplers.py compares them with Optuna's
own TPESampler, with and without Hyperband).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers._tpe.sampler import _split_trials, default_gamma, default_gamma_multiobjective
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

KEEP_BEST = 25  # Optuna's default gamma never puts more trials than this in the "below" set


def recent_and_best(trials: list[FrozenTrial], history: int, maximize: bool,
                    keep_best: int = KEEP_BEST) -> list[FrozenTrial]:
    """`trials` (in number order) cut to the running ones, the `keep_best` best completed ones
    and the `history` most recent finished (complete or pruned) ones; all of them while no more
    than `history` finished. Failed and waiting trials, which TPE does not model, do not count."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(finished) <= history:
        return trials
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    best = sorted(complete, key=lambda t: t.value, reverse=maximize)[:keep_best]
    keep = {t.number for t in best} | {t.number for t in finished[-history:]}
    return [t for t in trials if t.state == TrialState.RUNNING or t.number in keep]


class _AskView:
    """A study as TPE sees it during one ask: every call passes through, but trials come from the
    ask's one snapshot, cut to the sampler's history window, and the directions are read once
    (TPE asks for them once per pruned trial, each a storage read behind Hyperband's bracket view).
    With `unseen_only`, the finished trials whose parameters the sampler's search space has
    already taken in are left out."""

    def __init__(self, study: optuna.Study, sampler: BoundedTPESampler, unseen_only: bool = False):
        self._study = study
        self._sampler = sampler
        self._unseen_only = unseen_only

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    @functools.cached_property
    def directions(self) -> list[StudyDirection]:
        return self._study.directions

    @property
    def direction(self) -> StudyDirection:
        return self.directions[0] if len(self.directions) == 1 else self._study.direction  # which raises

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = self._sampler.window(self._study)
        if states is not None:
            trials = [t for t in trials if t.state in states]
        if self._unseen_only:
            trials = self._sampler.take_in(trials)
        return copy.deepcopy(trials) if deepcopy else trials


class BoundedTPESampler(optuna.samplers.TPESampler):
    """TPESampler (all its options) reading the study once per ask and modelling at most
    `history` recent finished trials plus the best ones (`history: null`: all of them). For a
    study with one asker: trials another process starts during an ask are not seen by it."""

    def __init__(self, *, history: int | None = None, **options: Any):
        if history is not None and (isinstance(history, bool) or not isinstance(history, int) or history < 1):
            raise ValueError(f"history: must be a whole number >= 1 or null, got {history!r}")
        super().__init__(**options)
        self.history = history
        self._windows: tuple[list[FrozenTrial], list[FrozenTrial]] | None = None  # (snapshot, its window)
        self._taken_in: set[int] = set()  # numbers of the finished trials the grouped search space holds
        self._splits: tuple[list[FrozenTrial], int, tuple[list[FrozenTrial], list[FrozenTrial]]] | None = None

    def window(self, study: optuna.Study) -> list[FrozenTrial]:
        """The trials TPE models at this ask: the ask's snapshot (Optuna's per-ask cache), cut once."""
        snapshot = study._get_trials(deepcopy=False, use_cache=True)
        if self._windows is None or self._windows[0] is not snapshot:
            bounded = self.history is not None and not study._is_multi_objective()
            window = recent_and_best(snapshot, self.history, study.direction == StudyDirection.MAXIMIZE) \
                if bounded else snapshot
            self._windows = (snapshot, window)
        return self._windows[1]

    def take_in(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Those of `trials` (finished ones) not yet given to the search space, now marked as given.
        Optuna's grouped search space only ever grows by each trial's parameters, so adding each
        finished trial once, not at every ask, gives the same space."""
        unseen = [t for t in trials if t.number not in self._taken_in]
        self._taken_in.update(t.number for t in unseen)
        return unseen

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return super().infer_relative_search_space(_AskView(study, self, unseen_only=self._group), trial)

    def _split(self, view: _AskView, trial: FrozenTrial) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """TPE's "below" and "above" trials for `trial`, as Optuna 5.1's TPESampler._sample splits
        them, made once per ask: TPE splits the same trials again for every parameter group."""
        snapshot = view._study._get_trials(deepcopy=False, use_cache=True)
        if self._splits is None or self._splits[0] is not snapshot or self._splits[1] != trial.number:
            states = (TrialState.COMPLETE, TrialState.PRUNED, *([TrialState.RUNNING] if self._constant_liar else []))
            trials = [t for t in view._get_trials(deepcopy=False, states=states)
                      if not self._constant_liar or t.number != trial.number]
            if self._gamma is None:
                self._gamma = default_gamma if len(view.directions) == 1 else default_gamma_multiobjective
            finished = sum(t.state != TrialState.RUNNING for t in trials)
            self._splits = (snapshot, trial.number, _split_trials(view, trials, self._gamma(finished)))
        return self._splits[2]

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """TPESampler._sample (Optuna 5.1) on the ask's view, with the split made once per ask."""
        view = _AskView(study, self)
        below, above = self._split(view, trial)
        below_model = self._build_parzen_estimator(view, search_space, below, handle_below=True)
        above_model = self._build_parzen_estimator(view, search_space, above, handle_below=False)
        candidates = below_model.sample(self._rng.rng, self._n_ei_candidates)
        best = self._compare(candidates, self._compute_acquisition_func(candidates, below_model, above_model))
        return {name: distribution.to_external_repr(best[name]) for name, distribution in search_space.items()}
