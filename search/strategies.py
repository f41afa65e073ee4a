"""Samplers and pruners by name, with the options that matter set explicitly.

Optuna's defaults for these options changed between releases; writing them out keeps a
study's behaviour fixed. Adding a sampler or pruner is one table entry: the class and
the defaults bandsearch sets (YAML options override them).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from objectives.errors import InvalidConfig
from search.samplers import BoundedTPESampler

Entry = tuple[type, dict[str, Any]]

# Finished trials TPE models besides the best 25: tests/benchmarks/tpe_history.py measures the cost.
HISTORY = 500

SAMPLERS: dict[str, Entry] = {
    # group=True models conditional parameters (momentum only for SGD) jointly;
    # constant_liar keeps trials in flight from being proposed twice; history bounds the
    # driver's cost per ask as a band's study grows (search/samplers.py).
    "tpe": (
        BoundedTPESampler,
        {
            "multivariate": True,
            "group": True,
            "constant_liar": True,
            "n_startup_trials": 5,
            "history": HISTORY,
        },
    ),
    "random": (optuna.samplers.RandomSampler, {}),
}

PRUNERS: dict[str, Entry] = {
    # Wait two epochs before judging: warmup makes the first epochs noisy.
    "median": (optuna.pruners.MedianPruner, {"n_startup_trials": 4, "n_warmup_steps": 2}),
    "successive_halving": (optuna.pruners.SuccessiveHalvingPruner, {"min_resource": 2, "reduction_factor": 3}),
    # Epochs as the resource: brackets of successive halving from min_resource epochs up to the
    # epochs of the first finished trial ("auto"); each trial's bracket is fixed by its number.
    "hyperband": (optuna.pruners.HyperbandPruner, {"min_resource": 1, "max_resource": "auto", "reduction_factor": 3}),
    "none": (optuna.pruners.NopPruner, {}),
}


def normalize(spec: Mapping[str, Any] | str) -> dict[str, Any]:
    """`sampler: random` is short for `sampler: {name: random}`."""
    return {"name": spec} if isinstance(spec, str) else dict(spec)


def _resolve(kind: str, table: Mapping[str, Entry], spec: Mapping[str, Any] | str) -> tuple[type, dict[str, Any]]:
    spec = normalize(spec) if isinstance(spec, (str, Mapping)) else spec
    if not isinstance(spec, Mapping):
        raise InvalidConfig(kind, f"must be a name or a mapping with `name`, got {spec!r}")
    options = dict(spec)
    name = options.pop("name", None)
    if name not in table:
        raise InvalidConfig(f"{kind}.name", f"unknown {kind} {name!r}; choose one of {sorted(table)}")
    cls, defaults = table[name]
    accepted = _options(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidConfig(
            f"{kind}.{unknown[0]}", f"{name} takes no option {unknown[0]!r}; it takes {sorted(accepted)}"
        )
    return cls, {**defaults, **options}


def _options(cls: type) -> set[str]:
    """The keyword options of `cls` and of the classes it passes `**options` on to."""
    accepted: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            parameters = inspect.signature(klass.__init__).parameters.values()
            accepted |= {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                break
    return accepted - {"self", "seed"}


def validate(sampler: Mapping[str, Any], pruner: Mapping[str, Any]) -> None:
    """Build both once, so a bad option value is refused with its key before anything starts."""
    for kind, build in (("sampler", lambda: build_sampler(sampler, 0)), ("pruner", lambda: build_pruner(pruner))):
        try:
            build()
        except InvalidConfig:
            raise
        except (TypeError, ValueError) as err:
            raise InvalidConfig(kind, str(err)) from None


def build_sampler(spec: Mapping[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    cls, options = _resolve("sampler", SAMPLERS, spec)
    with warnings.catch_warnings():  # `group` is marked experimental; we rely on it knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(seed=seed, **options)


def build_pruner(spec: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    cls, options = _resolve("pruner", PRUNERS, spec)
    return cls(**options)
