"""`bandsearch lr-table STUDY`: the per-frequency learning-rate tables, printed and logged."""

from __future__ import annotations

import argparse

from rich.console import Console

from search.commands import add_location_options, existing_settings, study_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lr-table", help="per-frequency learning-rate tables (finder and study)")
    parser.add_argument("study", type=study_name, help="study name")
    parser.add_argument("--markdown", action="store_true", help="print Markdown instead of terminal tables")
    parser.add_argument("--predict", type=frequency, default=1000.0, metavar="HZ",
                        help="band centre at which to predict lr from the fitted lr(f) (default: 1000)")
    add_location_options(parser)
    parser.set_defaults(run=run)


def frequency(text: str) -> float:
    """A band centre in Hz: a number > 0."""
    try:
        hz = float(text)
    except ValueError:
        hz = 0.0
    if not hz > 0:
        raise argparse.ArgumentTypeError(f"must be a frequency in Hz > 0, got {text!r}")
    return hz


def run(args: argparse.Namespace) -> int:
    # heavy (Optuna, MLflow, matplotlib): loaded when the command runs, not for --help
    from search.lr_fit import log_with_fit, markdown, rich_table
    from search.lr_tables import finder_table, study_table

    settings = existing_settings(args)
    tables = [finder_table(settings.storage_url, args.study), study_table(settings.storage_url, args.study)]
    console = Console()
    for table in tables:
        if not table.cells:
            console.print(f"[dim]{table.title}: nothing yet")
        elif args.markdown:
            print(table.markdown())
        else:
            console.print(table.rich())
    filled = [table for table in tables if table.cells]
    if filled:
        fits = log_with_fit(settings, args.study, filled)
        if fits:
            if args.markdown:
                print(markdown(fits, args.predict))
            else:
                console.print(rich_table(fits, args.predict))
        else:
            console.print("[dim]lr(f): no optimizer has learning rates in two bands yet")
        console.print(f"logged as CSV, Markdown and PNG to MLflow experiment [bold]{args.study}[/], run 'lr tables'")
    return 0
