"""One module per CLI subcommand; each has `register(subparsers)` setting `run` as default."""

from __future__ import annotations

import argparse

from search.settings import Settings


def add_location_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the study lives")
    group.add_argument("--run-dir", help="folder for the default storage, MLflow store and data cache "
                       "(default: $BANDSEARCH_RUN_DIR or ./bandsearch-runs)")
    group.add_argument("--storage", help="Optuna storage: a journal file path, postgresql://..., or grpc://host:port "
                       "(default: $BANDSEARCH_STORAGE or RUN_DIR/optuna.journal)")
    group.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or "
                       "sqlite:///RUN_DIR/mlflow.db)")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.resolve(args.run_dir, args.storage, args.tracking_uri)
