"""Opening MLflow: quietly, and with an embedded SQLite store created exactly once.

MLflow migrates a fresh database on first open; two processes doing so at once (launches
started together, or their workers) break it for good (`table ... already exists`). So the
first opener builds it under a file lock beside it, in a temporary file renamed into place
when complete: a database file that exists is migrated, and needs no lock to open.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from mlflow.tracking import MlflowClient

from search.errors import BandsearchError
from search.uris import mask, scheme

# How long an opener waits for another process creating the store (a few seconds on 2 cores).
_CREATE_WAIT_SECONDS = 300.0
# MLflow retries a refused connection 7 times with doubling back-off (minutes per call);
# bandsearch keeps unsent data itself, so a failed call should fail within seconds.
# Set these variables yourself to override.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# The check before a launch: one attempt with a short timeout (MLflow reads these per request).
_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///PATH` URI; None for any other store or an in-memory one."""
    if scheme(uri) != "sqlite":
        return None
    file = uri.partition(":///")[2].split("?")[0]
    return Path(file) if file and file != ":memory:" else None


def open_client(uri: str) -> MlflowClient:
    """An MlflowClient on `uri`, with MLflow's "View run at URL" lines (which would print the
    password of the URI, and break `--progress json`) turned off and its HTTP retries capped
    for this process."""
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    path = sqlite_file(uri)
    if path is not None and not path.exists():
        _create(path)
    try:
        return MlflowClient(tracking_uri=uri)
    except Exception as err:
        if path is None:
            raise
        raise BandsearchError(
            f"cannot open the MLflow store {path}: {reason(err)}; if it was left half-created by an older "
            "bandsearch, delete it (its runs are lost) or give another --tracking-uri") from None


def _create(path: Path) -> None:
    """Create and migrate the SQLite store at `path`, once, whoever else tries at the same time."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(f"{path}.lock", timeout=_CREATE_WAIT_SECONDS):
            if path.exists():
                return
            partial = path.with_name(f".{path.name}.{os.getpid()}.creating")
            partial.unlink(missing_ok=True)
            migrations = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database tables..."
            level = migrations.level
            migrations.setLevel(logging.WARNING)
            try:
                store = SqlAlchemyStore(f"sqlite:///{partial}", DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
            finally:
                migrations.setLevel(level)
            store.engine.dispose()
            os.replace(partial, path)
    except Timeout:
        raise BandsearchError(
            f"the MLflow store {path} is still being created by another process after {_CREATE_WAIT_SECONDS:.0f} s "
            f"(it holds {path}.lock); stop that process or give another --tracking-uri") from None


@contextmanager
def fail_fast() -> Iterator[None]:
    """MLflow calls inside make one attempt with a short timeout, without urllib3's retry warnings."""
    saved = {key: os.environ.get(key) for key in _FAIL_FAST}
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    os.environ.update(_FAIL_FAST)
    urllib3.setLevel(logging.ERROR)
    try:
        yield
    finally:
        urllib3.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def reason(err: Exception) -> str:
    """Why an MLflow call failed, in a few words: the OS error when there is one (`Connection
    refused`), else the exception's first line; passwords masked."""
    text = mask(str(err))
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip().rstrip(":")
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first[:200]}"
