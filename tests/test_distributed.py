"""Distributed for real: a two-node Ray cluster from `ray start`, an `mlflow server` on
127.0.0.1, the storage served by the driver through Optuna's gRPC proxy, and faults injected
for real (a worker SIGKILLed mid-trial, the driver SIGKILLed mid-study, MLflow stopped
mid-study, eight workers on one storage; a killed driver's study relaunched with --take-over once
its lease expired). Every launch runs `bandsearch` in a fresh process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from conftest import tiny_config, write_yaml
from optuna.trial import TrialState
from services import MlflowServer, RayNodes, env, free_port

from search.errors import BandsearchError
from search.lease import TTL_SECONDS, current_holder
from search.storage import open_storage
from search.studies import run_id_of

HERE = Path(__file__).parent
pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def slow(band: str, **search) -> dict:
    """One band whose trials take a few seconds, so that a fault lands mid-trial; no pruning."""
    return tiny_config(bands=[{"name": band, "center_hz": int(band)}], search={"pruner": "none", **search},
                       task={"n_train": 3000, "n_val": 300}, training={"epochs": 8, "model": {"hidden": 64}})


@contextmanager
def _cluster(folder: Path):
    nodes, mlflow = RayNodes(folder), MlflowServer(folder)
    try:
        nodes.start()
        mlflow.start()
        yield nodes, mlflow
    finally:
        mlflow.stop()
        nodes.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with _cluster(tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture
def fresh_stack(tmp_path_factory):
    """Its own cluster and server: the outage test stops and restarts MLflow, and on the shared
    cluster the tasks left by the killed-driver test could still hold the nodes' CPUs."""
    with _cluster(tmp_path_factory.mktemp("fresh")) as started:
        yield started


# First in the module: the killed-driver test leaves tasks that load the machine for a while.
def test_trials_go_on_while_mlflow_is_down_and_their_data_arrives_later(fresh_stack, tmp_path) -> None:
    nodes, mlflow = fresh_stack
    space = write_yaml(tmp_path / "outage.yaml", slow("3000", trials_per_band=4, workers=2))
    bind, backend = _proxy(tmp_path)
    launch = subprocess.Popen(_command(space, tmp_path / "runs", nodes, mlflow, "--storage-proxy", bind),
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finished() -> int:
        exists = (tmp_path / "runs" / "optuna.db").exists()
        return (_finished(backend, "outage", "3000")[TrialState.COMPLETE]) if exists else 0

    try:
        _wait_for(lambda: launch.poll() is not None or finished() >= 1, 240, "a first finished trial")
        assert launch.poll() is None, launch.communicate()[1][-3000:]
        mlflow.stop()
        _wait_for(lambda: finished() >= 3, 240, "trials to finish while MLflow is down")
        mlflow.start()
        _, err = launch.communicate(timeout=400)
    finally:
        if mlflow.process is None:
            mlflow.start()
        _stop(launch)
    assert launch.returncode == 0, err[-3000:]
    assert "MLflow unreachable" in err
    trials = _trials(backend, "outage", "3000")
    _assert_budget_met(trials, 4)
    runs = _runs(mlflow, "outage")
    children = {r["run_id"]: r for r in runs if r["tags"].get("bandsearch.role") == "trial"}
    assert len(children) == 4 and not [r for r in runs if r["status"] == "RUNNING"]
    study = optuna.load_study(study_name="outage/3000", storage=open_storage(backend))
    for trial in trials:
        run = children[run_id_of(study, trial)]
        assert [step for step, _ in run["metrics"]["val_accuracy"]] == list(range(1, trial.last_step + 1))
        assert run["status"] == "FINISHED" and run["metrics"]["objective"][-1][1] == pytest.approx(trial.value)


def _command(space: Path, run_dir: Path, nodes: RayNodes, mlflow: MlflowServer, *extra: str) -> list[str]:
    """`bandsearch launch` on the test cluster; the study is named after the YAML file."""
    return [sys.executable, "-m", "search.cli", "launch", str(space), "--quiet",
            "--address", nodes.address, "--tracking-uri", mlflow.uri, "--run-dir", str(run_dir), *extra]


def _launch(*args, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), env=env(), capture_output=True, text=True, timeout=timeout)


def _trials(url: str, study: str, band: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=f"{study}/{band}", storage=open_storage(url)).get_trials(deepcopy=False)


def _finished(url: str, study: str, band: str) -> Counter:
    """Trial states so far; empty before the study exists (or while the driver creates its tables)."""
    try:
        return Counter(t.state for t in _trials(url, study, band))
    except (KeyError, BandsearchError):
        return Counter()


def _runs(mlflow: MlflowServer, study: str) -> list[dict]:
    out = subprocess.run([sys.executable, str(HERE / "read_mlflow.py"), mlflow.uri, study], env=env(),
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["runs"]


def _proxy(tmp_path: Path) -> tuple[str, str]:
    return f"127.0.0.1:{free_port()}", f"sqlite:///{tmp_path / 'runs' / 'optuna.db'}"


def _assert_budget_met(trials: list[optuna.trial.FrozenTrial], budget: int) -> None:
    """Exactly `budget` finished trials, unique numbers, every failure retried with its lineage and
    every parameter it had been given (a driver killed between asking and sampling a trial leaves
    one with none: its retry is sampled afresh)."""
    assert len({t.number for t in trials}) == len(trials)
    assert sum(t.state in FINISHED for t in trials) == budget
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    by_number = {t.number: t for t in trials}
    for failed in (t for t in trials if t.state == TrialState.FAIL):
        assert failed.user_attrs.get("retried") is True, failed.user_attrs
        (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == failed.number]
        assert failed.params.items() <= retry.params.items(), (failed.params, retry.params)
        assert retry.user_attrs["attempt"] == by_number[failed.number].user_attrs.get("attempt", 0) + 1


def test_a_study_runs_on_both_nodes_through_the_storage_proxy(stack, tmp_path) -> None:
    nodes, mlflow = stack
    space = write_yaml(tmp_path / "nodes.yaml", tiny_config(
        bands=[{"name": "1000", "center_hz": 1000}], search={"trials_per_band": 6, "workers": 2}))
    bind, backend = _proxy(tmp_path)
    result = _launch(space, tmp_path / "runs", nodes, mlflow, "--storage-proxy", bind)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"served on {bind}" in result.stdout
    _assert_budget_met(_trials(backend, "nodes", "1000"), 6)
    runs = [r for r in _runs(mlflow, "nodes") if r["tags"].get("bandsearch.role") == "trial"]
    assert len(runs) == 6 and all(r["status"] in ("FINISHED", "KILLED") for r in runs)
    assert len({r["tags"]["bandsearch.node"] for r in runs}) == 2, "trials ran on both nodes"
    assert all(r["metrics"]["val_accuracy"] for r in runs)


def test_launch_runs_as_a_ray_job(stack, tmp_path) -> None:
    nodes, mlflow = stack
    space = write_yaml(tmp_path / "job.yaml", tiny_config(bands=[{"name": "3000", "center_hz": 3000}],
                                                          search={"trials_per_band": 2}))
    run_dir = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "search.cli", "submit", str(space), "--address", nodes.dashboard,
         "--run-dir", str(run_dir), "--tracking-uri", mlflow.uri, "--storage-proxy", f"127.0.0.1:{free_port()}",
         "--wait"], env=env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SUCCEEDED" in result.stdout and "best per band" in result.stdout
    trials = _trials(f"sqlite:///{run_dir / 'optuna.db'}", "job", "3000")
    assert sum(t.state in FINISHED for t in trials) == 2


@pytest.mark.parametrize("storage", ["proxy", "journal"])
def test_eight_workers_share_one_storage(stack, tmp_path, storage) -> None:
    nodes, mlflow = stack
    space = write_yaml(tmp_path / "eight.yaml", tiny_config(
        bands=[{"name": "500", "center_hz": 500}], training={"epochs": 2},
        search={"trials_per_band": 12, "workers": 8, "cpus_per_trial": 0.25}))
    run_dir = tmp_path / "runs"
    bind, backend = _proxy(tmp_path)
    extra = ["--storage-proxy", bind] if storage == "proxy" else []
    result = _launch(space, run_dir, nodes, mlflow, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "database is locked" not in result.stdout + result.stderr
    url = backend if storage == "proxy" else str(run_dir / "optuna.journal")
    trials = _trials(url, "eight", "500")
    assert sorted(t.number for t in trials) == list(range(12))
    assert all(t.state in FINISHED for t in trials)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def _running_trial_worker(nodes: RayNodes) -> int:
    from ray.util.state import list_tasks

    tasks = list_tasks(address=nodes.dashboard, filters=[("state", "=", "RUNNING")], timeout=10)
    pids = [t.worker_pid for t in tasks if "_trial_task" in t.name and t.worker_pid]
    return pids[0] if pids else 0


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_a_worker_killed_mid_trial_is_failed_and_retried(stack, tmp_path) -> None:
    nodes, mlflow = stack
    space = write_yaml(tmp_path / "kill.yaml", slow("1000", trials_per_band=3, workers=1, max_retries=1))
    bind, backend = _proxy(tmp_path)
    launch = subprocess.Popen(_command(space, tmp_path / "runs", nodes, mlflow, "--storage-proxy", bind),
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids: list[int] = []
        _wait_for(lambda: pids.append(_running_trial_worker(nodes)) or pids[-1], 180, "a trial to start")
        os.kill(pids[-1], signal.SIGKILL)
        _, err = launch.communicate(timeout=400)
    finally:
        _stop(launch)
    assert launch.returncode == 0, err[-3000:]
    trials = _trials(backend, "kill", "1000")
    _assert_budget_met(trials, 3)
    (killed,) = [t for t in trials if t.state == TrialState.FAIL]
    runs = {r["run_id"]: r for r in _runs(mlflow, "kill")}
    run = runs[killed.user_attrs["mlflow_run_id"]]
    assert run["status"] == "FAILED" and run["tags"]["bandsearch.state"] == "lost"
    assert run["tags"]["bandsearch.retried"] == "True" and "error.txt" in run["artifacts"]
    assert not [r for r in runs.values() if r["status"] == "RUNNING"]


def test_a_killed_driver_resumes_without_losing_or_repeating_trials(stack, tmp_path) -> None:
    nodes, mlflow = stack
    space = write_yaml(tmp_path / "driver.yaml", slow("500", trials_per_band=4, workers=2))
    bind, backend = _proxy(tmp_path)
    command = _command(space, tmp_path / "runs", nodes, mlflow, "--storage-proxy", bind)
    log = tmp_path / "first-driver.log"
    with open(log, "wb") as out:
        first = subprocess.Popen(command, env=env(), stdout=out, stderr=subprocess.STDOUT)

    def mid_study() -> bool:
        states = _finished(backend, "driver", "500") if (tmp_path / "runs" / "optuna.db").exists() else Counter()
        return states[TrialState.COMPLETE] >= 1 and states[TrialState.RUNNING] >= 1

    try:
        _wait_for(lambda: first.poll() is not None or mid_study(), 300, "one finished and one running trial")
        assert first.poll() is None, f"the first driver ended early:\n{log.read_text()[-3000:]}"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        _stop(first)
    orphans = {t.number for t in _trials(backend, "driver", "500") if t.state == TrialState.RUNNING}
    assert orphans
    # The dead driver's lease holds the study until its heartbeat is TTL_SECONDS old: a plain relaunch
    # is refused, naming it; once the lease has expired, --take-over takes the study and recovers it.
    refused = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=400)
    assert refused.returncode == 2 and f"pid {first.pid} " in refused.stderr, refused.stderr[-3000:]
    assert "--take-over" in refused.stderr
    assert {t.number for t in _trials(backend, "driver", "500") if t.state == TrialState.RUNNING} == orphans
    _wait_for(lambda: current_holder(backend, "driver").expired(time.time()), TTL_SECONDS + 30, "the lease to expire")
    second = subprocess.run([*command, "--take-over"], env=env(), capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-3000:]
    trials = _trials(backend, "driver", "500")
    _assert_budget_met(trials, 4)
    assert {t.number for t in trials if t.state == TrialState.FAIL} == orphans
    runs = _runs(mlflow, "driver")
    assert not [r for r in runs if r["status"] == "RUNNING"]
    # The dead driver's runs are closed too, even one it created but had not linked to its trial yet
    # (a trial it had asked but not yet submitted has no run at all).
    trial_runs = [r for r in runs if r["tags"].get("bandsearch.role") == "trial"]
    numbers = {int(r["tags"]["optuna.trial_number"]): r["status"] for r in trial_runs}
    assert {number for number, status in numbers.items() if status == "FAILED"} == orphans & numbers.keys()
