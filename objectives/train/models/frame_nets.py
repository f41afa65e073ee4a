"""Networks over per-frame feature maps (channels, bins, frames): the phase-map CNN and the CRNN.

Both see each STFT frame on its own first (or each run of `frame_pool` frames, averaged: a
network's cost grows with the frames it sees): convolutions across the band's bins of the map
(the microphones' log power and the cos and sin of their phase against mic 0 as channels), as
Chakrabarty & Habets's CNN does across the microphones of a phase map (arXiv 1705.00919). The
CNN then gives class logits per frame and averages them over the frames; the CRNN runs a GRU
over the frames' embeddings.
"""

from __future__ import annotations

import torch
from torch import nn


def pool_frames(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Each run of `size` frames (the last axis) averaged, a shorter last run over its own frames:
    `nn.AvgPool2d((1, size), ceil_mode=True)` as a mean over a reshaped axis, cheaper on CPU."""
    frames = maps.shape[-1]
    whole = frames // size * size
    pooled = maps[..., :whole].unflatten(-1, (frames // size, size)).mean(-1)
    if whole < frames:
        pooled = torch.cat([pooled, maps[..., whole:].mean(-1, keepdim=True)], dim=-1)
    return pooled


class FrameEncoder(nn.Module):
    """(batch, channels, bins, frames) -> (batch, frames / frame_pool, hidden): each run of
    `frame_pool` frames averaged, its map through `layers` convolutions across bins (BatchNorm,
    ReLU), then a dense layer (ReLU, dropout). Dropout acts on the `hidden` units, as in the MLP:
    on the flattened maps (channels x bins per frame, 14 times more units at 3000 Hz) its random
    mask was the largest single cost of a training step."""

    def __init__(self, input_shape: tuple[int, ...], channels: int, layers: int, kernel: int, hidden: int,
                 dropout: float, frame_pool: int):
        super().__init__()
        self.frame_pool = frame_pool
        if len(input_shape) != 3:
            raise ValueError(f"expects per-frame features (channels, bins, frames), got shape {input_shape}")
        in_channels, bins, _ = input_shape
        convs: list[nn.Module] = []
        for layer in range(layers):
            convs += [nn.Conv1d(in_channels if layer == 0 else channels, channels, kernel, padding=kernel // 2),
                      nn.BatchNorm1d(channels), nn.ReLU()]
        self.convs = nn.Sequential(*convs)
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(channels * bins, hidden), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        maps = pool_frames(maps, self.frame_pool)
        batch, channels, bins, frames = maps.shape
        per_frame = maps.permute(0, 3, 1, 2).reshape(batch * frames, channels, bins)
        return self.dense(self.convs(per_frame)).reshape(batch, frames, -1)


class PhaseMapCNN(nn.Module):
    """Class logits per frame from its map, averaged over the frames."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, channels: int, layers: int, kernel: int,
                 hidden: int, dropout: float, frame_pool: int):
        super().__init__()
        self.encoder = FrameEncoder(input_shape, channels, layers, kernel, hidden, dropout, frame_pool)
        self.classify = nn.Linear(hidden, n_classes)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encoder(maps)).mean(dim=1)


class CRNN(nn.Module):
    """Per-frame embeddings, a GRU over the frames, class logits from its last state."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, channels: int, layers: int, kernel: int,
                 hidden: int, dropout: float, frame_pool: int):
        super().__init__()
        self.encoder = FrameEncoder(input_shape, channels, layers, kernel, hidden, dropout, frame_pool)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.classify = nn.Linear(hidden, n_classes)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(self.encoder(maps))
        return self.classify(last[-1])
