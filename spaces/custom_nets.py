"""Your own model for `spaces/custom_model.yaml`: any `build(input_shape, n_classes, **settings)`
returning a torch.nn.Module whose output is logits of shape (batch, n_classes).

`input_shape` is one clip's features without the batch dimension: with `features: frames`,
(channels, bins, frames), where the channels are each mic's log power, then the cos and the
sin of each mic's phase against mic 0; with `features: averaged`, one vector. The settings
are the other keys of `training.model` (and of `space.model`, which searches them).
"""

from __future__ import annotations

import torch
from torch import nn


class FrameAttention(nn.Module):
    """Each frame's map through a small MLP, then a learned weighting of the frames (frames
    hit by a reflection or noise can count less), then the classes."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, width: int, dropout: float):
        super().__init__()
        channels, bins, _ = input_shape
        self.frame = nn.Sequential(nn.Linear(channels * bins, width), nn.LayerNorm(width), nn.ReLU(),
                                   nn.Dropout(dropout))
        self.score = nn.Linear(width, 1)
        self.classify = nn.Linear(width, n_classes)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        frames = maps.permute(0, 3, 1, 2).flatten(2)  # (batch, frames, channels * bins)
        embedded = self.frame(frames)
        weights = torch.softmax(self.score(embedded), dim=1)
        return self.classify((weights * embedded).sum(dim=1))


def build(input_shape: tuple[int, ...], n_classes: int, width: int = 64, dropout: float = 0.1) -> nn.Module:
    return FrameAttention(input_shape, n_classes, width, dropout)
