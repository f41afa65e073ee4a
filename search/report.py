"""The optimizer analysis of a finished study, per band.

The best configuration of each optimizer in each band is trained again with K seeds (in
parallel on Ray); the report compares the optimizers on what the dynamics measure
(gradient norms, consecutive-gradient cosines, path efficiency, memory, step time),
accuracy and epochs to the target, with mean ± 95 % intervals over the seeds. A claim
("better") is printed only where the intervals separate, "faster" to the target only where the
log-rank test decides (search/targets.py), and the seed analysis's claims are judged by
search/findings.py. Markdown with PNG
figures, written to a folder and logged to the study's `report` MLflow run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from objectives.task.config import Band, task_from_dict
from objectives.task.dataset import BandDataset
from objectives.train.config import train_from_dict
from objectives.train.loop import train
from objectives.train.optim import OPTIMIZERS
from search import cluster, figures, findings, targets
from search.errors import BandsearchError
from search.lr_tables import finder_table, study_table
from search.settings import Settings
from search.stats import fmt, mean_ci, separated
from search.studies import (
    best_per_optimizer,
    multi_objective,
    objective_metrics,
    open_band_studies,
    score,
    snapshot,
    study_model,
    train_config,
)
from search.tracking import Tracker

SEED_OFFSET = 1000  # re-run seeds differ from the study's own training seed


@dataclass
class Rerun:
    """One optimizer's best configuration in one band, trained again with several seeds."""

    band: str
    optimizer: str
    config: dict[str, Any]
    study_value: float
    histories: list[list[dict[str, float]]] = field(default_factory=list)
    summaries: list[dict[str, float]] = field(default_factory=list)

    def final(self, key: str) -> list[float]:
        return [history[-1][key] for history in self.histories]

    def summary(self, key: str) -> list[float]:
        return [s[key] for s in self.summaries if key in s]

    def series(self, key: str) -> list[list[float]]:
        return [[epoch[key] for epoch in history] for history in self.histories]


def _train_seed(data: BandDataset, config: dict[str, Any], seed: int) -> tuple[list[dict], dict]:
    result = train(dataclasses.replace(train_from_dict(config), seed=seed), data, device=None)
    return result.history, result.dynamics


def rerun_study(settings: Settings, study_name: str, seeds: int) -> tuple[dict[str, optuna.Study], list[Rerun]]:
    studies = open_band_studies(settings.storage_url, study_name)
    reruns = [Rerun(band, name, train_config(best[name]), score(best[name]))
              for band, study in studies.items() for best in [best_per_optimizer(study)]
              for name in OPTIMIZERS if name in best]
    if not reruns:
        raise BandsearchError(f"study {study_name!r} has no completed trial yet; run `bandsearch launch` first")
    attrs = {band: snapshot(study) for band, study in studies.items()}
    task = task_from_dict(next(iter(attrs.values()))["task"])
    data = cluster.datasets(task, [Band(**a["band"]) for a in attrs.values()], settings.cache_dir,
                            study_model(studies.values()).feature_kind)
    calls = [(data[r.band], (r.config, SEED_OFFSET + s)) for r in reruns for s in range(seeds)]
    results = iter(cluster.map_on_bands(_train_seed, calls))
    for rerun in reruns:
        for _ in range(seeds):
            history, dynamics = next(results)
            rerun.histories.append(history)
            rerun.summaries.append(dynamics)
    return studies, reruns


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _claims(by_band: dict[str, list[Rerun]], values, higher_is_better: bool, better: str) -> list[str]:
    """Pairwise claims within each band where the intervals separate."""
    claims = []
    for band, reruns in by_band.items():
        for a in reruns:
            for b in reruns:
                if a.optimizer < b.optimizer:
                    side = separated(values(a), values(b)) * (1 if higher_is_better else -1)
                    if side:
                        winner, loser = (a, b) if side > 0 else (b, a)
                        claims.append(f"- band {band} Hz: **{winner.optimizer}** {better} than {loser.optimizer}")
    return claims or ["- no difference separates at 95 % with these seeds"]


def write_report(settings: Settings, study_name: str, seeds: int, out: Path) -> Path:
    """Re-run, analyse and write `out/report.md` with its figures; log it to MLflow."""
    studies, reruns = rerun_study(settings, study_name, seeds)
    out.mkdir(parents=True, exist_ok=True)
    by_band: dict[str, list[Rerun]] = defaultdict(list)
    for rerun in reruns:
        by_band[rerun.band].append(rerun)
    row = lambda r, *cells: [f"{r.band} Hz", r.optimizer, *cells]
    md = [f"# Optimizer report: study {study_name}", "",
          f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. The best configuration of each "
          f"optimizer in each band was trained again with {seeds} seeds; cells are mean ± 95 % interval "
          "over the seeds. A claim is made only where the intervals separate.", ""]

    lowest = min(by_band, key=lambda band: snapshot(studies[band])["band"]["center_hz"])
    base = {r.optimizer: mean_ci(r.final("val_accuracy"))[0] for r in by_band[lowest]}
    md.append(_table("Final validation accuracy", ["band", "optimizer", "study's best trial", "re-run accuracy",
                                                    f"vs {lowest} Hz", "angle error (deg)"],
                     [row(r, f"{r.study_value:.3f}", fmt(r.final("val_accuracy")),
                          f"{mean_ci(r.final('val_accuracy'))[0] - base[r.optimizer]:+.3f}"
                          if r.optimizer in base else "-",
                          fmt(r.final("val_angle_error_deg"), 1)
                          if "val_angle_error_deg" in r.histories[0][-1] else "-")
                      for r in reruns]))
    md += _claims(by_band, lambda r: r.final("val_accuracy"), True, "is more accurate") + [""]
    figures.bars_with_intervals({b: {r.optimizer: mean_ci(r.final("val_accuracy")) for r in rs}
                                 for b, rs in by_band.items()}, "validation accuracy",
                                "final accuracy (95 % intervals)", out / "accuracy.png")
    md.append("![accuracy](accuracy.png)\n")

    target = train_from_dict(reruns[0].config).target
    thresholds, to_target = targets.band_times(by_band, target)
    md.append(_table(f"Epochs to the target: {targets.describe(target)}",
                     ["band", "optimizer", "target accuracy", "seeds reaching it", "median epochs (Kaplan–Meier)"],
                     [row(r, f"{thresholds[r.band]:.3f}", f"{sum(to_target[r.band][r.optimizer][1])}/{seeds}",
                          targets.median_text(to_target[r.band][r.optimizer])) for r in reruns]))
    md += ["A seed that never reaches the target counts as censored at the epochs it trained; the median is "
           "\"not reached\" while the Kaplan–Meier curve stays above 0.5. \"Faster\" needs an exact two-sided "
           "log-rank test (permuting the optimizer labels) at 5 %.", ""]
    md += targets.faster_claims(to_target) + [""]

    md.append(_table("Gradient norm", ["band", "optimizer", "first", "last", "coefficient of variation"],
                     [row(r, fmt(r.summary("summary.grad_norm_first")), fmt(r.summary("summary.grad_norm_last")),
                          fmt(r.summary("summary.grad_norm_cv"))) for r in reruns]))
    figures.per_epoch_lines({b: {r.optimizer: r.series("grad_norm") for r in rs} for b, rs in by_band.items()},
                            "grad_norm", "gradient norm per epoch (mean over seeds)", out / "grad_norm.png", log_y=True)
    md.append("![gradient norm](grad_norm.png)\n")
    md.append(_table("Cosine similarity of consecutive mini-batch gradients",
                     ["band", "optimizer", "early", "middle", "late"],
                     [row(r, *(fmt(r.summary(f"summary.grad_cosine_{p}")) for p in ("early", "middle", "late")))
                      for r in reruns]))
    md.append(_table("Optimisation path", ["band", "optimizer", "displacement", "path length", "path efficiency"],
                     [row(r, fmt(r.summary("summary.displacement"), 2), fmt(r.summary("summary.path_length"), 1),
                          fmt(r.summary("summary.path_efficiency"))) for r in reruns]))
    memory = ("params", "grads", "state", "activations", "step_peak")
    md.append(_table("Memory and time per step",  # memory: KiB, of the largest step (objectives/train/memory.py)
                     ["band", "optimizer", "parameters KiB", "gradients KiB", "optimizer state KiB", "activations KiB",
                      "step peak KiB", "forward ms", "backward ms", "update ms", "full gradient ms"],
                     [row(r, *(fmt([v / 2**10 for v in r.summary(f"summary.memory_{m}_bytes")], 1) for m in memory),
                          *(fmt(r.summary(f"summary.time_{p}_ms"), 3) for p in ("forward", "backward", "update")),
                          fmt(r.summary("summary.full_grad_ms"), 1) if r.summary("summary.full_grad_ms") else "-")
                      for r in reruns]))
    md += _claims(by_band, lambda r: r.summary("summary.time_update_ms"), False, "updates faster") + [""]

    md.append("## Per-frequency learning-rate tables\n")
    for table in (finder_table(settings.storage_url, study_name), study_table(settings.storage_url, study_name)):
        if table.cells:
            md.append(table.markdown())
            md.append(f"![{table.name}]({table.png(out / f'{table.name}.png').name})\n")

    md.append("## The search, per band\n")
    for band, study in studies.items():
        md.append(f"### band {band} Hz\n")
        for plot, options in search_plots(study):
            path = figures.optuna_figure(plot, study, out / f"{plot.removeprefix('plot_')}_{band}.png", **options)
            md.append(f"![{plot} {band}]({path.name})\n" if path else f"({plot}: not enough trials to draw)\n")
    md += findings.section(by_band, {band: snapshot(studies[band])["band"]["center_hz"] for band in by_band}, to_target)
    report = out / "report.md"
    report.write_text("\n".join(md))
    _log(settings, study_name, out)
    return report


def search_plots(study: optuna.Study) -> list[tuple[str, dict[str, Any]]]:
    """Optuna's plots of one band's search (name, options); a multi-objective band's Pareto front
    first, and the others on its first objective."""
    plots = ("plot_optimization_history", "plot_param_importances", "plot_parallel_coordinate")
    if not multi_objective(study):
        return [(plot, {}) for plot in plots]
    metrics = objective_metrics(study)
    first = {"target": score, "target_name": metrics[0]}
    return [("plot_pareto_front", {"target_names": metrics}), *((plot, first) for plot in plots)]


def _log(settings: Settings, study_name: str, folder: Path) -> None:
    Tracker(settings.tracking_uri).publish(study_name, settings.artifact_root, "report", "optimizer report",
                                           sorted(folder.iterdir()), "report")
