"""Load a study YAML into typed, validated configuration, once, at the boundary.

Unknown keys are errors, never ignored; every error names the file and the key path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from objectives.errors import InvalidConfig
from objectives.task.config import Band, BaselineSettings, TaskConfig
from objectives.train.config import Target, TrainConfig, target_from_dict
from objectives.train.lr_rules import RangeTestSettings
from objectives.train.models import ModelConfig, model_from_dict
from search import strategies
from search.errors import BandsearchError
from search.objective import Objective, parse_objective
from search.space import Space, parse_space
from search.task_section import grow_advice, parse_task
from search.transfer import parse_transfer
from search.yaml_fields import build_dataclass, checked

TOP_LEVEL_KEYS = ("search", "task", "training", "bands", "space", "lr_finder", "baselines", "objective")


@dataclass(frozen=True)
class SearchSettings:
    trials_per_band: int = 16  # an exact budget per band, across all workers
    workers: int = 2  # trials in flight at once (all bands together)
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "hyperband"})  # why: spaces/audio_angle.yaml
    max_retries: int = 2  # re-runs of a trial lost to a crashed worker
    seed: int = 0  # sampler seed; band i uses seed + i
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: a share of the GPUs when the cluster has any
    transfer: Any = None  # {from: neighbours | {study: NAME}, top_k, lr_scaling}: search/transfer.py; None: cold start
    objectives: Any = None  # [{metric, direction}, ...]: search/objective.py; None: objective.metric

    def validate(self) -> None:
        for key in ("trials_per_band", "workers"):
            if getattr(self, key) < 1:
                raise InvalidConfig(key, f"must be >= 1, got {getattr(self, key)}")
        if self.max_retries < 0:
            raise InvalidConfig("max_retries", f"must be >= 0, got {self.max_retries}")
        if self.cpus_per_trial <= 0:
            raise InvalidConfig("cpus_per_trial", f"must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise InvalidConfig("gpus_per_trial", f"must be >= 0, got {self.gpus_per_trial}")
        strategies.validate(self.sampler, self.pruner)


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int = 10
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    # {fraction_of_best: f}: f times the best re-run accuracy of the band (resolved by the report);
    # {accuracy: a}: absolute, and each trial also logs the first epoch reaching it.
    target: Target = field(default_factory=Target)
    dynamics_every: int = 4  # vector dynamics on one step in this many (1: every step, exact)


@dataclass(frozen=True)
class BandPlan:
    band: Band
    space: Space
    space_raw: dict[str, Any]

    def train_config(self, training: TrainingSettings, sampled: Mapping[str, Any]) -> TrainConfig:
        """The trial's config: `training` with the sampled values (the model's settings merged in)."""
        sampled = dict(sampled)
        model = training.model.with_settings(sampled.pop("model_settings", {}))
        return TrainConfig(epochs=training.epochs, seed=training.seed, model=model,
                           target=training.target, dynamics_every=training.dynamics_every,
                           **sampled)


@dataclass(frozen=True)
class StudyConfig:
    source: Path
    search: SearchSettings
    task: TaskConfig
    training: TrainingSettings
    bands: tuple[BandPlan, ...]
    lr_finder: RangeTestSettings = field(default_factory=RangeTestSettings)
    baselines: BaselineSettings = field(default_factory=BaselineSettings)
    objective: Objective = field(default_factory=Objective)  # search/objective.py

    def band(self, name: str) -> BandPlan:
        for plan in self.bands:
            if plan.band.name == name:
                return plan
        raise BandsearchError(
            f"{self.source}: no band {name!r}; bands are {[p.band.name for p in self.bands]}"
        )

    def user_modules(self) -> list[str]:
        """The user's modules (model factory, objective function) Ray copies to every node."""
        return list(dict.fromkeys(self.training.model.py_modules() + self.objective.py_modules()))


def _parse_training(raw: Any, code_dir: Path) -> TrainingSettings:
    """The training section; `target` (one of two forms) and `model` (a built-in's settings or
    the user's factory, found in `code_dir`) are parsed on their own, not merged with defaults."""
    raw = dict(raw) if isinstance(raw, Mapping) else raw
    if isinstance(raw, dict) and "target_accuracy" in raw:
        raise InvalidConfig("training.target_accuracy", f"replaced by training.target: write "
                            f"{{accuracy: {raw['target_accuracy']}}} (absolute) or {{fraction_of_best: 0.9}} "
                            "(of the best re-run accuracy per band, the default)")
    own = {key: raw.pop(key) for key in ("target", "model") if key in raw} if isinstance(raw, dict) else {}
    training = build_dataclass(TrainingSettings, raw, "training")
    if "target" in own:
        target = checked("training", lambda: target_from_dict(own["target"]))
        training = dataclasses.replace(training, target=target)
    model = checked("training.model", lambda: model_from_dict(own.get("model")))
    if model.factory:
        model = dataclasses.replace(model, code_dir=str(code_dir.resolve()))
    return dataclasses.replace(training, model=model)


def _parse_bands(raw: Any, task: TaskConfig, training: TrainingSettings, space: Any) -> tuple[BandPlan, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidConfig("bands", "must be a non-empty list of bands, e.g. [{center_hz: 500}]")
    plans, seen = [], set()
    for i, entry in enumerate(raw):
        key = f"bands[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidConfig(key, "must be a mapping with center_hz (and optional name, width_hz, space)")
        unknown = sorted(set(entry) - {"name", "center_hz", "width_hz", "space"})
        if unknown:
            raise InvalidConfig(f"{key}.{unknown[0]}", "unknown key; a band takes name, center_hz, width_hz, space")
        if "center_hz" not in entry:
            raise InvalidConfig(f"{key}.center_hz", "required: the band's centre frequency in Hz")
        center = entry["center_hz"]
        if isinstance(center, bool) or not isinstance(center, (int, float)):
            raise InvalidConfig(f"{key}.center_hz", f"must be a number, got {center!r}")
        # Default width: 30 % of the centre, a third of an octave or so.
        band = Band(
            name=str(entry.get("name", f"{center:g}")),
            center_hz=float(center),
            width_hz=float(entry.get("width_hz", 0.3 * center)),
        )
        checked(key, lambda band=band: band.validate(task.sample_rate, task.array))
        if band.name in seen:
            raise InvalidConfig(f"{key}.name", f"duplicate band name {band.name!r}")
        seen.add(band.name)
        overrides = entry.get("space") or {}
        if not isinstance(overrides, Mapping):
            raise InvalidConfig(f"{key}.space", "must be a mapping of space entries to override")
        merged = {**space, **overrides}
        where = f"{key}.space" if overrides else "space"
        try:
            parsed = parse_space(merged, task.n_train, training.epochs, grow_advice(task), training.model)
        except InvalidConfig as err:
            raise InvalidConfig(f"{where}.{err.key}", err.message) from None
        plans.append(BandPlan(band=band, space=parsed, space_raw=merged))
    return tuple(plans)


def _unpruned(search: SearchSettings, pruner_given: bool) -> SearchSettings:
    """A multi-objective study runs without a pruner: Optuna cannot prune one (Trial.report and
    should_prune are single-objective), so a pruner the YAML asks for is refused, not ignored."""
    if pruner_given and search.pruner["name"] != "none":
        raise InvalidConfig("search.pruner", f"{search.pruner['name']}: Optuna cannot prune a multi-objective "
                            "study (search.objectives lists more than one); remove search.pruner or set it to none")
    return dataclasses.replace(search, pruner={"name": "none"})


def parse_config(data: Any, source: Path) -> StudyConfig:
    """Validate already-loaded YAML data; errors name `source` and the key path."""
    try:
        if not isinstance(data, Mapping):
            raise InvalidConfig("(top level)", "must be a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
        unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
        if unknown:
            raise InvalidConfig(unknown[0], f"unknown top-level key; use {', '.join(TOP_LEVEL_KEYS)}")
        search = build_dataclass(SearchSettings, data.get("search"), "search")
        checked("search", search.validate)
        search = dataclasses.replace(
            search, sampler=strategies.normalize(search.sampler), pruner=strategies.normalize(search.pruner),
            transfer=checked("search", lambda: parse_transfer(search.transfer)),
        )
        task = parse_task(data.get("task"), Path(source).parent)
        training = _parse_training(data.get("training"), Path(source).parent)
        if training.epochs < 1:
            raise InvalidConfig("training.epochs", f"must be >= 1, got {training.epochs}")
        if training.dynamics_every < 1:
            raise InvalidConfig("training.dynamics_every", f"must be >= 1 (1 measures every step), "
                                f"got {training.dynamics_every}")
        checked("training.model", training.model.validate)
        if "space" not in data:
            raise InvalidConfig("space", "required: the search space (see spaces/audio_angle.yaml)")
        if not isinstance(data["space"], Mapping):
            raise InvalidConfig("space", "must be a mapping of parameter names to ranges")
        bands = _parse_bands(data.get("bands"), task, training, data["space"])
        lr_finder = build_dataclass(RangeTestSettings, data.get("lr_finder"), "lr_finder")
        checked("lr_finder", lr_finder.validate)
        if lr_finder.batch_size > task.n_train:
            raise InvalidConfig("lr_finder.batch_size", f"{lr_finder.batch_size} is larger than the training set "
                                f"({task.n_train} clips); lower it or {grow_advice(task)}")
        baselines = build_dataclass(BaselineSettings, data.get("baselines"), "baselines")
        checked("baselines", baselines.validate)
        objective = parse_objective(data.get("objective"), Path(source).parent, [p.space_raw for p in bands],
                                    search.objectives)
        if objective.multi:
            search = _unpruned(search, "pruner" in (data.get("search") or {}))
    except InvalidConfig as err:
        raise BandsearchError(f"{source}: {err.key}: {err.message}") from None
    return StudyConfig(source=Path(source), search=search, task=task, training=training, bands=bands,
                       lr_finder=lr_finder, baselines=baselines, objective=objective)


def read_yaml(path: Path, what: str) -> Any:
    """The data of a YAML file; errors name the file (and the line and column of a syntax error)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise BandsearchError(f"{path}: cannot read the {what} ({err.strerror}); check the path") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise BandsearchError(f"{where}: not valid YAML: {getattr(err, 'problem', None) or err}") from None


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study YAML file."""
    path = Path(path)
    return parse_config(read_yaml(path, "study file"), path)
