"""Dump an MLflow experiment's run tree as JSON; the end-to-end tests run it in a separate
process so that what they check is what any MLflow client would read back."""

from __future__ import annotations

import json
import sys

from mlflow.tracking import MlflowClient


def dump(tracking_uri: str, experiment_name: str) -> dict:
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    out = []
    for run in runs:
        histories = {
            key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
            for key in run.data.metrics
        }
        out.append({
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "params": run.data.params,
            "tags": {k: v for k, v in run.data.tags.items()
                     if not k.startswith("mlflow.") or k == "mlflow.parentRunId"},
            "metrics": histories,
            "artifacts": [f.path for f in client.list_artifacts(run.info.run_id)],
        })
    return {"experiment_id": experiment.experiment_id, "runs": out}


if __name__ == "__main__":
    json.dump(dump(sys.argv[1], sys.argv[2]), sys.stdout)
