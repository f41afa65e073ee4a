"""Synthetic recordings: a band-limited source at angle θ reaching the array, plus sensor noise.

The source spectrum is drawn in the frequency domain and each microphone's channel gets
the exact plane-wave delay as a phase ramp exp(-j 2π f τ_m), so no fractional-delay
filter blurs the inter-mic phase. Noise is white and scaled to an in-band SNR: white
noise spread over the whole spectrum would understate the SNR the model actually faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from objectives.config import Band, TaskConfig
from objectives.geometry import plane_wave_delays


@dataclass(frozen=True)
class Recordings:
    waveforms: torch.Tensor  # (n, n_mics, clip_samples) float32
    angles_deg: torch.Tensor  # (n,) float64, the true direction
    labels: torch.Tensor  # (n,) int64 angle class
    snr_db: torch.Tensor  # (n,) float64


def synthesize(task: TaskConfig, band: Band, n: int, generator: torch.Generator) -> Recordings:
    """Draw `n` clips of `band` at uniform random angles and in-band SNRs."""
    freqs = torch.fft.rfftfreq(task.clip_samples, d=1.0 / task.sample_rate, dtype=torch.float64)
    in_band = (freqs >= band.low_hz) & (freqs <= band.high_hz)
    in_band_fraction = in_band.sum().item() / freqs.numel()

    angles = torch.rand(n, generator=generator, dtype=torch.float64) * 180.0
    labels = torch.clamp((angles / (180.0 / task.n_angle_bins)).long(), max=task.n_angle_bins - 1)
    snr_low, snr_high = task.snr_db
    snr_db = snr_low + (snr_high - snr_low) * torch.rand(n, generator=generator, dtype=torch.float64)

    # Only in-band bins carry signal: build the phase ramps there and leave the rest zero.
    band_freqs = freqs[in_band]
    source = torch.complex(
        torch.randn(n, band_freqs.numel(), generator=generator, dtype=torch.float64),
        torch.randn(n, band_freqs.numel(), generator=generator, dtype=torch.float64),
    )
    delays = plane_wave_delays(task.array, angles)  # (n, mics)
    phase_ramp = torch.exp(-2j * math.pi * delays[:, :, None] * band_freqs[None, None, :])
    spectrum = torch.zeros(n, task.array.n_mics, freqs.numel(), dtype=torch.complex128)
    spectrum[:, :, in_band] = source[:, None, :] * phase_ramp
    clean = torch.fft.irfft(spectrum, n=task.clip_samples)
    clean = clean / clean.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()  # unit power per clip

    # White noise of total power σ² puts σ²·fraction in the band: pick σ² so that the
    # in-band SNR equals the drawn one.
    noise_power = 1.0 / (10 ** (snr_db / 10) * in_band_fraction)
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32)
    waveforms = clean.float() + noise * noise_power.sqrt().float()[:, None, None]
    return Recordings(waveforms, angles, labels, snr_db)
