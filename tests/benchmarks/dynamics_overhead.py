"""Benchmark: what the optimizer-dynamics measurements add to the time of a training step.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/dynamics_overhead.py [--repeats 30]

For each band of the default study and for SGD and Adam, trains the same configuration with
and without the measurements (`train(..., dynamics=False)` runs the very same loop with a
no-op meter), with the default sampling (vector measurements on one step in
`dynamics_every`, 4) and on every step (1, exact), in back-to-back rounds of one-epoch runs,
and compares the CPU time per step
(one thread: the loop's own work, less sensitive than wall time to other processes on a
shared machine). The overhead is the median over the rounds of (with / without - 1): pairing
cancels slow drifts in machine load; the interquartile range shows the noise. The
validation set is cut to a token size so evaluation does not dilute the step. Budget: 5 %.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import _angle

from objectives.train.config import TrainConfig

EVERY = (TrainConfig.dynamics_every, 1)  # the default sampling, then every step
CONFIGS = {
    "sgd": TrainConfig(optimizer="sgd", lr=0.05, epochs=1, batch_size=64),
    "adam": TrainConfig(optimizer="adam", lr=3e-3, epochs=1, batch_size=64),
}


def main() -> None:
    parser = _angle.arguments(__doc__.splitlines()[0])
    parser.set_defaults(repeats=30)
    args = parser.parse_args()
    rows = []
    for band, full in _angle.band_data(args).items():
        data = _angle.small_validation(full)
        for name, config in CONFIGS.items():
            steps = _angle.steps_of(config, data)
            variants = {"none": (config, False), **{every: (replace(config, dynamics_every=every), True)
                                                    for every in EVERY}}
            times = {key: [] for key in variants}
            _angle.run(config, data)  # warm up
            for _ in range(args.repeats):
                for key, (variant, measured) in variants.items():
                    times[key].append(_angle.cpu_seconds(variant, data, dynamics=measured)[1] / steps)
            row = [band, name, f"{1e3 * _angle.median(times['none']):.3f}"]
            for every in EVERY:
                ratios = [on / off - 1 for off, on in zip(times["none"], times[every])]
                quartiles = statistics.quantiles(ratios, n=4)
                row += [f"{1e3 * _angle.median(times[every]):.3f}", f"{100 * _angle.median(ratios):+.1f} %",
                        f"{100 * quartiles[0]:+.1f} to {100 * quartiles[2]:+.1f} %"]
            rows.append(row)
    headers = ["band (Hz)", "optimizer", "CPU ms/step without"]
    for every in EVERY:
        headers += [f"every {every}: ms/step", "overhead", "interquartile range"]
    print(_angle.table(headers, rows))


if __name__ == "__main__":
    main()
