"""Optuna storage: where studies live, how to open it, and one study per band.

A plain path (the default: `<run dir>/optuna.journal`) is a journal file: many
processes append to it safely under a file lock, which SQLite with many writers does not
("database is locked"). `postgresql://...`/`mysql://...` use an RDB; `grpc://host:port`
reaches Optuna's storage proxy (search/proxy.py), whose backend defaults to SQLite in the
run folder with the proxy as its one writer.
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
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, GrpcStorageProxy, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from search.errors import BandsearchError

_RDB_SCHEMES = ("sqlite:", "postgresql", "mysql")
# Namespace of the study-level attributes bandsearch writes.
ATTR = "bandsearch"
# Study attribute: trial number -> MLflow run id, for runs created after their trial ended
# (MLflow was down when the trial started; a finished trial's attributes are frozen).
LATE_RUNS = "mlflow_late_runs"


def default_storage_url(run_dir: Path) -> str:
    return str(Path(run_dir).resolve() / "optuna.journal")


def default_proxy_backend(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'optuna.db'}"


def mask(url: str) -> str:
    """The URL with any password (`user:PASSWORD@host` or `password=...`) replaced by ***,
    for logs, MLflow params and exported files. Greedy to the last `@`: over-masking is safe."""
    url = re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)
    return re.sub(r"((?:^|[?&;\s])password=)[^&;\s]*", r"\1***", url, flags=re.IGNORECASE)


def check_proxy_backend(url: str) -> None:
    """The proxy serves an RDB only: Optuna's journal behind the proxy loses enqueued trials."""
    if not url.startswith(_RDB_SCHEMES):
        raise BandsearchError(
            f"--storage {mask(url)}: the storage proxy needs an RDB backend (sqlite:///..., postgresql://...), "
            "not a journal file or another proxy (Optuna does not support a journal behind its gRPC proxy); "
            "leave --storage unset to use RUN_DIR/optuna.db"
        )


@lru_cache(maxsize=8)
def open_storage(url: str) -> BaseStorage:
    """Open (once per process) the storage at `url`; raise BandsearchError if unreachable."""
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("sqlite:"):
            # Threads of one process (the driver and its proxy) wait for SQLite's lock instead
            # of failing with "database is locked" after the default 5 s.
            return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        if url.startswith(_RDB_SCHEMES):
            return RDBStorage(url)
        if url.startswith("grpc://"):
            host, _, port = url.removeprefix("grpc://").rpartition(":")
            proxy = GrpcStorageProxy(host=host, port=int(port))
            proxy.wait_server_ready(timeout=20)
            return proxy
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


def link_run(study: optuna.Study, trial: optuna.Trial, run_id: str) -> None:
    """Record `run_id` as the MLflow run of `trial`: on the trial while it runs, else on the study."""
    try:
        trial.set_user_attr("mlflow_run_id", run_id)
    except UpdateFinishedTrialError:
        study.set_user_attr(LATE_RUNS, {**study.user_attrs.get(LATE_RUNS, {}), str(trial.number): run_id})


def run_id_of(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """The MLflow run of `trial` ("" if it never got one)."""
    return trial.user_attrs.get("mlflow_run_id") or study.user_attrs.get(LATE_RUNS, {}).get(str(trial.number), "")
