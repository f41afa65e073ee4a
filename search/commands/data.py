"""`bandsearch data`: write a synthetic dataset in the recordings folder format, and show
per band what a folder holds.

    bandsearch data write SPACE.yaml OUT [--recordings 48 16] [--seconds 2] [--per-channel]
    bandsearch data show SPACE.yaml [FOLDER]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from search.commands import add_location_options, settings_from
from search.errors import BandsearchError

if TYPE_CHECKING:
    from search.config import StudyConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="write a synthetic dataset as a recordings folder; summarise a folder")
    actions = parser.add_subparsers(dest="action", required=True)
    write = actions.add_parser("write",
                               help="write the study's synthetic task as a folder (array.json, labels.csv, WAVs)")
    write.add_argument("space", help="study YAML with synthetic sources (free_field, reverberant)")
    write.add_argument("out", help="folder to write")
    write.add_argument("--recordings", type=int, nargs=2, default=(48, 16), metavar=("TRAIN", "VAL"),
                       help="recordings per split, one direction each (default: 48 16)")
    write.add_argument("--seconds", type=float, default=2.0, help="length of each recording (default: 2)")
    write.add_argument("--per-channel", action="store_true", help="one mono WAV per channel in a sub-folder")
    add_location_options(write)
    write.set_defaults(run=run)
    show = actions.add_parser("show", help="per band: clips, splits, classes covered, energy in the band")
    show.add_argument("space", help="study YAML: its task (clip length, classes) and bands")
    show.add_argument("folder", nargs="?", help="recordings folder (default: the YAML's folder source)")
    show.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # heavy (torch, soundfile, Optuna): loaded when the command runs, not for --help
    from objectives.task.sources.folder_writer import write_synthetic
    from search.config import load_config

    config = load_config(args.space)
    console = Console()
    if args.action == "write":
        if any(source.kind == "folder" for source in config.task.sources):
            raise BandsearchError(f"{config.source}: task.sources is a folder already; write from a study with "
                                  "synthetic sources (free_field, reverberant)")
        if min(args.recordings) < 1 or args.seconds <= 0:
            raise BandsearchError("--recordings needs two counts >= 1 and --seconds a length > 0")
        with console.status(f"writing {sum(args.recordings)} recordings to {args.out}"):
            folder = write_synthetic(config.task, Path(args.out), tuple(args.recordings), args.seconds,
                                     args.per_channel, settings_from(args).cache_dir)
        console.print(f"wrote {folder}: array.json, labels.csv and {sum(args.recordings)} recordings")
    else:
        folder = _folder(config, args.folder)
    console.print(_summary(config, folder))
    return 0


def _folder(config: StudyConfig, given: str | None) -> Path:
    if given:
        return Path(given)
    folders = [source.path for source in config.task.sources if source.kind == "folder"]
    if not folders:
        raise BandsearchError(f"{config.source}: no folder source in task.sources; name the folder: "
                              "bandsearch data show SPACE.yaml FOLDER")
    return Path(folders[0])


def _summary(config: StudyConfig, folder: Path) -> Table:
    from objectives.task.sources.folder_writer import summarize  # heavy (torch, soundfile)
    from objectives.task.sources.recordings import RecordingsError, index_folder, task_for_folder

    val_fraction = next((s.val_fraction for s in config.task.sources if s.kind == "folder"), 0.25)
    try:
        index = index_folder(folder, config.task.clip_samples, config.task.seed, val_fraction)
    except RecordingsError as err:
        raise BandsearchError(str(err)) from None
    task = task_for_folder(config.task, index)
    rows = summarize(index, task, [plan.band for plan in config.bands])
    array = task.array
    table = Table(title=f"{folder}: {array.n_mics} mics, {index.sample_rate} Hz, azimuth 0-{array.span_deg:g}°, "
                        f"{task.n_angle_bins} classes, {task.clip_samples}-sample clips")
    for column in ("band", "train clips (recordings)", "val clips (recordings)", "train classes",
                   "val classes unseen in train", "energy in band"):
        table.add_column(column)
    for row in rows:
        table.add_row(f"{row['band']} Hz", f"{row['train_clips']} ({row['train_recordings']})",
                      f"{row['val_clips']} ({row['val_recordings']})", str(row["train_classes"]),
                      str(row["val_classes_unseen_in_train"]), f"{row['band_energy_db']:.1f} dB")
    return table
