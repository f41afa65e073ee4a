"""Where a study's state lives: the run folder, the Optuna storage URL, the MLflow URI.

Explicit arguments win; the environment is read here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search.errors import BandsearchError
from search.storage import check_proxy_backend, default_proxy_backend, default_storage_url
from search.uris import needs_artifact_root, storage_kind, tracking_kind

DEFAULT_RUN_DIR = "bandsearch-runs"


def default_tracking_uri(run_dir: Path) -> str:
    """MLflow on SQLite in the run folder: the embedded default (no server to start)."""
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


@dataclass(frozen=True)
class Settings:
    run_dir: Path
    storage_url: str  # what the driver opens; behind the proxy when storage_proxy is set
    tracking_uri: str
    storage_proxy: str | None = None  # [HOST:]PORT the driver serves the storage on, for workers

    @property
    def cache_dir(self) -> Path:
        return self.run_dir / "cache"

    @property
    def artifact_root(self) -> Path | None:
        """Local artifact folder when MLflow runs embedded on a database (sqlite, postgresql,
        mysql, mssql); a server picks its own and a folder store keeps artifacts in itself."""
        return self.run_dir / "mlartifacts" if needs_artifact_root(self.tracking_uri) else None

    @classmethod
    def resolve(
        cls, run_dir: str | None = None, storage: str | None = None, tracking_uri: str | None = None,
        storage_proxy: str | None = None,
    ) -> Settings:
        folder = Path(run_dir or os.environ.get("BANDSEARCH_RUN_DIR") or DEFAULT_RUN_DIR).resolve()
        if folder.exists() and not folder.is_dir():
            raise BandsearchError(f"run folder {folder} (--run-dir or $BANDSEARCH_RUN_DIR) is a file; give a folder")
        proxy = storage_proxy or os.environ.get("BANDSEARCH_STORAGE_PROXY") or None
        # Behind the proxy the default storage is SQLite (Optuna's proxy does not serve a journal).
        default = default_proxy_backend(folder) if proxy else default_storage_url(folder)
        settings = cls(
            run_dir=folder,
            storage_url=storage or os.environ.get("BANDSEARCH_STORAGE") or default,
            tracking_uri=tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(folder),
            storage_proxy=proxy,
        )
        # An unknown scheme stops here, before anything is opened, created or started.
        storage_kind(settings.storage_url)
        tracking_kind(settings.tracking_uri)
        if proxy:
            check_proxy_backend(settings.storage_url)
        return settings
