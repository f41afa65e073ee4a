"""Joining a Ray cluster: in a thread of its own while the driver prepares its study, and leaving
it, stopping a local cluster started here."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
from typing import Any

import ray

from search import reaper
from search.errors import BandsearchError
from search.uris import mask

# How long joining a cluster may take to answer at all before the launch gives up.
JOIN_TIMEOUT_SECONDS = 10.0


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: `address`, else $RAY_ADDRESS; None for a new local cluster."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_address(address: str | None, timeout: float = JOIN_TIMEOUT_SECONDS) -> None:
    """Refuse, within `timeout`, a cluster address nothing answers at (Ray itself would retry for
    minutes); `auto` and a new local cluster pass."""
    address = cluster_address(address)
    if address is None or address in ("auto", "local"):
        return
    host, sep, port = address.split("://")[-1].rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        raise BandsearchError(f"Ray cluster address {mask(address)!r} is not HOST:PORT (e.g. 10.0.0.5:6379, "
                              "the head's GCS port); fix --address / RAY_ADDRESS")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise BandsearchError(
            f"cannot reach the Ray cluster at {mask(address)} ({err.strerror or err}) within {timeout:.0f} s: "
            "check --address / RAY_ADDRESS, that `ray start --head` runs there and that its port is open "
            "from this machine") from None


class _HeldLogs(logging.Filter):
    """Ray's log lines while Ray is joined in the background, held until the caller waits for the
    connection: a launch refused meanwhile shows its one error line, not Ray's start-up."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.handlers = list(logging.getLogger("ray").handlers)  # Ray's own, set up when it is imported
        for handler in self.handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.records or self.records[-1] is not record:  # once, however many handlers
            self.records.append(record)
        return False

    def release(self, show: bool) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        for record in self.records if show else ():
            logging.getLogger(record.name).handle(record)
        self.records = []


class _Joining:
    """`ray.init` in a thread of its own, so the driver prepares its study meanwhile. The thread
    lives as long as the connection: a local cluster's processes end when the thread that
    started them ends (Linux's parent-death signal is per thread)."""

    def __init__(self, address: str | None, num_cpus: int | None, dashboard: bool, py_modules: list[str] | None):
        self.address = address
        self.sigterm = signal.getsignal(signal.SIGTERM)  # ray.init's own handlers may replace it
        self.joined = threading.Event()  # ray.init returned or failed
        self.released = threading.Event()  # disconnected: the thread may end
        self.error: BaseException | None = None
        self.watcher: subprocess.Popen | None = None  # search/reaper.py, for a local cluster started here
        self.logs = _HeldLogs()
        self.thread = threading.Thread(target=self._join, args=(num_cpus, dashboard, py_modules), daemon=True,
                                       name="bandsearch-ray-join")
        self.thread.start()

    def _join(self, num_cpus: int | None, dashboard: bool, py_modules: list[str] | None) -> None:
        before = {process.pid for process in reaper.ray_processes()}
        runtime_env = {"py_modules": py_modules} if py_modules else None
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=True, runtime_env=runtime_env)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=dashboard, log_to_driver=True, runtime_env=runtime_env)
            started = [process for process in reaper.ray_processes() if process.pid not in before]
            if started:
                self.watcher = reaper.watch(started)
        except BaseException as err:  # handed to the thread that waits for the connection
            self.error = err
        self.joined.set()
        if self.error is None:
            self.released.wait()

    def wait(self) -> None:
        self.joined.wait()
        _keep_sigterm(self.sigterm)
        self.logs.release(show=True)
        if isinstance(self.error, (ConnectionError, RuntimeError, ValueError)):
            raise BandsearchError(
                f"cannot connect to the Ray cluster at {self.address or 'a new local cluster'}: {self.error}. "
                "Check --address / RAY_ADDRESS and that `ray start --head` runs there."
            ) from None
        if self.error is not None:
            raise self.error


_joining: _Joining | None = None
# ray.init warns that a thread other than the main one cannot set its SIGTERM handler: bandsearch keeps its own.
logging.getLogger("ray._private.worker").addFilter(lambda record: "SIGTERM handler" not in record.getMessage())


def join(address: str | None, num_cpus: int | None = None, dashboard: bool = False,
         py_modules: list[str] | None = None) -> bool:
    """Start joining the Ray cluster at `address` (or RAY_ADDRESS) in the background, or a new local
    one when neither is set, which ends with this process even if it is killed (search/reaper.py).
    `py_modules` (the user's own modules, objectives/user_code.py) are copied to every node for
    this job's tasks. False when already connected or joining; `connect` waits for it."""
    global _joining
    if _joining is not None and _joining.joined.is_set() and not ray.is_initialized():
        disconnect()  # Ray was shut down without `disconnect` (ray.shutdown): end what is left of that join
    if _joining is not None or ray.is_initialized():
        return False
    address = cluster_address(address)
    check_address(address)
    _joining = _Joining(address, num_cpus, dashboard, py_modules)
    return True


def connect(address: str | None, num_cpus: int | None = None, dashboard: bool = False,
            py_modules: list[str] | None = None) -> None:
    """Join Ray as `join` says and wait until connected."""
    global _joining
    join(address, num_cpus, dashboard, py_modules)
    if _joining is not None:
        try:
            _joining.wait()
        finally:
            if _joining.error is not None:
                _joining = None  # its thread has ended: a later call may try again


def _keep_sigterm(handler: Any) -> None:
    """Put back the process's own SIGTERM handler, which ray.init may replace (Ray's Python one exits
    wherever the driver is, its C++ one dumps a stack and aborts): the CLI ends a SIGTERM like Ctrl-C."""
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def disconnect() -> None:
    """Leave Ray (waiting for a join under way), stopping a local cluster started here."""
    global _joining
    joining, _joining = _joining, None
    if joining is not None:
        joining.joined.wait()
        joining.logs.release(show=False)  # shown already if anyone waited for the connection
    if ray.is_initialized():
        ray.shutdown()
    if joining is not None:
        joining.released.set()
        if joining.watcher is not None:
            reaper.stop(joining.watcher)
