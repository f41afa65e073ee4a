"""What a study optimises: the built-in training loop (val_accuracy, maximize) or the user's own
function, named in the study YAML's `objective` section:

    objective:
      function: "my_train:run"   # run(config: dict, data, reporter) -> dict[str, float]
      metric: val_loss           # what Optuna optimises and prunes on
      direction: minimize

Without `function` the built-in loop runs and its last epoch's `metric` is the trial's value.

A multi-objective study lists its metrics in `search.objectives` instead (the first one is the
one progress, status and the LR tables show); each band's study then keeps a Pareto front:

    search:
      objectives:
        - {metric: val_accuracy, direction: maximize}
        - {metric: step_ms, direction: minimize}
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from objectives.errors import InvalidConfig
from objectives.train.reporter import OBJECTIVE_METRICS
from objectives.user_code import load_callable, shippable

DIRECTIONS = ("maximize", "minimize")
KEYS = ("function", "metric", "direction")
FUNCTION_KEY = "objective.function"  # the key every error about the function names


@dataclass(frozen=True)
class Objective:
    function: str | None = None  # "module:function"; None: the built-in training loop
    metric: str = "val_accuracy"
    direction: str = "maximize"
    code_dir: str | None = None  # the study YAML's folder, where the function's module may live
    further: tuple[tuple[str, str], ...] = ()  # (metric, direction) after the first: multi-objective

    @property
    def built_in(self) -> bool:
        return self.function is None

    @property
    def multi(self) -> bool:
        return bool(self.further)

    @property
    def goals(self) -> tuple[tuple[str, str], ...]:
        """Every (metric, direction) the study optimises, the first one first."""
        return ((self.metric, self.direction), *self.further)

    def record(self) -> dict[str, Any]:
        """What a band study stores of it (its snapshot; not the folder, which may move)."""
        record = {"function": self.function, "metric": self.metric, "direction": self.direction}
        if self.multi:
            record["objectives"] = [{"metric": m, "direction": d} for m, d in self.goals]
        return record

    def load(self) -> Any:
        """The user's function, imported (beside the YAML or from PYTHONPATH / Ray's py_modules)."""
        return load_callable(self.function or "", FUNCTION_KEY, self.code_dir)

    def py_modules(self) -> list[str]:
        """The user's module(s) Ray must copy to every node; none for the built-in loop."""
        return [] if self.built_in else shippable([self.function or ""], self.code_dir)


def parse_objective(raw: Any, code_dir: Path, spaces: Iterable[Mapping[str, Any]], listed: Any = None) -> Objective:
    """The `objective` section (None: the built-in loop, val_accuracy, maximize) and `listed`, the
    metrics of `search.objectives` (None: the section's one metric); the function is imported and
    its signature checked now, so a bad one stops the launch before any trial. `spaces` (each
    band's raw space) may take no lr from the LR finder with the user's function."""
    if raw is None and listed is None:
        return Objective()
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise InvalidConfig("objective", f"must be a mapping with {', '.join(KEYS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InvalidConfig(f"objective.{unknown[0]}", f"unknown key; objective takes {list(KEYS)}")
    built_in = raw.get("function") is None
    if listed is None:
        goals = [_goal(raw, "objective", built_in)]
    else:
        if given := [key for key in ("metric", "direction") if key in raw]:
            raise InvalidConfig(f"objective.{given[0]}", "search.objectives lists the metrics; give them in "
                                "one place (drop objective.metric and objective.direction)")
        goals = _goals(listed, built_in)
    (metric, direction), *further = goals
    objective = Objective(raw.get("function"), metric, direction, str(code_dir.resolve()), tuple(further))
    if objective.function is not None:
        _check_signature(objective.load(), objective.function)
        for space in spaces:
            _refuse_finder(space)
    return objective


def _goals(listed: Any, built_in: bool) -> list[tuple[str, str]]:
    """`search.objectives`: one or more {metric, direction}, each metric once."""
    if not isinstance(listed, list) or not listed:
        raise InvalidConfig("search.objectives", "must be a list of {metric, direction}, e.g. [{metric: "
                            "val_accuracy, direction: maximize}, {metric: step_ms, direction: minimize}]")
    for i, entry in enumerate(listed):
        if unknown := sorted(set(entry) - {"metric", "direction"}) if isinstance(entry, Mapping) else []:
            raise InvalidConfig(f"search.objectives[{i}].{unknown[0]}", "unknown key; give metric and direction")
    goals = [_goal(entry, f"search.objectives[{i}]", built_in) for i, entry in enumerate(listed)]
    metrics = [metric for metric, _ in goals]
    if duplicate := next((m for i, m in enumerate(metrics) if m in metrics[:i]), None):
        raise InvalidConfig("search.objectives", f"{duplicate!r} is listed twice; list each metric once")
    return goals


def _goal(entry: Any, key: str, built_in: bool) -> tuple[str, str]:
    """One (metric, direction); the built-in loop's metrics must be ones it reports, the right way."""
    if not isinstance(entry, Mapping):
        raise InvalidConfig(key, f"must be a mapping with metric and direction, got {entry!r}")
    for part in ("metric", "direction"):
        if part not in entry:
            raise InvalidConfig(f"{key}.{part}", "required (e.g. metric: val_loss, direction: minimize)")
    metric, direction = entry["metric"], entry["direction"]
    if not isinstance(metric, str) or not metric.strip():
        raise InvalidConfig(f"{key}.metric", f"must be a metric name the objective reports, got {metric!r}")
    if direction not in DIRECTIONS:
        raise InvalidConfig(f"{key}.direction", f"must be maximize or minimize, got {direction!r}")
    if built_in and metric not in OBJECTIVE_METRICS:
        raise InvalidConfig(f"{key}.metric", f"the built-in loop reports no {metric!r}; it reports "
                            f"{sorted(OBJECTIVE_METRICS)} (or give objective.function, your own)")
    if built_in and OBJECTIVE_METRICS[metric] != direction:
        raise InvalidConfig(f"{key}.direction", f"{metric} is better when it is "
                            f"{'higher' if OBJECTIVE_METRICS[metric] == 'maximize' else 'lower'}: use "
                            f"{OBJECTIVE_METRICS[metric]}")
    return metric, direction


def _refuse_finder(space: Mapping[str, Any]) -> None:
    """The LR finder trains the built-in model: its ranges mean nothing to the user's function."""
    optimizers = space.get("optimizer")
    entries = [("space.lr", space.get("lr"))] + [
        (f"space.optimizer.{name}.lr", params.get("lr")) for name, params in
        (optimizers.items() if isinstance(optimizers, Mapping) else ()) if isinstance(params, Mapping)]
    for key, entry in entries:
        if isinstance(entry, Mapping) and entry.get("from") == "lr_finder":
            raise InvalidConfig(key, "lr: {from: lr_finder} needs the built-in training loop (the range test "
                                "trains its model), not objective.function; give the range, e.g. "
                                "{low: 1.0e-4, high: 0.1, log: true}")


def _check_signature(function: Any, spec: str) -> None:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return  # a builtin without a signature: its call will tell
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    if len(required) > 3 or (len(positional) < 3 and not varargs) or any(p not in positional for p in required):
        raise InvalidConfig(FUNCTION_KEY, f"{spec} must take (config, data, reporter), but takes "
                            f"{inspect.signature(function)}")
