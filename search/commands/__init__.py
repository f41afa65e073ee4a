"""One module per CLI subcommand; each has `register(subparsers)` setting `run` as default.

`register` needs argparse only: each `run` imports the machinery it uses (Optuna, torch, Ray,
MLflow: about 8 s), so `--help` and a bad study file answer at once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from search.errors import BandsearchError

if TYPE_CHECKING:
    from search.settings import Settings


def add_location_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the study lives")
    group.add_argument("--run-dir", help="folder for the default storage, MLflow store and data cache "
                       "(default: $BANDSEARCH_RUN_DIR or ./bandsearch-runs)")
    group.add_argument("--storage", help="Optuna storage: a journal file path, postgresql://..., or grpc://host:port "
                       "(default: $BANDSEARCH_STORAGE or RUN_DIR/optuna.journal)")
    group.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or "
                       "sqlite:///RUN_DIR/mlflow.db)")


def add_proxy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-proxy", metavar="[HOST:]PORT",
                        help="serve the storage to the workers through Optuna's gRPC proxy, from the driver "
                        "(default host 127.0.0.1; give the head node's address or 0.0.0.0 on a multi-machine "
                        "cluster; default storage behind it: sqlite:///RUN_DIR/optuna.db; $BANDSEARCH_STORAGE_PROXY)")


def settings_from(args: argparse.Namespace) -> Settings:
    from search.settings import Settings  # heavy (Optuna, MLflow): loaded when a command runs, not for --help

    return Settings.resolve(args.run_dir, args.storage, args.tracking_uri, getattr(args, "storage_proxy", None))


def existing_settings(args: argparse.Namespace) -> Settings:
    """`settings_from` for a command that only reads: a storage that does not exist is refused, not created."""
    from search.storage import check_exists  # heavy (Optuna): loaded when a command runs, not for --help

    settings = settings_from(args)
    check_exists(settings.storage_url)
    return settings


def study_name(text: str) -> str:
    """argparse type of a study-name argument: the naming rule, as a usage error (exit 2)."""
    from search.studies import check_study_name  # heavy (Optuna): loaded when a name is given, not for --help

    try:
        return check_study_name(text)
    except BandsearchError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cpu_count(text: str) -> int:
    """argparse type of --num-cpus: a whole number >= 1 (a Ray cluster with no CPU never runs a trial)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of CPUs >= 1 (or leave it out: all of them)")
    return value
