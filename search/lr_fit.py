"""lr(f): per optimizer, log10(lr) fitted against log10(band centre frequency), once from the LR
finder's suggestions and once from the study's best trials, with a 95 % prediction interval
for a band nobody has searched (`bandsearch lr-table STUDY --predict 2000`).

A straight line in log-log is a power law, lr ∝ f^slope. With n bands the interval has n - 2
degrees of freedom: three bands give a very wide one, two none at all (the line is exact).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
from rich.table import Table

from search import figures
from search.lr_tables import LrTable, best_table, log_tables
from search.settings import Settings
from search.stats import Line, fit_line
from search.studies import open_band_studies, snapshot

SOURCES = {"lr_finder": "finder", "study_best": "study"}  # LrTable.name -> what its fit is called


@dataclass(frozen=True)
class LrFit:
    optimizer: str
    source: str  # finder (the range tests' suggestions) or study (the best trials' rates)
    points: tuple[tuple[float, float], ...]  # (centre Hz, lr), one per band
    line: Line  # log10(lr) = intercept + slope * log10(Hz)

    def predict(self, hz: float) -> tuple[float, float, float]:
        """(lr, low, high) at `hz`: the fitted rate and its 95 % prediction interval (nan, nan
        below three bands)."""
        y, half = self.line.predict(math.log10(hz))
        return 10 ** y, 10 ** (y - half), 10 ** (y + half)


def band_centres(storage_url: str, study_name: str) -> dict[str, float]:
    """Each band's centre frequency, from its study's creation record."""
    return centres_of(open_band_studies(storage_url, study_name))


def centres_of(studies: dict[str, optuna.Study]) -> dict[str, float]:
    """`band_centres` of band studies already open (by band name)."""
    return {band: float(snapshot(study)["band"]["center_hz"]) for band, study in studies.items()}


def fit_tables(tables: list[LrTable], centres: dict[str, float]) -> list[LrFit]:
    """A fit per table and optimizer with learning rates in at least two bands."""
    fits = []
    for table in tables:
        for optimizer in table.optimizers:
            points = tuple(sorted((centres[band], cell.lr) for (band, name), cell in table.cells.items()
                                  if name == optimizer and cell.lr and band in centres))
            if len({hz for hz, _ in points}) >= 2:
                line = fit_line([math.log10(hz) for hz, _ in points], [math.log10(lr) for _, lr in points])
                fits.append(LrFit(optimizer, SOURCES.get(table.name, table.name), points, line))
    return fits


def study_fits(storage_url: str, study_name: str) -> dict[str, LrFit]:
    """The lr(f) fit of each optimizer from study `study_name`'s best trials."""
    return best_fits(study_name, open_band_studies(storage_url, study_name))


def best_fits(study_name: str, studies: dict[str, optuna.Study]) -> dict[str, LrFit]:
    """`study_fits` of band studies already open (by band name)."""
    return {fit.optimizer: fit for fit in fit_tables([best_table(study_name, studies)], centres_of(studies))}


def _row(fit: LrFit, hz: float) -> list[str]:
    lr, low, high = fit.predict(hz)
    interval = "none (2 bands)" if math.isnan(low) else f"{low:.2e} – {high:.2e}"
    return [fit.optimizer, fit.source, str(len(fit.points)), f"{fit.line.slope:+.2f}", f"{lr:.2e}", interval]


def _headers(hz: float) -> list[str]:
    return ["optimizer", "from", "bands", "exponent", f"lr at {hz:g} Hz", "95 % prediction interval"]


def rich_table(fits: list[LrFit], hz: float) -> Table:
    table = Table(title=f"lr(f) = c·f^exponent, fitted per optimizer; predicted at {hz:g} Hz")
    for header in _headers(hz):
        table.add_column(header)
    for fit in fits:
        table.add_row(*_row(fit, hz))
    return table


def markdown(fits: list[LrFit], hz: float) -> str:
    lines = [f"### lr(f) = c·f^exponent per optimizer, predicted at {hz:g} Hz", "",
             "| " + " | ".join(_headers(hz)) + " |", "|" + " --- |" * len(_headers(hz))]
    lines += ["| " + " | ".join(_row(fit, hz)) + " |" for fit in fits]
    return "\n".join(lines) + "\n"


def write_files(fits: list[LrFit], folder: Path, hz: float = 1000.0) -> list[Path]:
    """lr_fit.md and lr_fit.png in `folder` (nothing without a fit)."""
    if not fits:
        return []
    (folder / "lr_fit.md").write_text(markdown(fits, hz))
    curves = {f"{fit.optimizer} ({fit.source})": (fit.points, [(hz_, *fit.predict(hz_)) for hz_ in _grid(fits)])
              for fit in fits}
    return [folder / "lr_fit.md", figures.lr_fit(curves, folder / "lr_fit.png")]


def _grid(fits: list[LrFit], steps: int = 50) -> list[float]:
    """Frequencies spanning every fit's bands, evenly on a log axis."""
    low = min(hz for fit in fits for hz, _ in fit.points) / 1.5
    high = max(hz for fit in fits for hz, _ in fit.points) * 1.5
    return [low * (high / low) ** (i / (steps - 1)) for i in range(steps)]


def log_with_fit(settings: Settings, study_name: str, tables: list[LrTable]) -> list[LrFit]:
    """Log the tables and their lr(f) fits (Markdown, PNG) to the study's `lr tables` run."""
    fits = fit_tables(tables, band_centres(settings.storage_url, study_name))
    with tempfile.TemporaryDirectory() as folder:
        log_tables(settings.tracking_uri, settings.artifact_root, study_name, tables, write_files(fits, Path(folder)))
    return fits
