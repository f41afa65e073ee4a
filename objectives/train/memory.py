"""Memory accounting of a training step: the bytes its tensors occupy, by role.

- parameters and gradients: the storages of the trainable parameters and of their `.grad`;
- optimizer state: every tensor the optimizer keeps between steps (`state_tensors`);
- activations: the tensors the step's forward pass saves for backward, seen through
  `torch.autograd.graph.saved_tensors_hooks`; the model's own tensors (parameters, BatchNorm's
  running statistics) are not activations and are left out.

Bytes are counted per storage (`untyped_storage()`), once however many tensors view it. A step
holds the state carried in from earlier steps plus its activations until backward frees them,
then the state after its update; its total is parameters + gradients + the larger of the two.
The figures are maxima over the measured steps: each epoch's first two and then one in `every`
(a measured step costs about 50 us, a small model's step 1 ms). That misses no peak of this
loop: the activations depend on the batch size alone, fixed within an epoch, and every
optimizer here allocates or drops state at an epoch's first step only. On CUDA,
`torch.cuda.max_memory_allocated` (everything the allocator handed out, the data set included)
is read at each epoch's last step, its peak reset at the epoch's start.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn


def storage_bytes(tensors: Iterable[torch.Tensor], exclude: frozenset[int] = frozenset()) -> int:
    """Bytes of the distinct storages under `tensors`, less those whose data pointer is in `exclude`."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(size for pointer, size in storages.items() if pointer not in exclude)


def state_tensors(optimizer: Any) -> Iterator[torch.Tensor]:
    """Every tensor the optimizer keeps between steps: its per-parameter `state` (torch's buffers
    and step counters, SVRG's snapshot, full gradient and swap buffer, the Adam->SGD switch's
    active phase) and tensors it holds as attributes (the switch's step-length sums)."""
    for state in optimizer.state.values():
        yield from (t for t in state.values() if isinstance(t, torch.Tensor))
    yield from (t for t in vars(optimizer).values() if isinstance(t, torch.Tensor))


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


class MemoryMeter:
    """Measures the steps of one training run; the loop calls its hooks every step."""

    def __init__(self, model: nn.Module, optimizer: Any, device: torch.device, every: int):
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer, self.every = optimizer, every
        self.cuda_device = device if device.type == "cuda" else None
        self.model_storages = frozenset(t.untyped_storage().data_ptr()
                                        for t in (*model.parameters(), *model.buffers()))
        self.params_bytes = storage_bytes(self.parameters)
        self.saved: dict[int, int] = {}  # this step's saved storages: data pointer -> bytes
        self.state_carried = 0  # state bytes after the previous update
        self.step, self.steps = 0, 0  # of this epoch
        self.measuring = False
        self.epoch = {"activations": 0, "step_peak": 0}
        self.run = {"grads": 0, "state": 0, "activations": 0, "step_peak": 0}
        self.cuda_epoch, self.cuda_peak = 0, 0

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    def begin_epoch(self, steps: int) -> None:
        self.step, self.steps, self.epoch = 0, steps, {"activations": 0, "step_peak": 0}
        if self.cuda_device is not None:
            torch.cuda.reset_peak_memory_stats(self.cuda_device)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Around the step's own forward pass: notes what it saves for backward (on measured steps)."""
        self.measuring = self.step < 2 or self.step % self.every == 0
        self.saved = {}
        hooks: AbstractContextManager = (torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)
                                         if self.measuring else nullcontext())
        with hooks:
            yield

    def after_step(self) -> None:
        """After the update."""
        self.step += 1
        if self.step == self.steps and self.cuda_device is not None:
            self.cuda_epoch = torch.cuda.max_memory_allocated(self.cuda_device)
            self.cuda_peak = max(self.cuda_peak, self.cuda_epoch)
        if not self.measuring:
            return
        activations = sum(size for pointer, size in self.saved.items() if pointer not in self.model_storages)
        grads = storage_bytes(p.grad for p in self.parameters if p.grad is not None)
        state = storage_bytes(state_tensors(self.optimizer), self.model_storages)
        step_peak = self.params_bytes + grads + max(self.state_carried + activations, state)
        self.state_carried = state
        for figures in (self.epoch, self.run):
            figures["activations"] = max(figures["activations"], activations)
            figures["step_peak"] = max(figures["step_peak"], step_peak)
        self.run["grads"], self.run["state"] = max(self.run["grads"], grads), max(self.run["state"], state)

    def end_epoch(self) -> dict[str, float]:
        metrics = {"memory_state_bytes": float(self.state_carried),
                   **{f"memory_{name}_bytes": float(value) for name, value in self.epoch.items()}}
        if self.cuda_device is not None:
            metrics["cuda_max_allocated_bytes"] = float(self.cuda_epoch)
        return metrics

    def summary(self) -> dict[str, float]:
        """Maxima over the run's steps, named `summary.*` like the dynamics'."""
        values = {"memory_params_bytes": float(self.params_bytes),
                  **{f"memory_{name}_bytes": float(value) for name, value in self.run.items()}}
        if self.cuda_device is not None:
            values["cuda_max_allocated_bytes"] = float(self.cuda_peak)
        return {f"summary.{key}": value for key, value in values.items()}


class NoMemory:
    """Measures nothing: the loop without measurements (benchmarks compare the two)."""

    def begin_epoch(self, steps: int) -> None: ...
    def after_step(self) -> None: ...

    @contextmanager
    def recording(self) -> Iterator[None]:
        yield

    def end_epoch(self) -> dict[str, float]:
        return {}

    def summary(self) -> dict[str, float]:
        return {}
