"""`bandsearch status STUDY`: where each band of a study stands."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from search.commands import add_location_options, existing_settings, study_name
from search.uris import where_to_browse

if TYPE_CHECKING:
    import optuna


def band_status(study: optuna.Study) -> dict:
    from search.studies import (  # heavy (Optuna)
        BUDGET,
        PARENT_RUN,
        RETRIED,
        best_trial,
        metric_of,
        objective_of,
        score,
        train_config,
    )

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    retried = sum(1 for t in trials if t.user_attrs.get(RETRIED))
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    best = best_trial(study)
    config = train_config(best) if best else {}
    return {
        "budget": study.user_attrs.get(BUDGET),
        "finished": states["complete"] + states["pruned"] + states["fail"] - retried,
        "complete": states["complete"], "pruned": states["pruned"], "failed": states["fail"] - retried,
        "retried": retried, "running": states["running"], "waiting": states["waiting"],
        "metric": metric_of(study), "direction": objective_of(study)["direction"],
        "best": score(best) if best else None, "best_trial": best.number if best else None,
        "best_config": f"{config['optimizer']} lr={config['lr']:.2e} bs={config['batch_size']}" if config else None,
        "elapsed_s": (max(ends) - min(starts)).total_seconds() if starts and ends else None,
        "mlflow_parent_run": study.user_attrs.get(PARENT_RUN),
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="per band: budget, trial states, best so far")
    parser.add_argument("study", type=study_name, help="study name")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.lease import holder_line  # heavy (Optuna): loaded when the command runs, not for --help
    from search.studies import experiment_of, open_band_studies

    settings = existing_settings(args)
    storage_url = settings.storage_url
    studies = open_band_studies(storage_url, args.study)
    rows = [{"band": band, **band_status(study)} for band, study in studies.items()]
    if args.json:
        print(json.dumps(rows))
        return 0
    table = Table(title=f"study {args.study}: best {rows[0]['metric']} ({rows[0]['direction']})")
    for column in ("band", "finished/budget", "complete", "pruned", "failed", "retried", "running",
                   "best", "best config", "elapsed"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            f"{r['band']} Hz", f"{r['finished']}/{r['budget'] or '?'}", str(r["complete"]), str(r["pruned"]),
            str(r["failed"]), str(r["retried"]), str(r["running"]),
            f"{r['best']:.4f}" if r["best"] is not None else "-", r["best_config"] or "-",
            f"{r['elapsed_s']:.0f}s" if r["elapsed_s"] is not None else "-",
        )
    console = Console()
    console.print(table)
    if experiment_id := experiment_of(studies.values()):
        console.print(f"MLflow: {where_to_browse(settings.tracking_uri, experiment_id)}", soft_wrap=True)
    if holder := holder_line(storage_url, args.study):
        console.print(holder)
    return 0
