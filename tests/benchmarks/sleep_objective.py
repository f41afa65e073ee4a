"""The scale benchmark's instrument: an objective that sleeps a set time per epoch and reports a
score that depends only on the trial's configuration, so every system it runs under does the
same work and only orchestration differs.

    objective: {function: "sleep_objective:run", metric: score, direction: maximize}

The sleep per epoch is $SLEEP_EPOCH_SECONDS (default 0.1), read on the worker.
"""

from __future__ import annotations

import math
import os
import time


def score(config: dict, epoch: int, epochs: int) -> float:
    """Highest at lr = 3e-3 and batch 64, rising with the epochs: a smooth landscape TPE can learn."""
    distance = (math.log10(config["lr"]) + 2.5) ** 2 + (math.log2(config["batch_size"]) - 6) ** 2 / 16
    return (1.0 - math.exp(-3.0 * epoch / epochs)) / (1.0 + distance)


def run(config: dict, data, reporter) -> dict[str, float]:
    seconds = float(os.environ.get("SLEEP_EPOCH_SECONDS", "0.1"))
    metrics: dict[str, float] = {}
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(seconds)
        metrics = {"score": score(config, epoch, config["epochs"])}
        reporter.report(epoch, metrics)
    return metrics
