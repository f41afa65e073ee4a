"""How a training run talks to the outside: a reporter called once per epoch.

The training loop knows nothing of Optuna, Ray or MLflow. A reporter may stop the run
early by raising `StopTraining` (the search service uses it for pruning).
"""

from __future__ import annotations

from typing import Protocol

# What the built-in loop reports every epoch that a study can optimise (objectives/train/loop.py),
# and which way is better. step_ms: wall time of one training step, averaged over the epoch (SVRG's
# full-gradient passes and the dynamics measurements included); epoch_seconds: the same steps'
# whole time, one pass over the training set (a smaller batch makes shorter steps, not a shorter
# pass); memory_state_bytes: the optimizer's state carried between steps (objectives/train/memory.py).
OBJECTIVE_METRICS = {"val_accuracy": "maximize", "val_loss": "minimize", "val_angle_error_deg": "minimize",
                     "train_loss": "minimize", "step_ms": "minimize", "epoch_seconds": "minimize",
                     "memory_state_bytes": "minimize"}


class StopTraining(Exception):
    """Raised by a reporter to end training early (for example: the trial is pruned)."""


class Diverged(Exception):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float):
        super().__init__(f"training diverged at epoch {epoch}: loss {loss}")
        self.epoch = epoch
        self.loss = loss


class Reporter(Protocol):
    def report(self, epoch: int, metrics: dict[str, float]) -> None: ...


class NullReporter:
    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        pass
