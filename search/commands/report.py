"""`bandsearch report STUDY`: re-run each optimizer's best config per band with K seeds and
write the optimizer analysis (Markdown + PNG, also logged to MLflow)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from search.commands import add_location_options, cpu_count, existing_settings, study_name
from search.errors import BandsearchError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="optimizer analysis per band (re-runs with K seeds on Ray)")
    parser.add_argument("study", type=study_name, help="study name")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per best configuration (default: 3)")
    parser.add_argument("--out", help="output folder (default: RUN_DIR/reports/STUDY)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local cluster)")
    parser.add_argument("--num-cpus", type=cpu_count, help="CPUs of the local Ray cluster (default: all)")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # heavy (Optuna): loaded when the command runs
    from search.studies import objective_of, open_band_studies, study_model

    settings = existing_settings(args)
    studies = open_band_studies(settings.storage_url, args.study)  # an unknown study is refused before Ray
    if function := next((f for s in studies.values() if (f := objective_of(s)["function"])), None):
        raise BandsearchError(f"study {args.study!r} ran your own objective.function ({function}); `bandsearch "
                              "report` re-runs the built-in training loop and needs a study that used it")
    # torch, Ray, MLflow and matplotlib (~8 s): loaded once the study is known to exist.
    from search import ray_connection
    from search.report import write_report

    out = Path(args.out) if args.out else settings.run_dir / "reports" / args.study
    console = Console()
    with console.status(f"re-running each band's best configurations with {args.seeds} seeds on Ray"):
        ray_connection.connect(args.address, num_cpus=args.num_cpus,
                               py_modules=study_model(studies.values()).py_modules())
        report = write_report(settings, args.study, args.seeds, out)
    console.print(f"wrote {report} (and logged it to MLflow experiment [bold]{args.study}[/], run 'optimizer report')")
    return 0
