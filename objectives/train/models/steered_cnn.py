"""A CNN over the steered responses (channels, bins, directions): convolutions around the circle.

Every (channel, bin) of the map is an input channel of 1-D convolutions along the direction axis,
wrapping around the circle; a last 1x1 convolution gives one logit per direction, and the first
`n_classes` directions are the classes (objectives/task/steered.py lists them in that order).
The same weights look at every direction, as MUSIC and SRP-PHAT do: the network learns how to
weigh the bins and the two methods and what a peak looks like, not each direction anew.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


class CircularConv(nn.Module):
    """Conv1d whose input wraps around: the output has as many directions as the input, for any kernel."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.pad = (kernel // 2, (kernel - 1) // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        directions = x.shape[-1]
        if max(self.pad) <= directions:
            return self.conv(functional.pad(x, self.pad, mode="circular"))
        # A kernel wider than the circle wraps more than once, which functional.pad refuses (indexing is ~7 % slower).
        index = torch.arange(-self.pad[0], directions + self.pad[1], device=x.device) % directions
        return self.conv(x[..., index])


class SteeredResponseCNN(nn.Module):
    """`layers` circular convolutions of `channels` (BatchNorm, ReLU, dropout), then one logit per direction."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, channels: int, layers: int, kernel: int,
                 dropout: float):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"expects steered responses (channels, bins, directions), got shape {input_shape}")
        maps, bins, directions = input_shape
        if n_classes > directions:
            raise ValueError(f"{n_classes} classes but only {directions} directions in the map")
        self.n_classes = n_classes
        blocks: list[nn.Module] = []
        for layer in range(layers):
            blocks += [CircularConv(maps * bins if layer == 0 else channels, channels, kernel),
                       nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout(dropout)]
        self.blocks = nn.Sequential(*blocks)
        self.logit = nn.Conv1d(channels, 1, 1)

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        per_direction = self.logit(self.blocks(responses.flatten(1, 2)))  # (batch, 1, directions)
        return per_direction[:, 0, : self.n_classes]
