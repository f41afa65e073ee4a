"""The search-efficiency benchmark's figures from its records (search_efficiency.py writes them):

    PYTHONPATH=. .venv/bin/python tests/benchmarks/search_efficiency_report.py [FILE.jsonl] [--png FILE]

Per band, the target is the median over seeds of random search's best value at its full budget
(the lower median: with an even number of seeds the mean of the middle two would be reached by
exactly half of them, and the median compute of random search would be infinite by construction).
Also per method: how many trials ran to the last epoch and the trial-epochs a run used in all
(means over seeds).

Compute to target: trial-epochs (and trial seconds, one thread each) summed over a run's trials
in the order they finished, up to the first trial whose final value reaches the target; a seed
that never reaches it counts as infinite. Each is a median over seeds with a 95 % bootstrap
interval (seeds resampled 10,000 times); "x less than random" is random's median over the
method's, its interval from resampling both. The figure: best value so far against trial-epochs,
median over seeds, shaded with the median's 95 % bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

FIGURES = Path(__file__).parent / "figures"
RESAMPLES = 10_000
TRANSFERRED = ("transfer", "lr-seeded")
FIRST_COLD = "tpe-median"  # the cold twin of records that do not name theirs (written before they did)
ORDER = ("tpe-median", "tpe-hyperband", "transfer", "lr-seeded", "random", "random-median", "random-hyperband",
         "ray-tune", "syne-tune")


def load(path: Path) -> tuple[dict[str, dict[str, dict[int, list]]], str]:
    """runs[band][method][seed] = trials in completion order, and the method the transferred ones are
    measured against."""
    runs: dict = defaultdict(lambda: defaultdict(dict))
    cold = FIRST_COLD
    for row in map(json.loads, path.read_text().splitlines()):
        runs[row["band"]][row["method"]][row["seed"]] = sorted(row["trials"])
        cold = row.get("cold", cold)
    return {band: {m: methods[m] for m in ORDER if m in methods} for band, methods in runs.items()}, cold


def best(trials: list) -> float:
    return max((t[3] for t in trials if t[3] is not None), default=-np.inf)


def target_of(random: dict[int, list]) -> float:
    """The lower median over seeds of random search's best value at its full budget."""
    return float(np.sort([best(t) for t in random.values()])[(len(random) - 1) // 2])


def to_target(trials: list, target: float, column: int) -> float:
    """Epochs (column 1) or seconds (column 2) spent until a trial reaches `target`; inf if none does."""
    spent = 0.0
    for trial in trials:
        spent += trial[column]
        if trial[3] is not None and trial[3] >= target:
            return spent
    return np.inf


def bootstrap(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Medians of `values` resampled with replacement."""
    return np.median(rng.choice(values, (RESAMPLES, len(values))), axis=1)


def interval(medians: np.ndarray) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles, each an actual resampled value (no interpolation with ∞);
    a ratio of two infinite medians (neither reached the target) is left out."""
    return np.nanpercentile(medians, 2.5, method="lower"), np.nanpercentile(medians, 97.5, method="higher")


def _fmt(value: float) -> str:
    return "∞" if value == np.inf else "–" if np.isnan(value) else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _ratio(value: float) -> str:
    return "–" if np.isnan(value) else "∞" if value == np.inf else f"{value:.2f}"


def band_table(band: str, methods: dict[str, dict[int, list]], rng: np.random.Generator,
               cold: str = FIRST_COLD) -> tuple[list[str], dict]:
    target = target_of(methods["random"])
    lines = [f"\n**band {band} Hz**: target {target:.4f} (random search's median best over "
             f"{len(methods['random'])} seeds)\n",
             "| method | seeds | reached | trial-epochs to target | trial seconds to target | x less than random "
             "(epochs) | median best | full trials | trial-epochs used |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    epochs = {m: np.array([to_target(t, target, 1) for t in seeds.values()]) for m, seeds in methods.items()}
    boot = {m: bootstrap(v, rng) for m, v in epochs.items()}
    ratios = {}
    for method, seeds in methods.items():
        seconds = np.array([to_target(t, target, 2) for t in seeds.values()])
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = boot["random"] / boot[method]
            ratios[method] = (np.median(epochs["random"]) / np.median(epochs[method]), *interval(ratio))
        low, high = interval(boot[method])
        s_low, s_high = interval(bootstrap(seconds, rng))
        lines.append(f"| {method} | {len(seeds)} | {int(np.isfinite(epochs[method]).sum())} | "
                     f"{_fmt(np.median(epochs[method]))} [{_fmt(low)}, {_fmt(high)}] | "
                     f"{_fmt(np.median(seconds))} [{_fmt(s_low)}, {_fmt(s_high)}] | "
                     f"{_ratio(ratios[method][0])} [{_ratio(ratios[method][1])}, {_ratio(ratios[method][2])}] | "
                     f"{np.median([best(t) for t in seeds.values()]):.4f} | "
                     f"{np.mean([sum(t[3] is not None for t in trials) for trials in seeds.values()]):.1f} | "
                     f"{np.mean([sum(t[1] for t in trials) for trials in seeds.values()]):.0f} |")
    for method in (m for m in TRANSFERRED if m in methods and cold in methods):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = boot[cold] / boot[method]
        low, high = interval(ratio)
        factor = np.median(epochs[cold]) / np.median(epochs[method])
        lines.append(f"\n{method} against the same band cold ({cold}): {_ratio(factor)}x less compute "
                     f"[{_ratio(low)}, {_ratio(high)}]")
    return lines, ratios


def running_best(trials: list, grid: np.ndarray) -> np.ndarray:
    spent = np.cumsum([t[1] for t in trials])
    values = np.maximum.accumulate([t[3] if t[3] is not None else -np.inf for t in trials])
    index = np.searchsorted(spent, grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def plot(runs: dict, png: Path, rng: np.random.Generator) -> None:
    bands = sorted(runs, key=float)
    fig, axes = plt.subplots(1, len(bands), figsize=(5.5 * len(bands), 4.2), dpi=100, squeeze=False)
    for axis, band in zip(axes[0], bands):
        longest = max(sum(t[1] for t in trials) for seeds in runs[band].values() for trials in seeds.values())
        grid = np.geomspace(1, longest, 60)
        target = target_of(runs[band]["random"])
        shown = [target]  # the y range: every median curve and interval, and the target
        for method, seeds in runs[band].items():
            curves = np.array([running_best(trials, grid) for trials in seeds.values()])
            curves[~np.isfinite(curves)] = np.nan
            middle = np.nanmedian(curves, axis=0)
            picks = rng.integers(0, len(curves), (1000, len(curves)))
            low, high = np.nanpercentile(np.nanmedian(curves[picks], axis=1), [2.5, 97.5], axis=0)
            color = f"C{ORDER.index(method)}"  # one colour per method in every band and figure
            axis.plot(grid, middle, label=method, drawstyle="steps-post", color=color)
            axis.fill_between(grid, low, high, color=color, alpha=0.15, step="post")
            shown += [np.nanmin(low), np.nanmax(high)]
        axis.axhline(target, color="0.5", linestyle=":", label="target")
        bottom, top = max(min(shown), target - 0.15), max(shown)  # a first trial far below is cut off
        axis.set(xscale="log", title=f"band {band} Hz", xlabel="trial-epochs",
                 ylabel="best validation accuracy so far",
                 ylim=(bottom - 0.05 * (top - bottom), top + 0.05 * (top - bottom)))
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="?", default=str(FIGURES / "search_efficiency.jsonl"))
    parser.add_argument("--png", default=str(FIGURES / "search_efficiency.png"))
    args = parser.parse_args()
    runs, cold = load(Path(args.records))
    rng = np.random.default_rng(0)
    warnings.simplefilter("ignore", RuntimeWarning)  # medians over seeds that never reached a point: NaN, drawn as gaps
    for band in sorted(runs, key=float):
        lines, _ = band_table(band, runs[band], rng, cold)
        print("\n".join(lines))
    plot(runs, Path(args.png), rng)
    print(f"\nfigure: {args.png}")


if __name__ == "__main__":
    main()
