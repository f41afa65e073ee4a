"""What the driver sends a worker (TrialJob) and what comes back (TrialOutcome): plain data,
so the driver loads without torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.objective import Objective


@dataclass(frozen=True)
class TrialJob:
    storage_url: str
    study_name: str
    trial_id: int
    trial_number: int
    pruner: dict[str, Any]
    tracking_uri: str
    run_id: str
    train_config: dict[str, Any]
    threads: int = 1
    objective: Objective = field(default_factory=Objective)


@dataclass
class TrialOutcome:
    state: str  # complete | pruned | diverged | failed
    value: float | None = None  # on the study's first objective
    further: list[float] = field(default_factory=list)  # on the others, in a multi-objective study
    epochs: int = 0
    train_seconds: float = 0.0
    trial_seconds: float = 0.0
    error: str | None = None
    unsent: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # epochs the driver logs
    node: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
