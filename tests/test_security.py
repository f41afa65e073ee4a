"""Security defaults and clear refusals before any trial: passwords masked wherever a URL is
shown, servers on 127.0.0.1 unless told otherwise, YAML loaded safely, unreachable MLflow and
unreachable-from-a-node services stop the launch with one clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, write_yaml
from services import MlflowServer, env, free_port

from search.config import load_config
from search.errors import BandsearchError
from search.proxy import parse_bind
from search.reach import endpoint, local_path, probe, verdict
from search.settings import Settings

pytestmark = pytest.mark.timeout(120)


def bandsearch(*args: str, cwd: Path, timeout: float = 100) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def test_a_storage_password_never_reaches_the_terminal(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config())
    result = bandsearch("launch", str(space), "--run-dir", str(tmp_path / "runs"), "--quiet",
                        "--storage", f"postgresql://bandsearch:s3cret@127.0.0.1:{free_port()}/optuna", cwd=tmp_path)
    assert result.returncode == 2
    assert "s3cret" not in result.stdout + result.stderr
    assert "bandsearch:***@127.0.0.1" in " ".join((result.stdout + result.stderr).split())


def test_mlflow_unreachable_at_start_stops_before_any_trial_in_one_line(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config())
    port = free_port()
    uri = f"http://alice:S3cretPW@127.0.0.1:{port}"
    result = bandsearch("launch", str(space), "--run-dir", str(tmp_path / "runs"), "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()  # no urllib3 retry warnings, no traceback, no wrapping
    assert line.startswith(f"error: cannot reach MLflow at http://alice:***@127.0.0.1:{port} (Connection refused)")
    assert "S3cretPW" not in result.stdout + result.stderr
    assert not (tmp_path / "runs" / "optuna.journal").exists(), "no study, no trial"


@pytest.mark.timeout(300)
def test_json_progress_stays_json_and_the_tracking_password_stays_hidden(tmp_path: Path) -> None:
    """MLflow's own "View run at URL" lines would break the JSON lines and print the password."""
    server = MlflowServer(tmp_path)
    server.start()
    try:
        space = write_yaml(tmp_path / "tiny.yaml", tiny_config(
            bands=[{"name": "1000", "center_hz": 1000}], search={"trials_per_band": 2, "workers": 1},
            training={"epochs": 1, "model": {"hidden": 8}}, baselines={"methods": []}))
        uri = f"http://alice:S3cretPW@127.0.0.1:{server.port}"
        result = bandsearch("launch", str(space), "--run-dir", str(tmp_path / "runs"), "--tracking-uri", uri,
                            "--progress", "json", "--num-cpus", "1", cwd=tmp_path, timeout=250)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and events[-1]["finished"] == 2
    assert "S3cretPW" not in result.stdout + result.stderr
    assert f"alice:***@127.0.0.1:{server.port}" in " ".join(result.stderr.split())


def test_submit_refuses_to_put_a_password_into_the_job(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config())
    result = bandsearch("submit", str(space), "--address", f"http://127.0.0.1:{free_port()}",
                        "--storage", "postgresql://u:s3cret@db/optuna", cwd=tmp_path)
    assert result.returncode == 2 and "s3cret" not in result.stderr
    assert "from a secret" in " ".join(result.stderr.split())


def test_the_storage_proxy_binds_to_localhost_unless_told_otherwise() -> None:
    assert parse_bind("13001") == ("127.0.0.1", 13001)
    assert parse_bind("0.0.0.0:13002") == ("0.0.0.0", 13002)
    with pytest.raises(BandsearchError, match="--storage-proxy"):
        parse_bind("head:http")


def test_the_proxy_serves_sqlite_by_default_and_refuses_a_journal(tmp_path: Path) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path), storage_proxy="13003")
    assert settings.storage_url == f"sqlite:///{tmp_path.resolve() / 'optuna.db'}"
    with pytest.raises(BandsearchError, match="journal"):
        Settings.resolve(run_dir=str(tmp_path), storage=str(tmp_path / "optuna.journal"), storage_proxy="13003")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("search: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(BandsearchError, match="evil.yaml"):
        load_config(evil)


def test_reach_targets_are_read_from_the_urls() -> None:
    assert local_path("sqlite:////runs/mlflow.db") == Path("/runs/mlflow.db")
    assert local_path("/runs/optuna.journal") == Path("/runs/optuna.journal")
    assert local_path("grpc://head:13000") is None and local_path("http://mlflow:5000") is None
    assert endpoint("postgresql+psycopg2://u:p@db/optuna") == ("db", 5432)
    assert endpoint("grpc://head:13000") == ("head", 13000) and endpoint("http://mlflow") == ("mlflow", 80)


def test_a_node_that_misses_a_service_stops_the_launch_with_what_to_do(tmp_path: Path) -> None:
    """What each node runs (`probe`), against a file and a port no one serves, then the verdict."""
    journal = tmp_path / "optuna.journal"
    problems = probe({"the study storage": str(journal), "MLflow": f"http://127.0.0.1:{free_port()}"},
                     {"the study storage": "a token the driver wrote elsewhere"})
    assert len(problems) == 2
    with pytest.raises(BandsearchError) as err:
        verdict({"10.0.0.7 abcd1234": problems, "10.0.0.6 ef567890": []})
    message = str(err.value)
    assert "node 10.0.0.7 abcd1234: the study storage" in message and "10.0.0.6" not in message
    assert "--storage-proxy" in message and "--tracking-uri http://" in message
