"""`bandsearch ui`: the MLflow UI on the study's tracking store (and optuna-dashboard if installed)."""

from __future__ import annotations

import argparse
import subprocess

from rich.console import Console

from search.commands import add_location_options, settings_from, study_name
from search.uris import is_remote_tracking, mask, runs_view, where_to_browse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="serve the MLflow UI (and optuna-dashboard) on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="MLflow UI port (default: 5000)")
    parser.add_argument("--dashboard-port", type=int, default=8080, help="optuna-dashboard port (default: 8080)")
    parser.add_argument("--study", type=study_name, help="print the link to this study's runs in MLflow")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # heavy (Optuna, MLflow): loaded when the command runs, not for --help
    from search.storage import serve_dashboard
    from search.studies import experiment_of, open_band_studies
    from search.tracking import serve_ui

    settings = settings_from(args)
    experiment_id = experiment_of(open_band_studies(settings.storage_url, args.study).values()) if args.study else None
    console = Console()
    servers: list[subprocess.Popen] = []
    if is_remote_tracking(settings.tracking_uri):
        uri = settings.tracking_uri
        where = where_to_browse(uri, experiment_id) if experiment_id else f"open {mask(uri)}"
        console.print(f"MLflow is served already (a tracking server or Databricks): {where}", soft_wrap=True)
    else:
        servers.append(serve_ui(settings.tracking_uri, args.host, args.port))
        ui = f"http://{args.host}:{args.port}"
        console.print(f"MLflow UI: {runs_view(ui, experiment_id) if experiment_id else ui}  "
                      f"(store {mask(settings.tracking_uri)})", soft_wrap=True)
    dashboard = serve_dashboard(settings.storage_url, args.host, args.dashboard_port)
    if dashboard is not None:
        servers.append(dashboard)
        console.print(f"optuna-dashboard: http://{args.host}:{args.dashboard_port}")
    else:
        console.print("[dim]optuna-dashboard is not installed (pip install optuna-dashboard) ")
    console.print("Ctrl-C stops them.")
    try:
        for server in servers:
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0
