"""Benchmark: trials per minute on one GPU against the CPU cores of the same machine, for the
default study's trial (spaces/audio_angle.yaml: its task and 10 epochs; Adam, lr 3e-3, batch 64,
the dynamics and memory measured as in a study) with each built-in model.

    python tests/benchmarks/gpu_trials.py [--band 1000] [--models mlp cnn crnn] [--trials 2]
        [--cpu-workers 16] [--gpu-workers 1 4 16] [--no-dynamics] [--out FILE.jsonl]

W worker processes each run `--trials` trials one after another, as Ray workers would: on the
CPU with one thread each (`cpus_per_trial: 1`), on the GPU sharing the one device
(`gpus_per_trial: 1/W`), the data moved to it once per trial. Trials per minute = W × trials ×
60 / the wall time from the moment all workers are ready to the last one's end. It measures the
training half of a trial only (no Optuna, Ray or MLflow), so it needs only torch and torchaudio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import time
from pathlib import Path

import torch
import yaml

from objectives.task.config import Band, task_from_dict
from objectives.task.dataset import load_or_generate
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.models import FEATURE_KINDS, ModelConfig

ROOT = Path(__file__).parents[2]


def _worker(args: tuple) -> float:
    """Run the trials once every worker is ready; the seconds they took."""
    task, band, cache, model, device, trials, epochs, dynamics, barrier = args
    torch.set_num_threads(1)
    config = TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=epochs, model=ModelConfig(name=model))
    data = load_or_generate(task, band, cache, config.model.feature_kind)
    if device == "cuda":
        torch.zeros(1, device="cuda")  # the CUDA context, before the clock starts
    barrier.wait()
    started = time.perf_counter()
    for seed in range(trials):
        train(dataclasses.replace(config, seed=seed), data, device=device, dynamics=dynamics)
    return time.perf_counter() - started


def _wave(context, workers: int, **job) -> float:
    """Wall seconds for `workers` processes to finish their trials, from when all are ready."""
    barrier = context.Manager().Barrier(workers + 1)
    with context.Pool(workers) as pool:
        pending = pool.map_async(_worker, [(*job.values(), barrier)] * workers)
        barrier.wait()
        started = time.perf_counter()
        pending.get()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(ROOT / "spaces" / "audio_angle.yaml"))
    parser.add_argument("--band", default="1000", help="a band name of the study file")
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "crnn"])
    parser.add_argument("--trials", type=int, default=2, help="trials per worker")
    parser.add_argument("--cpu-workers", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--gpu-workers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--no-dynamics", dest="dynamics", action="store_false",
                        help="train without the dynamics and memory measurements (their timers wait for the GPU)")
    parser.add_argument("--cache-dir", default="/tmp/bandsearch-gpu-cache")
    parser.add_argument("--out", help="append one JSON line per measurement here")
    args = parser.parse_args()
    study = yaml.safe_load(Path(args.space).read_text())
    task = task_from_dict(study["task"])
    (band,) = [Band(**b) for b in study["bands"] if b["name"] == args.band]
    epochs = study["training"]["epochs"]
    for kind in FEATURE_KINDS:
        load_or_generate(task, band, Path(args.cache_dir), kind)  # once, before the workers read it
    context = multiprocessing.get_context("spawn")
    runs = [("cpu", args.cpu_workers)] + [("cuda", w) for w in args.gpu_workers if torch.cuda.is_available()]
    print(f"band {band.name} Hz, {epochs} epochs a trial, {args.trials} trials a worker; "
          f"GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}", flush=True)
    for model in args.models:
        for device, workers in runs:
            wall = _wave(context, workers, task=task, band=band, cache=Path(args.cache_dir), model=model,
                         device=device, trials=args.trials, epochs=epochs, dynamics=args.dynamics)
            row = {"model": model, "device": device, "workers": workers, "dynamics": args.dynamics,
                   "trials": workers * args.trials,
                   "wall_s": round(wall, 2), "trials_per_min": round(workers * args.trials * 60 / wall, 1),
                   "s_per_trial_per_worker": round(wall / args.trials, 2)}
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
