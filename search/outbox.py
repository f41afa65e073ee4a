"""The driver's MLflow writes, sent in order by a writer thread, so the driver's loop (ask, tell,
dispatch) never waits on the tracking store: neither on a slow one (a remote server costs a
round trip per call, SQLite a transaction) nor on one that is down.

While the server is unreachable the writes wait, in order, and are replayed at most once per
`retry_seconds`. A run is known by a placeholder id (`pending:N`) until the writer has created
it; later writes may use the placeholder, and `linked` callbacks (which write to the Optuna
storage) run on the driver's own thread, at its next `flush`. Creating a run is made safe to
repeat with a token tag: an attempt cut off after the server made the run completes that run.
A write MLflow rejects for another reason is logged and dropped, so it cannot block the queue.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search.tracking import Tracker, truncate, unreachable
from search.uris import mask

log = logging.getLogger(__name__)


@dataclass
class _Write:
    """One queued call on the Tracker."""

    method: str
    args: tuple
    kwargs: dict
    placeholder: str | None = None
    linked: Callable[[str], None] | None = None
    attempts: int = 0


class Outbox:
    """Queue MLflow writes; a writer thread (alive while there is something to send) sends them."""

    PLACEHOLDER = "pending:"

    def __init__(self, tracker: Tracker, retry_seconds: float = 10.0):
        self.tracker = tracker
        self.retry_seconds = retry_seconds
        self.queue: deque[_Write] = deque()
        self.ids: dict[str, str] = {}
        self.retry_at = 0.0
        self._changed = threading.Condition()
        self._writer: threading.Thread | None = None
        self._links: deque[tuple[Callable[[str], None], str]] = deque()  # for the driver's thread
        self._numbers = itertools.count()
        self._launch = uuid.uuid4().hex[:12]

    def start_run(self, *args: Any, linked: Callable[[str], None] | None = None, **kwargs: Any) -> str:
        """A placeholder for the new run's id (`resolve` gives the real one once it exists);
        `linked(run_id)` is called, on the driver's thread, once the run exists."""
        number = next(self._numbers)
        placeholder = f"{self.PLACEHOLDER}{number}"
        kwargs["token"] = f"{self._launch}-{number}"
        self._send(_Write("start_run", args, kwargs, placeholder, linked))
        return placeholder

    def log(self, *args: Any, **kwargs: Any) -> None:
        self._send(_Write("log", args, kwargs))

    def log_epochs(self, *args: Any, **kwargs: Any) -> None:
        self._send(_Write("log_epochs", args, kwargs))

    def log_text(self, *args: Any, **kwargs: Any) -> None:
        self._send(_Write("log_text", args, kwargs))

    def finish(self, *args: Any, **kwargs: Any) -> None:
        self._send(_Write("finish", args, kwargs))

    def reopen(self, *args: Any, **kwargs: Any) -> None:
        self._send(_Write("reopen", args, kwargs))

    def resolve(self, run_id: str, wait: float = 0.0) -> str:
        """The real id of `run_id` once created, waiting up to `wait` seconds for the writer
        (not while MLflow is unreachable); the placeholder itself until then."""
        deadline = time.monotonic() + wait
        with self._changed:
            while (run_id.startswith(self.PLACEHOLDER) and run_id not in self.ids and self.queue
                   and self.retry_at <= time.monotonic() < deadline):
                self._changed.wait(deadline - time.monotonic())
        return self.ids.get(run_id, run_id)

    def flush(self, force: bool = False) -> bool:
        """Run the `linked` callbacks of runs created since the last call; with `force`, retry
        now and wait until every write is sent or MLflow fails again. True when nothing is left."""
        with self._changed:
            if force and self.queue:
                self.retry_at = 0.0
                self._changed.notify_all()
                while self.queue and self.retry_at <= time.monotonic():
                    self._start_writer()  # again, should the last one have died
                    self._changed.wait(1.0)
            empty = not self.queue
            links, self._links = self._links, deque()
        for linked, run_id in links:
            linked(run_id)
        return empty

    def drain(self, seconds: float) -> int:
        """At the end of a launch: retry for up to `seconds`; the number of writes still unsent."""
        deadline = time.monotonic() + seconds
        while not self.flush(force=True) and time.monotonic() < deadline:
            time.sleep(min(self.retry_seconds, max(0.0, deadline - time.monotonic())))
        return len(self.queue)

    def _send(self, write: _Write) -> None:
        with self._changed:
            self.queue.append(write)
            self._start_writer()
            self._changed.notify_all()

    def _start_writer(self) -> None:
        """Start the writer thread unless one is alive (called holding the lock)."""
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_all, name="bandsearch-mlflow-writer", daemon=True)
            self._writer.start()

    def _write_all(self) -> None:
        """The writer thread: send queued writes in order, pausing while MLflow is unreachable;
        it ends when the queue is empty (the next write starts another)."""
        try:
            while True:
                with self._changed:
                    while self.queue and time.monotonic() < self.retry_at:
                        self._changed.wait(self.retry_at - time.monotonic())
                    if not self.queue:
                        return
                    write = self.queue[0]
                try:
                    sent = self._attempt(write)
                except BaseException:  # a bug, not an outage: dropped, or the writes behind it never go
                    log.exception("MLflow writer: %s failed; dropped", write.method)
                    sent = True
                with self._changed:
                    if sent:
                        self.queue.popleft()
                    self._changed.notify_all()
        finally:
            with self._changed:
                if self._writer is threading.current_thread():
                    self._writer = None
                self._changed.notify_all()

    def _attempt(self, write: _Write) -> bool:
        """One try at `write`: False if MLflow is unreachable (it stays queued), True otherwise."""
        args = tuple(self.resolve(a) if isinstance(a, str) else a for a in write.args)
        kwargs = {k: self.resolve(v) if isinstance(v, str) else v for k, v in write.kwargs.items()}
        if write.method == "start_run":
            kwargs["retried"] = write.attempts > 0
        write.attempts += 1
        try:
            result = getattr(self.tracker, write.method)(*args, **kwargs)
        except Exception as err:
            if unreachable(err):
                with self._changed:
                    self.retry_at = time.monotonic() + self.retry_seconds
                log.warning("MLflow unreachable; %d writes kept for later: %s", len(self.queue),
                            truncate(mask(str(err)), 300))
                return False
            log.error("MLflow rejected %s: %s", write.method, truncate(mask(str(err)), 500))
            return True
        with self._changed:  # the driver's thread swaps `_links` under the same lock
            if write.placeholder:
                self.ids[write.placeholder] = result
            if write.linked:
                self._links.append((write.linked, result))
        return True
