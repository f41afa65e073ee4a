"""A band's dataset: its sources' clips made once, turned into features, standardised, cached on disk.

Every trial of a band shares the same tensors. The cache key covers every parameter that
changes the data (and the contents of a recordings folder), so a changed task never reads
a stale file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from objectives.plain import to_dict
from objectives.task.config import Band, TaskConfig
from objectives.task.features import BandFeatures
from objectives.task.sources import source_clips
from objectives.task.synthesis import Clips

log = logging.getLogger(__name__)

# Bump when synthesis or features change in a way the config does not capture.
DATA_VERSION = 3  # 3: STFT frames inside the clip (no reflect padding)


@dataclass(frozen=True)
class BandDataset:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    n_classes: int
    span_deg: float = 180.0  # the classes cover [0, span): 180 for a linear array, 360 for a planar one
    # The training clips' standardisation (`standardisation`), for the features of new clips.
    feature_mean: torch.Tensor | None = None
    feature_std: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One clip's features, without the batch dimension."""
        return tuple(self.train_x.shape[1:])


def cache_key(task: TaskConfig, band: Band, features: str = "averaged") -> str:
    spec = {
        "version": DATA_VERSION,
        **({"features": features} if features != "averaged" else {}),
        "task": to_dict(task),
        "band": {"center_hz": band.center_hz, "width_hz": band.width_hz},
        "contents": [source.fingerprint() for source in task.sources],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _seed(key: str, split: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{key}/{split}".encode()).digest()[:8], "little")


def split_clips(task: TaskConfig, band: Band, split: str, cache_dir: Path | None = None) -> Iterator[Clips]:
    """The clips of a split in chunks, the same on every call: what the network trains or is
    validated on, and what the classical baselines are scored on."""
    generator = torch.Generator().manual_seed(_seed(cache_key(task, band), split))
    return source_clips(task, band, split, generator, cache_dir)


def split_features(task: TaskConfig, band: Band, split: str, cache_dir: Path | None,
                   kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's features of `kind`, not yet standardised, and its labels."""
    extract = BandFeatures(task, band, kind)
    xs, ys = [], []
    for clips in split_clips(task, band, split, cache_dir):
        with torch.no_grad():
            xs.append(extract(clips.waveforms))
        ys.append(clips.labels)
    return torch.cat(xs), torch.cat(ys)


def generate(task: TaskConfig, band: Band, cache_dir: Path | None = None, features: str = "averaged") -> BandDataset:
    """Make train and validation sets (independent seeds) of `features` (objectives/task/features.py)
    and standardise each feature over the training clips (and, per frame, over the frames).
    `cache_dir` holds what sources share between bands (a room simulation's impulse responses)."""
    train_x, train_y = split_features(task, band, "train", cache_dir, features)
    val_x, val_y = split_features(task, band, "val", cache_dir, features)
    mean, std = standardisation(train_x, features)
    return BandDataset(
        train_x=standardise(train_x, mean, std),
        train_y=train_y,
        val_x=standardise(val_x, mean, std),
        val_y=val_y,
        n_classes=task.n_angle_bins,
        span_deg=task.array.span_deg,
        feature_mean=mean,
        feature_std=std,
    )


def standardisation(train_x: torch.Tensor, features: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The training clips' mean and deviation per feature (per frame map over the frames too, per
    steered map over the directions), shaped to broadcast over a batch."""
    over = (0, 3) if features in ("frames", "steered") else (0,)
    return train_x.mean(dim=over, keepdim=True), train_x.std(dim=over, keepdim=True).clamp_min(1e-6)


def standardise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Features standardised as every split of a band's dataset is."""
    return ((x - mean) / std).contiguous()


def load_or_generate(task: TaskConfig, band: Band, cache_dir: Path | None, features: str = "averaged") -> BandDataset:
    """The band's dataset of `features` from `cache_dir` if present, else generated (and cached there)."""
    if cache_dir is None:
        return generate(task, band, features=features)
    path = Path(cache_dir) / f"band-{cache_key(task, band, features)}.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
        if cached.get("feature_mean") is not None:  # else written before the standardisation was kept: rebuilt
            return BandDataset(**cached)
    log.info("generating dataset for band %s into %s", band.name, path)
    data = generate(task, band, cache_dir, features)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a reader never sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(data.__dict__, tmp)
    os.replace(tmp, path)
    return data
