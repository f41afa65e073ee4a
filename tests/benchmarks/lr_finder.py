"""Benchmark the LR finder.

    .venv/bin/python tests/benchmarks/lr_finder.py [--seeds 3] [--trials 12] [--model mlp]

1. Cost: one range test against one training epoch on the same band (same batch size,
   one thread, in-process). Target: at most one epoch.
2. Value: the finder-seeded study (spaces/audio_angle_lrseeded.yaml) against the plain one
   (spaces/audio_angle.yaml) at the same trial budget; best validation accuracy per band,
   median over seeds (the search seed changes; data and training seeds stay).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import ray
import torch
from _angle import model_option, study_data

from objectives.task.dataset import load_or_generate
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.lr_finder import band_range_test
from search.config import StudyConfig, parse_config
from search.driver.launch import launch
from search.settings import Settings

SPACES = Path(__file__).parents[2] / "spaces"


def cost(config, cache: Path) -> None:
    torch.set_num_threads(1)
    settings = config.lr_finder
    print(f"range test: {settings.steps} steps of {settings.batch_size}; epoch: {config.task.n_train} clips")
    print("| band | optimizer | range test (s) | one epoch (s) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    kind = config.training.model.feature_kind
    warm = load_or_generate(config.task, config.bands[0].band, cache, kind)  # first calls pay one-off set-up
    band_range_test(warm, config.training.model, "sgd", {}, settings)
    for plan in config.bands:
        data = load_or_generate(config.task, plan.band, cache, kind)
        for optimizer in plan.space.optimizers:
            started = time.perf_counter()
            band_range_test(data, config.training.model, optimizer, {}, settings)
            finder = time.perf_counter() - started
            epoch = train(TrainConfig(optimizer=optimizer, lr=1e-3, epochs=2, batch_size=settings.batch_size,
                                      model=config.training.model), data, device="cpu").train_seconds / 2
            print(f"| {plan.band.name} | {optimizer} | {finder:.3f} | {epoch:.3f} | {finder / epoch:.2f} |")


def study(file: str, model: str) -> StudyConfig:
    return parse_config(study_data(SPACES / file, model), SPACES / file)


def value(seeds: int, trials: int, model: str) -> None:
    results: dict[str, dict[str, list[float]]] = {"plain": {}, "finder-seeded": {}}
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(run_dir=folder)
        for seed in range(seeds):
            for label, file in (("plain", "audio_angle.yaml"), ("finder-seeded", "audio_angle_lrseeded.yaml")):
                config = study(file, model)
                config = dataclasses.replace(config, search=dataclasses.replace(
                    config.search, seed=seed, trials_per_band=trials))
                for band in launch(config, f"{label}-{seed}", settings, num_cpus=2):
                    results[label].setdefault(band.name, []).append(band.best().value)
        ray.shutdown()
    print(f"\nbest validation accuracy, median (min-max) over {seeds} search seeds, {trials} trials per band")
    print("| band | plain | finder-seeded |")
    print("| --- | --- | --- |")
    for band in results["plain"]:
        cells = []
        for label in ("plain", "finder-seeded"):
            values = results[label][band]
            cells.append(f"{statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f})")
        print(f"| {band} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=12)
    model_option(parser)
    args = parser.parse_args()
    config = study("audio_angle_lrseeded.yaml", args.model)
    with tempfile.TemporaryDirectory() as cache:
        cost(config, Path(cache))
    value(args.seeds, args.trials, args.model)


if __name__ == "__main__":
    main()
