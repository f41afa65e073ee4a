"""The user's path through the CLI, in fresh processes: launch, export, train, studies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import services
import torch
import yaml
from conftest import tiny_config, write_yaml

from objectives.localizer import Localizer
from objectives.task.dataset import split_clips
from objectives.task.geometry import angle_classes
from search.export import load_best_config
from search.storage import open_storage

pytestmark = pytest.mark.timeout(300)


def bandsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # This checkout's code (services.env: not an installed copy's), on a wide terminal: rich would
    # otherwise squeeze the summary tables' headers to fit 80 columns.
    env = {**services.env(), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


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
    trained = bandsearch("train", "best.yaml", "--band", "3000", "--run-dir", run_dir, "--save", "doa.pt",
                         cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    retrained = float(re.search(r"band 3000 Hz: val_accuracy ([0-9.]+) \(", trained.stdout).group(1))
    assert retrained == pytest.approx(recorded, abs=0.02)
    # The saved network, from the validation clips' waveforms, scores what the retraining printed.
    best = load_best_config(tmp_path / "best.yaml", "3000")
    clips = list(split_clips(best.task, best.band, "val"))
    azimuths = Localizer.load(tmp_path / "doa.pt")(torch.cat([c.waveforms for c in clips]))
    truth = angle_classes(best.task)[torch.cat([c.labels for c in clips])]
    assert (azimuths == truth).double().mean().item() == pytest.approx(retrained, abs=5e-5)
    unwritable = bandsearch("train", "best.yaml", "--band", "3000", "--run-dir", run_dir, "--save", "no/such/dir/x.pt",
                            cwd=tmp_path)
    assert unwritable.returncode == 2
    assert "--save no/such/dir/x.pt: folder no/such/dir does not exist" in unwritable.stderr
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
    open_storage(str(tmp_path / "optuna.journal"))  # a storage without that study
    result = bandsearch("export", "nope", "--run-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no study named 'nope'" in result.stderr


def test_lr_find_then_lr_table(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(lr_finder={"steps": 20, "batch_size": 32}))
    run_dir = str(tmp_path / "runs")
    found = bandsearch("lr-find", str(space), "--study", "lrs", "--run-dir", run_dir, "--num-cpus", "2", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert "LR finder suggestions" in found.stdout
    table = bandsearch("lr-table", "lrs", "--run-dir", run_dir, "--markdown", "--predict", "2000", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines()
            if line.startswith("| 500 Hz |") or line.startswith("| 3000 Hz |")]
    assert len(rows) == 2 and all(line.count("e-") + line.count("e+") >= 2 for line in rows), table.stdout
    fitted = ("| sgd | finder | 2 |", "| adam | finder | 2 |")
    fits = [line for line in table.stdout.splitlines() if line.startswith(fitted)]
    assert "predicted at 2000 Hz" in table.stdout and len(fits) == 2 and all("none (2 bands)" in f for f in fits)
    bad = bandsearch("lr-table", "lrs", "--run-dir", run_dir, "--predict", "-5", cwd=tmp_path)
    assert bad.returncode == 2 and "--predict: must be a frequency in Hz > 0" in bad.stderr


def test_data_write_show_then_a_study_on_the_folder(tmp_path: Path) -> None:
    # The synthetic task written as a recordings folder, summarised, then tuned from the folder.
    task = {"clip_samples": 2048, "sources": [{"kind": "free_field"}]}
    synthetic = write_yaml(tmp_path / "synthetic.yaml", tiny_config(task=task))
    run_dir = str(tmp_path / "runs")
    written = bandsearch("data", "write", str(synthetic), "recs", "--recordings", "24", "8", "--seconds", "1",
                         "--run-dir", run_dir, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert {"array.json", "labels.csv", "train-0001.wav", "val-0008.wav"} <= {
        p.name for p in (tmp_path / "recs").iterdir()}
    assert "500 Hz" in written.stdout and "168 (24)" in written.stdout  # 7 clips of 2048 per 1 s recording
    data = tiny_config(search={"trials_per_band": 2}, lr_finder={"batch_size": 32},
                       baselines={"methods": ["srp_phat"], "max_clips": 50})
    data["task"] = {"clip_samples": 2048, "sources": [{"kind": "folder", "path": "recs"}]}
    space = write_yaml(tmp_path / "mine.yaml", data)
    shown = bandsearch("data", "show", str(space), cwd=tmp_path)
    assert shown.returncode == 0 and " dB " in shown.stdout, shown.stderr
    launched = bandsearch("launch", str(space), "--study", "mine", "--run-dir", run_dir, "--quiet",
                          "--num-cpus", "2", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    assert "SRP-PHAT" in launched.stdout and "°" in launched.stdout
    compared = bandsearch("baselines", "mine", "--run-dir", run_dir, cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "3000 Hz" in compared.stdout and compared.stdout.count("°") >= 4  # network and SRP-PHAT, 2 bands


def test_bad_recordings_folder_stops_the_launch_with_one_clear_message(tmp_path: Path) -> None:
    (tmp_path / "recs").mkdir()
    (tmp_path / "recs" / "array.json").write_text('{"sample_rate": 16000, "mic_positions_m": [[0, 0], [0.05, 0]]}')
    (tmp_path / "recs" / "labels.csv").write_text("file,azimuth_deg\nmissing.wav,30\n")
    data = tiny_config()
    data["task"] = {"sources": [{"kind": "folder", "path": "recs"}]}
    space = write_yaml(tmp_path / "bad.yaml", data)
    result = bandsearch("launch", str(space), "--run-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert f"{space}: task.sources[0].path:" in message and "labels.csv row 2:" in message
    assert "missing.wav does not exist" in message
