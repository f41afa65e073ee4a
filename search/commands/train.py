"""`bandsearch train BEST.yaml --band B [--save FILE]`: retrain an exported configuration, compare, and
keep the network as a direction finder (objectives/localizer.py)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from search.commands import add_location_options, settings_from
from search.errors import BandsearchError


class _EpochBar:
    def __init__(self, progress: Progress, task: int):
        self.progress, self.task = progress, task

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        self.progress.update(self.task, completed=epoch, description=f"val acc {metrics['val_accuracy']:.4f}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="retrain one band's exported best configuration")
    parser.add_argument("config", help="file written by `bandsearch export`")
    parser.add_argument("--band", required=True, help="band name, e.g. 1000")
    parser.add_argument("--seed", type=int, help="training seed (default: the exported one)")
    parser.add_argument("--pareto", type=int, metavar="K",
                        help="retrain entry K of the band's Pareto front (a multi-objective study's export)")
    parser.add_argument("--save", metavar="FILE", help="write the trained network with its features and their "
                        "standardisation: objectives.localizer.Localizer.load(FILE)(waveforms) gives azimuths")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # heavy (torch, Optuna): loaded when the command runs, not for --help
    from objectives.task.dataset import load_or_generate
    from objectives.train.loop import train
    from search.export import load_best_config

    best = load_best_config(args.config, args.band, args.pareto)
    if args.save and not Path(args.save).parent.is_dir():
        raise BandsearchError(f"--save {args.save}: folder {Path(args.save).parent} does not exist; create it first")
    config = best.train if args.seed is None else dataclasses.replace(best.train, seed=args.seed)
    console = Console()
    with console.status(f"building the {best.band.name} Hz dataset"):
        data = load_or_generate(best.task, best.band, settings_from(args).cache_dir, config.model.feature_kind)
    with Progress(console=console) as progress:
        task = progress.add_task("training", total=config.epochs)
        result = train(config, data, _EpochBar(progress, task))
    retrained = result.history[-1]
    compared = ", ".join(f"{metric} {retrained[metric]:.4g} (the study's trial {best.trial_number}: {value:.4g})"
                         for metric, value in best.result.items() if metric in retrained)
    console.print(f"band {best.band.name} Hz: {compared} in {result.train_seconds:.1f}s")
    if args.save:
        from objectives.localizer import Localizer

        Localizer.trained(best.task, best.band, config.model, result.model, data).save(args.save)
        console.print(f"saved to {args.save}: `Localizer.load({args.save!r})(waveforms)` gives azimuths in degrees "
                      "(objectives/localizer.py)", soft_wrap=True)
    return 0
