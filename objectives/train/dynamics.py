"""How the optimizer behaved: measured on flat vectors, reported per epoch, summarised at
the end of the run.

Wall time is split into forward, backward and update every step (the update excludes
SVRG's full-gradient passes, which are timed per pass); on CUDA each phase boundary
synchronises. The vector measurements (flat gradient g and weights theta,
objectives/train/flat.py: a handful of vector operations, no per-parameter loop) run on a
stratified sample: each epoch is cut into blocks of `every` consecutive steps
(`training.dynamics_every`, default 4; the run's first step, Adam's longest, is a block of
its own; the last block may be shorter) and one step s is drawn uniformly in each block,
from a generator seeded with the trial's seed (not torch's: training never sees it).

- step s measures ||g||^2, g . g_prev and the step length ||dtheta||;
- step s - 1 keeps g and ||g||^2, as does each epoch's last step (for the next epoch's
  first block); the run's first and last steps give grad_norm_first and grad_norm_last.

A drawn value stands for its block of m steps: sum(m * x_s) estimates the sum over the
epoch's steps without bias (each step is drawn with probability 1/m), with variance
sum(m^2 * the block's variance of x), and is exact when every is 1. Path length is that sum
of step lengths; grad_norm and grad_cosine are such sums over the number of steps, or of
steps with a predecessor. The scalars stay on the device and are read back once per epoch.
Sampling keeps the measurements within a few per cent of a small model's step (see README,
"Dynamics overhead").

Per epoch: grad_norm (mean) and grad_norm_cv, grad_cosine, displacement ||theta_t - theta_0||,
path_length, path_efficiency (displacement / path length: 1 is a straight line),
time_*_ms per step, full_grad_ms per pass. The summary (`summary.*`) adds the first and last
gradient norm, the cosine in the early, middle and late thirds of the epochs and the first
epoch reaching an absolute target accuracy (none is logged for a relative one: the report
resolves it over the re-runs). Memory is measured apart (objectives/train/memory.py). The gradient is the
mini-batch gradient before clipping and, for SVRG, before variance reduction: the same
quantity for every optimizer.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from objectives.train.flat import FlatParameters

FORWARD, BACKWARD, UPDATE = range(3)
_PHASES = ("forward", "backward", "update")


def _numpy(scalars: list[torch.Tensor]) -> np.ndarray:
    """Device scalars as one float64 array, in one transfer."""
    return torch.stack(scalars).double().cpu().numpy() if scalars else np.zeros(0)


def _phases(values: list[float]) -> dict[str, float]:
    """Mean of per-epoch values over the early, middle and late thirds of the epochs."""
    parts = np.array_split(np.asarray(values, dtype=float), 3)
    return {name: float(np.nanmean(part)) for name, part in zip(("early", "middle", "late"), parts)
            if len(part) and not np.isnan(part).all()}


def draw_blocks(steps: int, every: int, rng: np.random.Generator, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One step drawn uniformly in each block, and each block's size: the first `first` steps
    alone, then blocks of `every` consecutive steps (the last one possibly shorter)."""
    starts = np.concatenate([np.arange(min(first, steps)), np.arange(first, steps, every)]).astype(int)
    sizes = np.diff(np.append(starts, steps))
    return starts + rng.integers(sizes), sizes


def _weighted_cv(values: np.ndarray, weights: np.ndarray) -> float:
    """Standard deviation over mean of `values`, each standing for `weights` steps."""
    if not len(values):
        return math.nan
    mean = weights @ values / weights.sum()
    return float(math.sqrt(weights @ (values - mean) ** 2 / weights.sum()) / mean)


class Dynamics:
    """Measures one training run; the loop calls the step hooks in order every step."""

    def __init__(self, flat: FlatParameters, device: torch.device, target_accuracy: float | None, every: int = 4,
                 seed: int = 0):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.flat, self.device = flat, device
        self.target_accuracy, self.every = target_accuracy, every
        self.rng = np.random.default_rng(seed % 2**64)  # its own stream: training never sees it
        self.cuda = device.type == "cuda"
        self.theta0 = flat.params.clone()
        self.theta_before = torch.empty_like(flat.params)
        self.prev_grad = torch.empty_like(flat.grads)
        self.prev_norm_sq: torch.Tensor | None = None  # ||g||^2 of the last kept step
        self.first_norm_sq: torch.Tensor | None = None  # of the run's first step
        self.last_norm_sq: torch.Tensor | None = None  # of the last epoch's last step
        self.t = 0  # steps of the run so far
        self.measuring = False
        self.draws, self.sizes = np.zeros(0, int), np.zeros(0, int)  # this epoch's drawn steps, block sizes
        self.plan: list[bool] = []  # per step of the epoch (and one past it): drawn?
        self.last_step = -1  # of this epoch
        self.pair_count = 0  # this epoch's steps with a predecessor
        self.norms_sq: list[torch.Tensor] = []  # this epoch's, on the device, one per drawn step
        self.pairs: list[torch.Tensor] = []  # g . g_prev, ||g_prev||^2, ||g||^2 of each paired drawn step
        self.paired: list[bool] = []  # per drawn step: had a predecessor
        self.steps_sq: list[torch.Tensor] = []  # this epoch's ||dtheta||^2
        self.step = 0
        self.clock = 0.0
        self.full_seen = 0.0
        self.epoch_times = [0.0, 0.0, 0.0]
        self.norms: list[np.ndarray] = []  # per epoch, of the drawn steps
        self.weights: list[np.ndarray] = []  # per epoch, the block size each drawn norm stands for
        self.cosines: list[float] = []  # per epoch
        self.path = 0.0
        self.totals = {"steps": 0, "forward": 0.0, "backward": 0.0, "update": 0.0}
        self.full_passes = 0
        self.full_seconds = 0.0
        self.epochs_to_target: int | None = None
        self._now = self._synchronized_now if self.cuda else time.perf_counter  # called ~5 times a step

    def _synchronized_now(self) -> float:
        torch.cuda.synchronize(self.device)
        return time.perf_counter()

    # -- every step, in this order ---------------------------------------------------

    def begin_epoch(self, steps: int) -> None:
        # The run's first step (Adam's is several times the usual length) is a block of its own.
        self.draws, self.sizes = draw_blocks(steps, self.every, self.rng, first=int(self.t == 0))
        self.plan, self.last_step = [False] * (steps + 1), steps - 1
        for s in self.draws:
            self.plan[s] = True
        self.pair_count = steps - (self.prev_norm_sq is None)  # the run's first step has none
        self.norms_sq, self.pairs, self.paired, self.steps_sq = [], [], [], []
        self.step, self.epoch_times = 0, [0.0, 0.0, 0.0]

    def start(self) -> None:
        self.clock = self._now()

    def lap(self, phase: int) -> None:
        now = self._now()
        self.epoch_times[phase] += now - self.clock
        self.clock = now

    def after_backward(self) -> None:
        self.lap(BACKWARD)
        self.measuring = self.plan[self.step]
        last = self.step == self.last_step
        keep = self.plan[self.step + 1] or last  # a drawn step's predecessor is always kept
        if self.measuring or keep:
            g = self.flat.grads
            norm_sq = torch.dot(g, g)
            if self.t == 0:
                self.first_norm_sq = norm_sq
            if self.measuring:
                self.norms_sq.append(norm_sq)
                self.paired.append(self.prev_norm_sq is not None)
                if self.prev_norm_sq is not None:
                    self.pairs += (torch.dot(g, self.prev_grad), self.prev_norm_sq, norm_sq)
                self.theta_before.copy_(self.flat.params)
            if keep:
                self.prev_grad.copy_(g)
                self.prev_norm_sq = norm_sq
            if last:
                self.last_norm_sq = norm_sq
            self.clock = self._now()  # the measurement is not part of any phase

    def after_update(self, full_seconds: float) -> None:
        """`full_seconds`: the loop's running total of full-gradient time, excluded here."""
        self.lap(UPDATE)
        self.epoch_times[UPDATE] -= full_seconds - self.full_seen
        self.full_seen = full_seconds
        if self.measuring:
            delta = self.theta_before.sub_(self.flat.params)
            self.steps_sq.append(torch.dot(delta, delta))
        self.step += 1
        self.t += 1

    # -- per epoch and at the end ----------------------------------------------------

    def end_epoch(self, epoch: int, val_accuracy: float, full_passes: int) -> dict[str, float]:
        sizes = self.sizes.astype(float)  # what each drawn step stands for
        norms = np.sqrt(_numpy(self.norms_sq))
        pairs = _numpy(self.pairs).reshape(-1, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            cosines = pairs[:, 0] / np.sqrt(pairs[:, 1] * pairs[:, 2])
        paired = np.asarray(self.paired, dtype=bool)
        self.cosines.append(float(sizes[paired] @ cosines / self.pair_count) if self.pair_count else math.nan)
        if len(norms):
            self.norms.append(norms)
            self.weights.append(sizes)
        self.path += float(sizes @ np.sqrt(_numpy(self.steps_sq)))
        displacement = torch.dist(self.flat.params, self.theta0).item()
        passes = full_passes - self.full_passes
        epoch_full = self.full_seen - self.full_seconds
        self.full_passes, self.full_seconds = full_passes, self.full_seen
        steps = max(self.step, 1)
        for name, seconds in zip(_PHASES, self.epoch_times):
            self.totals[name] += seconds
        self.totals["steps"] += self.step
        if self.target_accuracy is not None and self.epochs_to_target is None and val_accuracy >= self.target_accuracy:
            self.epochs_to_target = epoch
        metrics = {
            "grad_norm": float(sizes @ norms / steps) if len(norms) else math.nan,
            "grad_norm_cv": _weighted_cv(norms, sizes),
            "grad_cosine": self.cosines[-1],
            "displacement": displacement,
            "path_length": self.path,
            "path_efficiency": displacement / self.path if self.path > 0 else math.nan,
            **{f"time_{name}_ms": 1e3 * s / steps for name, s in zip(_PHASES, self.epoch_times)},
        }
        if passes:
            metrics["full_grad_ms"] = 1e3 * epoch_full / passes
        return {key: value for key, value in metrics.items() if math.isfinite(value)}

    def summary(self) -> dict[str, float]:
        """End-of-run values, named `summary.*` so they never mix with per-epoch series."""
        norms = np.concatenate(self.norms) if self.norms else np.zeros(0)
        weights = np.concatenate(self.weights) if self.weights else np.zeros(0)
        edge = [math.sqrt(n.item()) if n is not None else math.nan for n in (self.first_norm_sq, self.last_norm_sq)]
        steps = max(self.totals["steps"], 1)
        displacement = torch.dist(self.flat.params, self.theta0).item()
        values: dict[str, float] = {
            "grad_norm_first": edge[0],
            "grad_norm_last": edge[1],
            "grad_norm_cv": _weighted_cv(norms, weights),
            **{f"grad_cosine_{phase}": value for phase, value in _phases(self.cosines).items()},
            "displacement": displacement,
            "path_length": self.path,
            "path_efficiency": displacement / self.path if self.path > 0 else math.nan,
            **{f"time_{name}_ms": 1e3 * self.totals[name] / steps for name in _PHASES},
        }
        if self.full_passes:
            values["full_grad_ms"] = 1e3 * self.full_seconds / self.full_passes
            values["full_grad_passes"] = float(self.full_passes)
        if self.epochs_to_target is not None:
            values["epochs_to_target"] = float(self.epochs_to_target)
        return {f"summary.{key}": value for key, value in values.items() if math.isfinite(value)}


class NoDynamics:
    """Measures nothing: the same loop without the measurements (benchmarks compare the two)."""

    def begin_epoch(self, steps: int) -> None: ...
    def start(self) -> None: ...
    def lap(self, phase: int) -> None: ...
    def after_backward(self) -> None: ...
    def after_update(self, full_seconds: float) -> None: ...

    def end_epoch(self, epoch: int, val_accuracy: float, full_passes: int) -> dict[str, float]:
        return {}

    def summary(self) -> dict[str, float]:
        return {}
