"""`bandsearch ui`: the MLflow UI on the study's tracking store (and optuna-dashboard if installed)."""

from __future__ import annotations

import argparse
import subprocess

from rich.console import Console

from search.commands import add_location_options, settings_from
from search.uris import is_remote_tracking, mask


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="serve the MLflow UI (and optuna-dashboard) on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="MLflow UI port (default: 5000)")
    parser.add_argument("--dashboard-port", type=int, default=8080, help="optuna-dashboard port (default: 8080)")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # heavy (Optuna, MLflow): loaded when the command runs, not for --help
    from search.storage import serve_dashboard
    from search.tracking import serve_ui

    settings = settings_from(args)
    console = Console()
    servers: list[subprocess.Popen] = []
    if is_remote_tracking(settings.tracking_uri):
        console.print(f"MLflow is served already (a tracking server or Databricks): open {mask(settings.tracking_uri)}")
    else:
        servers.append(serve_ui(settings.tracking_uri, args.host, args.port))
        console.print(f"MLflow UI: http://{args.host}:{args.port}  (store {mask(settings.tracking_uri)})")
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
