"""`bandsearch launch SPACE.yaml`: run (or resume) one study per band on Ray."""

from __future__ import annotations

import argparse
import dataclasses
from contextlib import nullcontext

from rich.console import Console
from rich.table import Table

from search.commands import add_location_options, add_proxy_option, cpu_count, settings_from, study_name
from search.errors import BandsearchError
from search.uris import mask, where_to_browse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("launch", help="run or resume a study: one Optuna study per band, trials on Ray")
    parser.add_argument("space", help="study YAML (see spaces/audio_angle.yaml)")
    parser.add_argument("--study", type=study_name,
                        help="study name (default: the YAML file's stem); the same name resumes")
    parser.add_argument("--trials", type=int, help="trials per band (overrides search.trials_per_band)")
    parser.add_argument("--workers", type=int, help="trials in flight (overrides search.workers)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local cluster)")
    parser.add_argument("--num-cpus", type=cpu_count, help="CPUs of the local Ray cluster (default: all)")
    parser.add_argument("--take-over", action="store_true",
                        help="take the study over from a launch whose lease has expired (its driver died); "
                        "a live launch's lease is never taken")
    parser.add_argument("--progress", choices=("live", "json", "quiet"), default="live",
                        help="live bars (default), JSON lines on stdout for scripts, or only the summary")
    parser.add_argument("--quiet", dest="progress", action="store_const", const="quiet",
                        help="same as --progress quiet")
    add_location_options(parser)
    add_proxy_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.config import load_config  # Optuna (~0.5 s): loaded when the command runs, not for --help
    from search.studies import check_study_name, experiment_of

    config = load_config(args.space)
    overrides = {key: value for key, value in (("trials_per_band", args.trials), ("workers", args.workers))
                 if value is not None}
    for key, value in overrides.items():
        if value < 1:
            raise BandsearchError(f"--{'trials' if key == 'trials_per_band' else key} must be >= 1, got {value}")
    config = dataclasses.replace(config, search=dataclasses.replace(config.search, **overrides))
    settings = settings_from(args)
    study = args.study or check_study_name(config.source.stem)
    # With JSON lines on stdout, everything for people goes to stderr.
    console = Console(stderr=args.progress == "json")
    console.print(f"study [bold]{study}[/]: {len(config.bands)} bands x {config.search.trials_per_band} trials, "
                  f"{config.search.workers} in flight; storage {mask(settings.storage_url)}"
                  + (f" served on {settings.storage_proxy}" if settings.storage_proxy else ""))
    # Once the study file, its model and the flags are known to be good, Ray starts in the
    # background while the driver loads and the study is prepared; the command stops what it started.
    from search import ray_connection
    from search.driver.start import start

    joined_here = start(config, args.address, args.num_cpus)
    try:
        from search.driver.launch import launch, summarize
        from search.progress import JsonLinesProgress, LiveProgress

        progress = {"live": lambda: LiveProgress(console), "json": JsonLinesProgress,
                    "quiet": nullcontext}[args.progress]
        with progress() as view:
            bands = launch(config, study, settings, view, address=args.address, num_cpus=args.num_cpus,
                           take_over=args.take_over, started=True)
        print_summary(console, study, summarize(bands), settings.tracking_uri,
                      experiment_of(b.study for b in bands), config.baselines.methods)
    finally:
        if joined_here:
            ray_connection.disconnect()
    return 0


def print_summary(console: Console, study: str, rows: list[dict], tracking_uri: str, experiment_id: str | None,
                  methods: list[str]) -> None:
    """Best per band; the network's val accuracy / angle error beside the classical baselines'. One
    row per band where the console is wide enough, else a two-column table per band: no cell is cut."""
    from search import baselines  # heavy (torch, Ray): loaded when a launch ends, not for --help

    title = f"study {study}: best per band (accuracy / mean angle error on the same test clips)"
    network = baselines.columns(methods, rows[0]["metric"] if rows else "val_accuracy")
    pareto = any(row["pareto"] is not None for row in rows)  # a multi-objective study: its fronts' sizes
    headers = ["band", *network, "optimizer", "lr", "batch", "done/pruned/failed", *["Pareto front"] * pareto,
               "MLflow run"]
    lines = [_summary_cells(row, baselines.cells(row["best"], row["angle_error_deg"], row["baselines"], methods),
                            pareto) for row in rows]
    wide = Table(title=title)
    for header in headers:
        wide.add_column(header, no_wrap=True)
    for cells in lines:
        wide.add_row(*cells)
    if console.measure(wide, options=console.options.update_width(10_000)).maximum <= console.width:
        console.print(wide)
    else:
        console.print(title)
        for cells in lines:
            band = Table(title=f"band {cells[0]}", show_header=False, title_justify="left")
            band.add_column(overflow="fold")
            band.add_column(overflow="fold")
            for header, cell in zip(headers[1:], cells[1:], strict=True):
                band.add_row(header, cell)
            console.print(band)
    if pareto:
        console.print(f"Pareto fronts: `bandsearch export {study}` lists each band's (best first on the first "
                      "objective); in MLflow, filter runs on tags.bandsearch.pareto = 'true'", soft_wrap=True)
    if experiment_id:
        console.print(f"MLflow: experiment [bold]{study}[/], trial runs nested under their band's run:\n  "
                      f"{where_to_browse(tracking_uri, experiment_id)}", soft_wrap=True)


def _summary_cells(row: dict, compared: list[str], pareto: bool) -> list[str]:
    """One band's summary row (search/driver/bands.py summary_row) as text, `compared` its
    network and baseline cells; `pareto`: with its front's size."""
    config = row["config"] or {}
    return [
        f"{row['band']} Hz",
        *compared,
        config.get("optimizer", "-"),
        f"{config['lr']:.2e}" if config else "-",
        str(config.get("batch_size", "-")),
        f"{row['complete']}/{row['pruned']}/{row['failed']}",
        *[str(row["pareto"] or "-")] * pareto,
        row["best_run_id"] or "-",
    ]
