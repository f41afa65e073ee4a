"""A band's dataset: synthesised once, turned into features, standardised, cached on disk.

Every trial of a band shares the same tensors. The cache key covers every parameter that
changes the data, so a changed task never reads a stale file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from objectives.config import Band, TaskConfig, to_dict
from objectives.features import BandFeatures
from objectives.synthesis import synthesize

log = logging.getLogger(__name__)

# Bump when synthesis or features change in a way the config does not capture.
DATA_VERSION = 1
_CHUNK = 500  # clips synthesised at once: bounds memory at about 60 MB per chunk


@dataclass(frozen=True)
class BandDataset:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.train_x.shape[1]


def cache_key(task: TaskConfig, band: Band) -> str:
    spec = {
        "version": DATA_VERSION,
        "task": to_dict(task),
        "band": {"center_hz": band.center_hz, "width_hz": band.width_hz},
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _seed(key: str, split: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{key}/{split}".encode()).digest()[:8], "little")


def _features(task: TaskConfig, band: Band, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    extract = BandFeatures(task, band)
    xs, ys = [], []
    for start in range(0, n, _CHUNK):
        clips = synthesize(task, band, min(_CHUNK, n - start), generator)
        with torch.no_grad():
            xs.append(extract(clips.waveforms))
        ys.append(clips.labels)
    return torch.cat(xs), torch.cat(ys)


def generate(task: TaskConfig, band: Band) -> BandDataset:
    """Synthesise train and validation sets (independent seeds) and standardise features."""
    key = cache_key(task, band)
    train_x, train_y = _features(task, band, task.n_train, _seed(key, "train"))
    val_x, val_y = _features(task, band, task.n_val, _seed(key, "val"))
    mean, std = train_x.mean(dim=0), train_x.std(dim=0).clamp_min(1e-6)
    return BandDataset(
        train_x=((train_x - mean) / std).contiguous(),
        train_y=train_y,
        val_x=((val_x - mean) / std).contiguous(),
        val_y=val_y,
        n_classes=task.n_angle_bins,
    )


def load_or_generate(task: TaskConfig, band: Band, cache_dir: Path | None) -> BandDataset:
    """The band's dataset from `cache_dir` if present, else generated (and cached there)."""
    if cache_dir is None:
        return generate(task, band)
    path = Path(cache_dir) / f"band-{cache_key(task, band)}.pt"
    if path.exists():
        return BandDataset(**torch.load(path, weights_only=True))
    log.info("generating dataset for band %s into %s", band.name, path)
    data = generate(task, band)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a reader never sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(data.__dict__, tmp)
    os.replace(tmp, path)
    return data
