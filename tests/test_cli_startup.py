"""`--help` and a bad study file never load torch, Ray or MLflow (seconds of imports): each
subcommand imports its machinery when it runs. Checked with `python -X importtime`, which
lists every module a fresh interpreter imported; the times are in tests/benchmarks/cli_startup.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, write_yaml

HEAVY = {"torch", "torchaudio", "ray", "mlflow", "pyroomacoustics", "matplotlib", "soundfile", "scipy"}
COMMANDS = ["launch", "submit", "status", "studies", "lr-find", "lr-table", "report", "export", "train",
            "baselines", "data", "ui"]


def _run(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """The CLI's result (importtime lines left out of stderr) and the top-level packages it imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "search.cli", *args], cwd=cwd,
                            capture_output=True, text=True)
    lines = result.stderr.splitlines()
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
    result.stderr = "\n".join(line for line in lines if not line.startswith("import time:"))
    return result, imported


@pytest.mark.parametrize("args", [["--help"], *[[command, "--help"] for command in COMMANDS]], ids=" ".join)
def test_help_loads_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    result, imported = _run(*args, cwd=tmp_path)
    assert result.returncode == 0 and "usage: bandsearch" in result.stdout, result.stderr
    assert not imported & (HEAVY | {"optuna"})


@pytest.mark.parametrize("data, message", [
    (tiny_config(surprise=1), "surprise: unknown top-level key"),
    (tiny_config(space={"optimizer": {"adam": {"momentum": 0.9}}}), "space.optimizer.adam.momentum: unknown key"),
    (tiny_config(task={"sources": [{"kind": "reverberant", "room_m": [1.0, 2.0]}]}), "task.sources[0].room_m:"),
], ids=["top-level key", "deep in the space", "a room source"])
def test_a_bad_study_file_fails_before_anything_heavy_loads(data: dict, message: str, tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "bad.yaml", data)
    result, imported = _run("launch", str(space), "--run-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2 and f"{space}: {message}" in " ".join(result.stderr.split()), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not imported & HEAVY, sorted(imported & HEAVY)
    assert not (tmp_path / "runs").exists()


def test_a_missing_study_file_fails_before_anything_heavy_loads(tmp_path: Path) -> None:
    result, imported = _run("launch", "nowhere.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "nowhere.yaml: cannot read the study file" in result.stderr
    assert not imported & HEAVY, sorted(imported & HEAVY)
