"""Benchmark: the tuned networks (MLP, phase-map CNN, CRNN, pair-phase MLP, steered-response CNN) against MUSIC
and SRP-PHAT in unseen rooms.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/models_vs_baselines.py [--trials 8] [--seeds 3]
        [--epochs E] [--train-clips N] [--bands 500,3000] [--rooms 10] [--positions 24]
        [--symmetric-views off] [--models mlp,steered_cnn] [--figure PNG] [--quick]

On spaces/reverberant_circular.yaml (6-mic ring, 36 classes), per model: a short study (--trials
per band, the YAML's space plus the model's settings; its validation clips come from the bank's
2 held-out rooms, on which it picks the best config), then each band's best config re-trained
with --seeds seeds in this process on one CPU thread and scored on test rooms that neither the
training nor the choice of config saw: 8 of the 10 rooms of a second bank, drawn with another
task seed (mean ± 95 % t-interval over the seeds), beside MUSIC and SRP-PHAT on the same test
clips (all of them), and paired with each of them clip by clip (the network's per-clip score
averaged over its seeds, minus the baseline's; a bootstrap interval over the clips, which the
seed interval does not cover). Also the time per epoch of each model (mean over the re-trainings' epochs,
evaluation included) and the final training loss against the test loss. --rooms/--positions
change the room bank; its simulation (a first launch's cost) is timed. --symmetric-views on|off
overrides the source's `symmetric_views` (training on each room in the ring's 12 orientations). Draws
tests/benchmarks/figures/models_vs_baselines.png (or --figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from objectives.task import baselines as classical
from objectives.task.config import TaskConfig
from objectives.task.dataset import load_or_generate, split_clips, split_features, standardise
from objectives.task.geometry import class_error_deg
from objectives.task.sources.rooms import load_or_build_bank
from objectives.train.config import train_from_dict
from objectives.train.loop import predict, train
from search.config import StudyConfig, parse_config, read_yaml
from search.driver.launch import summarize
from search.driver.loop import Launch
from search.settings import Settings
from search.stats import fmt, mean_ci, paired_interval, separated

ROOT = Path(__file__).parents[2]
YAML = ROOT / "spaces" / "reverberant_circular.yaml"
FIGURE = ROOT / "tests" / "benchmarks" / "figures" / "models_vs_baselines.png"
FRAME_SPACE = {"channels": {"choices": [8, 16, 32]}, "hidden": {"choices": [32, 64]},
               "dropout": {"low": 0.0, "high": 0.3}}
MODEL_SPACES = {"mlp": {"hidden": {"choices": [64, 128, 256]}, "dropout": {"low": 0.0, "high": 0.3}},
                "pair_mlp": {"hidden": {"choices": [128, 256, 512]}, "dropout": {"low": 0.0, "high": 0.4}},
                "cnn": FRAME_SPACE, "crnn": FRAME_SPACE,
                "steered_cnn": {"channels": {"choices": [16, 32, 64]}, "layers": {"choices": [1, 2, 3]},
                                "dropout": {"low": 0.0, "high": 0.3}}}
BASELINES = ("music", "srp_phat")


def study_config(args: argparse.Namespace, model: str) -> StudyConfig:
    """The YAML with `model`, its settings in the space, the trial count, epochs, bands and room
    bank of the command line; no baselines in the study (they are scored on the test rooms)."""
    raw = read_yaml(YAML, "study file")
    raw["search"]["trials_per_band"] = args.trials
    raw["training"]["model"] = {"name": model}
    raw["space"]["model"] = MODEL_SPACES[model]
    if args.epochs:
        raw["training"]["epochs"] = args.epochs
    if args.train_clips:
        raw["task"]["n_train"] = args.train_clips
    if args.bands:
        raw["bands"] = [band for band in raw["bands"] if band["name"] in args.bands.split(",")]
    rooms = raw["task"]["sources"][0]
    rooms["n_rooms"] = args.rooms or rooms["n_rooms"]
    rooms["positions_per_room"] = args.positions or rooms["positions_per_room"]
    if args.symmetric_views:
        rooms["symmetric_views"] = args.symmetric_views == "on"
    raw["baselines"] = {"methods": []}
    return parse_config(raw, YAML)


def test_task() -> TaskConfig:
    """The YAML's task with the next seed and a bank of 10 of its rooms (whatever --rooms says, so
    every run is scored on the same rooms), 8 of them held out to give the test clips (its few
    training clips are never used): more rooms than a bank's 2 validation rooms, whose
    difficulty varies from room to room."""
    task = parse_config(read_yaml(YAML, "study file"), YAML).task
    test_rooms = dataclasses.replace(task.sources[0], n_rooms=10, held_out_rooms=8, symmetric_views=False)
    return dataclasses.replace(task, seed=task.seed + 1, n_train=task.n_angle_bins, sources=(test_rooms,))


def baseline_predictions(config: StudyConfig, settings: Settings) -> dict[str, dict[str, torch.Tensor]]:
    """Per band: MUSIC's and SRP-PHAT's class for every test clip, and the clips' `labels`."""
    test = test_task()
    out = {}
    for plan in config.bands:
        clips = list(split_clips(test, plan.band, "val", settings.cache_dir))
        waveforms = torch.cat([chunk.waveforms for chunk in clips])
        out[plan.band.name] = {"labels": torch.cat([chunk.labels for chunk in clips]),
                               **{m: classical.predict(test, plan.band, m, waveforms) for m in BASELINES}}
    return out


def clip_errors(predicted: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each clip's angle error between class centres, as the network and the baselines are scored."""
    test = test_task()
    return class_error_deg(predicted, labels, test.n_angle_bins, test.array.span_deg)


def baseline_scores(predictions: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each baseline's accuracy and angle error on the test clips (`baselines.method_scores`)."""
    test, scores = test_task(), {}
    for method in BASELINES:
        scores.update(classical.method_scores(test, method, predictions[method], predictions["labels"]))
    return scores


def time_bank(config: StudyConfig, settings: Settings) -> float:
    """Seconds to simulate the room bank into the run's cache (what a first launch pays once)."""
    started = time.perf_counter()
    load_or_build_bank(config.task.sources[0], config.task, settings.cache_dir)
    return time.perf_counter() - started


def tune(config: StudyConfig, settings: Settings, name: str) -> dict[str, dict]:
    """Run the study in-process; each band's summary row (best config, baselines) by band name."""
    launch = Launch(config, name, settings)
    launch.prepare()
    launch.run()
    return {row["band"]: row for row in summarize(launch.bands)}


def retrain(config: StudyConfig, settings: Settings, row: dict, seeds: int) -> dict[str, list]:
    """The band's best config re-trained with each seed on one thread: test accuracy and angle
    error after the last epoch, seconds per epoch, final training and test loss, the class it
    gives each test clip."""
    plan = next(plan for plan in config.bands if plan.band.name == row["band"])
    best = train_from_dict(dict(row["config"]))
    kind = best.model.feature_kind
    study_data = load_or_generate(config.task, plan.band, settings.cache_dir, kind)
    # The test clips standardised as the training clips were (the study's statistics, not their own).
    test_x, test_y = split_features(test_task(), plan.band, "val", settings.cache_dir, kind)
    test_x = standardise(test_x, study_data.feature_mean, study_data.feature_std)
    data = dataclasses.replace(study_data, val_x=test_x, val_y=test_y)
    out: dict[str, list] = {"acc": [], "err": [], "epoch_s": [], "train_loss": [], "val_loss": [], "predicted": []}
    for seed in range(seeds):
        result = train(dataclasses.replace(best, seed=seed), data, device="cpu", dynamics=False)
        out["predicted"].append(predict(result.model, data.val_x))
        last = result.history[-1]
        out["acc"].append(last["val_accuracy"])
        out["err"].append(last["val_angle_error_deg"])
        out["epoch_s"].append(result.train_seconds / result.epochs)
        out["train_loss"].append(last["train_loss"])
        out["val_loss"].append(last["val_loss"])
    return out


def print_tables(scores: dict, baselines: dict, predicted: dict, configs: dict, selected: dict) -> None:
    """Markdown: accuracy and error per band and method, epoch times and ratios, losses, configs."""
    models = list(next(iter(scores.values())))
    print("| band | " + " | ".join(f"{m} acc / err" for m in models) + " | MUSIC acc / err | SRP-PHAT acc / err |")
    print("| --- " * (len(models) + 3) + "|")
    for band, per_model in scores.items():
        cells = [f"{fmt(s['acc'])} / {fmt(s['err'], 2)}°" for s in per_model.values()]
        cells += [f"{baselines[band][f'baseline.{m}.accuracy']:.3f} / "
                  f"{baselines[band][f'baseline.{m}.angle_error_deg']:.2f}°" for m in BASELINES]
        print(f"| {band} Hz | " + " | ".join(cells) + " |")
    print("\nBeats both baselines with intervals apart (95 %; accuracy higher, angle error lower):")
    for band, per_model in scores.items():
        best_acc = max(baselines[band][f"baseline.{m}.accuracy"] for m in BASELINES)
        best_err = min(baselines[band][f"baseline.{m}.angle_error_deg"] for m in BASELINES)
        words = {1: "better", -1: "worse", 0: "overlaps"}
        print(f"- {band} Hz: " + ", ".join(
            f"{m} accuracy {words[separated(s['acc'], [best_acc] * 2)]}, "
            f"error {words[-separated(s['err'], [best_err] * 2)]}" for m, s in per_model.items()))
    print("\nPaired over the test clips (each scored by both): network minus baseline, the network's "
          "per-clip score averaged over its seeds; mean [95 % bootstrap interval over clips]:\n")
    print("| band | model | " + " | ".join(f"accuracy − {m} | angle error − {m}" for m in BASELINES) + " |")
    print("| --- " * (2 + 2 * len(BASELINES)) + "|")
    for band, per_model in scores.items():
        labels = predicted[band]["labels"]
        for model, s in per_model.items():
            per_seed = torch.stack([p == labels for p in s["predicted"]]).double()
            assert torch.allclose(per_seed.mean(1), torch.tensor(s["acc"], dtype=torch.float64)), "clips out of line"
            correct = per_seed.mean(0)
            error = torch.stack([clip_errors(p, labels) for p in s["predicted"]]).mean(0)
            cells = []
            for m in BASELINES:
                for mine, theirs, digits in ((correct, (predicted[band][m] == labels).double(), 3),
                                             (error, clip_errors(predicted[band][m], labels), 2)):
                    mean, low, high = paired_interval((mine - theirs).tolist())
                    cells.append(f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]")
            print(f"| {band} Hz | {model} | " + " | ".join(cells) + " |")
    nets = [m for m in models if m != "mlp"]
    print("\n| band | " + " | ".join(f"{m} s/epoch" for m in models) + "".join(f" | {m} / mlp" for m in nets) + " |")
    print("| --- " * (len(models) + len(nets) + 1) + "|")
    for band, per_model in scores.items():
        epoch = {m: statistics.fmean(s["epoch_s"]) for m, s in per_model.items()}
        print(f"| {band} Hz | " + " | ".join(f"{t:.3f}" for t in epoch.values())
              + "".join(f" | {epoch[m] / epoch['mlp']:.1f}×" for m in nets) + " |")
    print("\nValidation accuracy of the best trial (the held-out rooms it was picked on) against its test accuracy:")
    print("\n| band | " + " | ".join(f"{m} validation / test" for m in models) + " |")
    print("| --- " * (len(models) + 1) + "|")
    for band, per_model in scores.items():
        print(f"| {band} Hz | " + " | ".join(f"{selected[band][m]:.3f} / {statistics.fmean(s['acc']):.3f}"
                                              for m, s in per_model.items()) + " |")
    print("\n| band | " + " | ".join(f"{m} train / test loss" for m in models) + " |")
    print("| --- " * (len(models) + 1) + "|")
    for band, per_model in scores.items():
        print(f"| {band} Hz | " + " | ".join(f"{fmt(s['train_loss'], 2)} / {fmt(s['val_loss'], 2)}"
                                              for s in per_model.values()) + " |")
    print("\nBest configs:")
    for (band, model), config in configs.items():
        print(f"- {band} Hz {model}: {config['optimizer']} lr {config['lr']:.2g}, batch {config['batch_size']}, "
              f"warm-up {config['warmup_epochs']}, {config['model']}")


def plot(scores: dict, baselines: dict, path: Path) -> None:
    """Accuracy per band per method, the networks with their 95 % interval bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = list(scores)
    methods = list(next(iter(scores.values()))) + list(BASELINES)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, method in enumerate(methods):
        if method in BASELINES:
            values = [baselines[b][f"baseline.{method}.accuracy"] for b in bands]
            errors = [0.0] * len(bands)
        else:
            values, errors = zip(*(mean_ci(scores[b][method]["acc"]) for b in bands))
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(bands))]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=method)
    ax.set_xticks(range(len(bands)), [f"{b} Hz" for b in bands])
    ax.set_ylabel("test-room accuracy")
    ax.set_title("Tuned networks (mean ± 95 % CI over seeds) vs classical baselines")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8, help="trials per band and model")
    parser.add_argument("--seeds", type=int, default=3, help="re-training seeds of each best config")
    parser.add_argument("--epochs", type=int, default=0, help="epochs per trial (default: the YAML's)")
    parser.add_argument("--train-clips", type=int, default=0, help="training clips per band (default: the YAML's)")
    parser.add_argument("--bands", default="", help="comma-separated band names, e.g. 500,3000")
    parser.add_argument("--rooms", type=int, default=0, help="n_rooms of the room bank (default: the YAML's)")
    parser.add_argument("--positions", type=int, default=0, help="positions_per_room (default: the YAML's)")
    parser.add_argument("--symmetric-views", choices=["on", "off"], help="the source's symmetric_views "
                        "(default: the YAML's)")
    parser.add_argument("--models", default="mlp,cnn,crnn,pair_mlp,steered_cnn",
                        help="mlp first (the time ratios' base)")
    parser.add_argument("--figure", default=str(FIGURE), help="where the PNG goes")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 trials, 2 epochs, 2 seeds, 3000 Hz")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.seeds, args.bands = 2, 2, 2, args.bands or "3000"
    torch.set_num_threads(1)
    started = time.perf_counter()
    scores: dict = {}
    baselines: dict = {}
    predicted: dict = {}  # per band, each baseline's class for every test clip, and the labels
    configs: dict = {}
    selected: dict = {}  # the best trial's validation accuracy, on which it was picked
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(run_dir=str(Path(folder) / "runs"))
        for model in args.models.split(","):
            config = study_config(args, model)
            if not baselines:
                rooms = config.task.sources[0]
                print(f"room bank {rooms.n_rooms} rooms x {rooms.positions_per_room} positions: "
                      f"{time_bank(config, settings):.1f} s to simulate (first launch only)")
                predicted = baseline_predictions(config, settings)
                baselines = {band: baseline_scores(p) for band, p in predicted.items()}
            tuned = time.perf_counter()
            rows = tune(config, settings, f"bench-{model}")
            print(f"{model}: {args.trials} trials x {len(rows)} bands in {time.perf_counter() - tuned:.0f} s")
            for band, row in rows.items():
                configs[band, model] = row["config"]
                selected.setdefault(band, {})[model] = row["best"]
                scores.setdefault(band, {})[model] = retrain(config, settings, row, args.seeds)
    test = test_task()
    print(f"\n{len(config.bands)} bands, {args.trials} trials per band and model, {config.training.epochs} epochs, "
          f"{args.seeds} seeds; test set: all {test.n_val} clips of {test.sources[0].held_out_rooms} test rooms "
          f"(another bank's) for every method; wall {time.perf_counter() - started:.0f} s\n")
    print_tables(scores, baselines, predicted, configs, selected)
    plot(scores, baselines, Path(args.figure))
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
