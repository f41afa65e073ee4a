"""A journal file with a snapshot beside it, so that opening a large study replays the snapshot
and the lines written after it instead of every line (`bandsearch status` and a resumed launch
on 10,000 trials: `tests/benchmarks/scale.py resume`).

Optuna's JournalStorage asks a backend that is also a `BaseJournalSnapshot` to save its replayed
state every 100 new trials, and loads that state when it opens. Here the state goes to
`<journal>.snapshot`, replaced atomically, and only once the journal has 10 % more lines than
the last snapshot covers: a study pays a few dozen pickles in all, not one per 100 trials.

A snapshot is a pickle, and loading a pickle runs code. One is loaded only if this user wrote it
and no one else may write it, for this Optuna version and for this very journal (the bytes at
its start and just before the line it covers are unchanged); otherwise the journal is replayed
in full, as without a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._base import BaseJournalSnapshot  # what Optuna's Redis backend implements

log = logging.getLogger(__name__)

_GROWTH = 1.1  # a new snapshot once the journal has this many times the lines of the last one
_PROBE = 4096  # bytes of the journal fingerprinted at its start and before the snapshot's line


class SnapshotJournalBackend(JournalFileBackend, BaseJournalSnapshot):
    """Optuna's journal file backend, saving and loading its replayed state beside the file."""

    def __init__(self, file_path: str):
        super().__init__(file_path)
        self._journal = Path(file_path)
        self._snapshot = self._journal.with_name(self._journal.name + ".snapshot")
        self._covered = 0  # journal lines the newest snapshot on disk covers

    def save_snapshot(self, snapshot: bytes) -> None:
        """Called by Optuna right after it replayed every line read so far (all of them)."""
        lines = max(self._log_number_offset)
        if lines < self._covered * _GROWTH:
            return
        header = {"optuna": optuna.__version__, "lines": lines, **self._fingerprint(self._log_number_offset[lines])}
        partial = self._snapshot.with_name(f".{self._snapshot.name}.{os.getpid()}")
        try:
            with partial.open("wb") as out:
                out.write(json.dumps(header).encode() + b"\n")
                out.write(snapshot)
            os.chmod(partial, 0o644)
            os.replace(partial, self._snapshot)
        except OSError as err:  # a full disk: the study goes on, later opens replay more of the journal
            log.warning("could not write the journal snapshot %s (%s); opening the study replays the journal",
                        self._snapshot, err)
            partial.unlink(missing_ok=True)
        self._covered = lines

    def load_snapshot(self) -> bytes | None:
        """The state saved for this journal, or None (replay every line) when there is none to trust."""
        try:
            with self._snapshot.open("rb") as source:
                info = os.fstat(source.fileno())
                if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                    return None
                header = json.loads(source.readline())
                if header != {"optuna": optuna.__version__, "lines": header["lines"],
                              **self._fingerprint(header["bytes"])}:
                    return None
                body = source.read()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self._log_number_offset[header["lines"]] = header["bytes"]  # Optuna reads on from there
        self._covered = header["lines"]
        return body

    def _fingerprint(self, offset: int) -> dict[str, object]:
        """What identifies the journal up to byte `offset`: the offset, and digests of its first
        bytes and of those just before it."""
        with self._journal.open("rb") as journal:
            if os.fstat(journal.fileno()).st_size < offset:
                raise ValueError("the journal is shorter than the snapshot")
            head = journal.read(min(offset, _PROBE))
            journal.seek(max(0, offset - _PROBE))
            tail = journal.read(offset - max(0, offset - _PROBE))
        return {"bytes": offset, "head": hashlib.sha256(head).hexdigest(), "tail": hashlib.sha256(tail).hexdigest()}
