"""Shared fixtures: a tiny study YAML that trains in seconds, a PostgreSQL server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from services import PostgresServer, postgres_bindir

TINY: dict[str, Any] = {
    "search": {
        "trials_per_band": 4,
        "workers": 2,
        "sampler": {"name": "tpe", "n_startup_trials": 2},
        "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
        "seed": 0,
    },
    "task": {"n_train": 400, "n_val": 200, "clip_samples": 2048},
    "training": {"epochs": 3, "model": {"hidden": 32}},
    "bands": [{"name": "500", "center_hz": 500}, {"name": "3000", "center_hz": 3000}],
    "space": {
        "optimizer": {
            "sgd": {"lr": {"low": 1e-3, "high": 0.3, "log": True}, "momentum": {"low": 0.5, "high": 0.95}},
            "adam": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "beta1": {"low": 0.8, "high": 0.95}},
        },
        "batch_size": {"choices": [32, 64]},
        "warmup_epochs": {"low": 0, "high": 1},
    },
}


def tiny_config(**changes: Any) -> dict[str, Any]:
    """A deep copy of TINY with top-level sections updated (dicts merged one level deep)."""
    data = copy.deepcopy(TINY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


def deterministic(values: dict[str, float]) -> dict[str, float]:
    """Training metrics without wall times and memory, which no seed fixes."""
    return {k: v for k, v in values.items() if "time_" not in k and "full_grad_ms" not in k and "memory" not in k
            and k not in ("step_ms", "epoch_seconds")}


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # the file's order is the study's (choices)
    return path


@pytest.fixture
def tiny_yaml(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "tiny.yaml", TINY)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of the test module's own (tests/services.py); skipped only where
    PostgreSQL's server programs are not installed."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl): install Debian's postgresql (.ci/run does)")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()

