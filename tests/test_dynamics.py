"""The dynamics measurements: exact against naive per-parameter computations."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import deterministic
from test_optimizers import small_problem

from objectives.train.config import Target, TrainConfig
from objectives.train.dynamics import Dynamics
from objectives.train.flat import FlatParameters
from objectives.train.loop import train
from objectives.train.models import ModelConfig, build_model

HIDDEN = 16


def test_flat_parameters_are_the_models_storage() -> None:
    model = build_model(ModelConfig(settings={"hidden": 4}), (5,), 3)
    flat = FlatParameters(model)
    assert flat.numel == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert flat.params[: model[0].weight.numel()].eq(model[0].weight.reshape(-1)).all()
    F.cross_entropy(model(torch.randn(8, 5)), torch.randint(0, 3, (8,))).backward()
    offset = 0
    for p in model.parameters():  # backward accumulated into the flat buffer, in place
        assert p.grad.data_ptr() == flat.grads.data_ptr() + 4 * offset
        assert torch.equal(flat.grads[offset : offset + p.numel()], p.grad.reshape(-1))
        offset += p.numel()
    assert flat.grads.abs().sum() > 0


def _run_measured(every: int, steps: int = 8, seed: int = 0) -> tuple[dict, dict, dict]:
    """`steps` SGD steps on a small net, measured by Dynamics(every, seed) and naively per parameter:
    the meter's epoch metrics and summary, and the naive per-step norms, cosines, step lengths
    (with the meter's drawn steps)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(settings={"hidden": 8, "dropout": 0.0}), (6,), 3)
    flat = FlatParameters(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    meter = Dynamics(flat, torch.device("cpu"), target_accuracy=0.5, every=every, seed=seed)
    x, y = torch.randn(8 * steps, 6), torch.randint(0, 3, (8 * steps,))
    start = [p.detach().clone() for p in model.parameters()]
    naive = {"norms": [], "cosines": [None], "steps": []}
    previous = None
    meter.begin_epoch(steps)
    for i in range(steps):
        before = [p.detach().clone() for p in model.parameters()]
        meter.start()
        loss = F.cross_entropy(model(x[8 * i : 8 * i + 8]), y[8 * i : 8 * i + 8])
        meter.lap(0)
        flat.zero_grad()
        loss.backward()
        meter.after_backward()
        grads = [p.grad.clone() for p in model.parameters()]
        naive["norms"].append(math.sqrt(sum(g.pow(2).sum().item() for g in grads)))
        if previous is not None:
            dot = sum((g * h).sum().item() for g, h in zip(grads, previous))
            naive["cosines"].append(dot / (naive["norms"][-1] * naive["norms"][-2]))
        previous = grads
        optimizer.step()
        meter.after_update(0.0)
        naive["steps"].append(math.sqrt(sum((p - b).pow(2).sum().item() for p, b in zip(model.parameters(), before))))
    metrics = meter.end_epoch(1, val_accuracy=0.6, full_passes=0)
    naive["draws"] = meter.draws.tolist()
    naive["displacement"] = math.sqrt(sum((p - s).pow(2).sum().item() for p, s in zip(model.parameters(), start)))
    return metrics, meter.summary(), naive


def test_measurements_on_every_step_equal_naive_per_parameter_computations() -> None:
    metrics, summary, naive = _run_measured(every=1)
    norms, cosines, steps = naive["norms"], naive["cosines"][1:], naive["steps"]
    assert metrics["grad_norm"] == pytest.approx(sum(norms) / 8, rel=1e-5)
    assert metrics["grad_cosine"] == pytest.approx(sum(cosines) / 7, rel=1e-4, abs=1e-6)
    assert metrics["path_length"] == pytest.approx(sum(steps), rel=1e-5)
    assert metrics["displacement"] == pytest.approx(naive["displacement"], rel=1e-5)
    assert metrics["path_efficiency"] == pytest.approx(naive["displacement"] / sum(steps), rel=1e-5)
    assert metrics["time_forward_ms"] > 0 and metrics["time_update_ms"] > 0
    assert summary["summary.grad_norm_first"] == pytest.approx(norms[0], rel=1e-5)
    assert summary["summary.grad_norm_last"] == pytest.approx(norms[-1], rel=1e-5)
    assert summary["summary.epochs_to_target"] == 1


def _weighted(values: list[float], draws: list[int], sizes: list[int]) -> float:
    """Each drawn step's value times the size of its block."""
    return sum(m * values[d] for m, d in zip(sizes, draws))


def test_sampled_measurements_use_exactly_the_drawn_steps() -> None:
    # 9 steps: the run's first alone, then blocks of 3, 3 and 2; each drawn value stands for its block.
    runs = {seed: _run_measured(every=3, steps=9, seed=seed) for seed in range(4)}
    assert len({tuple(naive["draws"]) for _, _, naive in runs.values()}) > 1  # the seed moves the draw
    assert deterministic(_run_measured(every=3, steps=9, seed=1)[0]) == deterministic(runs[1][0])
    sizes = [1, 3, 3, 2]
    for metrics, summary, naive in runs.values():
        draws = naive["draws"]
        assert draws[0] == 0 and [(d - 1) // 3 for d in draws[1:]] == [0, 1, 2]
        assert metrics["grad_norm"] == pytest.approx(_weighted(naive["norms"], draws, sizes) / 9, rel=1e-5)
        # the cosine over the 8 steps with a predecessor (step 0, alone in its block, has none)
        cosine = _weighted(naive["cosines"], draws[1:], sizes[1:]) / 8
        assert metrics["grad_cosine"] == pytest.approx(cosine, rel=1e-4, abs=1e-6)
        assert metrics["path_length"] == pytest.approx(_weighted(naive["steps"], draws, sizes), rel=1e-5)
        assert metrics["displacement"] == pytest.approx(naive["displacement"], rel=1e-5)
        assert summary["summary.grad_norm_first"] == pytest.approx(naive["norms"][0], rel=1e-5)
        assert summary["summary.grad_norm_last"] == pytest.approx(naive["norms"][8], rel=1e-5)


def test_a_trial_reports_dynamics_per_epoch_and_summarises_them() -> None:
    config = TrainConfig(optimizer="svrg", lr=0.05, epochs=4, batch_size=32,
                         model=ModelConfig(settings={"hidden": HIDDEN}),
                         target=Target(fraction_of_best=None, accuracy=0.5))
    result = train(config, small_problem(), device="cpu")
    for key in ("grad_norm", "grad_norm_cv", "grad_cosine", "displacement", "path_length", "path_efficiency",
                "memory_state_bytes", "memory_step_peak_bytes",
                "time_forward_ms", "time_backward_ms", "time_update_ms", "full_grad_ms"):
        assert all(key in epoch for epoch in result.history), key
    summary = result.dynamics
    assert summary["summary.full_grad_passes"] == 4  # one snapshot per epoch
    assert {"summary.grad_cosine_early", "summary.grad_cosine_middle", "summary.grad_cosine_late"} <= set(summary)
    assert 0 < summary["summary.path_efficiency"] <= 1
    reached = [e["epoch"] for e in result.history if e["val_accuracy"] >= 0.5]
    assert summary.get("summary.epochs_to_target") == (reached[0] if reached else None)
    assert train(config, small_problem(), device="cpu", dynamics=False).dynamics == {}
    relative = dataclasses.replace(config, target=Target(fraction_of_best=0.5))
    assert "summary.epochs_to_target" not in train(relative, small_problem(), device="cpu").dynamics
