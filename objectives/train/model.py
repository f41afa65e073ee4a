"""The angle classifier: a small MLP over band features."""

from __future__ import annotations

from torch import nn

from objectives.train.config import ModelConfig


def build_model(n_features: int, n_classes: int, config: ModelConfig) -> nn.Module:
    """Two hidden layers; BatchNorm after the first keeps SGD stable across feature scales."""
    return nn.Sequential(
        nn.Linear(n_features, config.hidden),
        nn.BatchNorm1d(config.hidden),
        nn.ReLU(),
        nn.Dropout(config.dropout),
        nn.Linear(config.hidden, config.hidden),
        nn.ReLU(),
        nn.Linear(config.hidden, n_classes),
    )
