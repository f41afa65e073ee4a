"""The recordings folder format by example: write a synthetic dataset as a folder that
`objectives/task/sources/recordings.py` reads, and summarise per band what a folder holds."""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import soundfile
import torch

from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import split_clips
from objectives.task.geometry import angle_labels
from objectives.task.sources.recordings import FolderIndex, band_pass, read_segment

log = logging.getLogger(__name__)

_PEAK = 0.5  # each file is scaled to this peak: 16-bit PCM with headroom, levels differ per file anyway


def broadband(task: TaskConfig) -> Band:
    """What a written recording contains: 100 Hz up to 90 % of Nyquist, so every band can be cut from it."""
    low, high = 100.0, 0.45 * task.sample_rate
    return Band("broadband", (low + high) / 2, high - low)


def write_synthetic(task: TaskConfig, out: Path, recordings: tuple[int, int], seconds: float,
                    per_channel: bool = False, cache_dir: Path | None = None) -> Path:
    """Write (train, val) recordings of the task's sources, one direction each, as a folder.

    Each recording is one long clip of a broadband source at one angle (from held-out rooms
    for the val split), written as 16-bit WAV, or as one mono WAV per channel in a
    sub-folder when `per_channel`. labels.csv carries the split, so held-out stays held-out.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = max(task.clip_samples, round(seconds * task.sample_rate))
    rows = []
    for split, n in zip(("train", "val"), recordings):
        long_task = replace(task, clip_samples=samples, n_train=n, n_val=n)
        number = 0
        for clips in split_clips(long_task, broadband(task), split, cache_dir):
            for waveform, angle in zip(clips.waveforms, clips.angles_deg.tolist()):
                number += 1
                name = f"{split}-{number:04d}"
                audio = (waveform / waveform.abs().max() * _PEAK).T.numpy()  # (frames, channels)
                if per_channel:
                    (out / name).mkdir(exist_ok=True)
                    for channel in range(audio.shape[1]):
                        soundfile.write(out / name / f"ch{channel + 1}.wav", audio[:, channel], task.sample_rate,
                                        subtype="PCM_16")
                else:
                    name += ".wav"
                    soundfile.write(out / name, audio, task.sample_rate, subtype="PCM_16")
                rows.append({"file": name, "azimuth_deg": f"{angle:.2f}", "split": split})
    (out / "array.json").write_text(json.dumps({
        "sample_rate": task.sample_rate,
        "mic_positions_m": [list(point) for point in task.array.positions()],
        "azimuth_zero_deg": 0.0,
        "azimuth_clockwise": False,
    }, indent=2) + "\n")
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "azimuth_deg", "split"])
        writer.writeheader()
        writer.writerows(rows)
    log.info("wrote %d recordings to %s", len(rows), out)
    return out


def summarize(index: FolderIndex, task: TaskConfig, bands: list[Band]) -> list[dict[str, float | str]]:
    """Per band: clips and recordings per split, classes covered, and how much of the audio's
    energy lies in the band (a band with little signal will be hard whatever the tuning)."""
    inside = dict.fromkeys((band.name for band in bands), 0.0)
    total = 0.0
    for segment in index.segments:
        audio = read_segment(segment, task.clip_samples).double()
        total += audio.pow(2).sum().item()
        for band in bands:
            inside[band.name] += band_pass(audio, index.sample_rate, band).pow(2).sum().item()
    counts: dict[str, float | str] = {}
    classes = {}
    for split in ("train", "val"):
        segments = [s for s in index.segments if s.split == split]
        counts[f"{split}_clips"] = sum(s.n_clips for s in segments)
        counts[f"{split}_recordings"] = len({s.channels for s in segments})
        azimuths = torch.tensor([s.azimuth_deg for s in segments], dtype=torch.float64)
        classes[split] = set(angle_labels(azimuths, task).tolist())
    counts["train_classes"] = f"{len(classes['train'])}/{task.n_angle_bins}"
    counts["val_classes_unseen_in_train"] = len(classes["val"] - classes["train"])
    return [{"band": band.name, **counts,
             "band_energy_db": 10 * math.log10(max(inside[band.name], 1e-30) / max(total, 1e-30))}
            for band in bands]
