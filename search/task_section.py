"""The `task` section of a study YAML: the sources (a folder brings its array, sample rate and
clip counts) and how to make a training set larger."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from objectives.errors import InvalidConfig
from objectives.task.config import TaskConfig
from objectives.task.sources import SOURCES
from search.yaml_fields import build_dataclass, checked

# Keys a folder source brings itself (array.json and labels.csv): never also set in the YAML.
FOLDER_KEYS = ("array", "sample_rate", "n_train", "n_val")


def parse_sources(raw: Any, base: Path) -> tuple[Any, ...]:
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


def parse_task(raw: Any, base: Path) -> TaskConfig:
    """The task section; a folder source brings its array, sample rate and clip counts."""
    raw = dict(raw) if isinstance(raw, Mapping) else raw
    sources = parse_sources(raw.pop("sources"), base) if isinstance(raw, dict) and "sources" in raw else None
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
    checked("task", task.validate)
    return task


def grow_advice(task: TaskConfig) -> str:
    """How to make the training set larger: a folder source's clips are its training set, which
    task.n_train cannot change (it is refused next to a folder)."""
    folders = [source.path for source in task.sources if source.kind == "folder"]
    return f"add recordings to the folder {folders[0]}" if folders else "raise task.n_train"
