"""Memory accounting of a training step against counts from first principles, on the default model
(objectives/train/models/mlp.py with the default settings: hidden 128, dropout 0.1) on CPU."""

from __future__ import annotations

import pytest
import torch
from test_optimizers import small_problem

from objectives.train.config import TrainConfig
from objectives.train.loop import TrainResult, train
from objectives.train.memory import storage_bytes
from objectives.train.models import MODELS, ModelConfig
from objectives.train.optim import OPTIMIZERS

BATCH = 64
DATA = small_problem()  # 512 clips of 12 features, 4 classes: 8 steps an epoch
(F,), C, H, TENSORS = DATA.input_shape, DATA.n_classes, MODELS["mlp"].defaults["hidden"], 8
# Linear(F, H), BatchNorm1d(H) (weight, bias), Linear(H, H), Linear(H, C): 8 tensors.
P = (F * H + H) + 2 * H + (H * H + H) + (H * C + C)

# Bytes each optimizer keeps, for P float32 parameters in 8 tensors. torch's Adam, AdamW, RMSprop
# and Adagrad keep a float32 step counter per tensor: 4 bytes x 8 tensors = 32.
STATE_BYTES = {
    "sgd": 4 * P,  # the momentum buffer (default momentum 0.9)
    "adam": 8 * P + 32,  # first and second moments
    "adamw": 8 * P + 32,
    "rmsprop": 4 * P + 32,  # square average (momentum 0 keeps no buffer)
    "adagrad": 4 * P + 32,  # sum of squares
    "svrg": 12 * P,  # snapshot weights, full gradient at the snapshot, swap buffer
    # Adam's until the switch, plus two float32 scalars (the step-length sums) from Adam's last epoch on
    "adam_sgd": 8 * P + 32 + 8,
}


def activation_bytes(batch: int, dropout: bool) -> int:
    """What torch (CPU) saves for backward in the default model's forward pass and loss, parameters
    and BatchNorm's running statistics aside, in bytes:

    Linear 1: its input, the batch (B x F float32); BatchNorm: its input (B x H) and the batch's
    mean and inverse standard deviation (H each); ReLU: its output (B x H); dropout: its scaled
    Bernoulli mask (B x H float32, as `input * mask` saves the mask) and Linear 2 its output, the
    input of Linear 2 (B x H); without dropout Linear 2 saves the ReLU's output instead, already
    counted; ReLU 2: its output (B x H), which Linear 3 saves as its input too (one storage);
    log-softmax: its output (B x C), which the NLL loss saves as well; the loss: the targets
    (B int64) and the total weight (one float32)."""
    per_clip = F + 3 * H + C + (2 * H if dropout else 0)
    return 4 * batch * per_clip + 4 * 2 * H + 8 * batch + 4


def _train(optimizer: str, epochs: int = 2, **kwargs) -> TrainResult:
    config = TrainConfig(optimizer=optimizer, lr=0.01, epochs=epochs, batch_size=BATCH, **kwargs)
    return train(config, DATA, device="cpu")


def test_storages_are_counted_once() -> None:
    tensor = torch.zeros(10, 3)
    assert storage_bytes([tensor, tensor[2:], tensor.view(30), tensor.t()]) == 4 * 30
    assert storage_bytes([tensor, torch.zeros(5, dtype=torch.float64)]) == 4 * 30 + 8 * 5
    assert storage_bytes([tensor], exclude=frozenset({tensor.untyped_storage().data_ptr()})) == 0


def test_every_optimizer_has_a_state_count() -> None:
    assert set(STATE_BYTES) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_memory_of_a_step_matches_first_principles(name: str) -> None:
    summary = _train(name, epochs=6 if name == "adam_sgd" else 2).dynamics  # the switch is at epoch 5
    assert summary["summary.memory_params_bytes"] == 4 * P  # float32
    assert summary["summary.memory_grads_bytes"] == 4 * P
    assert summary["summary.memory_state_bytes"] == STATE_BYTES[name]
    assert summary["summary.memory_activations_bytes"] == activation_bytes(BATCH, dropout=True)
    # every step after the first holds parameters, gradients, the full state and a batch's activations
    assert summary["summary.memory_step_peak_bytes"] == 8 * P + STATE_BYTES[name] + activation_bytes(BATCH, True)


@pytest.mark.parametrize("batch_size", [16, 100])
def test_activations_follow_the_batch_and_dropout(batch_size: int) -> None:
    config = TrainConfig(optimizer="sgd", lr=0.01, epochs=1, batch_size=batch_size,
                         model=ModelConfig(settings={"dropout": 0.0}))
    summary = train(config, DATA, device="cpu").dynamics
    assert summary["summary.memory_activations_bytes"] == activation_bytes(batch_size, dropout=False)


def test_the_figures_differ_across_optimizers_as_their_state_does() -> None:
    states = {}
    for name, params in (("sgd", {"momentum": 0.0}), ("momentum", {}), ("adam", {}), ("svrg", {})):
        result = _train("sgd" if name == "momentum" else name, optimizer_params=params)
        states[name] = result.dynamics
    state = {name: summary["summary.memory_state_bytes"] for name, summary in states.items()}
    assert state["sgd"] == 0
    assert state["adam"] - 32 == 2 * state["momentum"]  # two moments against one buffer, less step counters
    assert state["svrg"] == 3 * state["momentum"]
    peaks = {name: summary["summary.memory_step_peak_bytes"] for name, summary in states.items()}
    assert {name: peak - peaks["sgd"] for name, peak in peaks.items()} == state  # all else is equal


def test_the_state_per_epoch_follows_the_switch_from_adam_to_sgd() -> None:
    history = _train("adam_sgd", epochs=6).history
    adam, sgd, sums = 8 * P + 32, 4 * P, 8
    assert [e["memory_state_bytes"] for e in history] == [adam, adam, adam, adam + sums, sgd + sums, sgd + sums]
    assert all(e["memory_activations_bytes"] == activation_bytes(BATCH, True) for e in history)
