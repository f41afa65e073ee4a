"""The recordings folder: real files written with soundfile, read back; every kind of bad input is one clear error."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import generate
from objectives.task.sources import Folder
from objectives.task.sources.folder_writer import summarize, write_synthetic
from objectives.task.sources.recordings import RecordingsError, index_folder, read_array, task_for_folder
from objectives.train.config import TrainConfig
from objectives.train.loop import train

TASK = TaskConfig(clip_samples=1024, n_fft=256)
BANDS = [Band("1000", 1000.0, 300.0), Band("3000", 3000.0, 900.0)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(TASK, tmp_path_factory.mktemp("rec") / "demo", (12, 4), 0.5)


def _task(path: Path, **changes) -> TaskConfig:
    index = index_folder(path, TASK.clip_samples, TASK.seed, 0.25)
    return task_for_folder(TaskConfig(clip_samples=1024, n_fft=256, sources=(Folder(path=str(path)),), **changes),
                           index)


def test_written_folder_reads_back_with_its_array_and_splits(folder: Path) -> None:
    array, rate = read_array(folder)
    assert rate == 16000 and array.positions() == TASK.array.positions() and array.span_deg == 180
    task = _task(folder)
    task.validate()
    assert (task.n_train, task.n_val) == (12 * 7, 4 * 7)  # 8000 samples: 7 whole clips of 1024 per recording
    data = generate(task, BANDS[1])
    assert data.train_x.shape[0] == 84 and data.val_x.shape[0] == 28
    assert torch.equal(generate(task, BANDS[1]).train_x, data.train_x)  # deterministic
    result = train(TrainConfig(lr=3e-3, epochs=3, batch_size=16), data, device="cpu")
    assert "val_angle_error_deg" in result.history[-1]


def test_one_file_per_channel_layout(tmp_path: Path) -> None:
    path = write_synthetic(TASK, tmp_path / "split", (3, 2), 0.25, per_channel=True)
    assert sorted(p.name for p in (path / "train-0001").iterdir()) == ["ch1.wav", "ch2.wav", "ch3.wav", "ch4.wav"]
    index = index_folder(path, 1024, 0, 0.25)
    assert index.clip_count("train") == 9 and all(len(s.channels) == 4 for s in index.segments)


def test_seeded_split_is_by_recording_and_repeatable(folder: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader((folder / "labels.csv").read_text().splitlines()))
    copy = _copy(folder, tmp_path, [{k: v for k, v in row.items() if k != "split"} for row in rows])
    first, second = index_folder(copy, 1024, 7, 0.25), index_folder(copy, 1024, 7, 0.25)
    assert first.segments == second.segments
    held_out = {s.channels for s in first.segments if s.split == "val"}
    assert len(held_out) == 4 and not held_out & {s.channels for s in first.segments if s.split == "train"}


def test_summary_per_band(folder: Path) -> None:
    task = _task(folder)
    rows = summarize(index_folder(folder, 1024, 0, 0.25), task, BANDS)
    assert [row["band"] for row in rows] == ["1000", "3000"]
    assert rows[0]["train_clips"] == 84 and rows[0]["val_recordings"] == 4
    assert -30 < rows[0]["band_energy_db"] < rows[1]["band_energy_db"] < 0  # wider band, more energy


def _copy(folder: Path, tmp_path: Path, rows: list[dict], array: dict | None = None) -> Path:
    """The folder's audio with a rewritten labels.csv (and array.json)."""
    out = tmp_path / "copy"
    out.mkdir()
    for path in folder.glob("*.wav"):
        (out / path.name).write_bytes(path.read_bytes())
    (out / "array.json").write_text(json.dumps(array) if array else (folder / "array.json").read_text())
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def _rows(folder: Path) -> list[dict]:
    return list(csv.DictReader(open(folder / "labels.csv")))


def _bad_channels(out: Path) -> None:
    soundfile.write(out / "train-0002.wav", np.zeros((8000, 2), dtype=np.float32), 16000)


def _bad_rate(out: Path) -> None:
    soundfile.write(out / "train-0002.wav", np.zeros((8000, 4), dtype=np.float32), 48000)


def _unreadable(out: Path) -> None:
    (out / "train-0002.wav").write_bytes(b"RIFF not really a wave file")


BAD = {
    "channel count differs from array.json": (_bad_channels, None, "2 channels, but array.json lists 4"),
    "sample rate differs": (_bad_rate, None, "sample rate 48000 Hz, but array.json says 16000 Hz"),
    "unreadable audio": (_unreadable, None, "unreadable audio"),
    "angle outside the range": (None, lambda rows: rows[2].update(azimuth_deg="200"), "row 4: azimuth_deg '200' is "
                                "outside the array's range [0, 180]"),
    "missing file": (None, lambda rows: rows[0].update(file="nope.wav"), "row 2: "),
    "empty split": (None, lambda rows: [row.update(split="train") for row in rows], "the 'val' split is empty"),
    "a recording in two splits": (
        None, lambda rows: rows.append({**rows[0], "split": "val"}), "splits are by recording"),
    "bad split name": (None, lambda rows: rows[0].update(split="test"), "split 'test' must be one of"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_clear_error(name: str, folder: Path, tmp_path: Path) -> None:
    spoil_audio, spoil_rows, expected = BAD[name]
    rows = _rows(folder)
    if spoil_rows:
        spoil_rows(rows)
    out = _copy(folder, tmp_path, rows)
    if spoil_audio:
        spoil_audio(out)
    with pytest.raises(RecordingsError) as err:
        index_folder(out, 1024, 0, 0.25)
    assert expected in str(err.value)
    if name == "missing file":
        assert "nope.wav does not exist" in str(err.value)
    if spoil_audio:
        assert "train-0002.wav" in str(err.value)


def test_angle_convention_turns_the_positions(folder: Path, tmp_path: Path) -> None:
    # The same array described with azimuth 0 on +y, clockwise: positions mirrored and turned, labels untouched.
    spec = json.loads((folder / "array.json").read_text())
    spec.update(mic_positions_m=[[0.0, x] for x, _ in spec["mic_positions_m"]], azimuth_zero_deg=90.0,
                azimuth_clockwise=True)
    array, _ = read_array(_copy(folder, tmp_path, _rows(folder), spec))
    assert np.allclose(array.positions(), TASK.array.positions())
    spec.update(azimuth_zero_deg=0.0)  # a line along y with 0 deg on x: the mirror ambiguity is not on 0-180
    (tmp_path / "copy" / "array.json").write_text(json.dumps(spec))
    with pytest.raises(RecordingsError, match="azimuth 0 must lie along its axis"):
        read_array(tmp_path / "copy")
