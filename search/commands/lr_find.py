"""`bandsearch lr-find SPACE.yaml --study NAME`: an LR range test per band and optimizer, on Ray."""

from __future__ import annotations

import argparse

from rich.console import Console

from search.commands import add_location_options, cpu_count, settings_from, study_name
from search.errors import BandsearchError
from search.uris import where_to_browse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lr-find", help="LR range test per band and optimizer (parallel on Ray)")
    parser.add_argument("space", help="study YAML; its lr_finder section sets the test")
    parser.add_argument("--study", type=study_name, help="study name (default: the YAML file's stem)")
    parser.add_argument("--rerun", action="store_true", help="run again even where a stored result exists")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local cluster)")
    parser.add_argument("--num-cpus", type=cpu_count, help="CPUs of the local Ray cluster (default: all)")
    add_location_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.config import load_config  # Optuna (~0.5 s): loaded when the command runs, not for --help
    from search.studies import check_study_name

    config = load_config(args.space)
    if not config.objective.built_in:
        raise BandsearchError(f"{config.source}: objective.function: `bandsearch lr-find` tests the built-in "
                              "training loop's model; with your own function give lr ranges in the space")
    settings = settings_from(args)
    study = args.study or check_study_name(config.source.stem)
    # torch, Ray and MLflow (~8 s): loaded once the study file is known to be good.
    from search import cluster, ray_connection
    from search.driver.bands import open_studies
    from search.driver.launch import publish_tables
    from search.lr_finder import LrFinder
    from search.lr_tables import finder_table
    from search.tracking import Tracker

    tracker = Tracker(settings.tracking_uri)
    tracker.check()
    # The band studies hold what the tables need to find these results.
    experiment_id = tracker.experiment(study, settings.artifact_root)
    open_studies(config, study, settings, experiment_id)
    console = Console()
    finder = LrFinder(config, study, settings)
    tasks = finder.tasks()
    with console.status(f"{len(tasks)} range tests ({config.lr_finder.steps} steps each) on Ray"):
        ray_connection.connect(args.address, num_cpus=args.num_cpus, py_modules=config.user_modules())
        data = cluster.datasets(config.task, [plan.band for plan in config.bands], settings.cache_dir,
                                config.training.model.feature_kind)
        results = finder.run(tasks, data, rerun=args.rerun)
    for task, result in results.items():
        if result["suggestion"] is None:
            console.print(f"[yellow]band {task.band} Hz {task.optimizer}: no suggestion "
                          f"({result['stop_reason']} at lr {result['diverged_lr']}); lower lr_finder.min_lr")
    console.print(finder_table(settings.storage_url, study).rich())
    publish_tables(settings, study)
    console.print(f"curves and plots: MLflow experiment [bold]{study}[/], run 'lr finder': "
                  f"{where_to_browse(settings.tracking_uri, experiment_id)}", soft_wrap=True)
    return 0
