"""LR range tests per band and optimizer, run as parallel Ray tasks, kept in the Optuna
storage and recorded in MLflow.

Results are keyed by everything that determines them (the band's data, the model, the
optimizer, the test's settings), so any study over the same band and model reuses them.
Each test is an MLflow run nested under the study's `lr finder` run, with its curve as CSV,
a PNG of loss against learning rate, and the suggestion as a metric.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from objectives.plain import to_dict
from objectives.train.lr_rules import SUGGESTIONS, RangeTestSettings
from objectives.train.models import ModelConfig
from search import cluster, figures
from search.config import StudyConfig
from search.settings import Settings
from search.storage import open_storage
from search.studies import FINDER_PREFIX, FINDER_STUDY
from search.tracking import Tracker

if TYPE_CHECKING:
    from objectives.task.dataset import BandDataset


def data_key(task: dict[str, Any], band: dict[str, Any], model: dict[str, Any]) -> str:
    """What a band's range test depends on besides the optimizer and the test settings."""
    spec = {"task": task, "band": {k: band[k] for k in ("center_hz", "width_hz")}, "model": model}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def result_key(data: str, optimizer: str, settings: RangeTestSettings) -> str:
    spec = {"data": data, "optimizer": optimizer, "settings": to_dict(settings)}
    return FINDER_PREFIX + hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FinderTask:
    band: str
    optimizer: str
    data_key: str


def _range_test(data: BandDataset, optimizer: str, model: ModelConfig, settings: RangeTestSettings) -> dict:
    from objectives.train.lr_finder import band_range_test  # torch: loaded in the Ray task that runs it

    result = band_range_test(data, model, optimizer, {}, settings)
    return {"lrs": result.lrs, "losses": result.losses, "smoothed": result.smoothed,
            "stop_reason": result.stop_reason, "diverged_lr": result.diverged_lr,
            "suggestions": {rule: result.suggestion(rule) for rule in SUGGESTIONS}}


class LrFinder:
    """Run, store and look up range tests for the bands and optimizers of one study."""

    def __init__(self, config: StudyConfig, study_name: str, settings: Settings):
        self.config = config
        self.study_name = study_name
        self.settings = settings
        self.store = optuna.create_study(study_name=FINDER_STUDY, storage=open_storage(settings.storage_url),
                                         load_if_exists=True)
        self.data_keys = {
            plan.band.name: data_key(to_dict(config.task), to_dict(plan.band), to_dict(config.training.model))
            for plan in config.bands
        }

    def tasks(self, optimizers: dict[str, list[str]] | None = None) -> list[FinderTask]:
        """One test per band and optimizer of its space (or the given optimizers per band)."""
        return [FinderTask(plan.band.name, name, self.data_keys[plan.band.name])
                for plan in self.config.bands
                for name in (optimizers or {}).get(plan.band.name, list(plan.space.optimizers))]

    def lookup(self, task: FinderTask) -> dict[str, Any] | None:
        return self.store.user_attrs.get(result_key(task.data_key, task.optimizer, self.config.lr_finder))

    def run(self, tasks: list[FinderTask], data: dict[str, Any], rerun: bool = False) -> dict[FinderTask, dict]:
        """Run the tests not stored yet (all with `rerun`); `data` maps band -> dataset ref."""
        todo = [task for task in tasks if rerun or self.lookup(task) is None]
        settings = self.config.lr_finder
        if todo:
            calls = [(data[t.band], (t.optimizer, self.config.training.model, settings)) for t in todo]
            for task, raw in zip(todo, cluster.map_on_bands(_range_test, calls)):
                self._record(task, raw)
        return {task: self.lookup(task) for task in tasks}

    def _record(self, task: FinderTask, raw: dict[str, Any]) -> None:
        settings = self.config.lr_finder
        suggestion = raw["suggestions"][settings.rule]
        tracker = Tracker(self.settings.tracking_uri)
        experiment, parent = tracker.role_run(self.study_name, self.settings.artifact_root, "lr-finder", "lr finder")
        run_id = tracker.start_run(
            experiment, f"lr-find {task.band} Hz {task.optimizer}", parent_id=parent,
            tags={"bandsearch.role": "lr-find", "bandsearch.study": self.study_name,
                  "bandsearch.band": task.band, "bandsearch.stop_reason": raw["stop_reason"]},
            params={"band": task.band, "optimizer": task.optimizer, **to_dict(settings)},
        )
        metrics = {f"suggested_lr.{rule}": value for rule, value in raw["suggestions"].items() if value}
        if suggestion:
            metrics["suggested_lr"] = suggestion
        if raw["diverged_lr"]:
            metrics["diverged_lr"] = raw["diverged_lr"]
        tracker.log(run_id, metrics=metrics)
        tracker.log_epochs(run_id, [(i, {"range_test_loss": s}) for i, s in enumerate(raw["smoothed"])])
        with tempfile.TemporaryDirectory() as folder:
            curve = Path(folder) / "lr_range_test.csv"
            curve.write_text(_curve_csv(raw))
            tracker.log_file(run_id, curve)
            png = figures.lr_curve(raw["lrs"], raw["losses"], raw["smoothed"], suggestion,
                                   f"{task.optimizer}, band {task.band} Hz ({settings.rule})",
                                   Path(folder) / "lr_range_test.png")
            tracker.log_file(run_id, png)
        tracker.finish(run_id, "FINISHED")
        tracker.finish(parent, "FINISHED")
        self.store.set_user_attr(result_key(task.data_key, task.optimizer, settings), {
            "band": task.band, "optimizer": task.optimizer, "data_key": task.data_key,
            "suggestion": suggestion, "rule": settings.rule, "suggestions": raw["suggestions"],
            "stop_reason": raw["stop_reason"], "diverged_lr": raw["diverged_lr"], "points": len(raw["lrs"]),
            "mlflow_run_id": run_id, "study": self.study_name,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })


def _curve_csv(raw: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["step", "lr", "loss", "smoothed_loss"])
    for i, (lr, loss, smooth) in enumerate(zip(raw["lrs"], raw["losses"], raw["smoothed"])):
        writer.writerow([i, f"{lr:.6e}", f"{loss:.6f}", f"{smooth:.6f}"])
    return out.getvalue()


def stored_results(storage_url: str) -> list[dict[str, Any]]:
    """Every stored range-test result (for tables of studies that did not run the finder)."""
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=FINDER_STUDY, storage=storage)
    except KeyError:
        return []
    return [value for key, value in study.user_attrs.items() if key.startswith(FINDER_PREFIX)]
