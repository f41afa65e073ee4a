"""The best configuration per band, as YAML that `bandsearch train` and users' code can use.

    from search.export import load_best_config
    best = load_best_config("best.yaml", band="1000")
    data = objectives.task.dataset.load_or_generate(best.task, best.band, None, best.train.model.feature_kind)
    result = objectives.train.loop.train(best.train, data)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from objectives.task.config import Band, TaskConfig, task_from_dict
from objectives.train.config import TrainConfig, train_from_dict
from search.config import read_yaml
from search.errors import BandsearchError
from search.studies import best_trial, metric_of, open_band_studies, run_id_of, snapshot, train_config
from search.uris import mask


@dataclass(frozen=True)
class BestConfig:
    """One band's exported best: everything needed to rebuild its data and retrain it."""

    band: Band
    task: TaskConfig
    train: TrainConfig
    val_accuracy: float
    trial_number: int
    mlflow_run_id: str


def best_configs(storage_url: str, study_name: str) -> dict[str, Any]:
    """The export document for `study_name`: per band, its task, best train config and result (the
    best trial's value under its metric's name); the objective too when it is not the built-in loop's."""
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
            "result": {
                metric_of(study): best.value,
                "trial_number": best.number,
                "mlflow_run_id": run_id_of(study, best),
            },
            **({"objective": attrs["objective"]} if "objective" in attrs else {}),
        }
    if not bands:
        raise BandsearchError(f"study {study_name!r} has no completed trial yet; run `bandsearch launch` first")
    return {
        "study": study_name,
        "exported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "storage": mask(storage_url),
        "bands": bands,
    }


def write_export(document: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def load_best_config(path: str | Path, band: str) -> BestConfig:
    """Read one band's best configuration from a file written by `bandsearch export`."""
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
    try:
        return BestConfig(
            band=Band(**entry["band"]),
            task=task_from_dict(entry["task"]),
            train=train_from_dict(entry["train"]),
            val_accuracy=float(entry["result"]["val_accuracy"]),
            trial_number=int(entry["result"]["trial_number"]),
            mlflow_run_id=str(entry["result"].get("mlflow_run_id", "")),
        )
    except (KeyError, TypeError) as err:
        raise BandsearchError(f"{path}: bands.{band}: missing or malformed entry ({err})") from None
