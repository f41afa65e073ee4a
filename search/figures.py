"""PNG figures for MLflow and the README (matplotlib, no display needed)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path


def _pyplot():
    """matplotlib's pyplot without a display, loaded with the first figure (not with the driver)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lr_curve(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
             suggestion: float | None, title: str, path: Path) -> Path:
    """Loss against learning rate (log axis), the smoothed curve and the suggestion marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(lrs, losses, color="0.75", linewidth=1, label="loss")
    ax.plot(lrs, smoothed, color="C0", linewidth=2, label="smoothed")
    if suggestion is not None:
        ax.axvline(suggestion, color="C3", linestyle="--", label=f"suggestion {suggestion:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    finite = [v for v in smoothed if math.isfinite(v)]
    if finite:  # keep the divergence spike from flattening the useful part
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 3 * finite[0]) * 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def lr_heatmap(rows: Sequence[str], columns: Sequence[str], values: dict[tuple[str, str], float | None],
               title: str, path: Path, notes: dict[tuple[str, str], str] | None = None) -> Path:
    """Learning rate per band (rows) and optimizer (columns), colour on a log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 * len(columns) + 2, 0.7 * len(rows) + 1.5), dpi=100)
    grid = [[math.log10(values[(r, c)]) if values.get((r, c)) else math.nan for c in columns] for r in rows]
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), labels=columns)
    ax.set_yticks(range(len(rows)), labels=[f"{r} Hz" for r in rows])
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            value = values.get((r, c))
            text = f"{value:.1e}" if value else "-"
            if notes and notes.get((r, c)):
                text += f"\n{notes[(r, c)]}"
            ax.text(j, i, text, ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label="log10 learning rate")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def per_epoch_lines(series: dict[str, dict[str, list[list[float]]]], metric: str, title: str, path: Path,
                    log_y: bool = False) -> Path:
    """One panel per band; per optimizer, the mean over seeds of `metric` by epoch."""
    plt = _pyplot()
    bands = list(series)
    fig, axes = plt.subplots(1, len(bands), figsize=(4.5 * len(bands), 3.6), dpi=100, squeeze=False)
    for axis, band in zip(axes[0], bands):
        for optimizer, runs in series[band].items():
            length = min(len(run) for run in runs)
            mean = [sum(run[i] for run in runs) / len(runs) for i in range(length)]
            axis.plot(range(1, length + 1), mean, marker="o", markersize=3, label=optimizer)
        axis.set_title(f"band {band} Hz")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        if log_y:
            axis.set_yscale("log")
        axis.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def bars_with_intervals(values: dict[str, dict[str, tuple[float, float]]], ylabel: str, title: str,
                        path: Path) -> Path:
    """Grouped bars: bands on the x axis, one bar per optimizer, error bars = 95 % intervals."""
    plt = _pyplot()
    bands = list(values)
    optimizers = sorted({o for band in values.values() for o in band})
    width = 0.8 / max(1, len(optimizers))
    fig, ax = plt.subplots(figsize=(1.2 * len(bands) * len(optimizers) + 3, 4), dpi=100)
    for j, optimizer in enumerate(optimizers):
        xs = [i + (j - (len(optimizers) - 1) / 2) * width for i in range(len(bands))]
        means = [values[b].get(optimizer, (math.nan, math.nan))[0] for b in bands]
        errors = [0 if math.isnan(values[b].get(optimizer, (0, math.nan))[1]) else values[b][optimizer][1]
                  for b in bands]
        ax.bar(xs, means, width, yerr=errors, capsize=3, label=optimizer)
    ax.set_xticks(range(len(bands)), labels=[f"{b} Hz" for b in bands])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def optuna_figure(plot: str, study, path: Path, **options) -> Path | None:
    """An optuna.visualization.matplotlib plot of `study` (with `options`) as PNG (None if it
    cannot be drawn)."""
    plt = _pyplot()
    import optuna.visualization.matplotlib as ovm  # heavy: loaded only when a report draws it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            axes = getattr(ovm, plot)(study, **options)
        except (ValueError, RuntimeError, ZeroDivisionError):
            return None  # e.g. importances need at least two completed trials with varied params
    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def lr_fit(curves: dict[str, tuple[Sequence[tuple[float, float]], Sequence[tuple[float, float, float, float]]]],
           path: Path) -> Path:
    """Per label: the (Hz, lr) points and the fitted line with its 95 % prediction band, log-log."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, (points, line) in curves.items():
        hz, lr, low, high = zip(*line)
        drawn = ax.plot(hz, lr, label=label)[0]
        if not any(math.isnan(value) for value in low):
            ax.fill_between(hz, low, high, color=drawn.get_color(), alpha=0.15)
        ax.scatter(*zip(*points), color=drawn.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("band centre (Hz)")
    ax.set_ylabel("learning rate")
    ax.set_title("lr(f) per optimizer, 95 % prediction bands")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
