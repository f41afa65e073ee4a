"""How a trial's train config reads in MLflow: its run name and its params, flat."""

from __future__ import annotations

from typing import Any

# How a trial stopped early is marked: MLflow shows it KILLED, easy to take for FAILED. The mark
# follows the number, where MLflow's narrow run-name column still shows it.
_MARKS = {"pruned": "(pruned)", "diverged": "(pruned: diverged)"}


def run_name(number: int, config: dict[str, Any], outcome: str = "") -> str:
    """Readable in the MLflow run list: `t007 adam lr=3.2e-03 bs=64`; `t007 (pruned) adam ...`
    (or `(pruned: diverged)`) once the trial ended so."""
    mark = f" {_MARKS[outcome]}" if outcome in _MARKS else ""
    return f"t{number:03d}{mark} {config['optimizer']} lr={config['lr']:.1e} bs={config['batch_size']}"


def flat_params(config: dict[str, Any]) -> dict[str, Any]:
    """A train config as MLflow params: the optimizer's hyperparameters under their own names,
    the schedule's as `schedule.<key>`, the model's as `model.<key>`."""
    params = {key: value for key, value in config.items()
              if key not in ("optimizer_params", "schedule_params", "model")}
    params.update(config["optimizer_params"])
    params.update({f"schedule.{key}": value for key, value in config.get("schedule_params", {}).items()})
    params.update({f"model.{key}": value for key, value in config["model"].items()})
    return params
