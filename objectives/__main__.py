"""Run one training of the angle task alone, without the search service:

    python -m objectives --center-hz 1000 --optimizer adam --lr 3e-3 --epochs 10
"""

from __future__ import annotations

import argparse
import json

from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import load_or_generate
from objectives.train.config import TrainConfig
from objectives.train.loop import train


class _PrintReporter:
    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        print(json.dumps({"epoch": epoch, **{k: round(v, 6) for k, v in metrics.items()}}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m objectives", description=__doc__.splitlines()[0])
    parser.add_argument("--center-hz", type=float, default=1000.0)
    parser.add_argument("--width-hz", type=float, help="default: 30 %% of the centre")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="optimizer hyperparameter, e.g. momentum=0.9 (repeatable)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--schedule", default="cosine", help="cosine, step, exponential or constant")
    parser.add_argument("--clip-norm", type=float, help="max global gradient norm (default: no clipping)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=TaskConfig.n_train)
    parser.add_argument("--cache-dir", help="reuse datasets across runs")
    args = parser.parse_args(argv)

    band = Band(f"{args.center_hz:g}", args.center_hz, args.width_hz or 0.3 * args.center_hz)
    task = TaskConfig(n_train=args.n_train)
    task.validate()
    band.validate(task.sample_rate, task.array)
    params = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.param)}
    config = TrainConfig(optimizer=args.optimizer, lr=args.lr, optimizer_params=params,
                         batch_size=args.batch_size, warmup_epochs=args.warmup_epochs,
                         epochs=args.epochs, seed=args.seed, schedule=args.schedule, clip_norm=args.clip_norm)
    config.validate(task.n_train)
    result = train(config, load_or_generate(task, band, args.cache_dir), _PrintReporter())
    print(json.dumps({"val_accuracy": result.val_accuracy, "train_seconds": round(result.train_seconds, 3),
                      **result.dynamics}))


if __name__ == "__main__":
    main()
