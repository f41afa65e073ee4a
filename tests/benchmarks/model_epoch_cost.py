"""Benchmark: what an epoch of each built-in model costs, and the accuracy it reaches, per band of
the default study (its task, one CPU thread as in a trial).

    PYTHONPATH=. .venv/bin/python tests/benchmarks/model_epoch_cost.py [--repeats 3] [--epochs 6]

Each model trains the same configuration (Adam, lr 3e-3, batch 64) in interleaved rounds; the
epoch cost is CPU time per epoch (median over the rounds), its ratio to the MLP's is taken
within each round, and the accuracy is the validation accuracy after the last epoch.
"""

from __future__ import annotations

from pathlib import Path

import _angle

from objectives.task.dataset import load_or_generate
from objectives.train.config import TrainConfig
from objectives.train.models import FEATURE_KINDS, MODELS, ModelConfig
from search.config import load_config


def main() -> None:
    parser = _angle.arguments(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    _angle.band_data(args)  # one thread, and the averaged datasets cached
    config = load_config(args.space)
    rows = []
    for plan in config.bands:
        data = {kind: load_or_generate(config.task, plan.band, Path(args.cache_dir), kind)
                for kind in FEATURE_KINDS}
        seconds: dict[str, list[float]] = {name: [] for name in MODELS}
        ratios: dict[str, list[float]] = {name: [] for name in MODELS}
        accuracy: dict[str, float] = {}
        for _ in range(args.repeats):
            for name in MODELS:
                model = ModelConfig(name=name)
                train = TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=args.epochs, model=model)
                result, cpu = _angle.cpu_seconds(train, data[model.feature_kind], dynamics=False)
                seconds[name].append(cpu / args.epochs)
                accuracy[name] = result.val_accuracy
            for name in MODELS:
                ratios[name].append(seconds[name][-1] / seconds["mlp"][-1])
        for name in MODELS:
            shape = data[ModelConfig(name=name).feature_kind].input_shape
            rows.append([f"{plan.band.name} Hz", name, str(shape), f"{_angle.median(seconds[name]):.3f}",
                         f"{_angle.median(ratios[name]):.2f}", f"{accuracy[name]:.3f}"])
    print(_angle.table(["band", "model", "input", "CPU s / epoch", "x MLP", "val accuracy"], rows))


if __name__ == "__main__":
    main()
