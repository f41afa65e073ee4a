"""Benchmark: how the driver's cost grows with workers, trials and bands, against Optuna alone
and Ray Tune with OptunaSearch, on a sleep objective (tests/benchmarks/sleep_objective.py)
that goes through the real path: ask, Ray task, report/prune, tell, MLflow.

    PYTHONPATH=.:tests/benchmarks .venv/bin/python tests/benchmarks/scale.py speedup --workers 1 4 16 64
    PYTHONPATH=.:tests/benchmarks .venv/bin/python tests/benchmarks/scale.py throughput --workers 16 --trials 1000
    PYTHONPATH=.:tests/benchmarks .venv/bin/python tests/benchmarks/scale.py throughput --workers 32 --bands 24 \
        --trials 417 --keep /tmp/scale-10k    # then: scale.py resume /tmp/scale-10k [--repeats 5]
    PYTHONPATH=.:tests/benchmarks .venv/bin/python tests/benchmarks/scale.py optuna --workers 16 --trials 1000
    PYTHONPATH=.:tests/benchmarks .venv/bin/python tests/benchmarks/scale.py tune --workers 16 --trials 300
    PYTHONPATH=.:tests/benchmarks .venv/bin/python tests/benchmarks/scale.py plot

`--server` runs bandsearch against a real `mlflow server` and Optuna's gRPC storage proxy on
127.0.0.1 (the cluster setup deploy/ recommends), both started and stopped here.

`ray.init(num_cpus=W)` with W above the cores is legal: the trials sleep. The driver's cost is
its own threads' CPU time (time.thread_time), split by what it was doing, so it reads the same on
a busy machine; trials per second and the worker idle share are wall-clock figures and do
depend on the machine (on 2 cores, W worker processes compete with the driver for the CPU).
Each run appends a JSON line to tests/benchmarks/figures/scale.jsonl; `plot` draws them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
FIGURES = ROOT / "tests" / "benchmarks" / "figures"
RESULTS = FIGURES / "scale.jsonl"
# 1/3-octave centres (IEC 61260) from 31.5 Hz to 6.3 kHz: 24 bands below 7 kHz.
THIRD_OCTAVES = [31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600, 2000,
                 2500, 3150, 4000, 5000, 6300]
OBJECTIVE = {"function": "sleep_objective:run", "metric": "score", "direction": "maximize"}


def study_raw(bands: int, trials: int, workers: int, epochs: int, pruner: str) -> dict:
    """The default study (spaces/audio_angle.yaml: its space and sampler) on the sleep objective."""
    raw = yaml.safe_load((ROOT / "spaces" / "audio_angle.yaml").read_text())
    raw["search"].update(trials_per_band=trials, workers=workers)
    if pruner == "none":
        raw["search"]["pruner"] = "none"
    # 2048 points: 7.8 Hz bins, so 31.5 Hz has some; mics 2 cm apart: alias-free to 8.6 kHz.
    raw["task"].update(n_train=256, n_val=64, n_fft=2048)
    raw["task"]["array"]["spacing_m"] = 0.02
    raw["training"]["epochs"] = epochs
    centres = [1000, 500, 3000][:bands] if bands <= 3 else THIRD_OCTAVES[-bands:]
    raw["bands"] = [{"name": f"{c:g}", "center_hz": c, "width_hz": round(0.2316 * c, 2)} for c in centres]
    raw["objective"] = OBJECTIVE
    return raw


class Meter:
    """The driver's CPU time (its own thread's), per kind of work, and what each trial cost."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.per_trial: list[tuple[int, float]] = []  # (finished trials of its band, driver CPU since the last)
        self.busy = 0.0  # worker seconds spent in trials
        self.done: list[float] = []  # wall time of each completion
        self._last = time.thread_time()

    def wrap(self, owner: object, name: str, kind: str) -> None:
        method = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.cpu[kind] += time.thread_time() - started

        setattr(owner, name, timed)

    def restart(self) -> None:
        """Count from here (the loop's start): setting up the launch is not a trial's cost."""
        self.cpu.clear()
        self._last = time.thread_time()

    def trial_done(self, finished: int, trial_seconds: float) -> None:
        now = time.thread_time()
        self.per_trial.append((finished, now - self._last))
        self._last = now
        self.busy += trial_seconds
        self.done.append(time.perf_counter())


class ProbedRunner:
    """search/cluster.py as the Launch's TrialRunner, its CPU time on the driver counted."""

    def __init__(self, meter: Meter):
        from search import cluster

        self.cluster, self.meter = cluster, meter
        for name in ("submit", "wait_one", "result", "cancel"):
            meter.wrap(self, name, "ray dispatch")

    def submit(self, *args):
        return self.cluster.submit(*args)

    def wait_one(self, *args, **kwargs):
        return self.cluster.wait_one(*args, **kwargs)

    def result(self, ref):
        return self.cluster.result(ref)

    def cancel(self, refs):
        return self.cluster.cancel(refs)


def _import_worker(seconds: float) -> None:
    import search.worker  # noqa: F401  (what a trial's first run in a fresh process pays)

    time.sleep(seconds)


def warm_workers(workers: int) -> None:
    """Start W Ray worker processes with the trial code imported, as on a cluster that has run
    trials before: a fresh process pays about 3 s of imports on its first trial, once."""
    import ray

    from search import cluster

    ray.get([cluster.start(_import_worker, 2.0) for _ in range(workers)])


def pin_driver(cpu: int | None) -> None:
    """Every thread of this process (the driver's, and those it starts later) on CPU `cpu` alone;
    Ray's own processes, started before, keep every CPU."""
    if cpu is not None:
        for thread in os.listdir("/proc/self/task"):
            os.sched_setaffinity(int(thread), {cpu})


def run_bandsearch(raw: dict, workers: int, folder: Path, server: bool, driver_cpu: int | None = None) -> dict:
    """One launch through the real Launch, with the meter's probes on its parts."""
    from search import ray_connection
    from search.config import parse_config
    from search.driver.loop import Launch
    from search.settings import Settings
    from tests.services import MlflowServer, free_port

    config = parse_config(raw, source=ROOT / "tests" / "benchmarks" / "scale.yaml")
    mlflow_server = None
    if server:
        mlflow_server = MlflowServer(folder)
        mlflow_server.start()
        settings = Settings.resolve(run_dir=str(folder), tracking_uri=mlflow_server.uri,
                                    storage_proxy=f"127.0.0.1:{free_port()}")
    else:
        settings = Settings.resolve(run_dir=str(folder))
    meter = Meter()
    launch = Launch(config, "scale", settings, runner=ProbedRunner(meter))
    writer_cpu = [0.0]
    attempt = launch.tracker._attempt

    def timed_attempt(write):  # runs on the MLflow writer thread
        started = time.thread_time()
        try:
            return attempt(write)
        finally:
            writer_cpu[0] += time.thread_time() - started

    launch.tracker._attempt = timed_attempt
    meter.wrap(launch, "_prepare", "ask + sample")
    meter.wrap(launch.outcomes, "record", "mlflow (queueing)")
    meter.wrap(launch.tracker, "flush", "mlflow (queueing)")
    tell = launch.outcomes.tell

    def told(flight, outcome, error, lost):
        started = time.thread_time()
        tell(flight, outcome, error, lost)
        meter.cpu["tell"] += time.thread_time() - started
        meter.trial_done(flight.band.finished, outcome.trial_seconds if outcome else 0.0)

    launch.outcomes.tell = told
    try:
        launch.prepare()
        from search.driver.bands import open_parent_runs

        open_parent_runs(launch.bands, launch.tracker, launch.experiment_id, "scale", settings.storage_url)
        launch.connect(num_cpus=workers)
        warm_workers(workers)
        pin_driver(driver_cpu)
        meter.restart()
        loop_cpu, started = time.thread_time(), time.perf_counter()
        launch.loop()
        wall, loop_cpu = time.perf_counter() - started, time.thread_time() - loop_cpu
    finally:
        if launch.proxy is not None:
            launch.proxy.stop()
        ray_connection.disconnect()
        if mlflow_server is not None:
            mlflow_server.stop()
    return summarize(meter, loop_cpu, writer_cpu[0], wall, workers)


def summarize(meter: Meter, loop_cpu: float, writer_cpu: float, wall: float, workers: int) -> dict:
    trials = len(meter.per_trial)
    accounted = sum(meter.cpu.values())
    per_trial_ms = {kind: 1000 * seconds / trials for kind, seconds in meter.cpu.items()}
    per_trial_ms["other (loop, progress)"] = 1000 * (loop_cpu - accounted) / trials
    per_trial_ms["mlflow writer thread"] = 1000 * writer_cpu / trials
    half = meter.done[len(meter.done) // 2:]
    # Steady state: from the end of the first wave of W trials to the start of the last wave.
    steady = meter.done[workers - 1: len(meter.done) - workers] if len(meter.done) > 2 * workers + 1 else []
    buckets: dict[int, list[float]] = defaultdict(list)
    for finished, cpu in meter.per_trial:
        buckets[_bucket(finished)].append(cpu)
    return {
        "trials": trials,
        "wall_s": wall,
        "trials_per_s": trials / wall,
        "trials_per_s_second_half": (len(half) - 1) / (half[-1] - half[0]) if len(half) > 2 else None,
        "trials_per_s_steady": (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 2 else None,
        "driver_cpu_ms_per_trial": per_trial_ms,
        "driver_cpu_ms_per_trial_total": 1000 * (loop_cpu + writer_cpu) / trials,
        "driver_ceiling_trials_per_s": trials / (loop_cpu + writer_cpu),
        "worker_idle_share": 1 - meter.busy / (workers * wall),
        "driver_cpu_ms_by_finished": {str(k): 1000 * sum(v) / len(v) for k, v in sorted(buckets.items())},
    }


def _bucket(finished: int) -> int:
    """Finished trials of the band, rounded down to 0, 10, 30, 100, 300, 1000, 3000."""
    marks = [0, 10, 30, 100, 300, 1000, 3000]
    return max(m for m in marks if m <= finished)


def cmd_speedup(args) -> list[dict]:
    """W = 1, 4, ... with `--epoch-seconds` trials of `--epochs` epochs and no pruning (every trial
    lasts the same): speedup = trials/s at W over trials/s at 1."""
    os.environ["SLEEP_EPOCH_SECONDS"] = str(args.epoch_seconds)
    rows = []
    for workers in args.workers:
        trials = max(args.waves * workers, 3)
        raw = study_raw(args.bands, trials, workers, args.epochs, "none")
        with tempfile.TemporaryDirectory() as folder:
            row = run_bandsearch(raw, workers, Path(folder), args.server)
        row.update(kind="speedup", workers=workers, epochs=args.epochs, epoch_seconds=args.epoch_seconds,
                   server=args.server)
        rows.append(row)
    base = rows[0]["trials_per_s_steady"] / rows[0]["workers"]
    for row in rows:  # in steady state; a launch's first and last waves ramp up and drain
        row["speedup"] = row["trials_per_s_steady"] / base
        row["speedup_whole_run"] = row["trials_per_s"] * rows[0]["workers"] / rows[0]["trials_per_s"]
    return rows


def cmd_throughput(args) -> list[dict]:
    """Short trials (the driver is the bottleneck): trials/s and driver CPU as the study grows."""
    os.environ["SLEEP_EPOCH_SECONDS"] = str(args.epoch_seconds)
    rows = []
    for workers in args.workers:
        raw = study_raw(args.bands, args.trials, workers, args.epochs, "median")
        folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="scale-"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "scale.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))  # the order of choices counts
        row = run_bandsearch(raw, workers, folder, args.server, args.driver_cpu)
        row.update(kind="throughput", workers=workers, bands=args.bands, trials_per_band=args.trials,
                   driver_cpu=args.driver_cpu,
                   epochs=args.epochs, epoch_seconds=args.epoch_seconds, server=args.server, folder=str(folder))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("speedup", "throughput", "optuna", "tune"):
        p = sub.add_parser(name)
        p.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64] if name == "speedup" else [16])
        p.add_argument("--bands", type=int, default=1)
        p.add_argument("--trials", type=int, default=300, help="trials per band")
        p.add_argument("--epochs", type=int, default=2 if name == "speedup" else 3)
        p.add_argument("--epoch-seconds", type=float, default=5.0 if name == "speedup" else 0.0)
        p.add_argument("--waves", type=int, default=4, help="speedup: trials = waves x W")
        p.add_argument("--server", action="store_true", help="a real mlflow server and the gRPC storage proxy")
        p.add_argument("--keep", help="throughput: keep the study in this folder (for `resume`)")
        p.add_argument("--driver-cpu", type=int, help="throughput: the driver's threads on this CPU alone")
    resume = sub.add_parser("resume")
    resume.add_argument("folder")
    resume.add_argument("--repeats", type=int, default=5)
    sub.add_parser("plot")
    args = parser.parse_args()
    if args.command == "plot":
        from scale_plot import plot

        plot(RESULTS, FIGURES)
        return
    from scale_others import cmd_optuna, cmd_tune
    from scale_resume import cmd_resume

    commands = {"speedup": cmd_speedup, "throughput": cmd_throughput, "resume": cmd_resume, "optuna": cmd_optuna,
                "tune": cmd_tune}
    rows = commands[args.command](args)
    FIGURES.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        for row in rows:
            out.write(json.dumps({**row, "command": " ".join(sys.argv[1:]), "cpus": os.cpu_count()}) + "\n")
            print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
