"""Shared by the optimizer benchmarks: the default study's bands and data, timing helpers,
markdown tables. Not a test module (pytest skips tests/benchmarks)."""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from objectives.task.dataset import BandDataset, load_or_generate
from objectives.train.config import TrainConfig
from objectives.train.loop import TrainResult, train
from search.config import load_config, read_yaml

ROOT = Path(__file__).parents[2]
FIGURES = Path(__file__).parent / "figures"


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--space", default=str(ROOT / "spaces" / "audio_angle.yaml"), help="bands and task from here")
    parser.add_argument("--cache-dir", default=str(ROOT / "bandsearch-runs" / "cache"), help="dataset cache")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions; medians are reported")
    return parser


def band_data(args: argparse.Namespace) -> dict[str, BandDataset]:
    """Each band's dataset of the study file (cached), in band order. One thread, like a
    Ray worker with cpus_per_trial: 1."""
    torch.set_num_threads(1)
    config = load_config(args.space)
    return {plan.band.name: load_or_generate(config.task, plan.band, Path(args.cache_dir)) for plan in config.bands}


def small_validation(data: BandDataset, n: int = 64) -> BandDataset:
    """The same training set with a token validation set: per-epoch evaluation then costs
    nothing next to the steps, so wall time per step is the training loop's."""
    return dataclasses.replace(data, val_x=data.val_x[:n], val_y=data.val_y[:n])


def run(config: TrainConfig, data: BandDataset, **kwargs: Any) -> TrainResult:
    config.validate(len(data.train_x))
    return train(config, data, device="cpu", **kwargs)


def cpu_seconds(config: TrainConfig, data: BandDataset, **kwargs: Any) -> tuple[TrainResult, float]:
    """A run and the CPU time it took. With one thread, CPU time is the loop's own work and,
    unlike wall time, barely moves when other processes compete for the cores."""
    started = time.process_time()
    result = run(config, data, **kwargs)
    return result, time.process_time() - started


def steps_of(config: TrainConfig, data: BandDataset) -> int:
    return config.epochs * (len(data.train_x) // config.batch_size)


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def study_data(path: str | Path, model: str = "") -> dict[str, Any]:
    """A study file's data, with `training.model` the built-in `model` at its default settings when
    one is named: the default study's figures in the README say which model they were measured with."""
    data = read_yaml(Path(path), "study file")
    if model:
        data["training"]["model"] = {"name": model}
    return data


def model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="a built-in model in place of the study file's (default settings)")
