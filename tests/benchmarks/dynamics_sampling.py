"""Benchmark: bias and spread of the sampled dynamics (`dynamics_every` 4) against every step (1).

    PYTHONPATH=. .venv/bin/python tests/benchmarks/dynamics_sampling.py [--band 1000] [--draws 200]

Trains one configuration of a band of the default study (Adam, lr 3e-3, batch 64, 10 epochs)
once; an exact meter and `--draws` sampled meters (draw seeds 0, 1, ...) measure the same
steps. Prints, for the summary and per epoch, the exact value, the mean error of the sampled
estimates (their bias) and their standard deviation (the spread of one trial's figure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _angle
import numpy as np
import torch

from objectives.task.dataset import load_or_generate
from objectives.train import loop
from objectives.train.config import TrainConfig
from objectives.train.dynamics import Dynamics
from search.config import load_config

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: the Meters helper
from meters import Meters

SUMMARY = ("path_length", "path_efficiency", "grad_norm_cv", "grad_cosine_early", "grad_cosine_middle",
           "grad_cosine_late")
RELATIVE = ("path_length", "path_efficiency", "grad_norm", "grad_norm_cv")  # errors in %, the others absolute


def row(name: str, exact: float, sampled: np.ndarray) -> list[str]:
    if name.split()[-1].split(".")[-1] in RELATIVE:
        error, spread = 100 * (sampled.mean() / exact - 1), 100 * sampled.std() / exact
        return [name, f"{exact:.4g}", f"{error:+.2f} %", f"{spread:.2f} %"]
    return [name, f"{exact:.4f}", f"{sampled.mean() - exact:+.4f}", f"{sampled.std():.4f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(_angle.ROOT / "spaces" / "audio_angle.yaml"))
    parser.add_argument("--cache-dir", default=str(_angle.ROOT / "bandsearch-runs" / "cache"))
    parser.add_argument("--band", default="1000")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--every", type=int, default=TrainConfig.dynamics_every)
    args = parser.parse_args()
    torch.set_num_threads(1)
    study = load_config(args.space)
    band = next(plan.band for plan in study.bands if plan.band.name == args.band)
    data = load_or_generate(study.task, band, Path(args.cache_dir))
    runs: list[Meters] = []

    def meters(flat, device, target, every, seed):
        runs.append(Meters([Dynamics(flat, device, target, 1, seed)]
                           + [Dynamics(flat, device, target, args.every, s) for s in range(args.draws)]))
        return runs[-1]

    loop.Dynamics = meters
    _angle.run(TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=10), data)
    run = runs[0]
    rows = [row(f"summary.{key}", run.summaries[0][f"summary.{key}"],
                np.array([s[f"summary.{key}"] for s in run.summaries[1:]])) for key in SUMMARY]
    for epoch, exact in enumerate(run.epochs[0]):
        for key in ("path_length", "grad_cosine", "grad_norm"):
            rows.append(row(f"epoch {epoch + 1} {key}", exact[key], np.array([h[epoch][key] for h in run.epochs[1:]])))
    print(f"band {args.band} Hz, {len(data.train_x) // 64} steps per epoch, {args.draws} draws of 1 in {args.every}")
    print(_angle.table(["figure", "exact", "mean error of the sampled", "standard deviation"], rows))


if __name__ == "__main__":
    main()
