"""Optuna's gRPC storage proxy, served by the driver so that workers on every node reach the study.

The proxy fronts an RDB storage: SQLite in the run folder by default (the proxy is then its
one writer process) or PostgreSQL. Optuna's journal storage is not supported behind the proxy
(optuna#6084: enqueued trials break when sampling and evaluation run in different processes),
so a journal URL is refused. The driver uses the backend directly; only workers go through gRPC.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from optuna.storages import BaseStorage
from optuna.storages._grpc.server import make_server  # the public runner blocks and returns no handle

from search.errors import BandsearchError

log = logging.getLogger(__name__)

DEFAULT_PORT = 13000  # Optuna's own default for the proxy
# Addresses that listen on every interface; workers must be told a routable one instead.
WILDCARDS = ("0.0.0.0", "::", "[::]")


def parse_bind(bind: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `HOST:` -> (host, port); the host defaults to 127.0.0.1."""
    host, sep, port = bind.rpartition(":")
    if not sep:
        host, port = "", bind
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise BandsearchError(f"--storage-proxy {bind!r}: expected PORT or HOST:PORT with a port in 1..65535")
    return host or "127.0.0.1", number


class StorageProxy:
    """A gRPC server in this process answering Optuna storage calls against `backend`."""

    def __init__(self, backend: BaseStorage, bind: str, threads: int = 16):
        self.host, self.port = parse_bind(bind)
        try:
            self._server = make_server(backend, self.host, self.port, ThreadPoolExecutor(max_workers=threads))
        except RuntimeError as err:  # grpc: "Failed to bind to address ..."
            raise BandsearchError(
                f"cannot serve the storage proxy on {self.host}:{self.port}: {str(err).split(';')[0]}. "
                "Choose a free port with --storage-proxy HOST:PORT."
            ) from None

    def start(self) -> None:
        self._server.start()
        log.info("Optuna storage proxy listening on %s:%d", self.host, self.port)

    def url(self, node_ip: str) -> str:
        """The URL workers use: the bound host, or this node's address when bound to all interfaces."""
        host = node_ip if self.host in WILDCARDS else self.host
        return f"grpc://{host}:{self.port}"

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace).wait(grace + 1)
