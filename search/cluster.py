"""Ray, once joined (search/ray_connection.py): the cluster's nodes, each band's dataset built once,
trials run as tasks, and the driver submitted as a Ray Job."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from search.errors import BandsearchError

if TYPE_CHECKING:  # torch loads in the tasks that train, not with the driver's first import
    from objectives.task.config import Band, TaskConfig
    from objectives.task.dataset import BandDataset
    from search.jobs import TrialJob, TrialOutcome

# How long `submit` retries while a freshly started head's job agent comes up.
_AGENT_WAIT_SECONDS = 60.0


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
