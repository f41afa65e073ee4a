"""MLflow: one experiment per study, a parent run per band, a child run per trial.

Everything goes through MlflowClient with explicit run ids: Ray reuses worker processes,
and MLflow's fluent API keeps process-wide state. Metrics and params are sent in
batches within MLflow's limits; long values are truncated. The driver writes through an
`Outbox`, so a tracking server that goes away stalls no trial: its writes wait, in order.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from search.errors import BandsearchError
from search.mlflow_store import fail_fast, open_client, reason
from search.uris import mask

log = logging.getLogger(__name__)

# MLflow's limits per log_batch call and per value.
_MAX_PARAMS, _MAX_METRICS = 100, 1000
_MAX_PARAM_LEN, _MAX_TAG_LEN = 6000, 8000
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
# Marks a run created through the Outbox, so a replay finds it instead of creating it twice.
TOKEN_TAG = "bandsearch.create_token"
# MLflow versions that read it open the experiment on its training runs, not on GenAI traces.
KIND_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def truncate(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Tracker:
    """A thin, batched view of one MLflow tracking store."""

    def __init__(self, uri: str):
        self.uri = uri
        self.client = open_client(uri)

    def check(self) -> None:
        """Fail early, before any trial, if the tracking store cannot be reached."""
        try:
            with fail_fast():
                self.client.search_experiments(max_results=1)
        except Exception as err:
            raise BandsearchError(f"cannot reach MLflow at {mask(self.uri)} ({reason(err)}): "
                                  "start the tracking server or fix --tracking-uri") from None

    def experiment(self, name: str, artifact_root: Path | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (Path(artifact_root).resolve() / name).as_uri() if artifact_root else None
        return self.client.create_experiment(name, artifact_location=location, tags=KIND_TAGS)

    def start_run(
        self,
        experiment_id: str,
        name: str,
        tags: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        token: str | None = None,
        retried: bool = False,
    ) -> str:
        """Create a run and log its params. The run is tagged with `token`; when `retried`, a run
        an earlier attempt already created under it (its answer or its params lost to an outage)
        is completed instead of a second one made."""
        all_tags = {key: truncate(value, _MAX_TAG_LEN) for key, value in tags.items()}
        if parent_id:
            all_tags[PARENT_TAG] = parent_id
        run_id = None
        if token:
            all_tags[TOKEN_TAG] = token
            if retried:
                run_id = self.find_run(experiment_id, {TOKEN_TAG: token})
        if run_id is None:
            run_id = self.client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id
        items = [Param(key, truncate(value, _MAX_PARAM_LEN)) for key, value in (params or {}).items()]
        for start in range(0, len(items), _MAX_PARAMS):
            self.client.log_batch(run_id, params=items[start : start + _MAX_PARAMS])
        return run_id

    def log(
        self, run_id: str, metrics: Mapping[str, float] | None = None, tags: Mapping[str, Any] | None = None,
        step: int = 0,
    ) -> None:
        """Metrics (at one step) and tags in as few calls as MLflow's limits allow."""
        self.log_epochs(run_id, [(step, metrics or {})], tags)

    def log_epochs(
        self, run_id: str, epochs: list[tuple[int, Mapping[str, float]]], tags: Mapping[str, Any] | None = None
    ) -> None:
        """Metric dicts at their steps, batched."""
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for step, values in epochs for key, value in values.items()]
        run_tags = [RunTag(key, truncate(value, _MAX_TAG_LEN)) for key, value in (tags or {}).items()]
        for start in range(0, max(len(metrics), 1), _MAX_METRICS):
            batch = metrics[start : start + _MAX_METRICS]
            if batch or run_tags:
                self.client.log_batch(run_id, metrics=batch, tags=run_tags)
            run_tags = []

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_file(self, run_id: str, local_path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(local_path), folder)

    def find_run(self, experiment_id: str, tags: Mapping[str, str]) -> str | None:
        """The newest run of the experiment carrying all `tags`, if any."""
        query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
        runs = self.client.search_runs([experiment_id], filter_string=query, max_results=1,
                                       order_by=["attributes.start_time DESC"])
        return runs[0].info.run_id if runs else None

    def role_run(self, study_name: str, artifact_root: Path | None, role: str, name: str) -> tuple[str, str]:
        """(experiment id, run id) of the study's run for `role` (`lr-tables`, `report`,
        `lr-finder`): created on first use, reopened after."""
        experiment = self.experiment(study_name, artifact_root)
        run_id = self.find_run(experiment, {"bandsearch.role": role}) or self.start_run(
            experiment, name, tags={"bandsearch.role": role, "bandsearch.study": study_name})
        self.reopen(run_id)
        return experiment, run_id

    def publish(self, study_name: str, artifact_root: Path | None, role: str, name: str,
                files: Iterable[Path], folder: str) -> str:
        """Log `files` under `folder` to the study's `role` run, then close it; its id."""
        _, run_id = self.role_run(study_name, artifact_root, role, name)
        for path in files:
            self.log_file(run_id, path, folder)
        self.finish(run_id, "FINISHED")
        return run_id

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def finish(self, run_id: str, status: str, name: str | None = None) -> None:
        """End a run as FINISHED, KILLED (pruned or interrupted) or FAILED, renamed to `name` if given."""
        if name:  # the run-name tag renames the run; MlflowClient.update_run would first read the whole run
            self.client.set_tag(run_id, RUN_NAME_TAG, name)
        self.client.set_terminated(run_id, status=status)

    def open_runs(self, experiment_id: str) -> dict[str, dict[str, int]]:
        """Trial runs of the experiment still RUNNING in MLflow, by band study: run id -> Optuna
        trial number (one search for every band)."""
        runs: dict[str, dict[str, int]] = {}
        page_token = None
        while True:
            page = self.client.search_runs(
                [experiment_id], max_results=10000, page_token=page_token,
                filter_string="attributes.status = 'RUNNING' and tags.`bandsearch.role` = 'trial'")
            for run in page:
                tags = run.data.tags
                runs.setdefault(tags["optuna.study_name"], {})[run.info.run_id] = int(tags["optuna.trial_number"])
            if not (page_token := page.token):
                return runs


def serve_ui(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> subprocess.Popen:
    """Start the MLflow UI on a local tracking store; the caller stops it by its handle."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri, "--host", host,
         "--port", str(port)],
    )


@lru_cache(maxsize=4)
def tracker_for(uri: str) -> Tracker:
    """One Tracker per process and URI (Ray worker processes run many trials)."""
    return Tracker(uri)


def unreachable(err: Exception) -> bool:
    """Whether `err` means the tracking server could not be reached (worth retrying later)."""
    if isinstance(err, (requests.exceptions.RequestException, ConnectionError)):
        return True
    return isinstance(err, MlflowException) and str(err).startswith("API request to")
