"""The `bandsearch` command line. Subcommands live in search/commands/, listed here."""

from __future__ import annotations

import argparse
import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

from search.commands import (
    baselines,
    data,
    export,
    launch,
    lr_find,
    lr_table,
    report,
    status,
    studies,
    submit,
    train,
    ui,
)
from search.errors import BandsearchError

COMMANDS = (launch, submit, status, studies, lr_find, lr_table, report, export, train, baselines, data, ui)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=Console(stderr=True))],
    )
    import optuna  # here, not at the top: only after the arguments parsed (Optuna takes ~1 s to import)

    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    # MLflow's database migrations announce themselves at INFO on first use.
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bandsearch", description="Per-frequency-band hyperparameter search for audio angle models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except BandsearchError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: open trials were failed and will be retried on the next launch")
        return 130


if __name__ == "__main__":
    sys.exit(main())
