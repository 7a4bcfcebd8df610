"""Shared fixtures: the knowledge files as parsed graphs, the in-process app on the demo data,
and the real server for the end-to-end suites; built once per session.

The layout: ``unit/`` calls functions, ``http/`` drives the app in-process with Flask's test
client, ``e2e/`` starts real processes (servers, workers, back ends, a browser). Helpers the
suites share live in ``support/`` (importable from every folder: ``pythonpath`` in
pyproject.toml).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from support.backends import (
    EMBEDDED_SERVERS,
    Backend,
    oxigraph_server,
    running_relmark_on,
    virtuoso_server,
)
from support.server import (
    SERVER_MAX_BODY,
    SERVER_MAX_ROWS,
    SERVER_QUERY_TIMEOUT,
    SERVER_TOKEN,
    RelmarkServer,
    put_demo_data,
    running_relmark,
)

from relmark.cli import main as relmark_main
from relmark.settings import Settings
from relmark.vocab import CONFIG_FILE, ONTOLOGY_DIR, demo_paths, ontology_paths
from relmark.web import close_app, create_app


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


# --- in-process: the app on the demo data ----------------------------------------------------
@pytest.fixture
def runner() -> CliRunner:
    """Click's runner for ``relmark`` commands in this process (stdout and stderr apart)."""
    return CliRunner()


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the demo data and its inferences, loaded by ``relmark demo`` in-process
    once per session. Suites that only read it share it; a suite that writes makes its own."""
    store = tmp_path_factory.mktemp("demo") / "store"
    result = CliRunner().invoke(relmark_main, ["--store", str(store), "demo"])
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture(scope="session")
def loaded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another store with the demo files (``relmark load``, in-process), for the suites that
    run ``relmark`` commands on it in their own processes: ``demo_store`` is held open by
    ``app``, and an embedded store has one process at a time. Read-only: a test that writes
    loads its own."""
    store = tmp_path_factory.mktemp("loaded") / "store"
    files = [str(path) for path in demo_paths()]
    result = CliRunner().invoke(relmark_main, ["--store", str(store), "load", *files])
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture(scope="session")
def app(demo_store: Path) -> Iterator[Flask]:
    """The app on ``demo_store`` with the end-to-end server's token and small limits, so a
    suite moved between ``http/`` and ``e2e/`` meets the same settings."""
    settings = Settings(
        store=str(demo_store),
        token=SERVER_TOKEN,
        query_timeout=SERVER_QUERY_TIMEOUT,
        max_body_bytes=SERVER_MAX_BODY,
        max_result_rows=SERVER_MAX_ROWS,
    )
    app = create_app(settings)
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- end to end: a real server, on each back end a module asks for -------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "server_backends(*names): the back ends this test's relmark_server runs on "
        "(of ALL_SERVERS in tests/support/backends.py)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs every test that takes ``relmark_server`` once per back end: those a
    ``server_backends`` mark names, else the module's ``SERVER_BACKENDS``, else the embedded
    store alone (one process, two workers). The matrix is pytest's own parametrisation, so
    ``--collect-only`` lists each test on each back end."""
    if "server_backend" not in metafunc.fixturenames:
        return
    mark = metafunc.definition.get_closest_marker("server_backends")
    names = mark.args if mark else getattr(metafunc.module, "SERVER_BACKENDS", EMBEDDED_SERVERS)
    metafunc.parametrize("server_backend", names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """A real ``relmark serve`` with the demo data PUT through /data (graphs
    ``urn:relmark:data:demo-*``), on the back end ``request.param`` names; one per back end
    for the whole session (pytest groups the tests by it)."""
    name = request.param
    home = tmp_path_factory.mktemp(f"relmark-server-{name.replace('=', '-')}")
    if name in EMBEDDED_SERVERS:
        workers = int(name.removeprefix("workers="))
        with running_relmark(home, workers=workers) as server:
            put_demo_data(server)
            yield Backend(name, server, str(server.store), None)
        return
    engine_server = {"oxigraph": oxigraph_server, "virtuoso": virtuoso_server}[name]
    with (
        engine_server(home) as engine,
        running_relmark_on(engine.location, engine, home, workers=2) as server,
    ):
        put_demo_data(server)
        yield Backend(name, server, engine.location, engine)


@pytest.fixture(scope="session")
def relmark_server(server_backend: Backend) -> RelmarkServer:
    """The server of the back end under test."""
    return server_backend.server


# --- the time per test module, printed at the end of the session -------------------------------
_MODULE_SECONDS: defaultdict[str, float] = defaultdict(float)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Adds each test's wall time (set-up, call and tear-down) to its module's total."""
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _MODULE_SECONDS[item.nodeid.split("::", 1)[0]] += time.perf_counter() - start


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The modules by total time, slowest first: where a faster suite has to start."""
    if not _MODULE_SECONDS:
        return
    terminalreporter.section("time per test module")
    for module, seconds in sorted(_MODULE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f}s  {module}")
    terminalreporter.write_line(f"{sum(_MODULE_SECONDS.values()):8.1f}s  in all")
