"""One Syne Tune trial of the search-efficiency benchmark (tune_runners.run_syne_tune starts it):
the band's space, data and bandsearch's training loop, each epoch reported to Syne Tune."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import optuna
import torch
import yaml
from syne_tune import Reporter
from tune_runners import from_syne

from objectives.task.dataset import load_or_generate
from objectives.train.loop import train
from search.config import parse_config


class _Report:
    def __init__(self) -> None:
        self.reporter, self.started = Reporter(), time.perf_counter()

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        self.reporter(epoch=epoch, val_accuracy=metrics["val_accuracy"],
                      train_seconds=time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--st_config_json_filename", required=True)
    args, _ = parser.parse_known_args()
    config = json.loads(Path(args.st_config_json_filename).read_text())
    torch.set_num_threads(1)  # one CPU per trial, as bandsearch's workers
    study = parse_config(yaml.safe_load(Path(config["study"]).read_text()), Path(config["source"]))
    plan = next(p for p in study.bands if p.band.name == config["band"])
    sampled = plan.space.sample(optuna.trial.FixedTrial(from_syne(plan, config)))
    data = load_or_generate(study.task, plan.band, Path(config["cache"]), study.training.model.feature_kind)
    train(plan.train_config(study.training, sampled), data, _Report(), device="cpu")


if __name__ == "__main__":
    main()
