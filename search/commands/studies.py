"""`bandsearch studies`: what the storage holds, per study and band."""

from __future__ import annotations

import argparse
from collections import Counter

from rich.console import Console
from rich.table import Table

from search.commands import add_location_options, existing_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("studies", help="list the studies and bands in the storage")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # heavy (Optuna): loaded when the command runs, not for --help
    import optuna

    from search.storage import open_storage
    from search.studies import FINDER_STUDY, LEASE_STUDY, best_trial, score

    storage = open_storage(existing_settings(args).storage_url)
    table = Table(title="studies")
    for column in ("study", "band", "trials", "states", "best"):
        table.add_column(column)
    for name in (frozen.study_name for frozen in storage.get_all_studies()):  # names only: no trial copied
        if name in (FINDER_STUDY, LEASE_STUDY):
            continue  # range-test results (`bandsearch lr-table`) and launch leases (`bandsearch status`)
        study, _, band = name.rpartition("/")
        loaded = optuna.load_study(study_name=name, storage=storage)
        trials = loaded.get_trials(deepcopy=False)
        states = Counter(t.state.name.lower() for t in trials)
        best = best_trial(loaded)
        table.add_row(study or name, band, str(len(trials)),
                      " ".join(f"{n} {s}" for s, n in sorted(states.items())),
                      f"{score(best):.4f}" if best else "-")
    Console().print(table)
    return 0
