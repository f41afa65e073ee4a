"""The MLP over frame-averaged band features: the first model, and the one a study file that names none trains."""

from __future__ import annotations

import math

from torch import nn


def build_mlp(input_shape: tuple[int, ...], n_classes: int, hidden: int, dropout: float) -> nn.Module:
    """Two hidden layers; BatchNorm after the first keeps SGD stable across feature scales. A
    feature map (frames) is flattened first."""
    flatten = [nn.Flatten()] if len(input_shape) > 1 else []
    return nn.Sequential(
        *flatten,
        nn.Linear(math.prod(input_shape), hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )
