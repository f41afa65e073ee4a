"""What kind of URI is this: the one place that reads the scheme of an MLflow tracking URI or
an Optuna storage URL, that masks passwords before a URL is shown, and that makes the MLflow
UI links bandsearch prints.

A scheme bandsearch knows counts with or without `//` (`sqlite:x.db` is a database, not a
file named so); any other name counts only as `name://`, so a relative path such as
`runs:old/optuna.journal` stays a path. A scheme that names neither kind is refused with the
accepted forms, before anything is opened or created.
"""

from __future__ import annotations

import re
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Any

from search.errors import BandsearchError


class TrackingKind(StrEnum):
    SERVER = "server"  # http(s)://HOST[:PORT]: a tracking server, with its own artifact root
    DATABRICKS = "databricks"  # databricks or databricks://PROFILE
    DATABASE = "database"  # sqlite/postgresql/mysql/mssql[+DRIVER]://...: the store used embedded
    FOLDER = "folder"  # PATH or file://PATH: a local store that keeps its artifacts in itself


class StorageKind(StrEnum):
    JOURNAL = "journal"  # PATH or journal://PATH: a journal file under a file lock
    DATABASE = "database"  # sqlite/postgresql/mysql[+DRIVER]://...: an RDB through SQLAlchemy
    PROXY = "proxy"  # grpc://HOST:PORT: Optuna's storage proxy (search/proxy.py)


_TRACKING = {
    "http": TrackingKind.SERVER, "https": TrackingKind.SERVER, "databricks": TrackingKind.DATABRICKS,
    "sqlite": TrackingKind.DATABASE, "postgresql": TrackingKind.DATABASE, "mysql": TrackingKind.DATABASE,
    "mssql": TrackingKind.DATABASE, "file": TrackingKind.FOLDER,
}
_STORAGE = {
    "journal": StorageKind.JOURNAL, "sqlite": StorageKind.DATABASE, "postgresql": StorageKind.DATABASE,
    "mysql": StorageKind.DATABASE, "grpc": StorageKind.PROXY,
}
_TRACKING_FORMS = ("http(s)://HOST:PORT, databricks[://PROFILE], sqlite:///PATH, "
                   "postgresql|mysql|mssql[+DRIVER]://..., or a folder (PATH or file:///PATH)")
_STORAGE_FORMS = ("a journal file (PATH or journal://PATH), sqlite:///PATH, "
                  "postgresql|mysql[+DRIVER]://..., or grpc://HOST:PORT (the storage proxy)")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//)?")


def scheme(url: str) -> str:
    """The scheme of `url` in lower case, without a `+DRIVER` suffix; "" for a bare path."""
    match = _SCHEME.match(url)
    if match is None:
        return ""
    name = match.group(1).lower().split("+")[0]
    return name if match.group(2) or name in _TRACKING or name in _STORAGE else ""


def tracking_kind(uri: str) -> TrackingKind:
    """What the MLflow tracking URI `uri` names; BandsearchError for a scheme MLflow does not store in."""
    if uri == "databricks":  # MLflow's word for the default Databricks profile
        return TrackingKind.DATABRICKS
    return _kind(uri, _TRACKING, TrackingKind.FOLDER, "the MLflow tracking URI", _TRACKING_FORMS)


def storage_kind(url: str) -> StorageKind:
    """What the Optuna storage URL `url` names; BandsearchError for any other scheme (http too)."""
    return _kind(url, _STORAGE, StorageKind.JOURNAL, "the study storage", _STORAGE_FORMS)


def _kind(url: str, table: dict[str, Any], bare: Any, what: str, forms: str) -> Any:
    """`table`'s kind for the scheme of `url`, `bare` for a plain path, else the clear error."""
    name = scheme(url)
    if not name:
        return bare
    if name not in table:
        raise BandsearchError(f"{what} {mask(url)} has an unknown scheme {name!r}; use {forms}")
    return table[name]


def is_remote_tracking(uri: str) -> bool:
    """MLflow served by a tracking server or Databricks: cheap for any worker to reach, and
    with its own UI; any other store is opened by each process that writes to it."""
    return tracking_kind(uri) in (TrackingKind.SERVER, TrackingKind.DATABRICKS)


def needs_artifact_root(uri: str) -> bool:
    """Whether MLflow on `uri` needs bandsearch to name a local artifact folder: a database
    store used embedded does (else MLflow writes to ./mlruns of whatever the current folder
    is); a server picks its own and a folder store keeps artifacts in itself."""
    return tracking_kind(uri) is TrackingKind.DATABASE


def journal_path(url: str) -> Path:
    """The file of a journal storage URL (PATH or journal://PATH)."""
    return Path(re.sub(r"^journal://", "", url, flags=re.IGNORECASE))


def mask(url: str) -> str:
    """The URL with any password (`user:PASSWORD@host` or `password=...`) replaced by ***,
    for logs, MLflow params and exported files. Greedy to the last `@`: over-masking is safe."""
    url = re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)
    return re.sub(r"((?:^|[?&;\s])password=)[^&;\s]*", r"\1***", url, flags=re.IGNORECASE)


# Where `mlflow ui` and `bandsearch ui` serve by default.
LOCAL_UI = "http://127.0.0.1:5000"


def runs_view(ui: str, experiment_id: str) -> str:
    """The MLflow UI at `ui` opened on the training runs of `experiment_id`: without the query
    MLflow 3 opens an experiment on its (empty) GenAI overview. Every link bandsearch prints."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"


def where_to_browse(tracking_uri: str, experiment_id: str) -> str:
    """How to see an experiment's runs: its link on a tracking server; for a local store, the
    command that serves the UI on it, then the link."""
    uri = mask(tracking_uri)
    kind = tracking_kind(tracking_uri)
    if kind is TrackingKind.SERVER:
        return f"open {runs_view(uri, experiment_id)}"
    if kind is TrackingKind.DATABRICKS:
        return f"open experiment {experiment_id} in the Databricks workspace"
    quoted = shlex.quote(uri)
    return (f"run `bandsearch ui --tracking-uri {quoted}` (or `mlflow ui --backend-store-uri {quoted} "
            f"--host 127.0.0.1`), then open {runs_view(LOCAL_UI, experiment_id)}")
