"""The CUDA path, where a GPU is present (skipped elsewhere; CI has none): the built-in networks
train on the device with their data moved there once per trial, and the memory measurements
cover what a step holds. Needs only torch and torchaudio, so it runs on a bare GPU machine:

    python -m pytest tests/test_cuda.py
"""

from __future__ import annotations

import pytest
import torch
from test_optimizers import small_problem

from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import generate
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.models import MODELS, ModelConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("name", list(MODELS))
def test_each_network_trains_on_cuda_with_its_data_on_the_device(name: str) -> None:
    config = TrainConfig(optimizer="adam", lr=1e-2, epochs=2, batch_size=32, model=ModelConfig(name=name))
    data = generate(TaskConfig(n_train=256, n_val=128, clip_samples=2048), Band(name="1000", center_hz=1000,
                    width_hz=300), features=config.model.feature_kind)
    result = train(config, data, device="cuda")
    assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in result.history)
    assert result.dynamics["summary.cuda_max_allocated_bytes"] >= data.train_x.nbytes + data.val_x.nbytes


def test_cuda_peak_covers_the_step() -> None:
    data, batch = small_problem(), 64
    result = train(TrainConfig(optimizer="adam", lr=0.01, epochs=2, batch_size=batch), data, device="cuda")
    summary = result.dynamics
    held = summary["summary.memory_step_peak_bytes"] + data.train_x.nbytes  # the data set lives on the device
    assert summary["summary.cuda_max_allocated_bytes"] >= held
    assert all(e["cuda_max_allocated_bytes"] >= held for e in result.history)
