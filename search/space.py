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
    model: {channels: {choices: [8, 16, 32]}, dropout: {low: 0.0, high: 0.3}}   # the model's settings

A value is a range `{low, high, log?, step?}`, a `{choices: [...]}` list, or a plain
constant. Hyperparameters under an optimizer (schedule) are sampled only when that
optimizer (schedule) is chosen and are named `<choice>.<key>` in Optuna, so TPE with
group=True models them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import optuna

from objectives.errors import InvalidConfig
from objectives.train.models import MODELS, ModelConfig, check_setting
from objectives.train.optim import OPTIMIZERS
from objectives.train.optim.hyperparameters import INTEGERS, check_hyperparameter
from objectives.train.optim.schedules import SCHEDULES
from search.params import Choice, Fixed, FromFinder, FromFit, LrFrom, Param, number, parse_param

# Keys sampled for every trial (optimizer branches may override them), and the integer ones.
COMMON_KEYS = ("lr", "batch_size", "warmup_epochs", "clip_norm", "lr_reference_batch",
               "ramp_from_batch_size", "ramp_epochs")
_INT_KEYS = {"batch_size", "warmup_epochs", "lr_reference_batch", "ramp_from_batch_size", "ramp_epochs"}
# The conditional choices: their table of names and defaults, and where their values go.
BRANCHES = {"optimizer": (OPTIMIZERS, "optimizer_params"), "schedule": (SCHEDULES, "schedule_params")}


@dataclass(frozen=True)
class Space:
    """A parsed space: common parameters plus one branch of parameters per optimizer (and
    per schedule, when the space chooses one)."""

    common: Mapping[str, Param]
    optimizers: Mapping[str, Mapping[str, Param]]
    schedules: Mapping[str, Mapping[str, Param]] = field(default_factory=dict)
    model: Mapping[str, Param] = field(default_factory=dict)  # the model's settings, `model.<key>` in Optuna

    def lr_sources(self) -> dict[str, LrFrom]:
        """Optimizers whose learning-rate range comes from elsewhere (the LR finder, or an
        lr(f) fit: FromFit), and where from."""
        return {name: param for name, branch in self.optimizers.items()
                if isinstance(param := branch.get("lr", self.common.get("lr")), LrFrom)}

    def named_params(self) -> dict[str, Param]:
        """Every sampled parameter by its Optuna name; the conditional choices as a Choice."""
        named: dict[str, Param] = dict(self.common)
        for kind, branches in (("optimizer", self.optimizers), ("schedule", self.schedules)):
            if len(branches) > 1:
                named[kind] = Choice(tuple(branches))
            named.update({f"{choice}.{key}": param for choice, branch in branches.items()
                          for key, param in branch.items()})
        named.update({f"model.{key}": param for key, param in self.model.items()})
        return {name: param for name, param in named.items() if not isinstance(param, Fixed)}

    def finder_optimizers(self) -> list[str]:
        """Optimizers whose learning rate comes from the LR range test."""
        return [name for name, param in self.lr_sources().items() if isinstance(param, FromFinder)]

    def resolve(self, suggestions: Mapping[str, float | None]) -> Space:
        """Replace every lr taken from elsewhere by the range around that optimizer's suggestion."""
        if not self.lr_sources():
            return self
        optimizers = {}
        for name, branch in self.optimizers.items():
            param = branch.get("lr", self.common.get("lr"))
            if isinstance(param, LrFrom):
                if suggestions.get(name) is None:
                    raise InvalidConfig(f"optimizer.{name}.lr", param.missing)
                branch = {**branch, "lr": param.around(suggestions[name])}
            optimizers[name] = branch
        common = {key: value for key, value in self.common.items() if not isinstance(value, LrFrom)}
        # replace(), not Space(...): every other part of the space (the schedules) carries over.
        return replace(self, common=common, optimizers=optimizers)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one configuration: {optimizer, optimizer_params, lr, batch_size, ...}."""
        values: dict[str, Any] = {key: param.suggest(trial, key) for key, param in self.common.items()}
        for kind, branches in (("optimizer", self.optimizers), ("schedule", self.schedules)):
            if branches:
                values.update(_sample_branch(trial, kind, branches))
        if self.model:
            values["model_settings"] = {key: param.suggest(trial, f"model.{key}") for key, param in self.model.items()}
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


def _check_values(key: str, param: Param, check: Any, default: bool = False) -> None:
    for value in param.bounds():
        try:
            check(value)
        except InvalidConfig as err:
            hint = f" (the default {value!r}; set {key.split('.')[-1]} in the space)" if default else ""
            raise InvalidConfig(key, err.message + hint) from None


def _check_common(key: str, value: Any, n_train: int, epochs: int, grow: str) -> None:
    if key == "lr" and not (_isnumber(value) and value > 0):
        raise InvalidConfig(key, f"learning rates must be > 0, got {value!r}")
    if key == "batch_size":
        if not isinstance(value, int) or value < 1:
            raise InvalidConfig(key, f"batch sizes must be whole numbers >= 1, got {value!r}")
        if value > n_train:
            raise InvalidConfig(
                key, f"{value} is larger than the training set ({n_train} clips); lower it or {grow}"
            )
    if key == "warmup_epochs" and not (isinstance(value, int) and 0 <= value <= epochs):
        raise InvalidConfig(key, f"must be whole numbers in [0, training.epochs={epochs}], got {value!r}")
    if key == "clip_norm" and value is not None and not (_isnumber(value) and value > 0):
        raise InvalidConfig(key, f"max gradient norms must be > 0 (or null: no clipping), got {value!r}")
    if key in ("lr_reference_batch", "ramp_from_batch_size") and value is not None and not (
        isinstance(value, int) and 1 <= value <= n_train
    ):
        raise InvalidConfig(key, f"must be whole numbers in [1, task.n_train={n_train}] (or null: off), got {value!r}")
    if key == "ramp_epochs" and not (isinstance(value, int) and 1 <= value <= epochs):
        raise InvalidConfig(key, f"must be whole numbers in [1, training.epochs={epochs}], got {value!r}")


def _isnumber(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_finder(raw: Mapping[str, Any], where: str) -> LrFrom:
    """`{from: lr_finder, factor: F}` or `{from: lr_fit, study: NAME, factor: F}`."""
    keys = {"lr_finder": {"from", "factor"}, "lr_fit": {"from", "study", "factor"}}
    if raw["from"] not in keys:
        raise InvalidConfig(f"{where}.from", f"unknown source {raw['from']!r}; use lr_finder or lr_fit")
    extra = sorted(set(raw) - keys[raw["from"]])
    if extra:
        raise InvalidConfig(f"{where}.{extra[0]}", f"unknown key; `from: {raw['from']}` takes "
                            f"{sorted(keys[raw['from']] - {'from'})}")
    factor = number(raw.get("factor", 10), f"{where}.factor")
    if factor <= 1:
        raise InvalidConfig(f"{where}.factor", f"must be > 1 (the range is [s/factor, s*factor]), got {factor:g}")
    if raw["from"] == "lr_finder":
        return FromFinder(factor)
    if not isinstance(raw.get("study"), str) or not raw["study"]:
        raise InvalidConfig(f"{where}.study", "required: the study whose best trials' lr(f) fit gives the range")
    return FromFit(factor, raw["study"])


def _parse_common(key: str, raw: Any, where: str, n_train: int, epochs: int, grow: str) -> Param:
    if key == "lr" and isinstance(raw, Mapping) and "from" in raw:
        return _parse_finder(raw, where)
    param = parse_param(where, raw, integer=key in _INT_KEYS)
    _check_values(where, param, lambda v: _check_common(key, v, n_train, epochs, grow))
    return param


def _parse_branches(kind: str, raw: Any, n_train: int, epochs: int, grow: str) -> dict[str, dict[str, Param]]:
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
                if kind == "schedule" and isinstance(value, Mapping) and "from" in value:
                    raise InvalidConfig(where, "the LR finder's range goes at the top of the space or under an "
                                        "optimizer (each optimizer has its own suggestion), not under a schedule")
                branch[key] = _parse_common(key, value, where, n_train, epochs, grow)
            else:
                branch[key] = parse_param(where, value, integer=key in INTEGERS)
                _check_values(where, branch[key], lambda v, k=key: check_hyperparameter(k, v, epochs))
        for key, default in table[name].defaults.items():  # defaults can clash with training.epochs
            if key not in branch:
                _check_values(f"{kind}.{name}.{key}", Fixed(default),
                              lambda v, k=key: check_hyperparameter(k, v, epochs), default=True)
        branches[name] = branch
    return branches


def _parse_model(raw: Any, model: ModelConfig) -> dict[str, Param]:
    """`model:` in a space: ranges of the model's settings (any keyword argument of a factory)."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidConfig("model", "must map the model's settings to values or ranges, "
                            "e.g. {dropout: {low: 0, high: 0.3}}")
    params = {}
    for key, value in raw.items():
        where = f"model.{key}"
        if key in ("name", "factory", "features"):
            raise InvalidConfig(where, "the model itself is chosen in training.model, not searched")
        integer = not model.factory and key in MODELS[model.name].integers
        params[key] = parse_param(where, value, integer=integer)
        if not model.factory:
            _check_values(where, params[key], lambda v, k=key: check_setting(model.name, k, v))
    return params


def parse_space(raw: Any, n_train: int, epochs: int, grow: str = "raise task.n_train",
                model: ModelConfig | None = None) -> Space:
    """Parse and validate a `space:` mapping; InvalidConfig keys are relative to it. `grow` says
    how to make the training set larger, for a batch size above it; `model` is training.model,
    whose settings a `model:` entry searches."""
    if not isinstance(raw, Mapping):
        raise InvalidConfig("space", "must be a mapping of parameter names to ranges")
    unknown = sorted(set(raw) - set(COMMON_KEYS) - set(BRANCHES) - {"model"})
    if unknown:
        raise InvalidConfig(unknown[0], f"unknown key; a space takes {', '.join([*BRANCHES, *COMMON_KEYS, 'model'])}")
    if "optimizer" not in raw:
        raise InvalidConfig("optimizer", "required: the optimizer(s) to search")
    common = {key: _parse_common(key, raw[key], key, n_train, epochs, grow) for key in COMMON_KEYS if key in raw}
    schedules = _parse_branches("schedule", raw["schedule"], n_train, epochs, grow) if "schedule" in raw else {}
    model_params = _parse_model(raw["model"], model or ModelConfig()) if "model" in raw else {}
    return Space(common=common, optimizers=_parse_branches("optimizer", raw["optimizer"], n_train, epochs, grow),
                 schedules=schedules, model=model_params)
