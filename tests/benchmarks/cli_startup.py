"""Benchmark: how long the CLI takes to answer `--help`, `launch --help` and a bad study file.

    .venv/bin/python tests/benchmarks/cli_startup.py [--runs 9]

Each command runs N times in a fresh interpreter, interleaved with the others so that a busy
moment of the machine spreads over all of them; the figure is the median wall time, beside
`python -c pass` (the interpreter's own start) measured in the same rounds. The bad study
file has an unknown key deep in its space, so the whole file is parsed before the error.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def _bad_study(folder: Path) -> Path:
    data = yaml.safe_load((ROOT / "spaces" / "audio_angle.yaml").read_text())
    data["space"]["optimizer"]["adam"]["momentum"] = 0.9  # adam takes beta1/beta2, no momentum
    path = folder / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _seconds(command: list[str], expected: int) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != expected:
        raise SystemExit(f"{' '.join(command)}: exit {result.returncode}, expected {expected}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (default: 9)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "search.cli"]
    with tempfile.TemporaryDirectory() as folder:
        bad = _bad_study(Path(folder))
        commands = {
            "python -c pass (baseline)": ([sys.executable, "-c", "pass"], 0),
            "bandsearch --help": ([*cli, "--help"], 0),
            "bandsearch launch --help": ([*cli, "launch", "--help"], 0),
            "bandsearch launch bad.yaml (unknown key)": ([*cli, "launch", str(bad), "--run-dir", folder], 2),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (command, expected) in commands.items():
                times[name].append(_seconds(command, expected))
    baseline = statistics.median(times["python -c pass (baseline)"])
    print(f"median of {args.runs} runs each, {sys.executable}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<42} {median:6.3f} s  (+{median - baseline:.3f} s over the baseline; "
              f"min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
