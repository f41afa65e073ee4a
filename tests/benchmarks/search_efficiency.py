"""Benchmark: is the search worth its compute? Per band, same objective and trial budget:

  (a) bandsearch: TPE + median pruner (spaces/audio_angle.yaml)
  (b) random search, same budget, no pruning
  (c) the hand-picked per-frequency table, trained for the same epochs
  (d) Ray Tune with OptunaSearch and ASHA, same space and budget

    .venv/bin/python tests/benchmarks/search_efficiency.py [--seeds 3] [--trials 20] [--out docs/figures]
        [--space spaces/reverberant_circular.yaml]

Reports, per band (medians over seeds): best accuracy at the end and at (a)'s compute;
compute (trial-epochs and CPU seconds) to reach the target, here the hand-picked table's
accuracy; and the orchestration overhead per trial of (a) and (d). Writes a PNG of best
accuracy against trial-epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
import ray
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from objectives.task.dataset import load_or_generate
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.optim import OPTIMIZERS
from search.config import StudyConfig, load_config
from search.driver.loop import Launch
from search.settings import Settings
from search.storage import open_storage
from search.studies import band_study_name

ROOT = Path(__file__).parents[2]
# The hand-picked table: learning rate by band (<1000 Hz, 1000-2000 Hz, >2000 Hz).
HAND_PICKED = {
    "sgd": ([0.008, 0.01, 0.012], {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    "adam": ([0.0009, 0.001, 0.0012], {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4}),
    "svrg": ([0.009, 0.01, 0.012], {"weight_decay": 1e-4}),
}

# A trial as the benchmark sees it: when it ended, epochs run, seconds, final accuracy or None.
Record = tuple[float, int, float, float | None]


def _band_index(center: float) -> int:
    return 0 if center < 1000 else 1 if center <= 2000 else 2


def run_bandsearch(config: StudyConfig, name: str, settings: Settings) -> tuple[dict[str, list[Record]], float]:
    """(records per band, orchestration overhead per trial in seconds)."""
    launch = Launch(config, name, settings)
    launch.prepare()
    launch.connect(num_cpus=2)
    ray.get([band.data for band in launch.bands])
    started = time.perf_counter()
    launch.run()
    wall = time.perf_counter() - started
    storage = open_storage(settings.storage_url)
    records: dict[str, list[Record]] = {}
    for plan in config.bands:
        study = optuna.load_study(study_name=band_study_name(name, plan.band.name), storage=storage)
        records[plan.band.name] = [
            (t.datetime_complete.timestamp(), len(t.intermediate_values),
             (t.datetime_complete - t.datetime_start).total_seconds(),
             t.value if t.state == TrialState.COMPLETE else None)
            for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        ]
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(name).experiment_id
    runs = [r for r in client.search_runs([experiment], max_results=5000)
            if r.data.tags.get("bandsearch.role") == "trial"]
    trained = sum(r.data.metrics.get("train_seconds", 0.0) for r in runs)
    return records, (config.search.workers * wall - trained) / len(runs)


@dataclasses.dataclass
class DefineByRun:
    """Our space as OptunaSearch's define-by-run function (picklable: Tune saves its searcher)."""

    plan: object

    def __call__(self, trial: optuna.Trial) -> None:
        self.plan.space.sample(trial)


def run_tune(config: StudyConfig, seed: int, cache: Path, folder: Path) -> tuple[dict[str, list[Record]], float]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    def trainable(params: dict, data=None, plan=None) -> None:
        started = time.perf_counter()

        class Report:  # the same reporting seam bandsearch uses, talking to Tune instead
            def report(self, epoch: int, metrics: dict) -> None:
                tune.report({"val_accuracy": metrics["val_accuracy"], "train_seconds": time.perf_counter() - started})

        sampled = plan.space.sample(optuna.trial.FixedTrial(params))
        train(plan.train_config(config.training, sampled), data, Report(), device="cpu")

    records: dict[str, list[Record]] = {}
    trained = wall = trials = 0.0
    for plan in config.bands:
        data = load_or_generate(config.task, plan.band, cache)
        search = OptunaSearch(space=DefineByRun(plan), metric="val_accuracy", mode="max", seed=seed)
        scheduler = ASHAScheduler(metric="val_accuracy", mode="max", max_t=config.training.epochs,
                                  grace_period=2, reduction_factor=3)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, data=data, plan=plan), {"cpu": 1}),
            tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                        num_samples=config.search.trials_per_band, max_concurrent_trials=2),
            run_config=tune.RunConfig(storage_path=str(folder), name=f"tune-{seed}-{plan.band.name}", verbose=0),
        )
        started = time.perf_counter()
        grid = tuner.fit()
        wall += time.perf_counter() - started
        band: list[Record] = []
        for result in grid:
            frame = result.metrics_dataframe
            epochs = int(frame["training_iteration"].max())
            value = float(frame["val_accuracy"].iloc[-1]) if epochs == config.training.epochs else None
            band.append((float(frame["timestamp"].iloc[-1]), epochs, float(frame["time_total_s"].iloc[-1]), value))
            trained += float(frame["train_seconds"].iloc[-1])
            trials += 1
        records[plan.band.name] = band
    return records, (2 * wall - trained) / trials


def run_hand_picked(config: StudyConfig, seed: int, cache: Path) -> dict[str, list[Record]]:
    records: dict[str, list[Record]] = {}
    for plan in config.bands:
        data = load_or_generate(config.task, plan.band, cache)
        band: list[Record] = []
        for optimizer, (lrs, params) in HAND_PICKED.items():
            if optimizer not in OPTIMIZERS:
                continue
            known = {k: v for k, v in params.items() if k in OPTIMIZERS[optimizer].defaults}
            started = time.perf_counter()
            result = train(TrainConfig(optimizer=optimizer, lr=lrs[_band_index(plan.band.center_hz)],
                                       optimizer_params=known, batch_size=64, epochs=config.training.epochs,
                                       seed=seed, model=config.training.model), data, device="cpu")
            band.append((time.time(), result.epochs, time.perf_counter() - started, result.val_accuracy))
        records[plan.band.name] = band
    return records


def curve(records: list[Record]) -> list[tuple[int, float]]:
    """Best final accuracy so far against cumulative trial-epochs, in completion order."""
    points, epochs, best = [], 0, 0.0
    for _, n, _, value in sorted(records):
        epochs += n
        best = max(best, value or 0.0)
        points.append((epochs, best))
    return points


def best_at(points: list[tuple[int, float]], budget: float) -> float:
    return max([best for epochs, best in points if epochs <= budget] or [0.0])


def to_reach(records: list[Record], target: float) -> tuple[float, float] | None:
    epochs = seconds = 0.0
    for _, n, s, value in sorted(records):
        epochs, seconds = epochs + n, seconds + s
        if value is not None and value >= target:
            return epochs, seconds
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    parser.add_argument("--space", default=str(ROOT / "spaces" / "audio_angle.yaml"), help="the study's task and space")
    args = parser.parse_args()
    base = load_config(args.space)
    methods = ("bandsearch", "random", "hand-picked", "ray-tune")
    runs: dict[str, list[dict[str, list[Record]]]] = {m: [] for m in methods}
    overhead: dict[str, list[float]] = {"bandsearch": [], "ray-tune": []}
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(run_dir=folder)
        for seed in range(args.seeds):
            search = dataclasses.replace(base.search, seed=seed, trials_per_band=args.trials)
            ours, cost = run_bandsearch(dataclasses.replace(base, search=search), f"tpe-{seed}", settings)
            runs["bandsearch"].append(ours)
            overhead["bandsearch"].append(cost)
            random = dataclasses.replace(search, sampler={"name": "random"}, pruner={"name": "none"})
            runs["random"].append(
                run_bandsearch(dataclasses.replace(base, search=random), f"random-{seed}", settings)[0])
            runs["hand-picked"].append(run_hand_picked(base, seed, settings.cache_dir))
            tuned, cost = run_tune(dataclasses.replace(base, search=search), seed, settings.cache_dir, Path(folder))
            runs["ray-tune"].append(tuned)
            overhead["ray-tune"].append(cost)
            print(f"seed {seed} done", flush=True)
        ray.shutdown()
    report(base, runs, overhead, Path(args.out), args)


def report(base: StudyConfig, runs, overhead, out: Path, args) -> None:
    bands = [plan.band.name for plan in base.bands]
    median = statistics.median
    print(f"\n{args.seeds} seeds, {args.trials} trials per band, {base.training.epochs} epochs per full trial")
    fig, axes = plt.subplots(1, len(bands), figsize=(5 * len(bands), 4), dpi=100)
    for axis, band in zip(axes, bands):
        target = median(max(v for *_, v in seed[band]) for seed in runs["hand-picked"])
        ours_budget = median(sum(n for _, n, _, _ in seed[band]) for seed in runs["bandsearch"])
        print(f"\nband {band} Hz: target = hand-picked table's best accuracy {target:.4f}; "
              f"equal compute = bandsearch's {ours_budget:.0f} trial-epochs")
        print("| method | best accuracy | best at equal compute | trial-epochs used | trial-epochs to target "
              "| CPU s to target |")
        print("| --- | --- | --- | --- | --- | --- |")
        for method in ("bandsearch", "random", "hand-picked", "ray-tune"):
            seeds = [seed[band] for seed in runs[method]]
            curves = [curve(records) for records in seeds]
            reached = [to_reach(records, target) for records in seeds]
            hits = [r for r in reached if r is not None]
            to_target = ((f"{median(r[0] for r in hits):.0f} ({len(hits)}/{len(seeds)} seeds)",
                          f"{median(r[1] for r in hits):.1f}") if hits else ("not reached", "-"))
            print(f"| {method} | {median(c[-1][1] for c in curves):.4f} | "
                  f"{median(best_at(c, ours_budget) for c in curves):.4f} | {median(c[-1][0] for c in curves):.0f} | "
                  f"{to_target[0]} | {to_target[1]} |")
            grid = sorted({e for c in curves for e, _ in c})
            axis.plot(grid, [median(best_at(c, e) for c in curves) for e in grid], label=method, drawstyle="steps-post")
        axis.axhline(target, color="0.6", linestyle=":", label="target (hand-picked)")
        axis.set_ylim(target - 0.03, target + 0.03)  # the interesting part: around the target
        axis.set_title(f"band {band} Hz")
        axis.set_xlabel("cumulative trial-epochs")
        axis.set_ylabel("best validation accuracy (median over seeds)")
        axis.set_xscale("log")
        axis.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.space).stem
    figure = out / ("search_efficiency.png" if stem == "audio_angle" else f"search_efficiency_{stem}.png")
    fig.savefig(figure)
    print(f"\norchestration overhead per trial (worker-seconds not training), median over seeds: "
          f"bandsearch {median(overhead['bandsearch']):.3f} s, ray tune {median(overhead['ray-tune']):.3f} s")
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
