"""The `bandsearch` command line. Subcommands live in search/commands/, listed here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
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
_received: set[int] = set()  # the signals that interrupted this run


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C (a KeyboardInterrupt: Ray passes on no other kind from a wait)."""
    _received.add(signum)
    raise KeyboardInterrupt


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


def _local_ray_on_loopback(address: str | None) -> None:
    """A local Ray cluster a command starts listens on 127.0.0.1 only: Ray's single-machine mode
    (its default on macOS and Windows). Ray reads the switch when first imported, so it is set
    before any command loads Ray; joining a cluster (--address, $RAY_ADDRESS) is unchanged."""
    if not (address or os.environ.get("RAY_ADDRESS")):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    _local_ray_on_loopback(getattr(args, "address", None))
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # ray_connection.connect keeps it over ray.init's
    try:
        return args.run(args)
    except BandsearchError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        how, code = ("terminated", 128 + signal.SIGTERM) if signal.SIGTERM in _received else ("interrupted", 130)
        Console(stderr=True).print(f"{how}: open trials were failed and will be retried on the next launch")
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
