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
"""

from __future__ import annotations

import copy
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
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
    ask's one snapshot, cut to the sampler's history window."""

    def __init__(self, study: optuna.Study, sampler: BoundedTPESampler):
        self._study = study
        self._sampler = sampler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = self._sampler.window(self._study)
        if states is not None:
            trials = [t for t in trials if t.state in states]
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

    def window(self, study: optuna.Study) -> list[FrozenTrial]:
        """The trials TPE models at this ask: the ask's snapshot (Optuna's per-ask cache), cut once."""
        snapshot = study._get_trials(deepcopy=False, use_cache=True)
        if self._windows is None or self._windows[0] is not snapshot:
            bounded = self.history is not None and not study._is_multi_objective()
            window = recent_and_best(snapshot, self.history, study.direction == StudyDirection.MAXIMIZE) \
                if bounded else snapshot
            self._windows = (snapshot, window)
        return self._windows[1]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return super().infer_relative_search_space(_AskView(study, self), trial)

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return super()._sample(_AskView(study, self), trial, search_space)
