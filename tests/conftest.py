"""Shared fixtures: the knowledge files as parsed graphs, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib

from relmark.vocab import CONFIG_FILE, ONTOLOGY_DIR, demo_paths, ontology_paths

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ontology_graph() -> rdflib.Graph:
    """rm.ttl + thirty-r.ttl + rm-it.ttl: the ontology proper."""
    graph = rdflib.Graph()
    for path in ontology_paths():
        graph.parse(path, format="turtle")
    return graph


@pytest.fixture(scope="session")
def config_graph() -> rdflib.Graph:
    return rdflib.Graph().parse(ONTOLOGY_DIR / CONFIG_FILE, format="turtle")


@pytest.fixture(scope="session")
def demo_graph() -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in demo_paths():
        graph.parse(path, format="turtle")
    return graph


# --- the real HTTP server (tests/test_sparql_protocol.py, tests/test_graph_store.py) --------
import contextlib  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import requests  # noqa: E402

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


def _free_port() -> int:
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
    port = _free_port()
    relmark = Path(sys.executable).with_name("relmark")
    command = [str(relmark), "--store", str(home / "store"), "serve"]
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


@pytest.fixture(scope="session", params=SERVER_WORKERS, ids=lambda n: f"workers={n}")
def relmark_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelmarkServer]:
    """A running server with the demo data PUT through /data (once per worker count)."""
    home = tmp_path_factory.mktemp(f"relmark-server-{request.param}")
    with running_relmark(home, workers=request.param) as server:
        put_demo_data(server)
        yield server
