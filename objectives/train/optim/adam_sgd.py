"""Adam, then SGD with momentum from a chosen epoch (Keskar & Socher 2017, "SWATS", with the
switch point a hyperparameter rather than a trigger).

Adam reaches a good region quickly; SGD with momentum often finishes better. The delicate
part is the learning rate at the hand-over: Adam's step length is set by its rate alone
(the update is normalised per coordinate), SGD's by rate x gradient norm, so Adam's rate is
no guide. During the last Adam epoch we record the length of every step and the gradient
norm it saw, and hand SGD the rate that keeps the mean step length:

    lr_sgd(t) = schedule(t) * scale,   scale = (1 - momentum) * sum ||dtheta|| / sum lr_t ||g_t||

(steady-state momentum SGD moves lr ||g|| / (1 - momentum) per step). The factor is fixed
at the switch, so the schedule (decay, ramp, linear scaling) keeps its shape across it.
SWATS matches the projection of Adam's step on the gradient instead; lengths are always
positive and less noisy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from objectives.train.passes import StepHooks

log = logging.getLogger(__name__)


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


class AdamSGD:
    """One parameter group; the loop writes the scheduled rate into `param_groups[0]['lr']`."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, switch_epoch: int,
                 betas: tuple[float, float], momentum: float, weight_decay: float):
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [{"lr": lr, "params": self.params}]
        self.switch_epoch = switch_epoch
        self.betas = betas
        self.momentum, self.weight_decay = momentum, weight_decay
        self.adam: torch.optim.Adam | None = torch.optim.Adam(
            self.params, lr=lr, betas=betas, weight_decay=weight_decay)
        self.sgd: torch.optim.SGD | None = None
        self.scale: float | None = None  # SGD rate / scheduled rate, fixed at the switch
        # Sums over Adam's last epoch (tensors on the weights' device once steps are recorded):
        self.moved: torch.Tensor | float = 0.0  # of its step lengths ||dtheta||
        self.pushed: torch.Tensor | float = 0.0  # of lr_t * ||g_t||

    @property
    def state(self) -> dict:
        """The active optimizer's state (Adam's moments, then SGD's momentum buffers)."""
        return (self.sgd or self.adam).state

    def state_dict(self) -> dict[str, Any]:
        return {"adam": self.adam.state_dict() if self.adam else None,
                "sgd": self.sgd.state_dict() if self.sgd else None,
                "scale": self.scale, "moved": self.moved, "pushed": self.pushed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Back to a saved phase (the LR range test restores the optimizer it probed)."""
        self.scale, self.moved, self.pushed = state["scale"], state["moved"], state["pushed"]
        lr = self.param_groups[0]["lr"]
        self.adam = self.sgd = None
        if state["adam"] is not None:
            self.adam = torch.optim.Adam(self.params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)
            self.adam.load_state_dict(state["adam"])
        if state["sgd"] is not None:
            self.sgd = torch.optim.SGD(self.params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)
            self.sgd.load_state_dict(state["sgd"])

    def _switch(self) -> None:
        pushed = float(self.pushed)
        self.scale = (1 - self.momentum) * float(self.moved) / pushed if pushed > 0 else 1.0
        self.sgd = torch.optim.SGD(self.params, lr=self.param_groups[0]["lr"] * self.scale,
                                   momentum=self.momentum, weight_decay=self.weight_decay)
        self.adam = None  # frees Adam's moments
        log.info("switched from Adam to SGD: SGD rate = scheduled rate x %.4g", self.scale)

    @torch.no_grad()
    def step(self, hooks: StepHooks) -> None:
        if self.sgd is None and hooks.epoch >= self.switch_epoch:
            self._switch()
        hooks.clip()
        lr = self.param_groups[0]["lr"]
        if self.sgd is not None:
            self.sgd.param_groups[0]["lr"] = lr * self.scale
            self.sgd.step()
            return
        self.adam.param_groups[0]["lr"] = lr
        if hooks.epoch < self.switch_epoch - 1:
            self.adam.step()
            return
        before = [p.detach().clone() for p in self.params]  # transient: the last Adam epoch only
        self.pushed = self.pushed + lr * _norm([p.grad for p in self.params])
        self.adam.step()
        self.moved = self.moved + _norm(torch._foreach_sub(self.params, before))
