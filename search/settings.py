"""Where a study's state lives: the run folder, the Optuna storage URL, the MLflow URI.

Explicit arguments win; the environment is read here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search.storage import default_storage_url
from search.tracking import default_tracking_uri

DEFAULT_RUN_DIR = "bandsearch-runs"


@dataclass(frozen=True)
class Settings:
    run_dir: Path
    storage_url: str
    tracking_uri: str

    @property
    def cache_dir(self) -> Path:
        return self.run_dir / "cache"

    @property
    def artifact_root(self) -> Path | None:
        """Local artifact folder when MLflow runs embedded on sqlite; a server picks its own."""
        return self.run_dir / "mlartifacts" if self.tracking_uri.startswith("sqlite:") else None

    @classmethod
    def resolve(
        cls, run_dir: str | None = None, storage: str | None = None, tracking_uri: str | None = None
    ) -> Settings:
        folder = Path(run_dir or os.environ.get("BANDSEARCH_RUN_DIR") or DEFAULT_RUN_DIR).resolve()
        return cls(
            run_dir=folder,
            storage_url=storage or os.environ.get("BANDSEARCH_STORAGE") or default_storage_url(folder),
            tracking_uri=tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(folder),
        )
