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


def add_proxy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-proxy", metavar="[HOST:]PORT",
                        help="serve the storage to the workers through Optuna's gRPC proxy, from the driver "
                        "(default host 127.0.0.1; give the head node's address or 0.0.0.0 on a multi-machine "
                        "cluster; default storage behind it: sqlite:///RUN_DIR/optuna.db; $BANDSEARCH_STORAGE_PROXY)")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.resolve(args.run_dir, args.storage, args.tracking_uri, getattr(args, "storage_proxy", None))
