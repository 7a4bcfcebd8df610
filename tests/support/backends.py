"""Real SPARQL engines for the tests: an Oxigraph server and Virtuoso on 127.0.0.1.

Each engine starts once per session in a temporary directory on free ports and is stopped
at the end. ``relmark_on`` then runs a real ``relmark serve --store sparql+http://…`` in
front of one, with the demo data loaded through ``relmark load`` (so the CLI, the remote
load path and the remote rule engine all run before the first request).

Virtuoso comes from Debian's ``virtuoso-opensource`` (``make remote-deps``); the test user
``relmark`` gets SPARQL_UPDATE rights, and Basic-auth twins of ``/sparql-auth`` and
``/sparql-graph-crud-auth`` are defined (Virtuoso's own use Digest; relmark speaks Basic
or Bearer).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from relmark.vocab import demo_paths
from support.paths import VENV_BIN
from support.server import (
    SERVER_MAX_BODY,
    SERVER_MAX_ROWS,
    SERVER_QUERY_TIMEOUT,
    SERVER_TOKEN,
    SERVER_WORKERS,
    RelmarkServer,
    free_port,
    wait_until_ready,
)

XSD_BOOLEAN = "http://www.w3.org/2001/XMLSchema#boolean"
#: Virtuoso's own graphs, which relmark never shows.
HIDDEN_GRAPHS = (
    "http://www.openlinksw.com/",
    "http://www.w3.org/ns/ldp#",
    "http://localuriqaserver/",
)
VIRTUOSO_USER = "relmark"
VIRTUOSO_PASSWORD = "relmark-test-secret"


@dataclass(frozen=True)
class Engine:
    """A running SPARQL engine: how relmark reaches it and how a test reads it directly."""

    name: str
    query_url: str
    env: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    process: subprocess.Popen | None = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> str:
        return "sparql+" + self.query_url

    def select(self, sparql: str) -> list[dict[str, str]]:
        """A SELECT sent straight to the engine (not through relmark): rows of values."""
        response = requests.post(
            self.query_url,
            data={"query": sparql},
            headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        )
        response.raise_for_status()
        return [
            {k: v["value"] for k, v in row.items()}
            for row in response.json()["results"]["bindings"]
        ]

    def graph_triples(self) -> set[tuple[str, str, str, str]]:
        """Every quad in relmark-visible graphs, read straight from the engine (values;
        Virtuoso's 0/1 booleans written false/true, as relmark reads them)."""
        response = requests.post(
            self.query_url,
            data={"query": "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }"},
            headers={"Accept": "application/sparql-results+json"},
            timeout=60,
        )
        response.raise_for_status()
        quads = set()
        for row in response.json()["results"]["bindings"]:
            if row["g"]["value"].startswith(HIDDEN_GRAPHS):
                continue
            obj = row["o"]
            value = obj["value"]
            if obj.get("datatype") == XSD_BOOLEAN and value in ("0", "1"):
                value = "true" if value == "1" else "false"
            quads.add((row["g"]["value"], row["s"]["value"], row["p"]["value"], value))
        return quads


def _wait_for(url: str, process: subprocess.Popen, log: Path, what: str) -> None:
    wait_until_ready(process, url, log, what, 90, params={"query": "ASK {}"})


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def oxigraph_server(home: Path) -> Iterator[Engine]:
    """``oxigraph serve`` (PyPI ``oxigraph``) on a free port, data in ``home``."""
    binary = VENV_BIN / "oxigraph"
    if not binary.exists():
        pytest.fail("the oxigraph server is missing: pip install -e '.[test]'")
    port = free_port()
    log = home / "oxigraph.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), "serve", "--location", str(home / "db"), "--bind", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/query"
    try:
        _wait_for(url, process, log, "oxigraph serve")
        yield Engine("oxigraph", url, process=process)
    finally:
        _stop(process)


VIRTUOSO_INI = """\
[Database]
DatabaseFile = {home}/virtuoso.db
ErrorLogFile = {home}/virtuoso.log
LockFile = {home}/virtuoso.lck
TransactionFile = {home}/virtuoso.trx
xa_persistent_file = {home}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
Striping = 0
TempStorage = TempDatabase
[TempDatabase]
DatabaseFile = {home}/virtuoso-temp.db
TransactionFile = {home}/virtuoso-temp.trx
[Parameters]
ServerPort = {sql_port}
DisableUnixSocket = 1
CheckpointInterval = 60
NumberOfBuffers = 20000
MaxDirtyBuffers = 15000
DirsAllowed = ., {home}
CaseMode = 2
[HTTPServer]
ServerPort = {http_port}
ServerRoot = {home}
ServerThreads = 10
MaxKeepAlives = 10
KeepAliveTimeout = 10
Charset = UTF-8
[SPARQL]
ResultSetMaxRows = {max_rows}
MaxQueryExecutionTime = 300
MaxQueryCostEstimationTime = 0
"""

#: The test user, its rights, and Basic-auth endpoints (Virtuoso's own use Digest).
VIRTUOSO_SETUP = f"""\
DB.DBA.USER_CREATE('{VIRTUOSO_USER}', '{VIRTUOSO_PASSWORD}');
GRANT SPARQL_UPDATE TO "{VIRTUOSO_USER}";
DB.DBA.RDF_DEFAULT_USER_PERMS_SET('nobody', 1);
DB.DBA.RDF_DEFAULT_USER_PERMS_SET('{VIRTUOSO_USER}', 3);
DB.DBA.VHOST_DEFINE(lhost=>'*ini*', vhost=>'*ini*', lpath=>'/sparql-basic', ppath=>'/!sparql/',
  is_dav=>1, vsp_user=>'dba', opts=>vector('noinherit', 1),
  auth_fn=>'DB.DBA.HP_AUTH_SPARQL_USER', realm=>'SPARQL', sec=>'basic');
DB.DBA.VHOST_DEFINE(lhost=>'*ini*', vhost=>'*ini*', lpath=>'/sparql-graph-crud-basic',
  ppath=>'/!sparql-graph-crud/', is_dav=>1, vsp_user=>'dba',
  opts=>vector('noinherit', 1, 'exec_as_get', 1),
  auth_fn=>'DB.DBA.HP_AUTH_SPARQL_USER', realm=>'SPARQL', sec=>'basic');
"""


def virtuoso_binaries() -> tuple[str, str]:
    server, isql = shutil.which("virtuoso-t"), shutil.which("isql-vt") or shutil.which("isql")
    if not server or not isql:
        pytest.fail("Virtuoso is missing: run `make remote-deps` (Debian virtuoso-opensource)")
    return server, isql


#: The query timeout of relmark in front of Virtuoso (see ``virtuoso_server``).
VIRTUOSO_QUERY_TIMEOUT = 6.0


@contextlib.contextmanager
def virtuoso_server(home: Path, max_rows: int = 10_000_000) -> Iterator[Engine]:
    """``virtuoso-t +foreground`` with a minimal ini, a test user and Basic-auth endpoints."""
    server, isql = virtuoso_binaries()
    sql_port, http_port = free_port(), free_port()
    ini = home / "virtuoso.ini"
    ini.write_text(
        VIRTUOSO_INI.format(home=home, sql_port=sql_port, http_port=http_port, max_rows=max_rows)
    )
    log = home / "virtuoso.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [server, "+foreground", "+configfile", str(ini)],
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait_for(base + "/sparql", process, log, "virtuoso-t")
        setup = subprocess.run(
            [isql, str(sql_port), "dba", "dba"],
            input=VIRTUOSO_SETUP,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if setup.returncode != 0 or "Error" in setup.stdout + setup.stderr:
            pytest.fail(f"Virtuoso set-up failed:\n{setup.stdout}\n{setup.stderr}")
        env = {
            "RELMARK_UPDATE_URL": base + "/sparql-basic",
            "RELMARK_GSP_URL": base + "/sparql-graph-crud-basic",
            "RELMARK_REMOTE_USER": VIRTUOSO_USER,
            "RELMARK_REMOTE_PASSWORD": VIRTUOSO_PASSWORD,
            # Virtuoso 7.2 answers ladder-stages in 0.1-2.7 s on the data the matrix has
            # written by then (a fresh-clone run failed it at the 2 s the other back ends
            # are tested with); the slow-query tests still time out, a few seconds later
            "RELMARK_QUERY_TIMEOUT": str(VIRTUOSO_QUERY_TIMEOUT),
        }
        yield Engine(
            "virtuoso",
            base + "/sparql",
            env=env,
            auth=(VIRTUOSO_USER, VIRTUOSO_PASSWORD),
            process=process,
        )
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def oxigraph_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with oxigraph_server(tmp_path_factory.mktemp("oxigraph")) as engine:
        yield engine


@pytest.fixture(scope="session")
def virtuoso_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with virtuoso_server(tmp_path_factory.mktemp("virtuoso")) as engine:
        yield engine


# --- relmark in front of a back end ------------------------------------------------------


def relmark_env(engine: Engine | None) -> dict[str, str]:
    """The environment of a relmark process in front of ``engine`` (None: embedded)."""
    env = {
        **os.environ,
        "RELMARK_TOKEN": SERVER_TOKEN,
        "RELMARK_QUERY_TIMEOUT": str(SERVER_QUERY_TIMEOUT),
        "RELMARK_MAX_BODY": str(SERVER_MAX_BODY),
        "RELMARK_MAX_ROWS": str(SERVER_MAX_ROWS),
    }
    for key in list(env):
        if key.startswith(("RELMARK_UPDATE", "RELMARK_GSP", "RELMARK_REMOTE")):
            del env[key]
    if engine is not None:
        env.update(engine.env)
    return env


def relmark_cli(store: str, engine: Engine | None, *args: str) -> subprocess.CompletedProcess:
    """``relmark --store STORE ARGS…`` in front of ``engine``; output captured."""
    relmark = VENV_BIN / "relmark"
    return subprocess.run(
        [str(relmark), "--store", store, *args],
        env=relmark_env(engine),
        capture_output=True,
        text=True,
        timeout=600,
    )


def load_demo(store: str, engine: Engine | None) -> None:
    """The demo files through ``relmark load`` (one graph each, inferences refreshed)."""
    result = relmark_cli(store, engine, "load", *map(str, demo_paths()))
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def running_relmark_on(
    store: str, engine: Engine | None, home: Path, workers: int = 1
) -> Iterator[RelmarkServer]:
    """``relmark --store STORE serve --workers N`` in front of ``engine``."""
    port = free_port()
    relmark = VENV_BIN / "relmark"
    command = [str(relmark), "--store", store, "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--threads", "8", "--workers", str(workers)]
    log = home / "relmark.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=relmark_env(engine), stdout=out, stderr=subprocess.STDOUT
        )
    server = RelmarkServer(
        f"http://127.0.0.1:{port}", SERVER_TOKEN, home, log, process.pid, workers
    )
    try:
        wait_until_ready(process, server.url + "/healthz", log, "relmark serve", 120)
        yield server
    finally:
        _stop(process)


@dataclass(frozen=True)
class Backend:
    """relmark serving the demo data from one back end."""

    name: str
    server: RelmarkServer
    store: str
    engine: Engine | None


#: The embedded store served by one process and by a supervisor with two workers.
EMBEDDED_SERVERS = tuple(f"workers={n}" for n in SERVER_WORKERS)
#: The remote engines, each behind ``relmark serve --workers 2``.
REMOTE_SERVERS = ("oxigraph", "virtuoso")


#: Every back end the protocol suites run on (``SERVER_BACKENDS`` in a test module).
ALL_SERVERS = EMBEDDED_SERVERS + REMOTE_SERVERS

BACKENDS = ("embedded", "oxigraph", "virtuoso")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """``relmark serve`` with the demo data, on each back end in turn."""
    home = tmp_path_factory.mktemp(f"relmark-{request.param}")
    engine: Engine | None = None
    if request.param == "embedded":
        store = str(home / "store")
    else:
        engine = request.getfixturevalue(f"{request.param}_engine")
        store = engine.location
    load_demo(store, engine)
    with running_relmark_on(store, engine, home) as server:
        yield Backend(request.param, server, store, engine)
