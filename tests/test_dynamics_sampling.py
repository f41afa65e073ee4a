"""The sampled dynamics (`dynamics_every` > 1) are unbiased: over many seeds of the draw their
mean equals the exact value (`dynamics_every: 1`), and the path length's spread is the one
the README states."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from meters import Meters
from test_optimizers import small_problem

from objectives.train import loop
from objectives.train.config import TrainConfig
from objectives.train.dynamics import Dynamics
from objectives.train.models import ModelConfig

EPOCHS, STEPS, EVERY = 2, 34, 4  # blocks: 1 (the run's first step), 8 x 4, 1; then 8 x 4, 2


class _Vectors:
    """Stands in for FlatParameters: the test writes the gradient and the weights."""

    def __init__(self, size: int):
        self.params, self.grads = torch.zeros(size, dtype=torch.float64), torch.zeros(size, dtype=torch.float64)


class _Shifted:
    """A draw that takes offset j % m in every block of m steps: over j = 0 .. lcm - 1 each
    block's offsets are uniform, so the mean of those runs is the estimator's expectation."""

    def __init__(self, j: int):
        self.j = j

    def integers(self, sizes: np.ndarray) -> np.ndarray:
        return self.j % sizes


def _sequence() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A deterministic run of EPOCHS x STEPS steps, atypical where a fixed draw would look:
    the first step 8x the usual length and each epoch's first step 3x, the gradient turning by
    a wider angle on every 4th step. Returns gradients, steps, step lengths, turn angles."""
    rng = np.random.default_rng(7)
    n = EPOCHS * STEPS
    t = np.arange(n)
    lengths = 1 + 0.3 * np.sin(t)
    lengths[t % STEPS == 0], lengths[0] = 3.0, 8.0
    turns = np.where(t % 4 == 0, 0.9, rng.uniform(0.2, 0.6, n))
    angles = np.cumsum(turns)
    grads = np.zeros((n, 8))
    grads[:, 0], grads[:, 1] = np.cos(angles), np.sin(angles)
    grads *= (1 + 0.5 * (t % 4 == 1))[:, None]
    directions = rng.normal(size=(n, 8))
    steps = lengths[:, None] * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return grads, steps, lengths, turns


def _measure(every: int, seed: int, grads: np.ndarray, steps: np.ndarray, draw=None) -> tuple[list[dict], dict]:
    vectors = _Vectors(grads.shape[1])
    meter = Dynamics(vectors, torch.device("cpu"), target_accuracy=1.0, every=every, seed=seed)
    meter.rng = draw or meter.rng
    epochs, t = [], 0
    for epoch in range(EPOCHS):
        meter.begin_epoch(STEPS)
        for _ in range(STEPS):
            meter.start()
            vectors.grads.copy_(torch.from_numpy(grads[t]))
            meter.after_backward()
            vectors.params.add_(torch.from_numpy(steps[t]))
            meter.after_update(0.0)
            t += 1
        epochs.append(meter.end_epoch(epoch + 1, 0.0, 0))
    return epochs, meter.summary()


def _figures(runs: list[tuple[list[dict], dict]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path length per run; cosine and gradient norm per run and epoch."""
    path = np.array([summary["summary.path_length"] for _, summary in runs])
    per_epoch = [np.array([[e[key] for e in epochs] for epochs, _ in runs]) for key in ("grad_cosine", "grad_norm")]
    return path, *per_epoch


def test_sampled_estimates_of_a_synthetic_run_are_unbiased() -> None:
    grads, steps, lengths, turns = _sequence()
    path = lengths.sum()
    # per epoch: the mean cosine of each step with the one before (the run's first has none)
    cosines = np.array([np.cos(turns[e * STEPS : (e + 1) * STEPS][1 if e == 0 else 0 :]).mean()
                        for e in range(EPOCHS)])
    norms = np.linalg.norm(grads, axis=1).reshape(EPOCHS, STEPS).mean(axis=1)
    exact = _figures([_measure(1, 0, grads, steps)])
    assert exact[0][0] == pytest.approx(path, rel=1e-9)
    assert exact[1][0] == pytest.approx(cosines, abs=1e-9) and exact[2][0] == pytest.approx(norms, rel=1e-9)

    # The expectation over the draw, taken exactly: it is the exact value.
    expected = [figure.mean(axis=0) for figure in _figures([_measure(EVERY, 0, grads, steps, _Shifted(j))
                                                            for j in range(12)])]
    assert expected[0] == pytest.approx(path, rel=1e-9)
    assert expected[1] == pytest.approx(cosines, abs=1e-9) and expected[2] == pytest.approx(norms, rel=1e-9)

    sampled_path, sampled_cosine, sampled_norm = _figures([_measure(EVERY, seed, grads, steps)
                                                           for seed in range(600)])
    assert abs(sampled_path.mean() / path - 1) <= 0.01
    assert np.abs(sampled_cosine.mean(axis=0) - cosines).max() <= 0.01
    assert np.abs(sampled_norm.mean(axis=0) / norms - 1).max() <= 0.01
    # The spread the README states: Var = sum over blocks of m^2 x the block's variance.
    starts = [0, *range(1, STEPS, EVERY), *range(STEPS, 2 * STEPS, EVERY), 2 * STEPS]
    variance = sum((b - a) ** 2 * lengths[a:b].var() for a, b in zip(starts, starts[1:]))
    assert sampled_path.var() == pytest.approx(variance, rel=0.15)
    # The fixed draw (steps 0, 4, 8, ... of the run) was 25 % long and 0.22 low in the cosine here.
    assert lengths[::EVERY].sum() * EVERY / path - 1 > 0.15
    assert np.cos(turns[EVERY::EVERY]).mean() < cosines.min() - 0.15


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small net: threads only contend
    yield
    torch.set_num_threads(threads)


def test_sampled_estimates_of_a_real_run_are_unbiased(monkeypatch, one_thread) -> None:
    # Adam on 16-step epochs, where the fixed draw (steps 0, 4, 8, ...) was 7 % long and its
    # cosine off by up to 0.12: 300 draws on the same run.
    runs: list[Meters] = []

    def meters(flat, device, target, every, seed):
        runs.append(Meters([Dynamics(flat, device, target, 1, seed)]
                           + [Dynamics(flat, device, target, EVERY, s) for s in range(300)]))
        return runs[-1]

    config = TrainConfig(optimizer="adam", lr=0.01, epochs=6, batch_size=32, model=ModelConfig(settings={"hidden": 16}),
                         dynamics_every=1)
    plain = loop.train(config, small_problem(), device="cpu")
    monkeypatch.setattr(loop, "Dynamics", meters)
    teed = loop.train(config, small_problem(), device="cpu")
    assert [e["train_loss"] for e in teed.history] == [e["train_loss"] for e in plain.history]  # unperturbed
    assert teed.dynamics["summary.path_length"] == plain.dynamics["summary.path_length"]
    (exact, *sampled), (exact_epochs, *sampled_epochs) = runs[0].summaries, runs[0].epochs
    path = np.array([summary["summary.path_length"] for summary in sampled])
    assert abs(path.mean() / exact["summary.path_length"] - 1) <= 0.01
    cosines = np.array([[e["grad_cosine"] for e in history] for history in sampled_epochs])
    error = cosines.mean(axis=0) - [e["grad_cosine"] for e in exact_epochs]
    assert abs(error.mean()) <= 0.01 and np.abs(error).max() <= 0.05  # per epoch: 300 draws of SD 0.15
