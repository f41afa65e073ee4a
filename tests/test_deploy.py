"""deploy/: every file parses, the launcher YAML passes Ray's own validator, and the image,
commands, ports and secrets agree across the Dockerfile, compose, KubeRay manifests, the
cluster launcher and the example env file. (Docker and Kubernetes are not run here.)"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"bandsearch:{VERSION}"
# The ports of the stack, by role.
PORTS = {"gcs": 6379, "client": 10001, "dashboard": 8265, "proxy": 13000, "mlflow": 5000, "postgres": 5432}
YAMLS = sorted(DEPLOY.rglob("*.yaml"))


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _k8s() -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for path in (DEPLOY / "kuberay").glob("*.yaml")
            for doc in _docs(path)}


def _containers(doc: dict) -> list[dict]:
    """Every container of a Deployment, StatefulSet or RayCluster."""
    spec = doc["spec"]
    if doc["kind"] == "RayCluster":
        templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    else:
        templates = [spec["template"]]
    return [c for t in templates for c in t["spec"]["containers"]]


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _launcher() -> dict:
    return yaml.safe_load((DEPLOY / "ray-cluster-aws.yaml").read_text())


def _env_example() -> dict[str, str]:
    lines = (DEPLOY / "bandsearch.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert _docs(path)


def test_the_expected_files_are_there() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    assert {"Dockerfile", "compose.yaml", "ray-cluster-aws.yaml", "bandsearch.env.example", "init-db.sql",
            "README.md", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "kuberay/mlflow.yaml",
            "kuberay/postgres.yaml"} <= names
    kinds = {kind for kind, _ in _k8s()}
    assert {"RayCluster", "RayJob", "Deployment", "StatefulSet", "Service", "PersistentVolumeClaim"} <= kinds


def test_the_launcher_config_passes_rays_own_validator() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _launcher()
    validate_config(prepare_config(copy.deepcopy(config)))
    broken = copy.deepcopy(config)
    broken["available_node_types"]["head"]["nodeconfig"] = broken["available_node_types"]["head"].pop("node_config")
    with pytest.raises(Exception, match="node_config"):
        validate_config(prepare_config(broken))


def test_the_dockerfile_builds_the_one_image_with_the_stack_ports() -> None:
    instructions = _dockerfile()
    assert instructions[0][0] == "FROM" and "python:3.11" in instructions[0][1]
    exposed = {int(p) for op, args in instructions if op == "EXPOSE" for p in args.split()}
    assert exposed == {PORTS[k] for k in ("gcs", "client", "dashboard", "proxy", "mlflow")}
    assert any(op == "RUN" and 'pip install' in args and ".[postgres]" in args for op, args in instructions)
    assert any(op == "USER" and args != "root" for op, args in instructions)
    # SQLAlchemy 2.1 opens a plain postgresql:// URL with psycopg 3, which the extra must install.
    assert 'postgres = ["psycopg[binary]' in (ROOT / "pyproject.toml").read_text()


def test_every_bandsearch_container_uses_the_same_image() -> None:
    compose = _compose()["services"]
    images = {name: service["image"] for name, service in compose.items()}
    images |= {f"k8s {kind}/{name}/{c['name']}": c["image"] for (kind, name), doc in _k8s().items()
               if kind in ("RayCluster", "Deployment", "StatefulSet") for c in _containers(doc)}
    images["launcher"] = _launcher()["docker"]["image"]
    postgres = {name for name, image in images.items() if image.startswith("postgres:")}
    assert postgres == {"postgres", "k8s StatefulSet/postgres/postgres"}
    assert {image for name, image in images.items() if name not in postgres} == {IMAGE}
    assert images["postgres"] == images["k8s StatefulSet/postgres/postgres"]


def test_commands_and_ports_agree_across_files() -> None:
    compose = _compose()["services"]
    head, worker = compose["ray-head"]["command"], compose["ray-worker"]["command"]
    launcher = _launcher()
    launcher_head = " ".join(launcher["head_start_ray_commands"])
    launcher_worker = " ".join(launcher["worker_start_ray_commands"])
    cluster = _k8s()[("RayCluster", "bandsearch")]["spec"]
    params = cluster["headGroupSpec"]["rayStartParams"]
    for text in (head, launcher_head):
        assert "ray start --head" in text
        for flag, role in (("--port", "gcs"), ("--dashboard-port", "dashboard"),
                           ("--ray-client-server-port", "client")):
            assert f"{flag}={PORTS[role]}" in text
        assert "--dashboard-host=0.0.0.0" in text
    assert (int(params["port"]), int(params["dashboard-port"]), int(params["ray-client-server-port"])) == (
        PORTS["gcs"], PORTS["dashboard"], PORTS["client"])
    assert f"--address=ray-head:{PORTS['gcs']}" in worker and f":{PORTS['gcs']}" in launcher_worker
    head_ports = {p["containerPort"] for p in _containers(_k8s()[("RayCluster", "bandsearch")])[0]["ports"]}
    assert head_ports == {PORTS[k] for k in ("gcs", "dashboard", "client", "proxy")}
    # MLflow: the same server command and port everywhere, and every client points at it.
    mlflow_k8s = _containers(_k8s()[("Deployment", "mlflow")])[0]
    assert compose["mlflow"]["command"].startswith(f"mlflow server --host 0.0.0.0 --port {PORTS['mlflow']}")
    assert mlflow_k8s["command"][:6] == ["mlflow", "server", "--host", "0.0.0.0", "--port", str(PORTS["mlflow"])]
    assert _k8s()[("Service", "mlflow")]["spec"]["ports"][0]["port"] == PORTS["mlflow"]
    assert _k8s()[("Service", "postgres")]["spec"]["ports"][0]["port"] == PORTS["postgres"]
    tracking = f"http://mlflow:{PORTS['mlflow']}"
    assert compose["ray-head"]["environment"]["MLFLOW_TRACKING_URI"] == tracking
    assert _env_example()["MLFLOW_TRACKING_URI"] == tracking
    k8s_env = {e["name"]: e for e in _containers(_k8s()[("RayCluster", "bandsearch")])[0]["env"]}
    assert k8s_env["MLFLOW_TRACKING_URI"]["value"] == tracking
    # Storage: PostgreSQL on its port, database `optuna`, in compose and the example env file.
    for url in (compose["ray-head"]["environment"]["BANDSEARCH_STORAGE"], _env_example()["BANDSEARCH_STORAGE"]):
        assert re.fullmatch(rf"postgresql://bandsearch:\$\{{POSTGRES_PASSWORD[^}}]*\}}@postgres:{PORTS['postgres']}/optuna",
                            url), url
    assert _env_example()["RAY_ADDRESS"] == f"ray-head:{PORTS['gcs']}"
    assert _env_example()["RAY_API_SERVER_ADDRESS"] == f"http://ray-head:{PORTS['dashboard']}"
    # The study entrypoint: the same `bandsearch launch` in compose and the RayJob, on a file in the image.
    job = _k8s()[("RayJob", "bandsearch-demo")]["spec"]
    assert job["clusterSelector"]["ray.io/cluster"] == "bandsearch"
    assert job["entrypoint"] == compose["driver"]["command"]
    assert job["entrypoint"].startswith("bandsearch launch /app/spaces/")
    assert (ROOT / job["entrypoint"].split()[2].removeprefix("/app/")).exists()
    sql = (DEPLOY / "init-db.sql").read_text()
    assert "CREATE DATABASE optuna" in sql and "CREATE DATABASE mlflow" in sql


def test_services_are_published_on_localhost_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_no_secret_is_written_inline() -> None:
    texts = {str(p.relative_to(DEPLOY)): p.read_text() for p in DEPLOY.rglob("*") if p.is_file()}
    for name, text in texts.items():
        for user, password in re.findall(r"://([^:/@\s]+):([^@\s]+)@", text):
            assert password.startswith("${"), f"{name}: inline password for {user}"
    assert _env_example()["POSTGRES_PASSWORD"] == "" and _env_example()["RAY_AUTH_TOKEN"] == ""
    compose = _compose()["services"]
    assert compose["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for (kind, name), doc in _k8s().items():
        if kind not in ("RayCluster", "Deployment", "StatefulSet"):
            continue
        for container in _containers(doc):
            for var in container.get("env", []):
                if re.search(r"PASSWORD|STORAGE|BACKEND_STORE_URI|TOKEN", var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{kind}/{name}: {var['name']} inline"
    for name, service in compose.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN", key):
                assert str(value).startswith("${"), f"compose {name}: {key} inline"
