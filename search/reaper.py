"""A local Ray cluster ends with the driver that started it, even a driver killed with `kill -9`.

Ray stops its own processes on `ray.shutdown()`, but a driver that dies without one leaves the
raylet's agents (dashboard and runtime-env) alive for about a minute. So the driver that starts
a local cluster also starts this small watcher, in a session of its own: it waits for the
driver's process to end, then stops the processes the driver started for Ray, and their
children, by process id (never by name: other Ray clusters on the machine are not ours).

Run as `python -m search.reaper DRIVER_PID PID...`; `watch()` starts it and `stop()` ends it
after a clean shutdown.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

_POLL_SECONDS = 0.5
_GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL


def ray_processes(driver: psutil.Process | None = None) -> list[psutil.Process]:
    """The processes of the local cluster a driver started: all its descendants."""
    return (driver or psutil.Process()).children(recursive=True)


def watch(processes: list[psutil.Process]) -> subprocess.Popen:
    """Start the watcher for this process and `processes` (the local cluster just started)."""
    pids = [str(process.pid) for process in processes]
    return subprocess.Popen([sys.executable, "-m", "search.reaper", str(psutil.Process().pid), *pids],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(watcher: subprocess.Popen) -> None:
    """End the watcher of a cluster that was shut down cleanly."""
    watcher.terminate()
    watcher.wait()


def reap(processes: list[psutil.Process]) -> None:
    """Stop `processes` and everything they started: SIGTERM, then SIGKILL what is left."""
    family: dict[int, psutil.Process] = {}
    for process in processes:
        try:
            family.update({p.pid: p for p in (process, *process.children(recursive=True))})
        except psutil.NoSuchProcess:
            continue
    for process in family.values():
        try:
            process.terminate()  # psutil checks the process is the one seen (pid and start time)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(list(family.values()), timeout=_GRACE_SECONDS)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


def main(argv: list[str]) -> int:
    driver_pid, *pids = (int(arg) for arg in argv)
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))  # bound to this pid's start time: a reused pid is not ours
        except psutil.NoSuchProcess:
            continue
    try:
        driver = psutil.Process(driver_pid)
        while driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE:
            time.sleep(_POLL_SECONDS)
    except psutil.NoSuchProcess:
        pass
    reap(processes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
