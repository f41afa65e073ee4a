"""Optuna storage: where studies live, how to open it, and one study per band.

A plain path (the default: `<run dir>/optuna.journal`) is a journal file: many
processes append to it safely under a file lock, which SQLite with many writers does not
("database is locked"). `postgresql://...`/`mysql://...` use an RDB; `grpc://host:port`
reaches Optuna's storage proxy on a cluster head node.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from search.errors import BandsearchError

_RDB_SCHEMES = ("sqlite:", "postgresql", "mysql")
# Namespace of the study-level attributes bandsearch writes.
ATTR = "bandsearch"


def default_storage_url(run_dir: Path) -> str:
    return str(Path(run_dir).resolve() / "optuna.journal")


def mask(url: str) -> str:
    """The URL with any password replaced by ***, for logs and MLflow params."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@lru_cache(maxsize=8)
def open_storage(url: str) -> BaseStorage:
    """Open (once per process) the storage at `url`; raise BandsearchError if unreachable."""
    try:
        if url.startswith(_RDB_SCHEMES):
            return RDBStorage(url)
        if url.startswith("grpc://"):
            host, _, port = url.removeprefix("grpc://").rpartition(":")
            return GrpcStorageProxy(host=host, port=int(port))
        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as err:  # each backend raises its own types
        raise BandsearchError(
            f"cannot open the study storage {mask(url)}: {err}. Check the URL and that the server is up."
        ) from None


def serve_dashboard(url: str, host: str = "127.0.0.1", port: int = 8080) -> subprocess.Popen | None:
    """Start optuna-dashboard on the storage if it is installed (None if not)."""
    if importlib.util.find_spec("optuna_dashboard") is None:
        return None
    return subprocess.Popen([sys.executable, "-m", "optuna_dashboard", url, "--host", host, "--port", str(port)])


def band_study_name(study: str, band: str) -> str:
    return f"{study}/{band}"


def band_studies(storage: BaseStorage, study: str) -> dict[str, optuna.study.StudySummary]:
    """The band studies of `study` in `storage`, by band name, in creation order."""
    prefix = f"{study}/"
    return {
        summary.study_name.removeprefix(prefix): summary
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if summary.study_name.startswith(prefix)
    }


def study_attrs(study: optuna.Study) -> dict[str, Any]:
    return study.user_attrs.get(ATTR, {})
