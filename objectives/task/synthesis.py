"""Synthetic recordings: a band-limited source at angle θ reaching the array, plus sensor noise.

The source spectrum is drawn in the frequency domain and each microphone's channel gets
the exact plane-wave delay as a phase ramp exp(-j 2π f τ_m), so no fractional-delay
filter blurs the inter-mic phase. Noise is white and scaled to an in-band SNR: white
noise spread over the whole spectrum would understate the SNR the model actually faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from objectives.task.geometry import angle_labels, plane_wave_delays

if TYPE_CHECKING:
    from objectives.task.config import Band, TaskConfig


@dataclass(frozen=True)
class Clips:
    waveforms: torch.Tensor  # (n, n_mics, clip_samples) float32
    angles_deg: torch.Tensor  # (n,) float64, the true direction
    labels: torch.Tensor  # (n,) int64 angle class
    snr_db: torch.Tensor  # (n,) float64; NaN where unknown (recordings)


def in_band(task: TaskConfig, band: Band, n_samples: int) -> torch.Tensor:
    """Mask of the rFFT bins of an `n_samples` signal that lie inside the band."""
    freqs = torch.fft.rfftfreq(n_samples, d=1.0 / task.sample_rate, dtype=torch.float64)
    return (freqs >= band.low_hz) & (freqs <= band.high_hz)


def draw_snr(task: TaskConfig, n: int, generator: torch.Generator) -> torch.Tensor:
    snr_low, snr_high = task.snr_db
    return snr_low + (snr_high - snr_low) * torch.rand(n, generator=generator, dtype=torch.float64)


def add_sensor_noise(
    clean: torch.Tensor, task: TaskConfig, band: Band, snr_db: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Unit-power `clean` (n, mics, samples) plus white noise at the given in-band SNR, as float32."""
    # White noise of total power σ² puts σ²·fraction in the band: pick σ² so that the
    # in-band SNR equals the drawn one.
    mask = in_band(task, band, clean.shape[-1])
    noise_power = 1.0 / (10 ** (snr_db / 10) * (mask.sum().item() / mask.numel()))
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32)
    return clean.float() + noise * noise_power.sqrt().float()[:, None, None]


def unit_power(signal: torch.Tensor) -> torch.Tensor:
    """Scale each clip (n, mics, samples) to unit mean power."""
    return signal / signal.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()


def synthesize(task: TaskConfig, band: Band, n: int, generator: torch.Generator) -> Clips:
    """Draw `n` clips of `band` at uniform random angles and in-band SNRs."""
    freqs = torch.fft.rfftfreq(task.clip_samples, d=1.0 / task.sample_rate, dtype=torch.float64)
    mask = in_band(task, band, task.clip_samples)
    angles = torch.rand(n, generator=generator, dtype=torch.float64) * task.array.span_deg
    snr_db = draw_snr(task, n, generator)

    # Only in-band bins carry signal: build the phase ramps there and leave the rest zero.
    band_freqs = freqs[mask]
    source = torch.complex(
        torch.randn(n, band_freqs.numel(), generator=generator, dtype=torch.float64),
        torch.randn(n, band_freqs.numel(), generator=generator, dtype=torch.float64),
    )
    delays = plane_wave_delays(task.array, angles)  # (n, mics)
    phase_ramp = torch.exp(-2j * math.pi * delays[:, :, None] * band_freqs[None, None, :])
    spectrum = torch.zeros(n, task.array.n_mics, freqs.numel(), dtype=torch.complex128)
    spectrum[:, :, mask] = source[:, None, :] * phase_ramp
    clean = unit_power(torch.fft.irfft(spectrum, n=task.clip_samples))
    waveforms = add_sensor_noise(clean, task, band, snr_db, generator)
    return Clips(waveforms, angles, angle_labels(angles, task), snr_db)
