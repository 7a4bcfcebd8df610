"""A real ``relmark serve`` subprocess on 127.0.0.1: start it, wait for it, load it.

For the end-to-end suites (tests/e2e/), where what is tested needs a real process: real
clients over real HTTP, workers, signals, memory limits.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from relmark.vocab import demo_paths
from support.paths import RELMARK

SERVER_TOKEN = "test-token-0123456789"
#: Small limits so the error paths are quick to reach.
SERVER_QUERY_TIMEOUT = 2.0
SERVER_MAX_BODY = 2_000_000
SERVER_MAX_ROWS = 5_000
DEMO_GRAPH_PREFIX = "urn:relmark:data:demo-"

#: RDF media types and the rdflib parser each one must parse (an oracle independent of ours).
RDF_TYPES = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/n-quads": "nquads",
    "application/trig": "trig",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
}
#: The protocol suites run over one process and over a supervisor with two workers.
SERVER_WORKERS = (1, 2)


@dataclass(frozen=True)
class RelmarkServer:
    """A running ``relmark serve``: where it listens and how to write to it."""

    url: str
    token: str
    store: Path
    log: Path
    pid: int = 0
    workers: int = 1

    @property
    def sparql(self) -> str:
        return self.url + "/sparql"

    @property
    def data(self) -> str:
        return self.url + "/data"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def relmark_process(
    home: Path,
    env: dict[str, str],
    *,
    host: str = "127.0.0.1",
    workers: int = 1,
    threads: int = 8,
    address_space: int | None = None,
) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """``relmark --store HOME/store serve`` with ``env`` over this environment, ready to
    answer: ``(process, base URL, log)``; stopped at the end.

    ``address_space`` caps every process of the server (``RLIMIT_AS``, inherited by its
    workers and helpers), so an attack test can never exhaust the machine.
    """
    port = free_port()
    command = [str(RELMARK), "--store", str(home / "store"), "serve"]
    command += ["--host", host, "--port", str(port), "--threads", str(threads)]
    command += ["--workers", str(workers)]

    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    log = home / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=None if address_space is None else limit_address_space,
        )
    url = f"http://{host}:{port}"
    try:
        wait_until_ready(process, url + "/healthz", log, "relmark serve", 60)
        yield process, url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_relmark(
    home: Path,
    workers: int = 1,
    *,
    threads: int = 8,
    address_space: int | None = None,
    **env: str,
) -> Iterator[RelmarkServer]:
    """A server with this suite's token and small limits, ``RELMARK_*`` overrides in ``env``."""
    settings = {
        "RELMARK_TOKEN": SERVER_TOKEN,
        "RELMARK_QUERY_TIMEOUT": str(SERVER_QUERY_TIMEOUT),
        "RELMARK_MAX_BODY": str(SERVER_MAX_BODY),
        "RELMARK_MAX_ROWS": str(SERVER_MAX_ROWS),
        **env,
    }
    with relmark_process(
        home, settings, workers=workers, threads=threads, address_space=address_space
    ) as (process, url, log):
        yield RelmarkServer(url, SERVER_TOKEN, home / "store", log, process.pid, workers)


def wait_until_ready(
    process: subprocess.Popen,
    url: str,
    log: Path,
    what: str,
    seconds: float,
    params: dict[str, str] | None = None,
) -> None:
    """Poll ``url`` until it answers 2xx; fail with the log's tail if the process dies first."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, params=params, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer at {url}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def put_demo_data(server: RelmarkServer) -> None:
    """The demo files, each PUT through the Graph Store Protocol into its own graph."""
    for path in demo_paths():
        response = requests.put(
            server.data,
            params={"graph": DEMO_GRAPH_PREFIX + path.stem},
            data=path.read_bytes(),
            headers={"Content-Type": "text/turtle", **server.auth},
            timeout=120,
        )
        assert response.status_code in (201, 204), response.text
