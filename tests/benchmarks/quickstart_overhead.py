"""Benchmark: wall time of the quick-start study and the share of it spent outside training.

    .venv/bin/python tests/benchmarks/quickstart_overhead.py [SPACE.yaml] [--trials N] [--scale K] [--model mlp]

Runs the study in a fresh folder, then reads every trial's `train_seconds` (time inside the
training loop, reporting excluded) and `trial_seconds` (the whole task body) back from MLflow.
Overhead of the search loop = 1 - sum(train_seconds) / (workers x loop wall time), the loop
running from the datasets being ready to the last trial's run being closed: the share of
the available worker time not spent training (Ray scheduling, Optuna storage, MLflow, the
driver's sampling). Startup (Ray, dataset synthesis) and the classical baselines, which run
once the last trials are started, are reported separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import ray
from _angle import model_option, study_data
from mlflow.tracking import MlflowClient

from search.config import parse_config
from search.driver.loop import Launch
from search.settings import Settings

ROOT = Path(__file__).parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("space", nargs="?", default=str(ROOT / "spaces" / "audio_angle.yaml"))
    parser.add_argument("--trials", type=int, help="trials per band (default: the file's)")
    parser.add_argument("--scale", type=int, default=1, help="multiply the training set: longer trials")
    model_option(parser)
    args = parser.parse_args()
    config = parse_config(study_data(args.space, args.model), Path(args.space))
    if args.trials:
        config = dataclasses.replace(config, search=dataclasses.replace(config.search, trials_per_band=args.trials))
    config = dataclasses.replace(config,
                                 task=dataclasses.replace(config.task, n_train=config.task.n_train * args.scale))
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(run_dir=folder)
        started = time.time()
        launch = Launch(config, "bench", settings)
        launch.prepare()
        prepared = time.time()
        launch.connect()
        ray.get([band.data for band in launch.bands])
        ready = time.time()
        launch.run()
        done = time.time()

        client = MlflowClient(settings.tracking_uri)
        experiment = client.get_experiment_by_name("bench").experiment_id
        runs = [r for r in client.search_runs([experiment], max_results=5000)
                if r.data.tags.get("bandsearch.role") == "trial"]
        last_trial = max(r.info.end_time for r in runs) / 1000
        train = sum(r.data.metrics.get("train_seconds", 0.0) for r in runs)
        body = sum(r.data.metrics.get("trial_seconds", 0.0) for r in runs)
        ray.shutdown()

    workers, loop = config.search.workers, last_trial - ready
    print(f"training clips per band: {config.task.n_train}, mean training time per trial: {train / len(runs):.2f} s")
    print(f"trials: {len(runs)} ({len(config.bands)} bands x {config.search.trials_per_band}), workers: {workers}")
    print(f"total wall: {done - started:.1f} s = setup {prepared - started:.1f} s (storage, MLflow) "
          f"+ Ray start and datasets {ready - prepared:.1f} s + study loop {loop:.1f} s "
          f"+ baselines and close {done - last_trial:.1f} s")
    print(f"training: {train:.1f} s of {workers} x {loop:.1f} = {workers * loop:.1f} worker-seconds")
    print(f"in-task reporting (MLflow per epoch, Optuna report/prune): {body - train:.1f} s")
    print(f"share of the study loop outside training: {1 - train / (workers * loop):.1%}")
    print(f"share of the whole run outside training:  {1 - train / (workers * (done - started)):.1%}")


if __name__ == "__main__":
    main()
