"""Classical DOA baselines on the network's validation (test) clips: MUSIC and SRP-PHAT
from pyroomacoustics.doa, searched over a grid of exactly the class centres and scored
like the network (accuracy, mean absolute angle error between class centres).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from objectives.task.array import SPEED_OF_SOUND
from objectives.task.config import METHODS, Band, BaselineSettings, TaskConfig
from objectives.task.dataset import split_clips
from objectives.task.features import band_bins
from objectives.task.geometry import angle_classes, angle_labels, class_error_deg, mic_positions


def _stft(waveforms: torch.Tensor, n_fft: int) -> np.ndarray:
    """(clips, mics, samples) -> (clips, mics, bins, frames): the framing of the network's features,
    every frame inside the clip (reflect padding would give the edge frames time-reversed signal,
    whose inter-mic phase has the opposite sign)."""
    clips, mics, samples = waveforms.shape
    spec = torch.stft(waveforms.reshape(-1, samples).double(), n_fft, hop_length=n_fft // 2, center=False,
                      window=torch.hann_window(n_fft, dtype=torch.float64), return_complex=True)
    return spec.reshape(clips, mics, *spec.shape[-2:]).numpy()


def predict(task: TaskConfig, band: Band, method: str, waveforms: torch.Tensor) -> torch.Tensor:
    """The class each clip's estimated direction falls in, by MUSIC or SRP-PHAT on the band's bins."""
    import pyroomacoustics as pra  # heavy (~1 s): loaded only when the baselines run

    grid = np.radians(angle_classes(task).numpy())
    locator = pra.doa.algorithms[METHODS[method]](
        mic_positions(task.array).numpy().T, task.sample_rate, task.n_fft, c=SPEED_OF_SOUND, num_src=1,
        azimuth=grid,
    )
    bins = band_bins(task, band).numpy()
    estimates = []
    for spectrum in _stft(waveforms, task.n_fft):
        locator.locate_sources(spectrum, freq_bins=bins)
        estimates.append(math.degrees(locator.azimuth_recon[0]))
    return angle_labels(torch.tensor(estimates), task)


def score(task: TaskConfig, band: Band, settings: BaselineSettings, cache_dir: Path | None = None
          ) -> dict[str, float]:
    """`baseline.<method>.accuracy` and `.angle_error_deg` on the first `max_clips` test clips."""
    chunks, kept = [], 0
    for clips in split_clips(task, band, "val", cache_dir):
        chunks.append(clips)
        kept += len(clips.labels)
        if kept >= settings.max_clips:
            break
    waveforms = torch.cat([clips.waveforms for clips in chunks])[: settings.max_clips]
    labels = torch.cat([clips.labels for clips in chunks])[: settings.max_clips]
    metrics = {"baseline.test_clips": float(len(labels))}
    for method in settings.methods:
        metrics.update(method_scores(task, method, predict(task, band, method, waveforms), labels))
    return metrics


def method_scores(task: TaskConfig, method: str, predicted: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """`baseline.<method>.accuracy` and `.angle_error_deg` of its classes for clips of those labels."""
    return {f"baseline.{method}.accuracy": (predicted == labels).double().mean().item(),
            f"baseline.{method}.angle_error_deg": class_error_deg(
                predicted, labels, task.n_angle_bins, task.array.span_deg).mean().item()}
