"""SVRG: stochastic variance-reduced gradient (Johnson & Zhang, NIPS 2013).

Each outer iteration takes a snapshot w~ of the weights and the full-data gradient
mu = grad F(w~). Each inner step on a mini-batch B then moves along

    v = grad f_B(w) - grad f_B(w~) + mu,

an unbiased estimate of grad F(w) whose variance vanishes as w and w~ approach the optimum,
so a constant step converges linearly on strongly convex problems where SGD stalls at a
noise floor. Cost: two gradient evaluations per step plus one full pass per outer iteration
(three per sample per epoch with a snapshot every epoch).

The gradients it needs beyond `.grad` come from the training loop's hooks (see
objectives/train/passes.py for how BatchNorm and dropout are kept consistent between them).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from objectives.train.passes import StepHooks


class SVRG(torch.optim.Optimizer):
    """SVRG with an outer interval of one epoch (`"epoch"`) or `m` steps.

    State per parameter: the snapshot weights, the full gradient at the snapshot, and a
    swap buffer that holds the current weights while the snapshot's gradient is taken.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, interval: int | str = "epoch",
                 weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.interval = interval
        self.snapshot_epoch: int | None = None
        self.steps_since_snapshot = 0

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _buffers(self, name: str) -> list[torch.Tensor]:
        return [self.state[p][name] for p in self._params()]

    def snapshot_due(self, epoch: int) -> bool:
        if self.snapshot_epoch is None:
            return True
        if self.interval == "epoch":
            return epoch != self.snapshot_epoch
        return self.steps_since_snapshot >= self.interval

    @torch.no_grad()
    def take_snapshot(self, hooks: StepHooks) -> None:
        """w~ <- w and mu <- the full-data gradient at w."""
        params = self._params()
        full = hooks.full_gradient(params)
        for p in params:
            if not self.state[p]:
                self.state[p].update(snapshot=torch.empty_like(p), full_grad=torch.empty_like(p),
                                     swap=torch.empty_like(p))
        torch._foreach_copy_(self._buffers("snapshot"), params)
        torch._foreach_copy_(self._buffers("full_grad"), full)
        self.snapshot_epoch, self.steps_since_snapshot = hooks.epoch, 0

    @torch.no_grad()
    def variance_reduce(self, hooks: StepHooks) -> None:
        """Turn `.grad` = grad f_B(w) into grad f_B(w) - grad f_B(w~) + mu, in place."""
        params, swap = self._params(), self._buffers("swap")
        torch._foreach_copy_(swap, params)
        torch._foreach_copy_(params, self._buffers("snapshot"))
        try:
            at_snapshot = hooks.batch_gradient(params)
        finally:
            torch._foreach_copy_(params, swap)
        grads = [p.grad for p in params]
        torch._foreach_sub_(grads, at_snapshot)
        torch._foreach_add_(grads, self._buffers("full_grad"))

    @torch.no_grad()
    def step(self, hooks: StepHooks) -> None:  # type: ignore[override]
        if self.snapshot_due(hooks.epoch):
            self.take_snapshot(hooks)
        self.variance_reduce(hooks)
        hooks.clip()
        for group in self.param_groups:
            params = group["params"]
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, grads, alpha=-group["lr"])
        self.steps_since_snapshot += 1
