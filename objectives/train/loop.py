"""The training loop: one band, one configuration, reported epoch by epoch."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from objectives.task.dataset import BandDataset
from objectives.task.geometry import class_error_deg
from objectives.train.config import TrainConfig
from objectives.train.dynamics import FORWARD, Dynamics, NoDynamics
from objectives.train.flat import FlatParameters
from objectives.train.memory import MemoryMeter, NoMemory
from objectives.train.models import build_model
from objectives.train.optim import build_optimizer, optimizer_spec
from objectives.train.optim.schedules import (
    batch_lr_factor,
    ramp_batch_size,
    resolve_schedule,
    schedule_spec,
    warmup_then,
)
from objectives.train.passes import GradientPasses
from objectives.train.reporter import Diverged, NullReporter, Reporter

_EVAL_CHUNK = 4096  # validation clips per forward pass


@dataclass
class TrainResult:
    val_accuracy: float  # after the last epoch: what retraining the config reproduces
    best_val_accuracy: float
    epochs: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    dynamics: dict[str, float] = field(default_factory=dict)  # the `summary.*` values (dynamics, memory)
    model: torch.nn.Module | None = field(default=None, repr=False, compare=False)  # trained, on its device


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, span_deg: float = 180.0) -> dict[str, float]:
    """Mean cross-entropy, accuracy and mean absolute angle error (between class centres,
    as the classical baselines are scored) of `model` on (x, y)."""
    model.eval()
    loss_sum, correct, error_sum = 0.0, 0, 0.0
    for start in range(0, len(x), _EVAL_CHUNK):
        logits = model(x[start : start + _EVAL_CHUNK])
        target = y[start : start + _EVAL_CHUNK]
        predicted = logits.argmax(dim=1)
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (predicted == target).sum().item()
        error_sum += class_error_deg(predicted, target, logits.shape[1], span_deg).sum().item()
    return {"val_loss": loss_sum / len(x), "val_accuracy": correct / len(x), "val_angle_error_deg": error_sum / len(x)}


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The class `model` gives each clip of `x`, in evaluation mode."""
    model.eval()
    return torch.cat([model(x[start : start + _EVAL_CHUNK]).argmax(dim=1) for start in range(0, len(x), _EVAL_CHUNK)])


def train(
    config: TrainConfig,
    data: BandDataset,
    reporter: Reporter | None = None,
    device: torch.device | str | None = None,
    dynamics: bool = True,
) -> TrainResult:
    """Train the angle classifier on `data`; deterministic for a given seed on CPU.

    Calls `reporter.report(epoch, metrics)` after every epoch (it may raise StopTraining);
    raises Diverged when the training loss is no longer finite. `dynamics=False` runs the
    same loop without the optimizer-dynamics and memory measurements (for benchmarks).
    """
    reporter = reporter or NullReporter()
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)  # model init and dropout masks
    shuffle = torch.Generator().manual_seed(config.seed)

    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    val_x, val_y = data.val_x.to(device), data.val_y.to(device)
    model = build_model(config.model, data.input_shape, data.n_classes).to(device)
    flat = FlatParameters(model)
    hooked = optimizer_spec(config.optimizer).hooked
    optimizer = build_optimizer(config.optimizer, flat.parameters, config.lr, config.optimizer_params)
    passes = GradientPasses(model, train_x, train_y, config.clip_norm, replay=hooked, mask_seed=config.seed)
    meter = (Dynamics(flat, device, config.target.accuracy, config.dynamics_every, config.seed)
             if dynamics else NoDynamics())
    memory = MemoryMeter(model, optimizer, device, config.dynamics_every) if dynamics else NoMemory()
    decay = schedule_spec(config.schedule).decay
    decay_params = resolve_schedule(config.schedule, config.schedule_params)

    result = TrainResult(val_accuracy=0.0, best_val_accuracy=0.0, epochs=0, train_seconds=0.0)
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        batch_size = ramp_batch_size(epoch, config.batch_size, config.ramp_from_batch_size, config.ramp_epochs)
        lr_factor = batch_lr_factor(batch_size, config.batch_size, config.lr_reference_batch)
        # Drop the last partial batch: a batch of one breaks BatchNorm and skews the step size.
        steps = len(train_x) // batch_size
        passes.epoch, passes.batch_size = epoch, batch_size
        model.train()
        order = torch.randperm(len(train_x), generator=shuffle).to(device)
        loss_sum = torch.zeros((), device=device)
        meter.begin_epoch(steps)
        memory.begin_epoch(steps)
        steps_started = time.perf_counter()
        for batch in range(steps):
            progress = epoch - 1 + batch / steps, epoch - 1 + (batch + 1) / steps
            lr = lr_factor * warmup_then(decay, *progress, config.epochs, config.warmup_epochs, config.lr, decay_params)
            for group in optimizer.param_groups:
                group["lr"] = lr
            meter.start()
            with memory.recording():
                loss = passes.loss(order[batch * batch_size : (batch + 1) * batch_size])
            meter.lap(FORWARD)
            flat.zero_grad()
            loss.backward()
            meter.after_backward()
            if hooked:
                optimizer.step(passes)
            else:
                passes.clip()
                optimizer.step()
            meter.after_update(passes.full_seconds)
            memory.after_step()
            loss_sum += loss.detach()
        train_loss = loss_sum.item() / steps  # waits for the device, so the steps' time is all in
        epoch_seconds = time.perf_counter() - steps_started
        step_ms = 1e3 * epoch_seconds / steps
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        scores = evaluate(model, val_x, val_y, data.span_deg)
        val_accuracy = scores["val_accuracy"]
        metrics = {"train_loss": train_loss, **scores, "lr": lr, "batch_size": batch_size, "step_ms": step_ms,
                   "epoch_seconds": epoch_seconds,
                   **meter.end_epoch(epoch, val_accuracy, passes.full_passes), **memory.end_epoch()}
        result.history.append({"epoch": epoch, **metrics})
        result.val_accuracy = val_accuracy
        result.best_val_accuracy = max(result.best_val_accuracy, val_accuracy)
        result.epochs = epoch
        result.train_seconds = time.perf_counter() - started
        reporter.report(epoch, metrics)
    result.dynamics = {**meter.summary(), **memory.summary()}
    result.model = model
    return result
