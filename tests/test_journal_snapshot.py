"""The journal snapshot (search/journal_snapshot.py): a storage opened from it and the lines after
it holds exactly what Optuna's own full replay of the journal holds, and a snapshot that is not
this journal's, not this Optuna's or writable by others is ignored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from search.journal_snapshot import SnapshotJournalBackend


def _run_trials(journal: Path, study_name: str, count: int) -> None:
    study = optuna.create_study(study_name=study_name, storage=JournalStorage(SnapshotJournalBackend(str(journal))),
                                load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=count))
    for _ in range(count):
        trial = study.ask()
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.report(x, 0)
        trial.set_user_attr("note", f"x={x:.3f}")
        study.tell(trial, x * x)


def _state(storage: JournalStorage) -> list:
    """Every study and trial the storage holds, comparable across storages."""
    return [(study.study_name, study.user_attrs, storage.get_all_trials(study._study_id, deepcopy=False))
            for study in storage.get_all_studies()]


def _header(journal: Path) -> dict:
    with journal.with_name(journal.name + ".snapshot").open("rb") as snapshot:
        return json.loads(snapshot.readline())


def test_opening_from_the_snapshot_and_the_lines_after_it_equals_a_full_replay(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    _run_trials(journal, "a", 150)  # Optuna saves at its 100th trial
    first = _header(journal)["lines"]
    _run_trials(journal, "b", 5)  # lines after the snapshot: replayed from the journal
    backend = SnapshotJournalBackend(str(journal))
    assert backend.load_snapshot() is not None
    from_snapshot = JournalStorage(SnapshotJournalBackend(str(journal)))
    assert from_snapshot._replay_result.log_number_read > first
    assert _state(from_snapshot) == _state(JournalStorage(JournalFileBackend(str(journal))))
    assert len(_state(from_snapshot)[0][2]) == 150 and len(_state(from_snapshot)[1][2]) == 5


def test_a_snapshot_is_rewritten_only_once_the_journal_has_grown_by_a_tenth(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    _run_trials(journal, "a", 150)
    first = _header(journal)["lines"]
    _run_trials(journal, "a", 60)  # trial 200 is Optuna's next save: far more than 10 % more lines
    second = _header(journal)["lines"]
    assert second > first * 1.1
    backend = SnapshotJournalBackend(str(journal))
    backend.load_snapshot()
    backend._log_number_offset[second + 5] = 0  # as if only five lines were written since
    backend.save_snapshot(b"not written")
    assert _header(journal)["lines"] == second


@pytest.mark.parametrize("spoil", ["another journal", "another Optuna", "writable by others", "garbled"])
def test_a_snapshot_that_cannot_be_trusted_is_ignored_and_the_journal_replayed(tmp_path: Path, spoil: str) -> None:
    journal = tmp_path / "optuna.journal"
    _run_trials(journal, "a", 120)
    snapshot = journal.with_name(journal.name + ".snapshot")
    if spoil == "another journal":  # a new study in the same place, the old snapshot left behind
        kept = snapshot.read_bytes()
        journal.unlink()
        _run_trials(journal, "other", 110)
        snapshot.write_bytes(kept)
    elif spoil == "another Optuna":
        header, _, body = snapshot.read_bytes().partition(b"\n")
        snapshot.write_bytes(json.dumps({**json.loads(header), "optuna": "0.0.1"}).encode() + b"\n" + body)
    elif spoil == "writable by others":
        os.chmod(snapshot, 0o666)
    else:
        snapshot.write_bytes(b"{not json\n")
    assert SnapshotJournalBackend(str(journal)).load_snapshot() is None
    storage = JournalStorage(SnapshotJournalBackend(str(journal)))
    assert _state(storage) == _state(JournalStorage(JournalFileBackend(str(journal))))


def test_a_snapshot_that_cannot_be_written_leaves_the_study_going(tmp_path: Path, caplog) -> None:
    journal = tmp_path / "optuna.journal"
    (tmp_path / "optuna.journal.snapshot").mkdir()  # where the snapshot goes, a folder: os.replace fails
    _run_trials(journal, "a", 120)
    assert "could not write the journal snapshot" in caplog.text
    assert not list(tmp_path.glob(".optuna.journal.snapshot.*"))  # no partial file left
    storage = JournalStorage(SnapshotJournalBackend(str(journal)))
    assert _state(storage) == _state(JournalStorage(JournalFileBackend(str(journal))))
