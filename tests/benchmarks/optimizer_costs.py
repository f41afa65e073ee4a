"""Benchmark: update-phase time of every optimizer relative to SGD, and its state bytes, per band.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/optimizer_costs.py [--repeats 5]

Every optimizer of the table trains two epochs on each band of the default study, in rounds
(one run of each optimizer per round); the update phase is the loop's own measurement
(`time_update_ms`, wall time of clipping + `optimizer.step()`, SVRG's full-gradient passes
excluded and reported per pass). Ratios to SGD are taken within a round, then the median.
SVRG's update includes its second gradient evaluation (at the snapshot weights); the
Adam->SGD switch runs one epoch of each (switch_epoch 2), its first measuring the hand-over.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import _angle
import matplotlib.pyplot as plt

from objectives.train.config import TrainConfig
from objectives.train.optim import OPTIMIZERS

LR = {"sgd": 0.05, "svrg": 0.1, "adagrad": 0.05}  # others: 3e-3 (Adam-like)
PARAMS = {"adam_sgd": {"switch_epoch": 2}}


def _config(name: str) -> TrainConfig:
    return TrainConfig(optimizer=name, lr=LR.get(name, 3e-3), optimizer_params=PARAMS.get(name, {}), epochs=2)


def main() -> None:
    args = _angle.arguments(__doc__.splitlines()[0]).parse_args()
    names = ["sgd", *sorted(set(OPTIMIZERS) - {"sgd"})]
    relative: dict[str, dict[str, float]] = {}
    for band, full in _angle.band_data(args).items():
        data = _angle.small_validation(full)
        rounds = []
        for _ in range(args.repeats):
            rounds.append({name: _angle.run(_config(name), data).dynamics for name in names})
        rows = []
        relative[band] = {}
        for name in names:
            ratio = _angle.median([r[name]["summary.time_update_ms"] / r["sgd"]["summary.time_update_ms"]
                                   for r in rounds])
            relative[band][name] = ratio
            last = rounds[-1][name]
            full_grad = (f"{_angle.median([r[name]['summary.full_grad_ms'] for r in rounds]):.1f}"
                         if "summary.full_grad_ms" in last else "")
            rows.append([name, *(f"{_angle.median([r[name][f'summary.time_{phase}_ms'] for r in rounds]):.3f}"
                                 for phase in ("forward", "backward", "update")),
                         f"{ratio:.2f}x", f"{int(last['summary.memory_state_bytes']):,}", full_grad])
        print(f"\nband {band} Hz ({data.input_shape[0]} features)\n")
        print(_angle.table(["optimizer", "forward ms", "backward ms", "update ms", "update vs SGD",
                            "state bytes", "full gradient ms/pass"], rows))
    _figure(relative)


def _figure(relative: dict[str, dict[str, float]]) -> None:
    bands, names = list(relative), list(next(iter(relative.values())))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(bands)
    for i, band in enumerate(bands):
        ax.bar([j + i * width for j in range(len(names))], [relative[band][n] for n in names], width,
               label=f"{band} Hz")
    ax.set_xticks([j + width * (len(bands) - 1) / 2 for j in range(len(names))], names)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("update time / SGD's")
    ax.legend()
    fig.tight_layout()
    _angle.FIGURES.mkdir(exist_ok=True)
    fig.savefig(_angle.FIGURES / "update_time_vs_sgd.png", dpi=110)


if __name__ == "__main__":
    main()
