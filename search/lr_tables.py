"""Per-frequency learning-rate tables: rows are bands, columns are optimizers.

(a) the LR finder's suggestions; (b) the best learning rate the study found per band and
optimizer, with its validation accuracy and trial count. Rendered for the terminal (rich),
as Markdown, CSV and a PNG heatmap, and logged to the study's `lr tables` MLflow run.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.table import Table

from objectives.train.optim import OPTIMIZERS
from search import figures
from search.lr_finder import data_key, stored_results
from search.studies import best_per_optimizer, metric_of, open_band_studies, score, snapshot, train_config
from search.tracking import Tracker


@dataclass
class Cell:
    lr: float | None
    accuracy: float | None = None
    trials: int = 0


@dataclass
class LrTable:
    name: str  # file stem: lr_finder or study_best
    title: str
    bands: list[str]
    optimizers: list[str]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    metric: str = "val_accuracy"  # what a cell's `accuracy` is: the study's objective metric

    @property
    def short(self) -> str:
        return "acc" if self.metric == "val_accuracy" else self.metric

    def _text(self, band: str, optimizer: str) -> str:
        cell = self.cells.get((band, optimizer))
        if cell is None or cell.lr is None:
            return "-"
        if cell.accuracy is None:
            return f"{cell.lr:.2e}"
        return f"{cell.lr:.2e} ({self.short} {cell.accuracy:.3f}, n={cell.trials})"

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| band | " + " | ".join(self.optimizers) + " |",
                 "| --- |" + " --- |" * len(self.optimizers)]
        for band in self.bands:
            lines.append(f"| {band} Hz | " + " | ".join(self._text(band, o) for o in self.optimizers) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["band", "optimizer", "lr", self.metric, "trials"])
        for (band, optimizer), cell in sorted(self.cells.items()):
            writer.writerow([band, optimizer, cell.lr, cell.accuracy, cell.trials])
        return out.getvalue()

    def rich(self) -> Table:
        table = Table(title=self.title)
        table.add_column("band")
        for optimizer in self.optimizers:
            table.add_column(optimizer)
        for band in self.bands:
            table.add_row(f"{band} Hz", *(self._text(band, o) for o in self.optimizers))
        return table

    def png(self, path: Path) -> Path:
        values = {key: cell.lr for key, cell in self.cells.items()}
        notes = {key: f"{self.short} {c.accuracy:.3f}" for key, c in self.cells.items() if c.accuracy is not None}
        return figures.lr_heatmap(self.bands, self.optimizers, values, self.title, path, notes)


def study_table(storage_url: str, study_name: str) -> LrTable:
    """(b): per band and optimizer, the best completed trial's learning rate and value (accuracy
    for the built-in loop, else the objective's metric; best in the study's direction)."""
    return best_table(study_name, open_band_studies(storage_url, study_name))


def best_table(study_name: str, studies: dict[str, optuna.Study]) -> LrTable:
    """`study_table` of band studies already open (by band name)."""
    table = LrTable("study_best", f"study {study_name}: best learning rate per band and optimizer",
                    list(studies), [])
    table.metric = metric_of(next(iter(studies.values())))
    optimizers: dict[str, None] = {}
    for band, study in studies.items():
        tried = Counter(train_config(trial)["optimizer"] for trial in
                        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        optimizers.update(dict.fromkeys(tried))
        for optimizer, trial in best_per_optimizer(study).items():
            table.cells[(band, optimizer)] = Cell(train_config(trial)["lr"], score(trial), tried[optimizer])
    table.optimizers = _table_order(optimizers)
    return table


def _table_order(names: dict[str, None]) -> list[str]:
    return [name for name in OPTIMIZERS if name in names]


def finder_table(storage_url: str, study_name: str) -> LrTable:
    """(a): the range test's suggestion per band and optimizer, for this study's data and model."""
    studies = open_band_studies(storage_url, study_name)
    results = stored_results(storage_url)
    table = LrTable("lr_finder", f"study {study_name}: LR finder suggestions", list(studies), [])
    optimizers: dict[str, None] = {}
    for band, study in studies.items():
        attrs = snapshot(study)
        key = data_key(attrs["task"], attrs["band"], attrs["training"]["model"])
        for result in sorted((r for r in results if r["data_key"] == key), key=lambda r: r["created"]):
            optimizers[result["optimizer"]] = None
            table.cells[(band, result["optimizer"])] = Cell(result["suggestion"])  # newest wins
    table.optimizers = _table_order(optimizers)
    return table


def log_tables(tracking_uri: str, artifact_root: Path | None, study_name: str, tables: list[LrTable],
               extra: Sequence[Path] = ()) -> str:
    """Log every table as CSV, Markdown and PNG (and the `extra` files) to the study's `lr tables`
    run; its id."""
    with tempfile.TemporaryDirectory() as folder:
        files = list(extra)
        for table in tables:
            base = Path(folder) / table.name
            base.with_suffix(".csv").write_text(table.csv())
            base.with_suffix(".md").write_text(table.markdown())
            files += [base.with_suffix(".csv"), base.with_suffix(".md"), table.png(base.with_suffix(".png"))]
        return Tracker(tracking_uri).publish(study_name, artifact_root, "lr-tables", "lr tables", files, "lr_tables")
