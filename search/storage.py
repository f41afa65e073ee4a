"""Optuna storage: where studies live, how to open it, and one study per band.

A plain path (the default: `<run dir>/optuna.journal`) is a journal file: many
processes append to it safely under a file lock, which SQLite with many writers does not
("database is locked"), and open it from the snapshot beside it (search/journal_snapshot.py).
`postgresql://...`/`mysql://...` use an RDB; `grpc://host:port` reaches Optuna's storage proxy
(search/proxy.py), whose backend defaults to SQLite in the run folder with the proxy as its one
writer.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from functools import lru_cache, partial
from pathlib import Path

from optuna.storages import BaseStorage, GrpcStorageProxy, JournalStorage, RDBStorage, get_storage

from search.errors import BandsearchError
from search.journal_snapshot import SnapshotJournalBackend
from search.uris import StorageKind, journal_path, mask, scheme, storage_kind


def default_storage_url(run_dir: Path) -> str:
    return str(Path(run_dir).resolve() / "optuna.journal")


def default_proxy_backend(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'optuna.db'}"


def check_proxy_backend(url: str) -> None:
    """The proxy serves an RDB only: Optuna's journal behind the proxy loses enqueued trials."""
    if storage_kind(url) is not StorageKind.DATABASE:
        raise BandsearchError(
            f"--storage {mask(url)}: the storage proxy needs an RDB backend (sqlite:///..., postgresql://...), "
            "not a journal file or another proxy (Optuna does not support a journal behind its gRPC proxy); "
            "leave --storage unset to use RUN_DIR/optuna.db"
        )


def check_exists(url: str) -> None:
    """Refuse a local storage (journal or SQLite file) that does not exist, creating nothing:
    a command that only reads names the missing file instead of starting an empty storage."""
    kind = storage_kind(url)
    if kind is StorageKind.JOURNAL:
        path = journal_path(url)
    elif kind is StorageKind.DATABASE and scheme(url) == "sqlite" and ":///" in url:
        path = Path(url.partition(":///")[2])
    else:
        return  # a database server or the proxy: opening it creates nothing here
    if not path.is_file():
        raise BandsearchError(f"no study storage at {path}: nothing was launched with this --run-dir / --storage; "
                              "check them (nothing was created)")


# The PostgreSQL advisory lock key under which a process opens the storage (any fixed number).
_SCHEMA_LOCK = 0x62616E64


@lru_cache(maxsize=8)
def open_storage(url: str) -> BaseStorage:
    """Open (once per process) the storage at `url`; raise BandsearchError if unreachable,
    or, before anything is created, if `url` is none of the storage kinds."""
    kind = storage_kind(url)
    try:
        if kind is StorageKind.DATABASE and scheme(url) == "sqlite":
            return _cached(_sqlite_storage(url))
        if kind is StorageKind.DATABASE and scheme(url) == "postgresql":
            return _cached(_postgres_storage(url))
        if kind is StorageKind.DATABASE:
            return _cached(RDBStorage(url))
        if kind is StorageKind.PROXY:
            host, _, port = url.split("://", 1)[1].rpartition(":")
            proxy = GrpcStorageProxy(host=host, port=int(port))
            proxy.wait_server_ready(timeout=20)
            return proxy
        path = journal_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(SnapshotJournalBackend(str(path)))
    except Exception as err:  # each backend raises its own types
        raise BandsearchError(
            f"cannot open the study storage {mask(url)}: {err}. Check the URL and that the server is up."
        ) from None


def _cached(storage: RDBStorage) -> BaseStorage:
    """An RDB behind Optuna's in-process cache of finished trials, one per process, shared by the
    driver's studies and the gRPC proxy it serves: without it every worker's pruning check
    through the proxy reloads every trial of the study from the database (measured by
    tests/benchmarks/scale.py: the driver saturated near 1 trial per second at 450 trials)."""
    return get_storage(storage)


def _postgres_storage(url: str) -> RDBStorage:
    """Optuna creates its tables in a new database on first open, and two processes doing so at
    once collide (duplicate type "studydirection"): each opens it under an advisory lock."""
    import sqlalchemy  # heavy, and only an RDB needs it (Optuna imports it lazily too)

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:  # closing it releases the lock
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
            return RDBStorage(url)
    finally:
        engine.dispose()


def _sqlite_storage(url: str) -> RDBStorage:
    """Two processes creating a new SQLite file's tables at once collide (UNIQUE constraint failed:
    alembic_version): each opens a file database under an exclusive lock on a file beside it."""
    # Threads of one process (the driver and its proxy) wait for SQLite's lock instead of failing
    # with "database is locked" after the default 5 s.
    from sqlalchemy.engine import make_url  # Optuna's RDB storage imports SQLAlchemy anyway

    open_rdb = partial(RDBStorage, url, engine_kwargs={"connect_args": {"timeout": 60}})
    file = make_url(url).database
    if not file or file == ":memory:":  # one process only
        return open_rdb()
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    try:
        with Path(file + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            return open_rdb()
    except PermissionError:  # a folder this user may only read: nothing can be created in it either
        return open_rdb()


def serve_dashboard(url: str, host: str = "127.0.0.1", port: int = 8080) -> subprocess.Popen | None:
    """Start optuna-dashboard on the storage if it is installed (None if not); a journal is
    given as its file, the form optuna-dashboard reads."""
    script = Path(sys.executable).with_name("optuna-dashboard")  # its console script, installed beside Python
    if not script.exists():
        return None
    target = str(journal_path(url)) if storage_kind(url) is StorageKind.JOURNAL else url
    return subprocess.Popen([str(script), target, "--host", host, "--port", str(port)])
