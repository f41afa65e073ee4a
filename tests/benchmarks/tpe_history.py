"""Benchmark: what bounding TPE's history (search/samplers.py) costs in search quality and saves
in driver time, on the default space (spaces/audio_angle.yaml, the default sampler settings).

    PYTHONPATH=. .venv/bin/python tests/benchmarks/tpe_history.py [--trials 1000] [--seeds 8]

The objective is synthetic, so a thousand-trial study takes seconds: a smooth loss over every
parameter of the space (a best lr per optimizer, momentum, betas, weight decay, warmup and batch
size) plus noise, with an optimum no sampler finds in 100 trials. Per history setting (null is
plain TPE) and seed, the same study runs with the same seed; reported: the median over seeds of
the best loss after 100, 300 and N trials, and the median time of ask + sample + tell over the
last 50 trials (in-memory storage: the sampler's own cost).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import optuna
import yaml

from search.config import parse_config
from search.strategies import build_sampler

ROOT = Path(__file__).parents[2]
BEST_LR = {"sgd": 0.05, "adam": 2e-3, "adamw": 1e-3}
OFFSET = {"sgd": 0.05, "adam": 0.0, "adamw": 0.02}


def loss(params: dict, noise: float) -> float:
    """Zero at the optimum of each optimizer (plus its offset); quadratic in the internal scales."""
    settings, name = params["optimizer_params"], params["optimizer"]
    value = OFFSET[name] + math.log10(params["lr"] / BEST_LR[name]) ** 2
    value += (math.log2(params["batch_size"]) - 6) ** 2 / 8 + 0.05 * (params["warmup_epochs"] - 1) ** 2
    if name == "sgd":
        value += 4 * (settings["momentum"] - 0.9) ** 2 + (0.02 if settings["nesterov"] else 0.0)
    else:
        value += 10 * (settings["beta1"] - 0.9) ** 2 + 1e4 * (settings["beta2"] - 0.999) ** 2
        if name == "adamw":
            value += 0.1 * math.log10(settings["weight_decay"] / 1e-2) ** 2
    return value + noise


def run(history: int | None, seed: int, trials: int, space, sampler_spec: dict) -> tuple[list[float], float]:
    """Best loss after each trial, and the median seconds of ask + sample + tell near the end."""
    sampler = build_sampler({**sampler_spec, "history": history}, seed)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    rng = np.random.default_rng(seed)
    best, seconds = [], []
    for _ in range(trials):
        started = time.perf_counter()
        trial = study.ask()
        value = loss(space.sample(trial), float(rng.normal(0, 0.01)))
        study.tell(trial, value)
        seconds.append(time.perf_counter() - started)
        best.append(min(value, best[-1]) if best else value)
    return best, statistics.median(seconds[-50:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--histories", default="none,500,200", help="comma-separated; none is plain TPE")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = parse_config(yaml.safe_load((ROOT / "spaces" / "audio_angle.yaml").read_text()),
                          source=ROOT / "spaces" / "audio_angle.yaml")
    space, spec = config.bands[0].space, dict(config.search.sampler)
    marks = [m for m in (100, 300, args.trials) if m <= args.trials]
    print(f"{'history':>8} " + " ".join(f"{'best@' + str(m):>10}" for m in marks) + f" {'ms/trial@end':>13}")
    for name in args.histories.split(","):
        history = None if name == "none" else int(name)
        runs = [run(history, seed, args.trials, space, spec) for seed in range(args.seeds)]
        bests = [statistics.median(best[m - 1] for best, _ in runs) for m in marks]
        ms = 1000 * statistics.median(s for _, s in runs)
        print(f"{name:>8} " + " ".join(f"{b:10.4f}" for b in bests) + f" {ms:13.1f}", flush=True)


if __name__ == "__main__":
    main()
