"""`bandsearch submit SPACE.yaml`: run `launch` as a Ray Job, so its driver lives on the cluster.

The study file travels as the job's working directory; the storage and MLflow URLs travel
as environment variables of the job (never on its command line, which the dashboard shows),
and URLs with a password are refused: give those to the cluster from a secret instead.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from search.commands import add_proxy_option, study_name
from search.errors import BandsearchError
from search.uris import mask

# Where the job keeps its run folder when neither --run-dir nor the cluster's environment says.
_CLUSTER_RUN_DIR = '"${BANDSEARCH_RUN_DIR:-$HOME/bandsearch-runs}"'


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("submit", help="run `launch` on the cluster as a Ray Job (driver on the head)")
    parser.add_argument("space", help="study YAML, uploaded with the job")
    parser.add_argument("--address", help="Ray dashboard address, http://HEAD:8265 (default: $RAY_ADDRESS)")
    parser.add_argument("--study", type=study_name,
                        help="study name (default: the YAML file's stem); the same name resumes")
    parser.add_argument("--trials", type=int, help="trials per band")
    parser.add_argument("--workers", type=int, help="trials in flight")
    parser.add_argument("--run-dir", help="run folder on the cluster (default: $BANDSEARCH_RUN_DIR there, "
                        "else ~/bandsearch-runs on the head node)")
    parser.add_argument("--storage", help="Optuna storage URL for the job (default: the cluster's $BANDSEARCH_STORAGE)")
    parser.add_argument("--tracking-uri", help="MLflow URI for the job (default: the cluster's $MLFLOW_TRACKING_URI)")
    add_proxy_option(parser)
    parser.add_argument("--wait", action="store_true", help="wait for the job to end and print its logs")
    parser.set_defaults(run=run)


def entrypoint(args: argparse.Namespace, space_name: str) -> str:
    """The job's command line: `bandsearch launch` with the flags given here."""
    from search.studies import check_study_name  # heavy (Optuna): loaded when the command runs, not for --help

    study = args.study or check_study_name(Path(args.space).stem)
    words = ["bandsearch", "launch", space_name, "--quiet", "--study", study]
    for flag, value in (("--trials", args.trials), ("--workers", args.workers),
                        ("--storage-proxy", args.storage_proxy)):
        if value is not None:
            words += [flag, str(value)]
    run_dir = shlex.quote(args.run_dir) if args.run_dir else _CLUSTER_RUN_DIR
    return " ".join(shlex.quote(word) for word in words) + " --run-dir " + run_dir


def job_env(args: argparse.Namespace) -> dict[str, str]:
    env = {}
    for name, value in (("BANDSEARCH_STORAGE", args.storage), ("MLFLOW_TRACKING_URI", args.tracking_uri)):
        if value is None:
            continue
        if mask(value) != value:
            raise BandsearchError(
                f"{mask(value)}: a URL with a password would be visible in the Ray Job's settings; set {name} "
                "on the cluster from a secret (deploy/README.md) and leave the flag out"
            )
        env[name] = value
    return env


def run(args: argparse.Namespace) -> int:
    from search.config import load_config  # Optuna (~0.5 s): loaded when the command runs, not for --help

    config = load_config(args.space)  # refuse a bad file here, not on the cluster
    from search import cluster  # Ray (~3 s): loaded once the study file is known to be good

    console = Console()
    with tempfile.TemporaryDirectory(prefix="bandsearch-job-") as folder:
        space = Path(folder) / Path(args.space).name
        shutil.copyfile(args.space, space)
        for module in config.user_modules():  # the user's model and objective travel beside the YAML
            (shutil.copytree if Path(module).is_dir() else shutil.copyfile)(module, Path(folder) / Path(module).name)
        job_id, address = cluster.submit_job(args.address, entrypoint(args, space.name), Path(folder), job_env(args))
    console.print(f"submitted Ray Job [bold]{job_id}[/] to {mask(address)}\n"
                  f"  follow: ray job logs --address {mask(address)} -f {job_id}")
    if not args.wait:
        return 0
    status, logs = cluster.wait_job(address, job_id)
    console.print(logs, markup=False, highlight=False)
    console.print(f"Ray Job {job_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1
