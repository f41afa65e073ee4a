"""The closing summary of `bandsearch launch`, read whole on an 80-column terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from search.commands.launch import print_summary

METHODS = ["music", "srp_phat"]
RUN_ID = "0f3c9a7d2b6e4c1a8f5d3e2b1c0a9f8e"


def _row(band: str, optimizer: str, lr: float, best: float | None) -> dict:
    """A row as search/driver/bands.py summary_row makes it."""
    config = {"optimizer": optimizer, "lr": lr, "batch_size": 256, "warmup_epochs": 1} if best is not None else None
    return {
        "band": band, "complete": 31, "pruned": 112, "failed": 7, "metric": "val_accuracy", "best": best,
        "config": config,
        "best_run_id": RUN_ID if best is not None else None, "angle_error_deg": 12.345 if best is not None else None,
        "baselines": {"baseline.music.accuracy": 0.6543, "baseline.music.angle_error_deg": 23.46,
                      "baseline.srp_phat.accuracy": 0.7012, "baseline.srp_phat.angle_error_deg": 104.5},
        "parent_run_id": "a" * 32, "pareto": None,
    }


def _render(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    rows = [_row("500", "adam_sgd", 3.2e-3, 0.91234), _row("12000", "rmsprop", 1.5e-4, 0.5), _row("3000", "", 0, None)]
    print_summary(console, "family", rows, "http://127.0.0.1:5000", "4", METHODS)
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 200])
def test_no_cell_is_cut(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    text = _render(width)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    words = {word for line in text.splitlines() for word in line.replace("│", " ").split()}
    for value in ("500", "12000", "3000", "adam_sgd", "rmsprop", "3.20e-03", "1.50e-04", "256", RUN_ID,
                  "31/112/7", "0.912", "12.3°", "0.654", "23.5°", "0.701", "104.5°", "MUSIC", "SRP-PHAT",
                  "done/pruned/failed"):
        assert value in words, f"{value!r} is not whole in\n{text}"
    assert "http://127.0.0.1:5000/#/experiments/4?workflowType=machine_learning" in words


def test_a_wide_terminal_gets_one_line_per_band() -> None:
    lines = _render(200).splitlines()
    assert any("500 Hz" in line and "adam_sgd" in line and RUN_ID in line for line in lines)
