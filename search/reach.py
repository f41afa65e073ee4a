"""Does every node of the cluster reach the study storage and MLflow? Checked before any trial.

A local path (a journal file, `sqlite:///...`) is shared only if every node mounts the same
folder: the driver writes a marker file next to it and each node must read it back. A
network URL (`grpc://`, `postgresql://`, `http://`) must accept a TCP connection from every
node; a loopback host (127.0.0.1, localhost) names a different machine on each host.
The checks run on the nodes through `cluster.on_every_node`.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from search.errors import BandsearchError
from search.uris import journal_path, mask, scheme

_PORTS = {"postgresql": 5432, "mysql": 3306, "http": 80, "https": 443}
_MARKER = ".bandsearch-reach"


def local_path(url: str) -> Path | None:
    """The file behind a journal path or `sqlite:///` / `file:` URI; None for a network URL."""
    name = scheme(url)
    if name == "sqlite":
        return Path(url.partition(":///")[2])  # sqlite:////abs/path keeps its leading /
    if name == "file":
        return Path(urlsplit(url).path)
    if name in ("", "journal"):
        return journal_path(url)
    return None


def endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) of a network URL, with the scheme's default port."""
    parts, name = urlsplit(url), scheme(url)
    if not parts.hostname or name in ("sqlite", "file"):
        return None
    return parts.hostname, parts.port or _PORTS.get(name, 0)


def probe(targets: Mapping[str, str], tokens: Mapping[str, str]) -> list[str]:
    """Run on one node: the targets (by label) this node cannot reach, with the reason."""
    problems = []
    for label, url in targets.items():
        path = local_path(url)
        if path is not None:
            marker = path.resolve().parent / _MARKER
            try:
                seen = marker.read_text()
            except OSError:
                seen = ""
            if seen != tokens[label]:
                problems.append(f"{label} {mask(url)} is a file on the driver's machine that this node does not see")
            continue
        host, port = endpoint(url) or ("", 0)
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as err:
            problems.append(f"{label} {mask(url)} refuses or drops connections from this node ({err})")
    return problems


@contextmanager
def markers(targets: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Marker files (random tokens) next to each local target, removed afterwards."""
    tokens: dict[str, str] = {}
    written: list[Path] = []
    try:
        for label, url in targets.items():
            path = local_path(url)
            if path is None:
                continue
            marker = path.resolve().parent / _MARKER
            marker.parent.mkdir(parents=True, exist_ok=True)
            tokens[label] = secrets.token_hex(8)
            marker.write_text(tokens[label])
            written.append(marker)
        yield tokens
    finally:
        for marker in written:
            marker.unlink(missing_ok=True)


def verdict(results: Mapping[str, list[str]]) -> None:
    """Raise one BandsearchError listing every node that misses a target, and what to do."""
    lines = [f"  node {node}: {problem}" for node, problems in results.items() for problem in problems]
    if lines:
        raise BandsearchError(
            "not every node of the Ray cluster reaches the study's services:\n" + "\n".join(lines) +
            "\nServe the storage from the driver with --storage-proxy HOST:PORT (an address the nodes reach) "
            "or use --storage postgresql://..., and run an MLflow server (--tracking-uri http://HOST:5000); "
            "see deploy/README.md."
        )


def require(run_everywhere: Callable[..., Mapping[str, list[str]]], targets: Mapping[str, str]) -> None:
    """Check `targets` (label -> URL) from every node before any trial."""
    with markers(targets) as tokens:
        verdict(run_everywhere(probe, dict(targets), tokens))
