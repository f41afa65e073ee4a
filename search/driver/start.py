"""The first step of a launch, light enough to take before the driver loads: refuse a model
that cannot work, then start joining Ray in the background while the rest loads and the study
is prepared (search/ray_connection.py `join`)."""

from __future__ import annotations

from search import ray_connection
from search.config import StudyConfig


def start(config: StudyConfig, address: str | None = None, num_cpus: int | None = None) -> bool:
    """Check the study's model on each band's features, then join Ray in the background (or a new
    local cluster); True when this call began the join. The check loads torch, and it does so
    before Ray's threads start: loading torch beside a joining Ray can abort the process (oneMKL:
    "Cannot load libtorch_cpu.so"). A study with the user's own objective function trains no
    model of ours: no check, and the driver loads no torch."""
    if config.objective.built_in:
        from search.model_check import check_models

        check_models(config)
    return ray_connection.join(address, num_cpus, py_modules=config.user_modules())
