"""Real services for the tests: a two-node Ray cluster from `ray start`, an `mlflow server`
and a PostgreSQL server on 127.0.0.1. Each starts in its own process group with a bounded wait and
is stopped through its own handle (never `ray stop`, which ends every Ray of the user)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


_handed_out: set[int] = set()
_RAY_WORKER_PORTS_END = 20000  # Ray's workers take ports 10002-19999 unless told otherwise


def _ephemeral_range() -> tuple[int, int]:
    """The ports the OS hands out for bind(0) and outgoing connections (Linux: 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port free now, never handed out before in this test process, and outside the OS's
    ephemeral range where it can: a server started later (Ray's agents, a worker) binds port 0
    and could otherwise take a port we picked before our own server binds it."""
    low = _ephemeral_range()[0]
    quiet = range(_RAY_WORKER_PORTS_END, low) if low - _RAY_WORKER_PORTS_END >= 1000 else None
    for _ in range(1000):
        port = random.choice(quiet) if quiet else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def env() -> dict[str, str]:
    """This checkout first on the path of every process we start (Ray nodes, jobs, workers).
    The test cluster is this machine's alone: Ray's token authentication is off for it (a
    real cluster keeps it on, see deploy/README.md). Ray's single-machine switch, which an
    in-process `bandsearch` sets for its local cluster (search/cli.py), would stop `ray start`
    from forming the test's multi-node cluster: it is left out."""
    inherited = {key: value for key, value in os.environ.items() if key != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    return {**inherited, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "RAY_AUTH_MODE": "disabled"}


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env(), start_new_session=True)


def _stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group we started, then SIGKILL what is left of it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _wait(ready, what: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def _http_ok(url: str, body: str | None = None) -> bool:
    """The server answers (an HTTP error such as 401 from Ray's token auth counts as up); with
    `body`, only a 200 whose text is `body` counts (the server is the one we started)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and (body is None or response.read().decode().strip() == body)
    except urllib.error.HTTPError:
        return body is None


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a sqlite backend in `folder`; stop() and start() again
    keep the data (same database, same port)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        log = self.folder / "mlflow-server.log"
        self.process = _start([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                               "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                               "--artifacts-destination", str(self.folder / "artifacts"), "--workers", "1"], log)
        _wait(lambda: _http_ok(f"{self.uri}/health", "OK"), "mlflow server", self.process, log, timeout)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


class RayNodes:
    """A head node and one more node from `ray start --block`, one CPU each, on this machine.
    `--block` keeps each `ray start` in the foreground: stopping it stops its node."""

    def __init__(self, folder: Path):
        self.folder = folder
        # Unix socket paths must stay short: a temp dir of our own under /tmp.
        self.temp_dir = tempfile.mkdtemp(prefix="bsray-")
        self.port, self.dashboard_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.processes: list[subprocess.Popen] = []

    def start(self, timeout: float = 120) -> None:
        ray = str(BIN / "ray")
        log = self.folder / "ray-head.log"
        head = _start([ray, "start", "--head", "--port", str(self.port), "--temp-dir", self.temp_dir,
                       "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--ray-client-server-port",
                       str(free_port()), "--dashboard-port", str(self.dashboard_port), *self._node_flags()], log)
        self.processes.append(head)
        _wait(lambda: _http_ok(f"{self.dashboard}/api/version"), "ray head", head, log, timeout)
        log = self.folder / "ray-worker.log"
        worker = _start([ray, "start", "--address", self.address, *self._node_flags()], log)
        self.processes.append(worker)
        _wait(lambda: self.alive_nodes() == 2, "second ray node", worker, log, timeout)

    @staticmethod
    def _node_flags() -> list[str]:
        """One CPU, and free ports for each node's agents: two nodes on one machine (or another
        Ray on it) would otherwise collide on Ray's fixed defaults (52365, ...)."""
        ports = [(flag, str(free_port())) for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                                       "--metrics-export-port", "--runtime-env-agent-port")]
        return ["--num-cpus", "1", "--block", "--disable-usage-stats", *(x for pair in ports for x in pair)]

    def alive_nodes(self) -> int:
        from ray.util.state import list_nodes

        return sum(node.state == "ALIVE" for node in list_nodes(address=self.dashboard, timeout=5))

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)
        self.processes.clear()


def postgres_bindir() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl): `pg_config --bindir`, else the
    newest of Debian's /usr/lib/postgresql/*/bin; None if there is none."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(Path(found.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust authentication, user `bandsearch`), its
    data, log and unix socket in a temp dir of its own; stopped with `pg_ctl stop -m fast`.
    As root it runs as the `postgres` user, which owns the temp dir (postgres refuses root)."""

    user = "bandsearch"

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="bspg-"))  # short: the socket path has a length limit
        self.data, self.log = self.root / "data", self.root / "postgres.log"
        self.port = free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.root, "postgres", "postgres")
        self.started = False

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([*self.as_owner, str(self.bindir / program), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}): {done.stderr}{log}")

    def start(self, timeout: float = 60) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off"
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(int(timeout)))
        self.started = True
        deadline = time.monotonic() + timeout
        ready = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while subprocess.run(ready).returncode:
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres on port {self.port} not ready after {timeout} s:\n{self.log.read_text()}")
            time.sleep(0.2)

    def create_database(self, name: str) -> str:
        """A new database `name`; its URL (the plain `postgresql://` scheme, which needs psycopg 3)."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
