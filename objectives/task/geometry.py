"""Microphone array geometry, far-field plane-wave delays and the angle classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from objectives.task.array import SPEED_OF_SOUND, ArrayConfig

if TYPE_CHECKING:
    from objectives.task.config import TaskConfig


def mic_positions(array: ArrayConfig) -> torch.Tensor:
    """Microphone positions in metres, shape (n_mics, 2), in channel order."""
    return torch.tensor(array.positions(), dtype=torch.float64)


def plane_wave_delays(array: ArrayConfig, angles_deg: torch.Tensor) -> torch.Tensor:
    """Arrival time of a far-field plane wave at each mic relative to the origin, in seconds.

    The source direction is `angle` degrees counter-clockwise from the x axis. A mic lying
    towards the source hears the wave earlier, so its delay is negative. Shape (batch, n_mics).
    """
    theta = torch.deg2rad(angles_deg.to(torch.float64))
    direction = torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)  # (batch, 2)
    return -(direction @ mic_positions(array).T) / SPEED_OF_SOUND


def angle_classes(task: TaskConfig) -> torch.Tensor:
    """Centre angle in degrees of each class: equal-width bins over the array's span."""
    return (torch.arange(task.n_angle_bins, dtype=torch.float64) + 0.5) * task.class_width_deg


def angle_labels(angles_deg: torch.Tensor, task: TaskConfig) -> torch.Tensor:
    """The class of each angle; the top edge of a 0-180 span (exactly 180) joins the last class."""
    wrapped = torch.remainder(angles_deg.to(torch.float64), 360.0)
    labels = (wrapped / task.class_width_deg).long()
    return torch.clamp(labels, max=task.n_angle_bins - 1)


def angle_error_deg(predicted: torch.Tensor, true: torch.Tensor, span_deg: float) -> torch.Tensor:
    """Absolute angle difference in degrees; around the circle when the span is 360."""
    error = (predicted.to(torch.float64) - true.to(torch.float64)).abs()
    return torch.minimum(error, 360.0 - error) if span_deg >= 360.0 else error


def class_error_deg(predicted: torch.Tensor, true: torch.Tensor, n_classes: int, span_deg: float) -> torch.Tensor:
    """Angle error between the centres of the predicted and the true classes, in degrees."""
    width = span_deg / n_classes  # both centres carry the same half-width offset: it cancels
    return angle_error_deg(predicted * width, true * width, span_deg)
