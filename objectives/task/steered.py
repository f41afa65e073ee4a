"""Steered responses per STFT bin: SRP-PHAT's and MUSIC's spectra over a circle of directions.

For a far-field source in direction θ, mic m hears the band's bin of frequency f with the phase
2π f (p_m·u) / c (u the unit vector towards θ), so the steering vector is a_m = exp(j 2π f p_m·u / c).
Per bin, from the clip's frames x_t (one complex value per mic):

- SRP-PHAT: a^H R_w a / M², R_w = mean_t w_t w_t^H of the frames whitened to unit magnitude per
  mic; 1 where every frame's phases match the direction exactly.
- MUSIC: -log(|E_n^H a|² / |a|²), E_n the M - 1 eigenvectors of R = mean_t x_t x_t^H with the
  smallest eigenvalues (one source): large where a lies in the signal subspace.

Summed over bins, these are what MUSIC and SRP-PHAT maximise (pyroomacoustics.doa, whose MUSIC
sums exp of the second); a network on the per-bin maps can weigh bins and the two methods.
The directions are the class width's steps around the whole circle, from half a step: the
class centres first (all of them on a planar array; on a line, whose span is 180 degrees,
the first half, the second mirroring them).
"""

from __future__ import annotations

import math

import torch

from objectives.task.array import ArrayConfig
from objectives.task.geometry import plane_wave_delays

_FLOOR = 1e-6  # MUSIC's |E_n^H a|² / |a|² floor: at most 13.8 on the log scale


def circle_angles(class_width_deg: float) -> torch.Tensor:
    """Degrees: (i + 0.5) * width for i in 0 .. 360 / width - 1."""
    steps = round(360.0 / class_width_deg)
    return (torch.arange(steps, dtype=torch.float64) + 0.5) * class_width_deg


def steering_vectors(array: ArrayConfig, freqs_hz: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """a_m(f, θ) = exp(j 2π f p_m·u(θ) / c), shape (bins, angles, mics), complex128."""
    lead_s = -plane_wave_delays(array, angles_deg)  # (angles, mics): how early each mic hears it
    return torch.exp(2j * math.pi * freqs_hz.to(torch.float64)[:, None, None] * lead_s[None])


def steered_responses(spec: torch.Tensor, steering: torch.Tensor) -> torch.Tensor:
    """(batch, mics, bins, frames) spectra and (bins, angles, mics) steering -> (batch, 2, bins, angles):
    channel 0 SRP-PHAT, channel 1 MUSIC, per bin, float32."""
    x = spec.to(torch.complex128).permute(0, 2, 3, 1)  # (batch, bins, frames, mics)
    frames, mics = x.shape[-2:]
    white = x / (x.abs() + 1e-12)
    covariance_white = white.transpose(-1, -2) @ white.conj() / frames  # (batch, bins, mics, mics)
    srp = torch.einsum("fam,bfmn,fan->bfa", steering.conj(), covariance_white, steering).real / mics**2
    covariance = x.transpose(-1, -2) @ x.conj() / frames
    # Hermitian by construction up to rounding; eigh reads the lower triangle.
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    noise = vectors[..., : mics - 1]  # (batch, bins, mics, mics - 1)
    projection = torch.einsum("fam,bfmk->bfak", steering.conj(), noise).abs().pow(2).sum(-1) / mics
    music = -torch.log(projection.clamp_min(_FLOOR))
    return torch.stack([srp, music], dim=1).float()
