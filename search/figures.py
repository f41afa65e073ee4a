"""PNG figures for MLflow and the README (matplotlib, no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def lr_curve(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
             suggestion: float | None, title: str, path: Path) -> Path:
    """Loss against learning rate (log axis), the smoothed curve and the suggestion marked."""
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
