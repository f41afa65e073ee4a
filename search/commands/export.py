"""`bandsearch export STUDY`: write the best configuration per band as YAML."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from search.commands import add_location_options, existing_settings, study_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="write the best config per band as YAML")
    parser.add_argument("study", type=study_name, help="study name given to `launch`")
    parser.add_argument("--out", default="best.yaml", help="output file (default: best.yaml)")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.export import best_configs, write_export  # heavy (Optuna): loaded when the command runs

    document = best_configs(existing_settings(args).storage_url, args.study)
    out = Path(args.out)
    write_export(document, out)
    console = Console()
    for band, entry in document["bands"].items():
        train = entry["train"]
        metric, value = next(iter(entry["result"].items()))  # the best trial's value comes first
        console.print(f"band {band:>6} Hz: {'val acc' if metric == 'val_accuracy' else metric} {value:.4f}  "
                      f"{train['optimizer']} lr={train['lr']:.2e} bs={train['batch_size']}")
    console.print(f"wrote {out}")
    return 0
