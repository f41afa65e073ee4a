"""The user's path through the CLI, in fresh processes: launch, export, train, studies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tiny_config, write_yaml

pytestmark = pytest.mark.timeout(300)


def bandsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_launch_export_train(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(search={"trials_per_band": 2}))
    run_dir = str(tmp_path / "runs")
    launched = bandsearch("launch", str(space), "--study", "cli", "--run-dir", run_dir, "--progress", "json",
                          "--num-cpus", "2", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    assert "best per band" in launched.stderr and "500 Hz" in launched.stderr
    events = [json.loads(line) for line in launched.stdout.splitlines()]
    last = {event["band"]: event for event in events}
    assert set(last) == {"500", "3000"} and all(e["finished"] == e["budget"] == 2 for e in last.values())
    assert all(e["running"] == 0 and e["best"] is not None for e in last.values())
    status = bandsearch("status", "cli", "--run-dir", run_dir, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    bands = {row["band"]: row for row in json.loads(status.stdout)}
    assert bands["500"]["finished"] == bands["500"]["budget"] == 2 and bands["3000"]["best"] == last["3000"]["best"]
    exported = bandsearch("export", "cli", "--run-dir", run_dir, "--out", "best.yaml", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    document = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert set(document["bands"]) == {"500", "3000"}
    recorded = document["bands"]["3000"]["result"]["val_accuracy"]
    trained = bandsearch("train", "best.yaml", "--band", "3000", "--run-dir", run_dir, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    retrained = float(re.search(r"band 3000 Hz: val acc ([0-9.]+) \(", trained.stdout).group(1))
    assert retrained == pytest.approx(recorded, abs=0.02)
    listed = bandsearch("studies", "--run-dir", run_dir, cwd=tmp_path)
    assert listed.returncode == 0 and "cli" in listed.stdout


def test_bad_input_stops_before_any_trial_with_one_clear_message(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "bad.yaml", tiny_config(bands=[{"center_hz": -5}]))
    result = bandsearch("launch", str(space), "--run-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{space}: bands[0].center_hz: must be > 0 Hz" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_export_of_an_unknown_study_is_clear(tmp_path: Path) -> None:
    result = bandsearch("export", "nope", "--run-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no study named 'nope'" in result.stderr


def test_lr_find_then_lr_table(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(lr_finder={"steps": 20, "batch_size": 32}))
    run_dir = str(tmp_path / "runs")
    found = bandsearch("lr-find", str(space), "--study", "lrs", "--run-dir", run_dir, "--num-cpus", "2", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert "LR finder suggestions" in found.stdout
    table = bandsearch("lr-table", "lrs", "--run-dir", run_dir, "--markdown", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.startswith("| 500 Hz |") or line.startswith("| 3000 Hz |")]
    assert len(rows) == 2 and all(line.count("e-") + line.count("e+") >= 2 for line in rows), table.stdout
