"""The scale benchmark's figure (tests/benchmarks/figures/scale.png) from its JSON lines: speedup
against W beside the ideal, and the driver's CPU per trial as a band's study grows."""

from __future__ import annotations

import json
from pathlib import Path


def plot(results: Path, figures: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "note" not in r]  # runs marked as disturbed
    speedup = [r for r in rows if r["kind"] == "speedup"]
    growth = [r for r in rows if r["kind"] == "throughput" and r.get("driver_cpu_ms_by_finished")]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if speedup:
        latest = {1: {"speedup": 1.0}, **{r["workers"]: r for r in speedup}}  # the last run of each W
        workers = sorted(latest)
        left.plot(workers, workers, "--", color="grey", label="ideal (W)")
        left.plot(workers, [0.9 * w for w in workers], ":", color="grey", label="target 0.9 W")
        left.plot(workers, [latest[w]["speedup"] for w in workers], "o-", label="bandsearch")
        left.set(xscale="log", yscale="log", xlabel="workers W (trials in flight)", ylabel="speedup vs W = 1",
                 title=f"{speedup[-1]['epochs'] * speedup[-1]['epoch_seconds']:g}-second trials")
        left.legend()
    for label, row in _latest_of_each_setup(growth).items():
        # The bucket the budget itself opens holds only the last trial, which prepares nothing more.
        buckets = {k: v for k, v in row["driver_cpu_ms_by_finished"].items() if int(k) < row["trials_per_band"]}
        right.plot([max(int(k), 1) for k in buckets], list(buckets.values()), "o-", label=label)
    right.set(xscale="log", xlabel="finished trials in the band", ylabel="driver thread CPU per trial (ms)",
              title="driver cost as a study grows")
    if growth:
        right.legend(fontsize=8)
    figure.tight_layout()
    out = figures / "scale.png"
    figure.savefig(out, dpi=110)
    return out


def _latest_of_each_setup(rows: list[dict]) -> dict[str, dict]:
    """The last run of each setup (bands, W, tracking server, driver pinned; runs marked "before"
    apart), by its label."""
    latest = {}
    for row in rows:
        label = (f"{row.get('bands', 1)} band(s), W={row['workers']}"
                 + (", mlflow server + proxy" if row.get("server") else "")
                 + (", driver on one core" if row.get("driver_cpu") is not None else "")
                 + (" (before)" if "before" in row.get("code", "") else ""))
        latest[label] = row
    return latest
