"""Search spaces as data: parse the YAML `space:` mapping and compile it into trial.suggest_* calls.

Shape of a space (every entry optional except `optimizer`):

    optimizer:                      # conditional: each choice has its own hyperparameters
      sgd: {momentum: {low: 0.8, high: 0.99}, nesterov: {choices: [true, false]}}
      adam: {beta1: {low: 0.8, high: 0.95}, lr: {low: 1.0e-4, high: 1.0e-2, log: true}}
      svrg: {interval: {choices: [epoch, 50]}}
    schedule:                       # conditional too; default: cosine
      cosine: {}
      step: {gamma: {low: 0.1, high: 0.5}, every_epochs: 3}
    lr: {low: 1.0e-4, high: 0.3, log: true}
    batch_size: {choices: [32, 64, 128]}
    warmup_epochs: {low: 0, high: 2}
    clip_norm: {choices: [null, 1.0, 5.0]}     # null: no clipping
    lr_reference_batch: 64                     # linear scaling rule; null: off
    ramp_from_batch_size: {choices: [null, 16]}  # batch-size ramp; null: off
    ramp_epochs: 3

A value is a range `{low, high, log?, step?}`, a `{choices: [...]}` list, or a plain
constant. Hyperparameters under an optimizer (schedule) are sampled only when that
optimizer (schedule) is chosen and are named `<choice>.<key>` in Optuna, so TPE with
group=True models them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna

from objectives.errors import InvalidConfig
from objectives.train.optim import OPTIMIZERS
from objectives.train.optim.hyperparameters import INTEGERS, check_hyperparameter
from objectives.train.optim.schedules import SCHEDULES

# Keys sampled for every trial (optimizer branches may override them), and the integer ones.
COMMON_KEYS = ("lr", "batch_size", "warmup_epochs", "clip_norm", "lr_reference_batch",
               "ramp_from_batch_size", "ramp_epochs")
_INT_KEYS = {"batch_size", "warmup_epochs", "lr_reference_batch", "ramp_from_batch_size", "ramp_epochs"}
# The conditional choices: their table of names and defaults, and where their values go.
BRANCHES = {"optimizer": (OPTIMIZERS, "optimizer_params"), "schedule": (SCHEDULES, "schedule_params")}


class Param(Protocol):
    def suggest(self, trial: optuna.Trial, name: str) -> Any: ...
    def bounds(self) -> list[Any]: ...


@dataclass(frozen=True)
class Range:
    low: float  # int when `integer`
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        if self.integer:
            return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def bounds(self) -> list[Any]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def bounds(self) -> list[Any]:
        return list(self.choices)


@dataclass(frozen=True)
class Fixed:
    value: Any

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.value

    def bounds(self) -> list[Any]:
        return [self.value]


@dataclass(frozen=True)
class FromFinder:
    """`lr: {from: lr_finder, factor: F}`: search [s/F, s*F] (log) around the range test's
    suggestion s for this band and optimizer. Resolved before any trial by `Space.resolve`."""

    factor: float

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        raise RuntimeError("an lr taken from the LR finder must be resolved before sampling")

    def bounds(self) -> list[Any]:
        return []

    def around(self, suggestion: float) -> Range:
        return Range(suggestion / self.factor, suggestion * self.factor, log=True)


@dataclass(frozen=True)
class Space:
    """A parsed space: common parameters plus one branch of parameters per optimizer (and
    per schedule, when the space chooses one)."""

    common: Mapping[str, Param]
    optimizers: Mapping[str, Mapping[str, Param]]
    schedules: Mapping[str, Mapping[str, Param]] = field(default_factory=dict)

    def finder_optimizers(self) -> list[str]:
        """Optimizers whose learning rate comes from the LR range test."""
        return [name for name, branch in self.optimizers.items()
                if isinstance(branch.get("lr", self.common.get("lr")), FromFinder)]

    def resolve(self, suggestions: Mapping[str, float | None]) -> Space:
        """Replace every `from: lr_finder` lr by the range around that optimizer's suggestion."""
        if not self.finder_optimizers():
            return self
        optimizers = {}
        for name, branch in self.optimizers.items():
            param = branch.get("lr", self.common.get("lr"))
            if isinstance(param, FromFinder):
                if suggestions.get(name) is None:
                    raise InvalidConfig(f"optimizer.{name}.lr", "the LR finder has no suggestion for this "
                                        "optimizer (it diverged at once or never ran); run `bandsearch lr-find` "
                                        "with a lower min_lr, or give an explicit range")
                branch = {**branch, "lr": param.around(suggestions[name])}
            optimizers[name] = branch
        common = {key: value for key, value in self.common.items() if not isinstance(value, FromFinder)}
        return Space(common=common, optimizers=optimizers)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one configuration: {optimizer, optimizer_params, lr, batch_size, ...}."""
        values: dict[str, Any] = {key: param.suggest(trial, key) for key, param in self.common.items()}
        for kind, branches in (("optimizer", self.optimizers), ("schedule", self.schedules)):
            if branches:
                values.update(_sample_branch(trial, kind, branches))
        return values


def _sample_branch(trial: optuna.Trial, kind: str, branches: Mapping[str, Mapping[str, Param]]) -> dict[str, Any]:
    names = list(branches)
    name = names[0] if len(names) == 1 else trial.suggest_categorical(kind, names)
    values: dict[str, Any] = {kind: name, BRANCHES[kind][1]: {}}
    for key, param in branches[name].items():
        value = param.suggest(trial, f"{name}.{key}")
        if key in COMMON_KEYS:
            values[key] = value
        else:
            values[BRANCHES[kind][1]][key] = value
    return values


def _number(value: Any, key: str) -> float:
    """YAML 1.1 reads `1e-4` (no dot) as a string: accept numeric strings too."""
    if isinstance(value, bool):
        raise InvalidConfig(key, f"must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidConfig(key, f"must be a number, got {value!r}") from None


def parse_param(key: str, raw: Any, integer: bool) -> Param:
    if not isinstance(raw, Mapping):
        return Fixed(raw)
    if "choices" in raw:
        extra = sorted(set(raw) - {"choices"})
        if extra:
            raise InvalidConfig(f"{key}.{extra[0]}", "a choices entry takes only `choices`")
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise InvalidConfig(f"{key}.choices", "must be a non-empty list")
        return Choice(tuple(choices))
    unknown = sorted(set(raw) - {"low", "high", "log", "step"})
    if unknown:
        raise InvalidConfig(
            f"{key}.{unknown[0]}", "unknown key; a range takes low, high, log, step (or give choices)"
        )
    for bound in ("low", "high"):
        if bound not in raw:
            raise InvalidConfig(key, f"a range needs `{bound}` (or give `choices`, or a constant)")
    low, high = _number(raw["low"], f"{key}.low"), _number(raw["high"], f"{key}.high")
    log = bool(raw.get("log", False))
    step = _number(raw["step"], f"{key}.step") if raw.get("step") is not None else None
    if low > high:
        raise InvalidConfig(key, f"low ({low:g}) > high ({high:g}); make low <= high")
    if log and low <= 0:
        raise InvalidConfig(key, f"a log range needs low > 0, got low={low:g}")
    if log and step is not None:
        raise InvalidConfig(key, "a log range cannot have a step")
    if integer and not (low.is_integer() and high.is_integer()):
        raise InvalidConfig(key, f"must be whole numbers, got low={low:g}, high={high:g}")
    if integer:
        return Range(int(low), int(high), log=log, step=int(step) if step else None, integer=True)
    return Range(low, high, log=log, step=step)


def _check_values(key: str, param: Param, check: Any, default: bool = False) -> None:
    for value in param.bounds():
        try:
            check(value)
        except InvalidConfig as err:
            hint = f" (the default {value!r}; set {key.split('.')[-1]} in the space)" if default else ""
            raise InvalidConfig(key, err.message + hint) from None


def _check_common(key: str, value: Any, n_train: int, epochs: int) -> None:
    if key == "lr" and not (_is_number(value) and value > 0):
        raise InvalidConfig(key, f"learning rates must be > 0, got {value!r}")
    if key == "batch_size":
        if not isinstance(value, int) or value < 1:
            raise InvalidConfig(key, f"batch sizes must be whole numbers >= 1, got {value!r}")
        if value > n_train:
            raise InvalidConfig(
                key, f"{value} is larger than the training set ({n_train} clips); lower it or raise task.n_train"
            )
    if key == "warmup_epochs" and not (isinstance(value, int) and 0 <= value <= epochs):
        raise InvalidConfig(key, f"must be whole numbers in [0, training.epochs={epochs}], got {value!r}")
    if key == "clip_norm" and value is not None and not (_is_number(value) and value > 0):
        raise InvalidConfig(key, f"max gradient norms must be > 0 (or null: no clipping), got {value!r}")
    if key in ("lr_reference_batch", "ramp_from_batch_size") and value is not None and not (
        isinstance(value, int) and 1 <= value <= n_train
    ):
        raise InvalidConfig(key, f"must be whole numbers in [1, task.n_train={n_train}] (or null: off), got {value!r}")
    if key == "ramp_epochs" and not (isinstance(value, int) and 1 <= value <= epochs):
        raise InvalidConfig(key, f"must be whole numbers in [1, training.epochs={epochs}], got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_finder(raw: Mapping[str, Any], where: str) -> FromFinder:
    if raw["from"] != "lr_finder":
        raise InvalidConfig(f"{where}.from", f"unknown source {raw['from']!r}; the only one is lr_finder")
    extra = sorted(set(raw) - {"from", "factor"})
    if extra:
        raise InvalidConfig(f"{where}.{extra[0]}", "unknown key; `from: lr_finder` takes `factor`")
    factor = _number(raw.get("factor", 10), f"{where}.factor")
    if factor <= 1:
        raise InvalidConfig(f"{where}.factor", f"must be > 1 (the range is [s/factor, s*factor]), got {factor:g}")
    return FromFinder(factor)


def _parse_common(key: str, raw: Any, where: str, n_train: int, epochs: int) -> Param:
    if key == "lr" and isinstance(raw, Mapping) and "from" in raw:
        return _parse_finder(raw, where)
    param = parse_param(where, raw, integer=key in _INT_KEYS)
    _check_values(where, param, lambda v: _check_common(key, v, n_train, epochs))
    return param


def _parse_branches(kind: str, raw: Any, n_train: int, epochs: int) -> dict[str, dict[str, Param]]:
    """`optimizer:` or `schedule:`: a name, a list of choices, or a mapping of each choice
    to its own hyperparameters."""
    table = BRANCHES[kind][0]
    if isinstance(raw, str):
        raw = {raw: {}}
    if isinstance(raw, Mapping) and "choices" in raw:
        raw = {name: {} for name in raw["choices"] or []}
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidConfig(kind, f"give an {kind} name or a non-empty mapping of {kind}s")
    branches: dict[str, dict[str, Param]] = {}
    for name, entries in raw.items():
        if name not in table:
            raise InvalidConfig(f"{kind}.{name}", f"unknown {kind}; choose from {sorted(table)}")
        entries = entries or {}
        if not isinstance(entries, Mapping):
            raise InvalidConfig(f"{kind}.{name}", "must map hyperparameter names to values or ranges")
        allowed = set(table[name].defaults) | set(COMMON_KEYS)
        branch: dict[str, Param] = {}
        for key, value in entries.items():
            where = f"{kind}.{name}.{key}"
            if key not in allowed:
                raise InvalidConfig(where, f"unknown key; {name} takes {sorted(allowed)}")
            if key in COMMON_KEYS:
                branch[key] = _parse_common(key, value, where, n_train, epochs)
            else:
                branch[key] = parse_param(where, value, integer=key in INTEGERS)
                _check_values(where, branch[key], lambda v, k=key: check_hyperparameter(k, v, epochs))
        for key, default in table[name].defaults.items():  # defaults can clash with training.epochs
            if key not in branch:
                _check_values(f"{kind}.{name}.{key}", Fixed(default),
                              lambda v, k=key: check_hyperparameter(k, v, epochs), default=True)
        branches[name] = branch
    return branches


def parse_space(raw: Any, n_train: int, epochs: int) -> Space:
    """Parse and validate a `space:` mapping; InvalidConfig keys are relative to it."""
    if not isinstance(raw, Mapping):
        raise InvalidConfig("space", "must be a mapping of parameter names to ranges")
    unknown = sorted(set(raw) - set(COMMON_KEYS) - set(BRANCHES))
    if unknown:
        raise InvalidConfig(unknown[0], f"unknown key; a space takes {', '.join([*BRANCHES, *COMMON_KEYS])}")
    if "optimizer" not in raw:
        raise InvalidConfig("optimizer", "required: the optimizer(s) to search")
    common = {key: _parse_common(key, raw[key], key, n_train, epochs) for key in COMMON_KEYS if key in raw}
    schedules = _parse_branches("schedule", raw["schedule"], n_train, epochs) if "schedule" in raw else {}
    return Space(common=common, optimizers=_parse_branches("optimizer", raw["optimizer"], n_train, epochs),
                 schedules=schedules)
