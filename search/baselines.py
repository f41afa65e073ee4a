"""Classical baselines per band beside the tuned network: started on Ray once every trial is,
stored on the band's Optuna study (so a resumed launch does not redo them) and logged to
the band's MLflow parent run as `baseline.<method>.accuracy` / `.angle_error_deg`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from rich.table import Table

from objectives.task.config import METHODS, Band, BaselineSettings, TaskConfig
from search import cluster
from search.studies import BASELINES, NET_ERROR, best_trial, metric_of, open_band_studies, score

log = logging.getLogger(__name__)

NAMES = {"music": "MUSIC", "srp_phat": "SRP-PHAT"}


def start(task: TaskConfig, band: Band, settings: BaselineSettings, cache_dir: Path | None) -> Any:
    """A Ray reference to the band's baseline metrics (computed on the band's test clips)."""
    return cluster.start(_score, task, band, settings, cache_dir)


def _score(task: TaskConfig, band: Band, settings: BaselineSettings, cache_dir: Path | None) -> dict[str, float]:
    from objectives.task.baselines import score  # torch: loaded in the Ray task that scores

    return score(task, band, settings, cache_dir)


def record(study: optuna.Study, tracker: Any, parent_run_id: str, ref: Any) -> None:
    """Store finished baseline metrics on the study and the band's parent run."""
    metrics, error, _ = cluster.result(ref)
    if metrics is None:
        log.warning("baselines of %s failed: %s", study.study_name, (error or "").splitlines()[-1:])
        tracker.log(parent_run_id, tags={"baseline.error": (error or "")[-4000:]})
        return
    study.set_user_attr(BASELINES, metrics)
    tracker.log(parent_run_id, metrics=metrics)


def cells(best_value: float | None, net_error: float | None, metrics: dict[str, float] | None,
          methods: list[str]) -> list[str]:
    """'acc / err°' for the network and each method: one row of the comparison."""
    def pair(accuracy: float | None, error: float | None) -> str:
        if accuracy is None:
            return "-"
        return f"{accuracy:.3f} / {error:.1f}°" if error is not None else f"{accuracy:.3f}"

    metrics = metrics or {}
    return [pair(best_value, net_error)] + [
        pair(metrics.get(f"baseline.{m}.accuracy"), metrics.get(f"baseline.{m}.angle_error_deg")) for m in methods
    ]


def columns(methods: list[str], metric: str = "val_accuracy") -> list[str]:
    """Headers of `cells`; the network's value is `metric` (accuracy for the built-in loop)."""
    network = "network acc / err" if metric == "val_accuracy" else f"network {metric}"
    return [network] + [f"{NAMES[m]} acc / err" for m in methods]


def table(storage_url: str, study_name: str) -> Table:
    """`bandsearch baselines STUDY`: per band, the best trial beside MUSIC and SRP-PHAT."""
    out = Table(title=f"study {study_name}: tuned network vs classical baselines on the same test clips")
    methods = list(METHODS)
    studies = open_band_studies(storage_url, study_name)
    for column in ["band", *columns(methods, metric_of(next(iter(studies.values())))), "test clips"]:
        out.add_column(column)
    for band_name, study in studies.items():
        best = best_trial(study)
        metrics = study.user_attrs.get(BASELINES)
        out.add_row(f"{band_name} Hz",
                    *cells(score(best) if best else None, best.user_attrs.get(NET_ERROR) if best else None,
                           metrics, methods),
                    str(int(metrics["baseline.test_clips"])) if metrics else "-")
    return out
