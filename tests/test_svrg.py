"""SVRG is correct: linear convergence where SGD stalls, and the variance-reduced gradient is
exactly what the method says it is, on a network with dropout and BatchNorm too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from objectives.train.optim.svrg import SVRG
from objectives.train.passes import GradientPasses

LAMBDA = 0.1  # L2 strength: strongly convex with a modest condition number


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _logistic_problem(n: int = 128, d: int = 5):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=generator)
    logits = x @ torch.randn(2, d, generator=generator).T
    y = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)

    def objective(w: torch.Tensor) -> torch.Tensor:  # mean logistic loss + lambda/2 ||w||^2
        return F.cross_entropy(x @ w.reshape(2, d).T, y) + LAMBDA / 2 * w.pow(2).sum()

    w = torch.zeros(2 * d)
    for _ in range(20):  # Newton's method: quadratic convergence to the unique optimum
        gradient = torch.autograd.functional.jacobian(objective, w)
        w = w - torch.linalg.solve(torch.autograd.functional.hessian(objective, w), gradient)
    assert torch.autograd.functional.jacobian(objective, w).norm() < 1e-14
    return x, y, objective, objective(w).item()


def _gaps(name: str, epochs: int, lr: float = 0.5, batch: int = 8) -> list[float]:
    """Optimality gap after each epoch, the L2 term as weight decay, driven like the loop."""
    x, y, objective, optimum = _logistic_problem()
    model = nn.Linear(x.shape[1], 2, bias=False)
    nn.init.zeros_(model.weight)
    passes = GradientPasses(model, x, y, clip_norm=None, replay=True, mask_seed=0)
    passes.batch_size = batch
    optimizer = (SVRG(model.parameters(), lr=lr, weight_decay=LAMBDA) if name == "svrg"
                 else torch.optim.SGD(model.parameters(), lr=lr, weight_decay=LAMBDA))
    shuffle, gaps = torch.Generator().manual_seed(1), []
    for epoch in range(1, epochs + 1):
        passes.epoch = epoch
        order = torch.randperm(len(x), generator=shuffle)
        for start in range(0, len(x) - batch + 1, batch):
            loss = passes.loss(order[start : start + batch])
            model.zero_grad()
            loss.backward()
            optimizer.step(passes) if name == "svrg" else optimizer.step()
        with torch.no_grad():
            gaps.append(objective(model.weight.reshape(-1)).item() - optimum)
    return gaps


def test_svrg_converges_linearly_where_sgd_stalls(float64) -> None:
    svrg, sgd = _gaps("svrg", epochs=30), _gaps("sgd", epochs=30)
    assert min(svrg[-5:]) < 1e-9, svrg
    # geometric: every 3 epochs the gap shrinks at least tenfold, until rounding (1e-13)
    for before, after in zip(svrg[:-3], svrg[3:]):
        assert after < 0.1 * before or before < 1e-13, svrg
    # SGD with the same constant step stalls at its noise floor
    assert min(sgd) > 1e-4, sgd


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    x, y = torch.randn(96, 6), torch.randint(0, 3, (96,))
    model = _net().train()
    passes = GradientPasses(model, x, y, clip_norm=None, replay=True, mask_seed=7)
    passes.epoch, passes.batch_size = 1, 16
    params = list(model.parameters())
    return model, passes, params, SVRG(params, lr=0.1)


def _buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b.clone() for b in model.buffers()]


def _main_pass(model: nn.Module, passes: GradientPasses, index: torch.Tensor) -> None:
    loss = passes.loss(index)
    model.zero_grad()
    loss.backward()


def test_right_after_a_snapshot_the_reduced_gradient_is_the_full_gradient(float64) -> None:
    model, passes, params, svrg = _setup()
    before = _buffers(model)
    svrg.take_snapshot(passes)
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers())), "full pass moved BatchNorm stats"
    full = [svrg.state[p]["full_grad"].clone() for p in params]
    _main_pass(model, passes, torch.arange(16, 32))
    after_step_pass = _buffers(model)  # the step's own pass updates BatchNorm once, as always
    assert not torch.equal(after_step_pass[0], before[0])
    svrg.variance_reduce(passes)
    assert all(torch.equal(p.grad, mu) for p, mu in zip(params, full))
    assert all(torch.equal(a, b) for a, b in zip(after_step_pass, model.buffers())), "replay moved BatchNorm stats"


def test_without_the_same_dropout_masks_the_difference_does_not_cancel(float64) -> None:
    # The control for the test above: it can fail, and fails for the right reason.
    model, passes, params, svrg = _setup()
    svrg.take_snapshot(passes)
    _main_pass(model, passes, torch.arange(16, 32))
    passes.rng = torch.get_rng_state()  # replay other masks
    svrg.variance_reduce(passes)
    assert not all(torch.allclose(p.grad, svrg.state[p]["full_grad"]) for p in params)


def test_reduced_gradient_averaged_over_the_data_is_the_full_gradient(float64) -> None:
    model, passes, params, svrg = _setup()
    svrg.take_snapshot(passes)  # at w~
    with torch.no_grad():  # move to some w != w~
        for p in params:
            p.add_(0.1 * torch.randn_like(p))
    stats = _buffers(model)
    expected = passes.full_gradient(params)  # grad F(w)
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    total = [torch.zeros_like(p) for p in params]
    with torch.random.fork_rng():
        torch.manual_seed(passes.mask_seed)  # the full pass's masks, batch by batch
        for index in passes.full_batches():
            _main_pass(model, passes, index)
            svrg.variance_reduce(passes)
            torch._foreach_add_(total, [p.grad * (len(index) / len(passes.x)) for p in params])
    for got, want in zip(total, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
    assert not torch.allclose(expected[0], svrg.state[params[0]]["full_grad"])  # w really moved


def test_snapshot_interval_in_steps_and_epochs() -> None:
    calls = []

    class Hooks:
        epoch = 1

        def full_gradient(self, params):
            calls.append(self.epoch)
            return [torch.zeros_like(p) for p in params]

        def batch_gradient(self, params):
            return [torch.zeros_like(p) for p in params]

        def clip(self):
            pass

    for interval, epochs, expected in (("epoch", [1, 1, 1, 2, 2, 3], [1, 2, 3]), (2, [1, 1, 1, 2, 2], [1, 1, 2])):
        calls.clear()
        p = nn.Parameter(torch.zeros(3))
        svrg, hooks = SVRG([p], lr=0.1, interval=interval), Hooks()
        for epoch in epochs:
            hooks.epoch, p.grad = epoch, torch.zeros(3)
            svrg.step(hooks)
        assert calls == expected, interval
