"""The best configuration per band, as YAML that `bandsearch train` and users' code can use.

    from search.export import load_best_config
    best = load_best_config("best.yaml", band="1000")
    data = objectives.task.dataset.load_or_generate(best.task, best.band, None, best.train.model.feature_kind)
    result = objectives.train.loop.train(best.train, data)

A multi-objective study's bands also list their Pareto front (`pareto:`, best first on the first
objective); `load_best_config(path, band, pareto=K)` reads its entry K.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial

from objectives.task.config import Band, TaskConfig, task_from_dict
from objectives.train.config import TrainConfig, train_from_dict
from search.config import read_yaml
from search.errors import BandsearchError
from search.studies import (
    best_trial,
    multi_objective,
    objective_metrics,
    open_band_studies,
    pareto_front,
    run_id_of,
    snapshot,
    train_config,
)
from search.uris import mask


@dataclass(frozen=True)
class BestConfig:
    """One band's exported best: everything needed to rebuild its data and retrain it."""

    band: Band
    task: TaskConfig
    train: TrainConfig
    result: dict[str, float]  # what the study measured: its objectives' metrics
    trial_number: int
    mlflow_run_id: str


def best_configs(storage_url: str, study_name: str) -> dict[str, Any]:
    """The export document for `study_name`: per band, its task, best train config and result (the
    best trial's values under their metrics' names); the objective too when it is not the built-in
    loop's, and a multi-objective band's Pareto front."""
    bands: dict[str, Any] = {}
    for band_name, study in open_band_studies(storage_url, study_name).items():
        attrs = snapshot(study)
        best = best_trial(study)
        if best is None:
            continue  # no completed trial in this band yet
        bands[band_name] = {
            "band": attrs["band"],
            "task": attrs["task"],
            "train": train_config(best),
            "result": _result(study, best),
            **({"objective": attrs["objective"]} if "objective" in attrs else {}),
        }
        if multi_objective(study):
            bands[band_name]["pareto"] = [{"train": train_config(t), "result": _result(study, t)}
                                          for t in pareto_front(study)]
    if not bands:
        raise BandsearchError(f"study {study_name!r} has no completed trial yet; run `bandsearch launch` first")
    return {
        "study": study_name,
        "exported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "storage": mask(storage_url),
        "bands": bands,
    }


def _result(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """A trial's values under their metrics' names, its number and its MLflow run."""
    return {**dict(zip(objective_metrics(study), trial.values, strict=True)), "trial_number": trial.number,
            "mlflow_run_id": run_id_of(study, trial)}


def write_export(document: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def load_best_config(path: str | Path, band: str, pareto: int | None = None) -> BestConfig:
    """Read one band's best configuration (or entry `pareto` of its Pareto front) from a file
    written by `bandsearch export`."""
    path = Path(path)
    document = read_yaml(path, "export file")
    bands = (document or {}).get("bands") if isinstance(document, dict) else None
    if not isinstance(bands, dict):
        raise BandsearchError(f"{path}: no `bands` mapping; is this a file from `bandsearch export`?")
    if band not in bands:
        raise BandsearchError(f"{path}: bands.{band}: no such band; the file has {sorted(bands)}")
    entry = bands[band]
    function = (entry.get("objective") or {}).get("function") if isinstance(entry, dict) else None
    if function:
        raise BandsearchError(f"{path}: bands.{band}: found by your own objective.function ({function}), which "
                              "`bandsearch train` cannot run: call it with this band's `train` config")
    chosen = entry if pareto is None else _front_entry(path, band, entry, pareto)
    try:
        result = dict(chosen["result"])
        return BestConfig(
            band=Band(**entry["band"]),
            task=task_from_dict(entry["task"]),
            train=train_from_dict(chosen["train"]),
            result={key: float(value) for key, value in result.items() if key not in ("trial_number", "mlflow_run_id")},
            trial_number=int(result["trial_number"]),
            mlflow_run_id=str(result.get("mlflow_run_id", "")),
        )
    except (KeyError, TypeError) as err:
        raise BandsearchError(f"{path}: bands.{band}: missing or malformed entry ({err})") from None


def _front_entry(path: Path, band: str, entry: dict[str, Any], index: int) -> dict[str, Any]:
    front = entry.get("pareto")
    if not isinstance(front, list):
        raise BandsearchError(f"{path}: bands.{band}: no Pareto front (`pareto:`); only a multi-objective "
                              "study (search.objectives) has one: leave out --pareto")
    if not 0 <= index < len(front):
        raise BandsearchError(f"{path}: bands.{band}.pareto: no entry {index}; the front has {len(front)} "
                              f"(0 to {len(front) - 1})")
    return front[index]
