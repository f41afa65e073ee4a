"""Benchmark: orchestration overhead per trial, 2 workers against 1, and per-trial service calls.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/distributed_overhead.py [--trials 8] [--clips 20000]

Every trial is the same fixed configuration (Adam, constant lr and batch), so the three
runs below train identical trials, one after another in this one process tree:

1. bare: `objectives.train.loop.train` N times in this process, no Optuna, Ray or MLflow;
2. 1 worker: the same N trials through `Launch` (local Ray, the storage served by the
   driver's gRPC proxy, MLflow on sqlite or --tracking-uri): overhead per trial =
   (study loop wall time - bare time) / N, also as a share of a 10-second trial;
3. 2 workers: the same again with two trials in flight; throughput ratio against 1 worker;
4. the machine's own ceiling for that ratio: the bare loop in two processes at once (half
   the trials each) against one process, with no Ray, Optuna or MLflow at all.

Storage calls are counted at the storage behind the proxy (every process's calls pass
there); MLflow calls are the driver's (counted on its client); calls carrying epochs are
counted as distinct timestamps in each run's metric history.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import multiprocessing
import tempfile
import time
from pathlib import Path

import ray
import torch
from mlflow.tracking import MlflowClient

from objectives.task.dataset import load_or_generate
from objectives.train.loop import train
from search.config import parse_config
from search.driver.loop import Launch
from search.settings import Settings
from search.storage import open_storage

READS = ("get_", "check_")


def study_config(trials: int, clips: int, epochs: int, workers: int, folder: Path):
    return parse_config({
        "search": {"trials_per_band": trials, "workers": workers, "sampler": "random", "pruner": "none"},
        "task": {"n_train": clips, "n_val": 1000},
        "training": {"epochs": epochs},
        "bands": [{"name": "1000", "center_hz": 1000}],
        "space": {"optimizer": {"adam": {"lr": 3.0e-3}}, "batch_size": 128, "warmup_epochs": 1},
    }, source=folder / "bench.yaml")


def count_calls(target: object, names: list[str], counter: collections.Counter) -> None:
    """Wrap `target`'s methods so each call adds to `counter` (this benchmark's probe, not the service's)."""
    for name in names:
        method = getattr(target, name)

        @functools.wraps(method)
        def counted(*args, __method=method, __name=name, **kwargs):
            counter[__name] += 1
            return __method(*args, **kwargs)

        setattr(target, name, counted)


def bare(config, data, trials: int) -> list[float]:
    torch.set_num_threads(1)
    plan = config.bands[0]
    train_config = plan.train_config(config.training, {"optimizer": "adam", "optimizer_params": {}, "lr": 3.0e-3,
                                                        "batch_size": 128, "warmup_epochs": 1})
    seconds = []
    for _ in range(trials):
        started = time.perf_counter()
        train(train_config, data, device="cpu")
        seconds.append(time.perf_counter() - started)
    return seconds


def _bare_share(config, data, trials: int, barrier) -> float:
    one_epoch = dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=1))
    bare(one_epoch, data, 1)  # warm, like the one-process loop after its first round
    barrier.wait()  # both processes start training together
    started = time.perf_counter()
    bare(config, data, trials)
    return time.perf_counter() - started


def bare_in_two_processes(config, data, trials: int) -> float:
    """Wall time of `trials` bare trials split over two processes training at the same time."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        barrier = manager.Barrier(2)
        shares = [pool.apply_async(_bare_share, (config, data, half, barrier))
                  for half in (trials // 2, trials - trials // 2)]
        return max(share.get() for share in shares)


def orchestrated(config, name: str, settings: Settings, mlflow_calls: collections.Counter) -> float:
    """Wall time of the study loop (Ray up and the dataset in the object store beforehand)."""
    run = Launch(config, name, settings)
    count_calls(run.tracker.tracker.client, ["create_run", "log_batch", "set_terminated", "update_run",
                                             "log_text", "search_runs"], mlflow_calls)
    run.prepare()
    run.connect(num_cpus=2)
    ray.get([band.data for band in run.bands])
    started = time.perf_counter()
    run.run()
    return time.perf_counter() - started


def _trial_runs(client: MlflowClient, study: str) -> list:
    experiment = client.get_experiment_by_name(study).experiment_id
    return [r for r in client.search_runs([experiment]) if r.data.tags.get("bandsearch.role") == "trial"]


def in_worker_training(tracking_uri: str, study: str) -> float:
    """Seconds the workers spent inside the training loop (reporting excluded)."""
    return sum(r.data.metrics["train_seconds"] for r in _trial_runs(MlflowClient(tracking_uri), study))


def epoch_batches(tracking_uri: str, study: str) -> int:
    """Calls that carried epochs: distinct timestamps in each run's val_accuracy history
    (the workers' batches, and the driver's end-of-trial call when it carried epochs)."""
    client = MlflowClient(tracking_uri)
    runs = _trial_runs(client, study)
    stamps = {(r.info.run_id, m.timestamp)
              for r in runs for m in client.get_metric_history(r.info.run_id, "val_accuracy")}
    return len(stamps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--clips", type=int, default=12000, help="training clips: sets the trial length")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="repeat bare / 1 worker / 2 workers; best of each")
    parser.add_argument("--tracking-uri", help="an MLflow server (default: sqlite in a temp folder)")
    parser.add_argument("--proxy-port", type=int, default=13117)
    args = parser.parse_args()
    n = args.trials
    times: dict[str, list[float]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings.resolve(run_dir=tmp, tracking_uri=args.tracking_uri,
                                    storage_proxy=f"127.0.0.1:{args.proxy_port}")
        one, two = (study_config(n, args.clips, args.epochs, w, folder) for w in (1, 2))
        data = load_or_generate(one.task, one.bands[0].band, settings.cache_dir)
        storage_calls: collections.Counter = collections.Counter()
        storage = open_storage(settings.storage_url)
        count_calls(storage, [n for n in dir(storage) if n.startswith(("set_", "create_", "get_", "check_"))
                              and callable(getattr(storage, n))], storage_calls)
        mlflow_calls: collections.Counter = collections.Counter()
        for index in range(args.rounds):
            times["bare"].append(sum(bare(one, data, n)))
            times["one"].append(orchestrated(one, f"w1-{index}", settings, mlflow_calls))
            times["one trained"].append(in_worker_training(settings.tracking_uri, f"w1-{index}"))
            if index == 0:
                calls, driver_mlflow = dict(storage_calls), dict(mlflow_calls)
                batches = epoch_batches(settings.tracking_uri, "w1-0")
            times["two"].append(orchestrated(two, f"w2-{index}", settings, collections.Counter()))
            times["bare two processes"].append(bare_in_two_processes(one, data, n))
        ray.shutdown()

    bare_total, loop_one, loop_two = min(times["bare"]), min(times["one"]), min(times["two"])
    bare_two = min(times["bare two processes"])
    overhead = (loop_one - bare_total) / n
    # The same window: each 1-worker run against the training time its own workers measured.
    in_run = min(loop - trained for loop, trained in zip(times["one"], times["one trained"])) / n
    writes = sum(count for name, count in calls.items() if not name.startswith(READS))
    reads = sum(count for name, count in calls.items() if name.startswith(READS))
    driver = sum(driver_mlflow.values())
    print("runs (s): " + "; ".join(f"{k} {[round(t, 2) for t in v]}" for k, v in times.items())
          + f"; best of {args.rounds} used")
    print(f"trial: {args.clips} clips x {args.epochs} epochs = {bare_total / n:.2f} s bare; {n} trials per run")
    print(f"1 worker vs bare loop: {loop_one:.2f} s vs {bare_total:.2f} s -> overhead {overhead * 1000:.0f} ms "
          f"per trial = {overhead / 10:.2%} of a 10 s trial")
    print(f"1 worker vs the training time inside its own workers (same window): {in_run * 1000:.0f} ms per "
          f"trial = {in_run / 10:.2%} of a 10 s trial")
    print(f"2 workers: {loop_two:.2f} s -> throughput {loop_one / loop_two:.2f}x of 1 worker; the machine's "
          f"ceiling, bare loop in 2 processes: {bare_two:.2f} s -> {bare_total / bare_two:.2f}x of 1 process")
    print(f"per trial: storage writes {writes / n:.1f}, reads {reads / n:.1f} {calls}; "
          f"MLflow calls from the driver {driver / n:.1f} {driver_mlflow}; calls carrying epochs "
          f"{batches / n:.1f} (the workers' own plus the driver's end-of-trial call when it carried them)")


if __name__ == "__main__":
    main()
