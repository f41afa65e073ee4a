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
from objectives.task.sources import SOURCES
from objectives.train.config import ModelConfig, Target, TrainConfig, target_from_dict
from objectives.train.lr_rules import RangeTestSettings
from search import strategies
from search.errors import BandsearchError
from search.objective import Objective, parse_objective
from search.space import Space, parse_space

TOP_LEVEL_KEYS = ("search", "task", "training", "bands", "space", "lr_finder", "baselines", "objective")
# Keys a folder source brings itself (array.json and labels.csv): never also set in the YAML.
FOLDER_KEYS = ("array", "sample_rate", "n_train", "n_val")


@dataclass(frozen=True)
class SearchSettings:
    trials_per_band: int = 16  # an exact budget per band, across all workers
    workers: int = 2  # trials in flight at once (all bands together)
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    max_retries: int = 2  # re-runs of a trial lost to a crashed worker
    seed: int = 0  # sampler seed; band i uses seed + i
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: a share of the GPUs when the cluster has any

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
        return TrainConfig(epochs=training.epochs, seed=training.seed, model=training.model,
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


def build_dataclass(cls: type, data: Any, key: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, recursing into dataclass fields."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(key, f"must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidConfig(f"{key}.{unknown[0]}", f"unknown key; {key} takes {sorted(fields)}")
    values = {}
    for name, value in data.items():
        default = (fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING
                   else fields[name].default)
        if dataclasses.is_dataclass(default):
            value = build_dataclass(type(default), value, f"{key}.{name}")
        elif isinstance(default, tuple):
            if not isinstance(value, list) or len(value) != len(default):
                raise InvalidConfig(f"{key}.{name}", f"must be a list of {len(default)} values, got {value!r}")
            value = tuple(value)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidConfig(f"{key}.{name}", f"must be a number, got {value!r}")
            if isinstance(default, int) and fields[name].type in ("int", int) and not float(value).is_integer():
                raise InvalidConfig(f"{key}.{name}", f"must be a whole number, got {value!r}")
        values[name] = value
    return cls(**values)


def _checked(key: str, validate: Any) -> None:
    try:
        validate()
    except InvalidConfig as err:
        raise InvalidConfig(f"{key}.{err.key}", err.message) from None


def _parse_sources(raw: Any, base: Path) -> tuple[Any, ...]:
    """`task.sources`: a list of `{kind: ..., ...}`; folder paths are relative to the YAML's folder."""
    if not isinstance(raw, list) or not raw:
        raise InvalidConfig("task.sources", "must be a non-empty list, e.g. [{kind: free_field}]")
    sources = []
    for i, entry in enumerate(raw):
        key = f"task.sources[{i}]"
        if not isinstance(entry, Mapping) or entry.get("kind") not in SOURCES:
            kind = entry.get("kind") if isinstance(entry, Mapping) else entry
            raise InvalidConfig(f"{key}.kind", f"unknown source {kind!r}; use one of {list(SOURCES)}")
        source = build_dataclass(SOURCES[entry["kind"]], {k: v for k, v in entry.items() if k != "kind"}, key)
        if source.kind == "folder":
            if not isinstance(source.path, str) or not source.path:
                raise InvalidConfig(f"{key}.path", "required: the folder holding array.json and labels.csv")
            source = dataclasses.replace(source, path=str((base / source.path).resolve()))
        sources.append(source)
    return tuple(sources)


def _parse_task(raw: Any, base: Path) -> TaskConfig:
    """The task section; a folder source brings its array, sample rate and clip counts."""
    raw = dict(raw) if isinstance(raw, Mapping) else raw
    sources = _parse_sources(raw.pop("sources"), base) if isinstance(raw, dict) and "sources" in raw else None
    task = build_dataclass(TaskConfig, raw, "task")
    if sources is not None:
        task = dataclasses.replace(task, sources=sources)
    for i, source in enumerate(task.sources):
        if source.kind != "folder":
            continue
        # soundfile and torch: loaded only for a folder source, so that other study files load in well under 1 s.
        from objectives.task.sources.recordings import RecordingsError, index_folder, task_for_folder

        try:
            index = index_folder(Path(source.path), task.clip_samples, task.seed, source.val_fraction)
        except RecordingsError as err:
            raise InvalidConfig(f"task.sources[{i}].path", str(err)) from None
        given = [key for key in FOLDER_KEYS if key in raw]
        if given:
            raise InvalidConfig(f"task.{given[0]}", f"comes from the folder {source.path} (array.json, labels.csv) "
                                "for a folder source; remove it from the YAML")
        task = task_for_folder(task, index)
    _checked("task", task.validate)
    return task


def _parse_training(raw: Any) -> TrainingSettings:
    """The training section; `target` is one of two forms, parsed on its own (not merged with the default)."""
    raw = dict(raw) if isinstance(raw, Mapping) else raw
    if isinstance(raw, dict) and "target_accuracy" in raw:
        raise InvalidConfig("training.target_accuracy", f"replaced by training.target: write "
                            f"{{accuracy: {raw['target_accuracy']}}} (absolute) or {{fraction_of_best: 0.9}} "
                            "(of the best re-run accuracy per band, the default)")
    if not (isinstance(raw, dict) and "target" in raw):
        return build_dataclass(TrainingSettings, raw, "training")
    try:
        target = target_from_dict(raw.pop("target"))
    except InvalidConfig as err:
        raise InvalidConfig(f"training.{err.key}", err.message) from None
    return dataclasses.replace(build_dataclass(TrainingSettings, raw, "training"), target=target)


def _grow_advice(task: TaskConfig) -> str:
    """How to make the training set larger: a folder source's clips are its training set, which
    task.n_train cannot change (it is refused next to a folder)."""
    folders = [source.path for source in task.sources if source.kind == "folder"]
    return f"add recordings to the folder {folders[0]}" if folders else "raise task.n_train"


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
        _checked(key, lambda band=band: band.validate(task.sample_rate, task.array))
        if band.name in seen:
            raise InvalidConfig(f"{key}.name", f"duplicate band name {band.name!r}")
        seen.add(band.name)
        overrides = entry.get("space") or {}
        if not isinstance(overrides, Mapping):
            raise InvalidConfig(f"{key}.space", "must be a mapping of space entries to override")
        merged = {**space, **overrides}
        where = f"{key}.space" if overrides else "space"
        try:
            parsed = parse_space(merged, task.n_train, training.epochs, _grow_advice(task))
        except InvalidConfig as err:
            raise InvalidConfig(f"{where}.{err.key}", err.message) from None
        plans.append(BandPlan(band=band, space=parsed, space_raw=merged))
    return tuple(plans)


def parse_config(data: Any, source: Path) -> StudyConfig:
    """Validate already-loaded YAML data; errors name `source` and the key path."""
    try:
        if not isinstance(data, Mapping):
            raise InvalidConfig("(top level)", "must be a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
        unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
        if unknown:
            raise InvalidConfig(unknown[0], f"unknown top-level key; use {', '.join(TOP_LEVEL_KEYS)}")
        search = build_dataclass(SearchSettings, data.get("search"), "search")
        _checked("search", search.validate)
        search = dataclasses.replace(
            search, sampler=strategies.normalize(search.sampler), pruner=strategies.normalize(search.pruner)
        )
        task = _parse_task(data.get("task"), Path(source).parent)
        training = _parse_training(data.get("training"))
        if training.epochs < 1:
            raise InvalidConfig("training.epochs", f"must be >= 1, got {training.epochs}")
        if training.dynamics_every < 1:
            raise InvalidConfig("training.dynamics_every", f"must be >= 1 (1 measures every step), "
                                f"got {training.dynamics_every}")
        _checked("training.model", training.model.validate)
        if "space" not in data:
            raise InvalidConfig("space", "required: the search space (see spaces/audio_angle.yaml)")
        if not isinstance(data["space"], Mapping):
            raise InvalidConfig("space", "must be a mapping of parameter names to ranges")
        bands = _parse_bands(data.get("bands"), task, training, data["space"])
        lr_finder = build_dataclass(RangeTestSettings, data.get("lr_finder"), "lr_finder")
        _checked("lr_finder", lr_finder.validate)
        if lr_finder.batch_size > task.n_train:
            raise InvalidConfig("lr_finder.batch_size", f"{lr_finder.batch_size} is larger than the training set "
                                f"({task.n_train} clips); lower it or {_grow_advice(task)}")
        baselines = build_dataclass(BaselineSettings, data.get("baselines"), "baselines")
        _checked("baselines", baselines.validate)
        objective = parse_objective(data.get("objective"), Path(source).parent, [p.space_raw for p in bands])
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
