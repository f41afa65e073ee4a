"""A model's parameters and gradients as views into two contiguous buffers.

With one flat vector for the weights and one for the gradients, the per-step measurements
(gradient norm, consecutive-gradient cosine, step length) are a few vector operations
whatever the number of layers, and clearing the gradients is one `zero_()`. The optimizers
see ordinary parameters: each is a view of its slice, updated in place as always.
"""

from __future__ import annotations

import torch
from torch import nn


class FlatParameters:
    """Re-home every parameter of `model` (and its gradient) into one flat buffer each.

    Autograd accumulates into an existing `.grad` in place, so after `zero_grad()` a
    backward pass writes straight into `grads`. Never set a `.grad` to None afterwards
    (`optimizer.zero_grad()` would): the loop clears gradients with `zero_grad()` here.
    """

    def __init__(self, model: nn.Module):
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.params = torch.cat([p.detach().reshape(-1) for p in self.parameters])
        self.grads = torch.zeros_like(self.params)
        offset = 0
        for p in self.parameters:
            size = p.numel()
            p.data = self.params[offset : offset + size].view_as(p)
            p.grad = self.grads[offset : offset + size].view_as(p)
            offset += size

    def zero_grad(self) -> None:
        self.grads.zero_()

    @property
    def numel(self) -> int:
        return self.params.numel()
