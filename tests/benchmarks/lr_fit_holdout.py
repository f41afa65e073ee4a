"""Benchmark: does lr(f) predict a band nobody searched? Per optimizer, leave one band of a
finished study out, fit lr(f) on the others' best learning rates, and compare the prediction at
the left-out band's centre with the rate its own search found best.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/lr_fit_holdout.py STUDY [--run-dir DIR]

Prints per optimizer and left-out band: the predicted and the found rate, their ratio (the
larger over the smaller), and whether the found rate lies in the 95 % prediction interval
(none with two fitting bands).
"""

from __future__ import annotations

import argparse
import math

from search.lr_fit import band_centres, fit_tables
from search.lr_tables import study_table
from search.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--run-dir", default="bandsearch-runs")
    args = parser.parse_args()
    storage = Settings.resolve(run_dir=args.run_dir).storage_url
    table, centres = study_table(storage, args.study), band_centres(storage, args.study)
    print("| optimizer | left out | predicted lr | found lr | ratio | found inside 95 % interval |")
    print("| --- | --- | --- | --- | --- | --- |")
    ratios = []
    for left_out in table.bands:
        rest = {band: hz for band, hz in centres.items() if band != left_out}
        for fit in fit_tables([table], rest):
            found = table.cells.get((left_out, fit.optimizer))
            if found is None or not found.lr:
                continue
            lr, low, high = fit.predict(centres[left_out])
            ratio = max(lr, found.lr) / min(lr, found.lr)
            ratios.append(ratio)
            inside = "-" if math.isnan(low) else ("yes" if low <= found.lr <= high else "no")
            print(f"| {fit.optimizer} | {left_out} Hz | {lr:.2e} | {found.lr:.2e} | {ratio:.2f} | {inside} |")
    within = sum(ratio <= 2 for ratio in ratios)
    print(f"\nwithin a factor of 2: {within} of {len(ratios)} predictions")


if __name__ == "__main__":
    main()
