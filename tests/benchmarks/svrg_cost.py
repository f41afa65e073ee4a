"""Benchmark: what an SVRG epoch costs against an SGD epoch, and SVRG against SGD and Adam at
equal epochs and at equal gradient evaluations, per band of the default study.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/svrg_cost.py [--repeats 5]

1. Epoch cost: one-epoch runs of SGD (momentum 0.9) and SVRG (snapshot every epoch) in
   back-to-back pairs, CPU time (one thread), median of the pairs' ratios. Theory: 3
   gradient evaluations per sample per epoch against 1 (budget: 3.3x).
2. Equal work: 10 epochs each (equal epochs), and 30 gradient evaluations per sample
   (SGD, SGD with momentum and Adam 30 epochs, SVRG 10). Final train loss and validation
   accuracy; the figure plots validation accuracy against gradient evaluations per sample.
"""

from __future__ import annotations

import statistics

import matplotlib

matplotlib.use("Agg")
import _angle
import matplotlib.pyplot as plt

from objectives.train.config import TrainConfig

# Rates from a coarse check on the 1000 Hz band (each within its own family's usual range).
METHODS = {
    "sgd": dict(optimizer="sgd", lr=0.1, optimizer_params={"momentum": 0.0}),
    "sgd+momentum": dict(optimizer="sgd", lr=0.05, optimizer_params={"momentum": 0.9}),
    "adam": dict(optimizer="adam", lr=3e-3),
    "svrg": dict(optimizer="svrg", lr=0.1),
}
EVALS_PER_EPOCH = {"svrg": 3}  # two per sample in the steps plus the full pass; others 1


def _epoch_cost(data, repeats: int) -> tuple[float, float]:
    sgd = TrainConfig(epochs=1, **METHODS["sgd+momentum"])
    svrg = TrainConfig(epochs=1, **METHODS["svrg"])
    ratios = []
    for _ in range(repeats):
        base = _angle.cpu_seconds(sgd, data, dynamics=False)[1]
        ratios.append(_angle.cpu_seconds(svrg, data, dynamics=False)[1] / base)
    return statistics.median(ratios), base


def main() -> None:
    args = _angle.arguments(__doc__.splitlines()[0]).parse_args()
    curves, rows_cost, rows_work = {}, [], []
    for band, data in _angle.band_data(args).items():
        ratio, base = _epoch_cost(_angle.small_validation(data), args.repeats)
        n, steps = len(data.train_x), len(data.train_x) // 64
        evals = (2 * steps * 64 + n) / n
        rows_cost.append([band, f"{1e3 * base:.0f}", f"{ratio:.2f}x", f"{evals:.2f}"])
        curves[band] = {}
        for name, method in METHODS.items():
            per_epoch = EVALS_PER_EPOCH.get(name, 1)
            equal_epochs = _angle.run(TrainConfig(epochs=10, **method), data)
            equal_evals = equal_epochs if per_epoch == 3 else _angle.run(TrainConfig(epochs=30, **method), data)
            curves[band][name] = [(per_epoch * e["epoch"], e["val_accuracy"]) for e in equal_evals.history]
            rows_work.append([band, name, *(f"{r.history[-1]['train_loss']:.3f} / {r.val_accuracy:.3f}"
                                            for r in (equal_epochs, equal_evals))])
    print(_angle.table(["band (Hz)", "SGD epoch CPU ms", "SVRG epoch / SGD epoch", "SVRG grad evals/sample/epoch"],
                       rows_cost))
    print()
    print(_angle.table(["band (Hz)", "method", "10 epochs: train loss / val acc",
                        "30 grad evals per sample: train loss / val acc"], rows_work))
    _figure(curves)


def _figure(curves) -> None:
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), sharey=True)
    for ax, (band, methods) in zip(axes, curves.items()):
        for name, points in methods.items():
            ax.plot(*zip(*points), marker=".", label=name)
        ax.set_title(f"{band} Hz")
        ax.set_xlabel("gradient evaluations per sample")
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend()
    fig.tight_layout()
    _angle.FIGURES.mkdir(exist_ok=True)
    fig.savefig(_angle.FIGURES / "svrg_equal_evaluations.png", dpi=110)


if __name__ == "__main__":
    main()
