"""`bandsearch baselines STUDY`: per band, the tuned network beside MUSIC and SRP-PHAT."""

from __future__ import annotations

import argparse

from rich.console import Console

from search.commands import add_location_options, existing_settings, study_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("baselines", help="tuned network vs MUSIC and SRP-PHAT per band")
    parser.add_argument("study", type=study_name, help="study name given to `launch`")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.baselines import table  # heavy (Optuna, torch, Ray): loaded when the command runs, not for --help

    Console().print(table(existing_settings(args).storage_url, args.study))
    return 0
