"""`bandsearch launch SPACE.yaml`: run (or resume) one study per band on Ray."""

from __future__ import annotations

import argparse
import dataclasses

from rich.console import Console
from rich.table import Table

from search.commands import add_location_options, add_proxy_option, settings_from
from search.config import load_config
from search.errors import BandsearchError
from search.orchestrator import launch, summarize
from search.progress import LaunchProgress
from search.storage import mask


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("launch", help="run or resume a study: one Optuna study per band, trials on Ray")
    parser.add_argument("space", help="study YAML (see spaces/audio_angle.yaml)")
    parser.add_argument("--study", help="study name (default: the YAML file's stem); the same name resumes")
    parser.add_argument("--trials", type=int, help="trials per band (overrides search.trials_per_band)")
    parser.add_argument("--workers", type=int, help="trials in flight (overrides search.workers)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local cluster)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray cluster (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no live progress, only the summary")
    add_location_options(parser)
    add_proxy_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.space)
    overrides = {key: value for key, value in (("trials_per_band", args.trials), ("workers", args.workers))
                 if value is not None}
    for key, value in overrides.items():
        if value < 1:
            raise BandsearchError(f"--{'trials' if key == 'trials_per_band' else key} must be >= 1, got {value}")
    config = dataclasses.replace(config, search=dataclasses.replace(config.search, **overrides))
    settings = settings_from(args)
    study = args.study or config.source.stem
    console = Console()
    console.print(f"study [bold]{study}[/]: {len(config.bands)} bands x {config.search.trials_per_band} trials, "
                  f"{config.search.workers} in flight; storage {mask(settings.storage_url)}"
                  + (f" served on {settings.storage_proxy}" if settings.storage_proxy else ""))
    if args.quiet:
        bands = launch(config, study, settings, address=args.address, num_cpus=args.num_cpus)
    else:
        with LaunchProgress(console) as progress:
            bands = launch(config, study, settings, progress, address=args.address, num_cpus=args.num_cpus)
    print_summary(console, study, summarize(bands), settings.tracking_uri)
    return 0


def print_summary(console: Console, study: str, rows: list[dict], tracking_uri: str) -> None:
    table = Table(title=f"study {study}: best per band")
    for column in ("band", "best val acc", "optimizer", "lr", "batch", "done/pruned/failed", "MLflow run"):
        table.add_column(column)
    for row in rows:
        config = row["config"] or {}
        table.add_row(
            f"{row['band']} Hz",
            f"{row['best']:.4f}" if row["best"] is not None else "-",
            config.get("optimizer", "-"),
            f"{config['lr']:.2e}" if config else "-",
            str(config.get("batch_size", "-")),
            f"{row['complete']}/{row['pruned']}/{row['failed']}",
            row["best_run_id"] or "-",
        )
    console.print(table)
    uri = mask(tracking_uri)
    browse = (f"open {uri}" if uri.startswith("http") else f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1")
    console.print(f"MLflow: experiment [bold]{study}[/] at {uri}\n  browse: {browse}")
