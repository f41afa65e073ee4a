"""One driver per study: the lease (search/lease.py) on a journal file, SQLite and PostgreSQL,
and real `bandsearch launch` processes started at the same moment on one storage."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from conftest import tiny_config, write_yaml
from optuna.trial import TrialState
from services import env

from search import lease
from search.errors import BandsearchError
from search.lease import Lease, current_holder, holder_line
from search.storage import open_storage
from search.studies import LEASE_FOR, LEASE_SINCE, LEASE_STUDY

pytestmark = pytest.mark.timeout(400)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LATER = lambda: time.time() + lease.TTL_SECONDS + 1  # a clock to which every heartbeat so far has expired
EARLIER = lambda: time.time() - lease.TTL_SECONDS - 1  # a launch whose last heartbeat is that old


@pytest.fixture(params=["journal", "sqlite"])
def storage_url(request, tmp_path: Path) -> str:
    return str(tmp_path / "optuna.journal") if request.param == "journal" else f"sqlite:///{tmp_path / 'optuna.db'}"


def _tickets(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=LEASE_STUDY, storage=open_storage(url)).get_trials(deepcopy=False)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def test_reading_the_lease_creates_nothing(storage_url: str) -> None:
    assert current_holder(storage_url, "s") is None and holder_line(storage_url, "s") is None
    assert optuna.get_all_study_summaries(open_storage(storage_url)) == []


def test_a_lease_is_taken_renewed_and_released(storage_url: str) -> None:
    now = [time.time()]
    first = Lease(storage_url, "s", clock=lambda: now[0])
    first.take()
    holder = current_holder(storage_url, "s")
    assert (holder.owner, holder.host, holder.pid, holder.released) == (first.owner, socket.gethostname(),
                                                                        os.getpid(), False)
    assert holder_line(storage_url, "s").startswith(f"launch running: host {socket.gethostname()} pid {os.getpid()}")
    now[0] += 5
    assert first.renew()
    assert current_holder(storage_url, "s").heartbeat == holder.heartbeat + 5
    first.release()
    assert current_holder(storage_url, "s").released and holder_line(storage_url, "s") is None
    second = Lease(storage_url, "s")
    second.take()  # a released lease is free at once, no --take-over
    assert current_holder(storage_url, "s").owner == second.owner


def test_a_live_lease_refuses_another_launch_naming_its_holder(storage_url: str) -> None:
    Lease(storage_url, "s").take()
    for take_over in (False, True):
        with pytest.raises(BandsearchError) as refused:
            Lease(storage_url, "s").take(take_over)
        message = str(refused.value)
        assert f"host {socket.gethostname()} pid {os.getpid()} since " in message, message
        assert "last heartbeat 0 s ago" in message and "--take-over" in message and "\n" not in message
        assert ("its lease is live" in message) == take_over, message
    assert len(_tickets(storage_url)) == 1, "a refused launch writes nothing"


def test_an_expired_lease_is_taken_only_with_take_over(storage_url: str) -> None:
    dead = Lease(storage_url, "s")
    dead.take()
    late = Lease(storage_url, "s", clock=LATER)
    with pytest.raises(BandsearchError, match=r"whose lease has expired .*run again with --take-over"):
        late.take()
    late.take(take_over=True)
    assert current_holder(storage_url, "s").owner == late.owner
    assert not dead.renew() and dead.taken_by.owner == late.owner
    dead.release()  # the old holder cannot release the new one's lease
    assert not current_holder(storage_url, "s").released
    assert holder_line(storage_url, "s").startswith("launch running: ")


def test_status_says_when_the_holder_is_gone(storage_url: str) -> None:
    Lease(storage_url, "s", clock=EARLIER).take()
    assert "(expired: that driver is gone; `launch --take-over` takes the study)" in holder_line(storage_url, "s")


def test_different_studies_hold_leases_of_their_own(storage_url: str) -> None:
    a, b = Lease(storage_url, "a"), Lease(storage_url, "b")
    a.take()
    b.take()
    a.release()
    assert current_holder(storage_url, "a").released
    assert current_holder(storage_url, "b").owner == b.owner and not current_holder(storage_url, "b").released


def _race(url: str, monkeypatch, launches: int = 6) -> None:
    """Every launch reads "no holder" before any writes its ticket; exactly one may win."""
    read, lined_up = lease.current_holder, threading.Barrier(launches)
    first_read = threading.local()

    def read_then_wait(storage_url: str, study: str):
        holder = read(storage_url, study)
        if not getattr(first_read, "done", False):
            first_read.done = True
            lined_up.wait(timeout=60)
        return holder

    monkeypatch.setattr(lease, "current_holder", read_then_wait)
    open_storage(url)  # once, as a launch does: threads of one process share one storage
    leases, refusals = [Lease(url, "s") for _ in range(launches)], {}

    def take(one: Lease) -> None:
        try:
            one.take()
        except BandsearchError as err:
            refusals[one.owner] = str(err)

    threads = [threading.Thread(target=take, args=(one,)) for one in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    (winner,) = [one for one in leases if one.owner not in refusals]
    assert read(url, "s").owner == winner.owner
    assert all(f"pid {os.getpid()}" in message and "last heartbeat" in message for message in refusals.values())
    states = sorted(t.state.name for t in _tickets(url))
    assert states == ["FAIL"] * (launches - 1) + ["RUNNING"], "every ticket written; the losers' failed"


def test_of_launches_asking_at_the_same_instant_exactly_one_gets_the_lease(storage_url: str, monkeypatch) -> None:
    _race(storage_url, monkeypatch)


def test_the_same_race_on_postgresql(postgres, monkeypatch) -> None:
    _race(postgres.create_database("race"), monkeypatch)


def test_hold_renews_from_a_thread_and_releases_on_an_error(storage_url: str, monkeypatch) -> None:
    monkeypatch.setattr(lease, "RENEW_SECONDS", 0.05)
    with pytest.raises(RuntimeError), Lease(storage_url, "s").hold():
        first = current_holder(storage_url, "s").heartbeat
        _wait_for(lambda: current_holder(storage_url, "s").heartbeat > first, 30, "a renewed heartbeat")
        raise RuntimeError("the launch failed")
    assert current_holder(storage_url, "s").released


def test_a_holder_taken_over_stops_with_the_error_naming_who(storage_url: str, monkeypatch) -> None:
    monkeypatch.setattr(lease, "RENEW_SECONDS", 0.05)
    # Ctrl-C's own handler, as in a `bandsearch launch` process, whatever an earlier test of this
    # session left (the real launches below check the same, each in its own process).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    taken_over = pytest.raises(BandsearchError, match=r"was taken over by another launch \(host .* pid")
    try:
        with taken_over, Lease(storage_url, "s").hold():
            Lease(storage_url, "s", clock=LATER).take(take_over=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # until the renewer interrupts the launch, as Ctrl-C would
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)


# -- real launches, two at once (20-30 s a test on 2 idle cores) ---------------------------


def _space(tmp_path: Path, study: str) -> Path:
    """One band, three one-epoch trials, no baselines: a launch of about ten seconds."""
    return write_yaml(tmp_path / f"{study}.yaml", tiny_config(
        bands=[{"name": "1000", "center_hz": 1000}], search={"trials_per_band": 3, "workers": 1},
        training={"epochs": 1}, baselines={"methods": []}))


def _command(space: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "search.cli", "launch", str(space), "--quiet", "--num-cpus", "1",
            "--run-dir", str(run_dir), *extra]


def _all_at_once(commands: list[list[str]], folder: Path) -> list[tuple[int, str]]:
    """Start every command at the same moment; each one's exit code and stderr."""
    logs = [folder / f"launch-{index}.log" for index in range(len(commands))]
    processes = []
    for command, log in zip(commands, logs):
        with open(log, "w") as out:
            processes.append(subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=out))
    try:
        for process in processes:
            process.wait(300)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    return [(process.returncode, log.read_text()) for process, log in zip(processes, logs)]


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=f"{study}/1000", storage=open_storage(url)).get_trials(deepcopy=False)


def _one_ran_and_one_was_refused(tmp_path: Path, *storage: str) -> None:
    run_dir = tmp_path / "runs"
    command = _command(_space(tmp_path, "race"), run_dir, *storage)
    results = _all_at_once([command, command], tmp_path)
    assert sorted(code for code, _ in results) == [0, 2], results
    (refused,) = [err for code, err in results if code == 2]
    assert "error: study 'race' is being run by another launch (host " in refused and "--take-over" in refused, refused
    assert "Traceback" not in refused
    url = storage[1] if storage else str(run_dir / "optuna.journal")
    trials = _trials(url, "race")
    assert len(trials) == 3 and all(t.state in FINISHED for t in trials), [t.state for t in trials]
    assert current_holder(url, "race").released


def test_two_launches_of_one_study_at_once_on_a_journal_run_one(tmp_path: Path) -> None:
    _one_ran_and_one_was_refused(tmp_path)


def test_two_launches_of_one_study_at_once_on_postgresql_run_one(tmp_path: Path, postgres) -> None:
    url = postgres.create_database("same_study")
    _one_ran_and_one_was_refused(tmp_path, "--storage", url)
    status = subprocess.run([sys.executable, "-m", "search.cli", "status", "race", "--storage", url, "--json"],
                            env=env(), capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    (band,) = json.loads(status.stdout)
    assert band["finished"] == band["budget"] == 3 and band["best"] is not None


def test_two_studies_on_one_postgresql_run_side_by_side(tmp_path: Path, postgres) -> None:
    url = postgres.create_database("two_studies")
    commands = [_command(_space(tmp_path, study), tmp_path / study, "--storage", url) for study in ("left", "right")]
    results = _all_at_once(commands, tmp_path)
    assert [code for code, _ in results] == [0, 0], results
    for study in ("left", "right"):
        trials = _trials(url, study)
        assert len(trials) == 3 and all(t.state in FINISHED for t in trials)
    held = {t.user_attrs[LEASE_FOR]: (t.user_attrs[LEASE_SINCE], t.user_attrs[LEASE_SINCE] + t.value)
            for t in _tickets(url)}
    (left_from, left_to), (right_from, right_to) = held["left"], held["right"]
    assert left_from < right_to and right_from < left_to, "the two launches held their leases at the same time"
