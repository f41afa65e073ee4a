"""Microphone array geometry and far-field plane-wave delays."""

from __future__ import annotations

import torch

from objectives.config import SPEED_OF_SOUND, ArrayConfig


def mic_positions(array: ArrayConfig) -> torch.Tensor:
    """Microphone positions in metres, shape (n_mics, 2), centred on the origin."""
    offsets = (torch.arange(array.n_mics, dtype=torch.float64) - (array.n_mics - 1) / 2) * array.spacing_m
    return torch.stack([offsets, torch.zeros_like(offsets)], dim=1)


def plane_wave_delays(array: ArrayConfig, angles_deg: torch.Tensor) -> torch.Tensor:
    """Arrival time of a far-field plane wave at each mic relative to the origin, in seconds.

    The source direction is `angle` degrees from the array axis (x). A mic lying towards
    the source hears the wave earlier, so its delay is negative. Shape (batch, n_mics).
    """
    theta = torch.deg2rad(angles_deg.to(torch.float64))
    direction = torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)  # (batch, 2)
    return -(direction @ mic_positions(array).T) / SPEED_OF_SOUND


def angle_classes(n_bins: int) -> torch.Tensor:
    """Centre angle in degrees of each class: equal-width bins over 0-180."""
    width = 180.0 / n_bins
    return (torch.arange(n_bins, dtype=torch.float64) + 0.5) * width
