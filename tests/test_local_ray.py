"""The local Ray cluster a launch starts: it listens on 127.0.0.1 only, and it ends with its
driver, even one killed with `kill -9` (search/reaper.py). Also the refusals that keep a launch
from waiting on Ray forever: an address nothing answers at, a trial no node can hold."""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import tiny_config, write_yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from services import env, free_port

pytestmark = pytest.mark.timeout(400)


def _launch(space: Path, runs: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "search.cli", "launch", str(space), "--study", "local",
                             "--run-dir", str(runs), "--quiet", *extra], cwd=space.parent, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _training(journal: Path) -> bool:
    if not journal.exists():
        return False
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return any(t.state == TrialState.RUNNING and t.intermediate_values
               for study in storage.get_all_studies() if "/" in study.study_name
               for t in storage.get_all_trials(study._study_id, deepcopy=False))


def _listening(processes: list[psutil.Process]) -> list[tuple[str, str]]:
    pids = {p.pid: p.name() for p in processes}
    return [(pids[c.pid], c.laddr.ip) for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_local_cluster_listens_on_loopback_and_dies_with_a_killed_driver(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(search={"trials_per_band": 2, "workers": 1},
                                                           training={"epochs": 200}))
    runs = tmp_path / "runs"
    launch = _launch(space, runs, "--num-cpus", "1")
    try:
        deadline = time.monotonic() + 240
        while not _training(runs / "optuna.journal"):
            assert launch.poll() is None, f"launch ended early (rc {launch.returncode}): {launch.communicate()[1]}"
            assert time.monotonic() < deadline, "no trial was training after 240 s"
            time.sleep(0.5)
        driver = psutil.Process(launch.pid)
        cluster = [p for p in driver.children(recursive=True) if "search.reaper" not in p.cmdline()]
        sockets = _listening([driver, *cluster])
        assert any(name == "gcs_server" for name, _ in sockets), sockets
        assert [(name, ip) for name, ip in sockets if not _is_loopback(ip)] == []

        launch.send_signal(signal.SIGKILL)
        launch.communicate(timeout=30)
        gone, alive = psutil.wait_procs(cluster, timeout=30)
        assert not [p.name() for p in alive], "Ray processes outlived their killed driver by 30 s"
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()


def test_an_address_nothing_answers_at_is_refused_at_once_creating_nothing(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config())
    started = time.monotonic()
    launch = _launch(space, tmp_path / "runs", "--address", f"127.0.0.1:{free_port()}")
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 2, stderr
    (line,) = stderr.splitlines()
    assert line.startswith("error: cannot reach the Ray cluster at 127.0.0.1:"), line
    assert "Connection refused" in line and "--address" in line
    assert time.monotonic() - started < 60
    assert not (tmp_path / "runs").exists(), "nothing created: no MLflow store, no storage"


def test_a_trial_larger_than_every_node_is_refused_naming_the_key(tmp_path: Path) -> None:
    space = write_yaml(tmp_path / "tiny.yaml", tiny_config(search={"cpus_per_trial": 2}))
    launch = _launch(space, tmp_path / "runs", "--num-cpus", "1")
    _, stderr = launch.communicate(timeout=300)
    assert launch.returncode == 2, stderr
    assert "error: search.cpus_per_trial: a trial asks for 2 CPUs, but the largest node of the cluster has 1" in stderr
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "runs" / "optuna.journal")))
    trials = [t for study in storage.get_all_studies() if "/" in study.study_name
              for t in storage.get_all_trials(study._study_id)]
    assert trials == [], "no trial asked"


def test_a_launch_refused_while_ray_starts_in_the_background_stops_the_cluster_it_started(tmp_path: Path) -> None:
    """The driver joins Ray in a thread while it prepares the study (search/ray_connection.py `join`);
    a launch that fails meanwhile (here: another driver holds the study's lease) waits for the
    join, then stops the local cluster it started: no Ray process and no connection are left.
    Later joins in the same process start afresh, also after a bare `ray.shutdown()`."""
    import ray

    from search import ray_connection
    from search.config import parse_config
    from search.driver.launch import launch
    from search.errors import BandsearchError
    from search.lease import Lease
    from search.settings import Settings

    settings = Settings.resolve(run_dir=str(tmp_path / "runs"))
    config = parse_config(tiny_config(), source=tmp_path / "tiny.yaml")
    Lease(settings.storage_url, "held").take()  # another live driver's
    before = {process.pid for process in psutil.Process().children(recursive=True)}
    with pytest.raises(BandsearchError, match="held"):
        launch(config, "held", settings, num_cpus=1)
    assert not ray.is_initialized()
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(left, timeout=30)
    assert not [p.cmdline()[:2] for p in alive], "the Ray processes the refused launch started outlived it"
    ray_connection.connect(None, num_cpus=1)  # a later launch in the same process joins afresh
    assert ray.cluster_resources()["CPU"] == 1
    ray.shutdown()  # as a user's own code might, behind ray_connection's back
    ray_connection.connect(None, num_cpus=2)
    try:
        assert ray.cluster_resources()["CPU"] == 2
    finally:
        ray_connection.disconnect()
