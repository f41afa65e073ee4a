"""How a training run talks to the outside: a reporter called once per epoch.

The training loop knows nothing of Optuna, Ray or MLflow. A reporter may stop the run
early by raising `StopTraining` (the search service uses it for pruning).
"""

from __future__ import annotations

from typing import Protocol

# What the built-in loop reports every epoch that a study can optimise (objectives/train/loop.py),
# and which way is better.
OBJECTIVE_METRICS = {"val_accuracy": "maximize", "val_loss": "minimize", "val_angle_error_deg": "minimize",
                     "train_loss": "minimize"}


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
