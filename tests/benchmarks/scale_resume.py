"""scale.py resume: `launch` of a kept study (`scale.py throughput --keep FOLDER`) to its first new
trial, and `bandsearch status` on it, with the journal's snapshot at the oldest it can be.

A snapshot is rewritten once the journal has grown by a tenth, so a resumed launch replays at most
a tenth of the journal after it. `resume` first replaces the kept study's snapshot by one of the
first 1/1.1 of its journal's lines (that worst case) and keeps the journal as it is
(`optuna.journal.orig`); before each of `--repeats` runs it puts that journal back, since a run
adds to it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def oldest_snapshot(folder: Path) -> tuple[int, int]:
    """The study's snapshot made from the first 1/1.1 of its journal; (journal lines, lines covered)."""
    from optuna.storages import JournalStorage

    from search.journal_snapshot import SnapshotJournalBackend

    journal = folder / "optuna.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    covered = int(len(lines) / 1.1)
    part = folder / "oldest" / journal.name
    part.parent.mkdir(exist_ok=True)
    part.write_bytes(b"".join(lines[:covered]))
    backend = SnapshotJournalBackend(str(part))
    storage = JournalStorage(backend)  # replays the first lines, as a study opened then would
    storage.get_all_studies()
    backend.save_snapshot(pickle.dumps(storage._replay_result))
    shutil.copy(part.with_name(journal.name + ".snapshot"), folder / (journal.name + ".snapshot"))
    shutil.rmtree(part.parent)
    return len(lines), covered


def resume_once(folder: Path) -> dict:
    """`status`, then `launch` with one more trial per band, timed to the first new trial's
    submission (the CLI's own log line at -v), then interrupted (Ctrl-C: the launch ends cleanly)."""
    raw = yaml.safe_load((folder / "scale.yaml").read_text())
    budget = raw["search"]["trials_per_band"] + 1
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'benchmarks'}", "SLEEP_EPOCH_SECONDS": "0"}
    bandsearch, where = str(Path(sys.executable).parent / "bandsearch"), ["--run-dir", str(folder)]
    started = time.perf_counter()
    status = subprocess.run([bandsearch, "status", "scale", "--json", *where], env=env, capture_output=True,
                            text=True)
    status_s = time.perf_counter() - started
    assert status.returncode == 0, status.stderr
    total = sum(row["finished"] for row in json.loads(status.stdout))
    started = time.perf_counter()
    process = subprocess.Popen([bandsearch, "-v", "launch", str(folder / "scale.yaml"), "--study", "scale", *where,
                                "--trials", str(budget), "--workers", "8", "--num-cpus", "8", "--progress", "json"],
                               env=env, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True)
    first_trial_s = None
    for line in process.stdout:
        if re.search(r"band \S+ trial \d+ submitted", line):
            first_trial_s = time.perf_counter() - started
            process.send_signal(signal.SIGINT)  # the measure is taken
            break
    process.communicate(timeout=300)
    return {"kind": "resume", "finished_trials": total, "status_s": status_s, "first_new_trial_s": first_trial_s,
            "stopped_s": time.perf_counter() - started, "returncode": process.returncode}


def cmd_resume(args) -> list[dict]:
    folder = Path(args.folder)
    kept = folder / "optuna.journal.orig"
    if not kept.exists():
        shutil.copy(folder / "optuna.journal", kept)
    shutil.copy(kept, folder / "optuna.journal")
    lines, covered = oldest_snapshot(folder)
    rows = []
    for _ in range(args.repeats):
        shutil.copy(kept, folder / "optuna.journal")
        rows.append({**resume_once(folder), "journal_lines": lines, "snapshot_lines": covered})
    return rows
