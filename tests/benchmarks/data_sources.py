"""Benchmark: how fast each data source makes clips, against how fast training consumes them,
and per band the tuned network against MUSIC and SRP-PHAT on the same reverberant test set.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/data_sources.py [--trials 8] [--skip-study]

Part 1 (one process, one thread, like a trial): clips/s of the free-field generator, of the
reverberant generator (RIR bank simulated once, timed apart) and of the recordings loader
(a folder written by `write_synthetic`), each including the band features, for the 1000 Hz
band; then the training step rate of the default recipe (Adam, batch 64, 10 epochs) and
the share of a trial a band's data would cost if it were made for every trial.
Part 2: a small study of spaces/reverberant_circular.yaml (--trials per band, 2 workers)
and its per-band table: best trial vs the classical baselines on the held-out rooms.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from objectives.task.config import Band
from objectives.task.dataset import generate
from objectives.task.sources import Folder
from objectives.task.sources.folder_writer import write_synthetic
from objectives.task.sources.recordings import index_folder, task_for_folder
from objectives.task.sources.rooms import build_bank
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from search.config import load_config
from search.driver.launch import summarize
from search.driver.loop import Launch
from search.settings import Settings

ROOT = Path(__file__).parents[2]
BAND = Band("1000", 1000.0, 300.0)


def _rate(task, cache_dir: Path) -> tuple[float, float]:
    """(clips/s making the band's dataset with features, seconds for the whole dataset)."""
    started = time.perf_counter()
    generate(task, BAND, cache_dir)
    seconds = time.perf_counter() - started
    return (task.n_train + task.n_val) / seconds, seconds


def throughput(folder: Path) -> None:
    torch.set_num_threads(1)
    free = load_config(ROOT / "spaces" / "audio_angle.yaml").task
    rooms = load_config(ROOT / "spaces" / "reverberant_circular.yaml").task
    started = time.perf_counter()
    build_bank(rooms.sources[0], rooms)
    bank_seconds = time.perf_counter() - started
    written = write_synthetic(free, folder / "recs", (300, 100), 4.0)
    recordings = task_for_folder(dataclasses.replace(free, sources=(Folder(path=str(written)),)),
                                 index_folder(written, free.clip_samples, free.seed, 0.25))
    rows = [("free field (4-mic line)", free), ("reverberant (6-mic ring)", rooms), ("recordings folder", recordings)]
    config = TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=10)
    data = generate(free, BAND)
    result = train(config, data, device="cpu")
    steps = (len(data.train_x) // config.batch_size) * config.epochs
    consumed = steps * config.batch_size / result.train_seconds
    print(f"RIR bank ({rooms.sources[0].n_rooms} rooms x {rooms.sources[0].positions_per_room} positions, "
          f"{rooms.array.n_mics} mics): {bank_seconds:.1f} s, once, then cached")
    print(f"training (Adam, batch 64, {config.epochs} epochs, {len(data.train_x)} clips): "
          f"{steps / result.train_seconds:.0f} "
          f"steps/s = {consumed:.0f} clips/s, {result.train_seconds:.2f} s per trial")
    # A band's dataset is made once (cached on disk, shared by its trials through Ray's object
    # store), so its cost is spread over the band's trials: 20 in the shipped studies.
    trials = load_config(ROOT / "spaces" / "audio_angle.yaml").search.trials_per_band
    print(f"| source | clips/s (with features) | band dataset | share of a {trials}-trial band's time |")
    print("| --- | --- | --- | --- |")
    for name, task in rows:
        rate, seconds = _rate(task, folder / "cache")
        print(f"| {name} | {rate:.0f} | {task.n_train + task.n_val} clips in {seconds:.2f} s | "
              f"{seconds / (seconds + trials * result.train_seconds):.1%} |")


def study(trials: int, folder: Path) -> None:
    config = load_config(ROOT / "spaces" / "reverberant_circular.yaml")
    config = dataclasses.replace(config, search=dataclasses.replace(config.search, trials_per_band=trials))
    settings = Settings.resolve(run_dir=str(folder / "runs"))
    started = time.perf_counter()
    launch = Launch(config, "bench", settings)
    launch.prepare()
    launch.run()
    print(f"study: {len(config.bands)} bands x {trials} trials, {config.search.workers} workers, "
          f"{time.perf_counter() - started:.0f} s; test set: {config.task.n_val} clips from "
          f"{config.task.sources[0].held_out_rooms} held-out rooms (baselines: the first {config.baselines.max_clips})")
    print("| band | tuned network acc / err | MUSIC acc / err | SRP-PHAT acc / err |")
    print("| --- | --- | --- | --- |")
    for row in summarize(launch.bands):
        base = row["baselines"] or {}
        cells = [f"{row['best']:.3f} / {row['angle_error_deg']:.1f}°"] + [
            f"{base[f'baseline.{m}.accuracy']:.3f} / {base[f'baseline.{m}.angle_error_deg']:.1f}°"
            for m in ("music", "srp_phat")]
        print(f"| {row['band']} Hz | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8, help="trials per band of the reverberant study")
    parser.add_argument("--skip-study", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        throughput(Path(folder))
        if not args.skip_study:
            study(args.trials, Path(folder))


if __name__ == "__main__":
    main()
