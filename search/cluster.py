"""Ray: connecting to a cluster, building each band's dataset once, and running trials as tasks."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from search import reaper
from search.errors import BandsearchError
from search.uris import mask

if TYPE_CHECKING:  # torch loads in the tasks that train, not with the driver's first import
    from objectives.task.config import Band, TaskConfig
    from objectives.task.dataset import BandDataset
    from search.jobs import TrialJob, TrialOutcome

log = logging.getLogger(__name__)
# How long `submit` retries while a freshly started head's job agent comes up.
_AGENT_WAIT_SECONDS = 60.0
# How long joining a cluster may take to answer at all before the launch gives up.
JOIN_TIMEOUT_SECONDS = 10.0


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: `address`, else $RAY_ADDRESS; None for a new local cluster."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_address(address: str | None, timeout: float = JOIN_TIMEOUT_SECONDS) -> None:
    """Refuse, within `timeout`, a cluster address nothing answers at (Ray itself would retry for
    minutes); `auto` and a new local cluster pass."""
    address = cluster_address(address)
    if address is None or address in ("auto", "local"):
        return
    host, sep, port = address.split("://")[-1].rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        raise BandsearchError(f"Ray cluster address {mask(address)!r} is not HOST:PORT (e.g. 10.0.0.5:6379, "
                              "the head's GCS port); fix --address / RAY_ADDRESS")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise BandsearchError(
            f"cannot reach the Ray cluster at {mask(address)} ({err.strerror or err}) within {timeout:.0f} s: "
            "check --address / RAY_ADDRESS, that `ray start --head` runs there and that its port is open "
            "from this machine") from None


class _HeldLogs(logging.Filter):
    """Ray's log lines while Ray is joined in the background, held until the caller waits for the
    connection: a launch refused meanwhile shows its one error line, not Ray's start-up."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.handlers = list(logging.getLogger("ray").handlers)  # Ray's own, set up when it is imported
        for handler in self.handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.records or self.records[-1] is not record:  # once, however many handlers
            self.records.append(record)
        return False

    def release(self, show: bool) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        for record in self.records if show else ():
            logging.getLogger(record.name).handle(record)
        self.records = []


class _Joining:
    """`ray.init` in a thread of its own, so the driver prepares its study meanwhile. The thread
    lives as long as the connection: a local cluster's processes end when the thread that
    started them ends (Linux's parent-death signal is per thread)."""

    def __init__(self, address: str | None, num_cpus: int | None, dashboard: bool, py_modules: list[str] | None):
        self.address = address
        self.sigterm = signal.getsignal(signal.SIGTERM)  # ray.init's own handlers may replace it
        self.joined = threading.Event()  # ray.init returned or failed
        self.released = threading.Event()  # disconnected: the thread may end
        self.error: BaseException | None = None
        self.watcher: subprocess.Popen | None = None  # search/reaper.py, for a local cluster started here
        self.logs = _HeldLogs()
        self.thread = threading.Thread(target=self._join, args=(num_cpus, dashboard, py_modules), daemon=True,
                                       name="bandsearch-ray-join")
        self.thread.start()

    def _join(self, num_cpus: int | None, dashboard: bool, py_modules: list[str] | None) -> None:
        before = {process.pid for process in reaper.ray_processes()}
        runtime_env = {"py_modules": py_modules} if py_modules else None
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=True, runtime_env=runtime_env)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=dashboard, log_to_driver=True, runtime_env=runtime_env)
            started = [process for process in reaper.ray_processes() if process.pid not in before]
            if started:
                self.watcher = reaper.watch(started)
        except BaseException as err:  # handed to the thread that waits for the connection
            self.error = err
        self.joined.set()
        if self.error is None:
            self.released.wait()

    def wait(self) -> None:
        self.joined.wait()
        _keep_sigterm(self.sigterm)
        self.logs.release(show=True)
        if isinstance(self.error, (ConnectionError, RuntimeError, ValueError)):
            raise BandsearchError(
                f"cannot connect to the Ray cluster at {self.address or 'a new local cluster'}: {self.error}. "
                "Check --address / RAY_ADDRESS and that `ray start --head` runs there."
            ) from None
        if self.error is not None:
            raise self.error


_joining: _Joining | None = None
# ray.init warns that a thread other than the main one cannot set its SIGTERM handler: bandsearch keeps its own.
logging.getLogger("ray._private.worker").addFilter(lambda record: "SIGTERM handler" not in record.getMessage())


def join(address: str | None, num_cpus: int | None = None, dashboard: bool = False,
         py_modules: list[str] | None = None) -> bool:
    """Start joining the Ray cluster at `address` (or RAY_ADDRESS) in the background, or a new local
    one when neither is set, which ends with this process even if it is killed (search/reaper.py).
    `py_modules` (the user's own modules, objectives/user_code.py) are copied to every node for
    this job's tasks. False when already connected or joining; `connect` waits for it."""
    global _joining
    if _joining is not None and _joining.joined.is_set() and not ray.is_initialized():
        disconnect()  # Ray was shut down without `disconnect` (ray.shutdown): end what is left of that join
    if _joining is not None or ray.is_initialized():
        return False
    address = cluster_address(address)
    check_address(address)
    _joining = _Joining(address, num_cpus, dashboard, py_modules)
    return True


def connect(address: str | None, num_cpus: int | None = None, dashboard: bool = False,
            py_modules: list[str] | None = None) -> None:
    """Join Ray as `join` says and wait until connected."""
    global _joining
    join(address, num_cpus, dashboard, py_modules)
    if _joining is not None:
        try:
            _joining.wait()
        finally:
            if _joining.error is not None:
                _joining = None  # its thread has ended: a later call may try again


def _keep_sigterm(handler: Any) -> None:
    """Put back the process's own SIGTERM handler, which ray.init may replace (Ray's Python one exits
    wherever the driver is, its C++ one dumps a stack and aborts): the CLI ends a SIGTERM like Ctrl-C."""
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def disconnect() -> None:
    """Leave Ray (waiting for a join under way), stopping a local cluster started here."""
    global _joining
    joining, _joining = _joining, None
    if joining is not None:
        joining.joined.wait()
        joining.logs.release(show=False)  # shown already if anyone waited for the connection
    if ray.is_initialized():
        ray.shutdown()
    if joining is not None:
        joining.released.set()
        if joining.watcher is not None:
            reaper.stop(joining.watcher)


def check_fits(cpus: float, gpus: float) -> None:
    """Refuse, before any trial, a trial size that no node of the cluster can ever hold (Ray would
    wait for such a node forever)."""
    nodes = _alive_nodes()
    for key, wanted, resource in (("search.cpus_per_trial", cpus, "CPU"), ("search.gpus_per_trial", gpus, "GPU")):
        largest = max((node["Resources"].get(resource, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            raise BandsearchError(
                f"{key}: a trial asks for {wanted:g} {resource}s, but the largest node of the cluster has "
                f"{largest:g}; lower {key}, or add a node with at least {wanted:g} {resource}s "
                "(--num-cpus for the local cluster)")


def node_ip() -> str:
    """This process's address as the cluster's other nodes see it."""
    return ray.util.get_node_ip_address()


def _alive_nodes() -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node["Alive"]]


def node_count() -> int:
    return len(_alive_nodes())


@ray.remote(num_cpus=0, max_retries=0)
def _node_check(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def on_every_node(fn: Callable[..., Any], *args: Any, timeout: float = 120.0) -> dict[str, Any]:
    """`fn(*args)` run once on each alive node, by node label (`IP node-id-prefix`)."""
    nodes = _alive_nodes()
    refs = [
        _node_check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
        .remote(fn, *args)
        for node in nodes
    ]
    try:
        results = ray.get(refs, timeout=timeout)
    except GetTimeoutError:
        cancel(refs)
        raise BandsearchError(f"the cluster's nodes did not answer a {timeout:.0f} s check; are they all up "
                              "(`ray status`)?") from None
    return {f"{node['NodeManagerAddress']} {node['NodeID'][:8]}": result for node, result in zip(nodes, results)}


def gpus_per_trial(requested: float | None, workers: int) -> float:
    """The GPU share of one trial: as configured, or an equal share when the cluster has GPUs."""
    if requested is not None:
        return requested
    gpus = ray.cluster_resources().get("GPU", 0)
    return min(1.0, gpus / workers) if gpus else 0.0


@ray.remote(max_retries=0)
def _build_dataset(task: TaskConfig, band: Band, cache_dir: str | None, features: str) -> BandDataset:
    from objectives.task.dataset import load_or_generate

    return load_or_generate(task, band, Path(cache_dir) if cache_dir else None, features)


@ray.remote(max_retries=0)
def _trial_task(job: TrialJob, data: BandDataset) -> TrialOutcome:
    from search.worker import run_trial

    return run_trial(job, data, node=ray.get_runtime_context().get_node_id())


@ray.remote(max_retries=1)
def _task(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def map_on_bands(fn: Any, calls: list[tuple[ray.ObjectRef, tuple]], cpus: float = 1.0) -> list[Any]:
    """Run `fn(band_data, *args)` for each (data ref, args) as parallel tasks; results in order."""
    return ray.get([_task.options(num_cpus=cpus).remote(fn, data, *args) for data, args in calls])


def start(fn: Any, *args: Any, cpus: float = 1.0) -> ray.ObjectRef:
    """Run `fn(*args)` as a task without waiting; collect its result with `result`."""
    return _task.options(num_cpus=cpus).remote(fn, *args)


def datasets(task: TaskConfig, bands: list[Band], cache_dir: Path | None,
             features: str = "averaged") -> dict[str, ray.ObjectRef]:
    """Start building each band's dataset of `features` (the model's) once, in parallel; trials
    receive the references."""
    cache = str(cache_dir) if cache_dir else None
    return {band.name: _build_dataset.remote(task, band, cache, features) for band in bands}


def submit(job: TrialJob, data: ray.ObjectRef, cpus: float, gpus: float) -> ray.ObjectRef:
    # SPREAD: trials are CPU-bound and independent; packing them by data locality would leave
    # nodes idle while others queue.
    return _trial_task.options(num_cpus=cpus, num_gpus=gpus, scheduling_strategy="SPREAD").remote(job, data)


def wait_one(pending: list[ray.ObjectRef], timeout: float | None = None) -> ray.ObjectRef | None:
    done, _ = ray.wait(pending, num_returns=1, timeout=timeout)
    return done[0] if done else None


def result(ref: ray.ObjectRef) -> tuple[Any, str | None, bool]:
    """(outcome, error, lost): `lost` means the worker or node died, so a retry makes sense."""
    try:
        return ray.get(ref), None, False
    except RayTaskError as err:  # an exception escaped the trial body: a bug, not a lost worker
        return None, str(err), False
    except RayError as err:  # worker crashed, node died, object lost
        return None, f"{type(err).__name__}: {err}", True


def cancel(refs: list[Any]) -> None:
    for ref in refs:
        ray.cancel(ref, force=True)


def submit_job(address: str | None, entrypoint: str, working_dir: Path, env: dict[str, str]) -> tuple[str, str]:
    """Submit `entrypoint` as a Ray Job (its driver runs on the cluster) with `working_dir`
    uploaded; (the job's id, the dashboard address it went to)."""
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + _AGENT_WAIT_SECONDS
    while True:
        try:
            client = JobSubmissionClient(address)
            job_id = client.submit_job(entrypoint=entrypoint,
                                       runtime_env={"working_dir": str(working_dir), "env_vars": env})
            break
        except RuntimeError as err:  # a head that just started: "No available agent ... try again later"
            if "try again" not in str(err) or time.monotonic() > deadline:
                raise BandsearchError(_job_error(address, err)) from None
            time.sleep(2)
        except (ConnectionError, ValueError) as err:
            raise BandsearchError(_job_error(address, err)) from None
    return job_id, client.get_address()


def _job_error(address: str | None, err: Exception) -> str:
    return (
        f"cannot submit a Ray Job to {address or '$RAY_ADDRESS'}: {err}. Give the dashboard address "
        "(--address http://HEAD:8265) of a cluster started with the dashboard (`ray start --head`)."
    )


def wait_job(address: str, job_id: str, poll: float = 2.0) -> tuple[str, str]:
    """Wait for a Ray Job to end; (its final status, its logs)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    while (status := client.get_job_status(job_id)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                              JobStatus.STOPPED):
        time.sleep(poll)
    return JobStatus(status).value, client.get_job_logs(job_id)
