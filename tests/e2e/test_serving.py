"""``relmark serve --workers 2``: real processes on 127.0.0.1, real HTTP.

One supervisor owns the store and applies every write; two worker processes answer HTTP
from snapshots. These tests check what that model promises beyond the protocol suites
(which conftest already runs over two workers): every reader sees a write at once, errors
raised in the supervisor keep their status, and a query that times out takes its worker
process (and so its evaluation) with it while the server keeps answering. In front of a
SPARQL server (an Oxigraph server here; tests/e2e/test_backend_matrix.py runs the protocol
suites over two workers on both engines) the workers read the engine, and a write
through either one is seen by both at once, labels included.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pyoxigraph as ox
import pytest
import requests
from support.backends import (
    Engine,
    oxigraph_engine,  # noqa: F401  (a fixture)
    oxigraph_server,
    running_relmark_on,
)
from support.server import (
    DEMO_GRAPH_PREFIX,
    SERVER_QUERY_TIMEOUT,
    RelmarkServer,
    put_demo_data,
    running_relmark,
)

from relmark.loading import ShapesCheck, ValidationFailed
from relmark.server.supervisor import (
    StoreWriter,
    WriteCounter,
    encode_write,
    reply_value,
)
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import StoreError
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.memory_copy import MemoryCopyCache
from relmark.stores.snapshots import KEEP_SNAPSHOTS, SnapshotPublisher, SnapshotReplica
from relmark.stores.system_graphs import sync_file_graph
from relmark.vocab import DEMO, ONTOLOGY_DIR, ONTOLOGY_GRAPH, RM, demo_paths, ontology_paths

XSD_INTEGER = "http://www.w3.org/2001/XMLSchema#integer"
RDFS_COMMENT = "http://www.w3.org/2000/01/rdf-schema#comment"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SCRATCH_GRAPH = "urn:relmark:data:serving-scratch"
#: A cross product of every triple with itself three times: runs for hours, yields no row.
RUNAWAY_QUERY = """SELECT (COUNT(*) AS ?n) WHERE {
  ?a ?b ?c . ?d ?e ?f . ?g ?h ?i
  FILTER(CONTAINS(CONCAT(STR(?c), STR(?f), STR(?i)), "no such text"))
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    with running_relmark(tmp_path_factory.mktemp("serving"), workers=2) as running:
        put_demo_data(running)
        yield running


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    """Two workers in front of an Oxigraph server of this module's own (the supervisor
    applies the writes to it; the workers read it directly)."""
    home = tmp_path_factory.mktemp("serving-remote")
    with (
        oxigraph_server(home) as engine,
        running_relmark_on(engine.location, engine, home, workers=2) as running,
    ):
        put_demo_data(running)
        yield running


@pytest.fixture(params=["embedded", "oxigraph"])
def any_server(request: pytest.FixtureRequest) -> RelmarkServer:
    return request.getfixturevalue("server" if request.param == "embedded" else "remote_server")


def workers_of(server: RelmarkServer) -> list[psutil.Process]:
    return psutil.Process(server.pid).children()


def select(server: RelmarkServer, query: str) -> list[dict]:
    """A SELECT over a new connection (so any worker may answer)."""
    response = requests.get(
        server.sparql,
        params={"query": query},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]["bindings"]


def ask(server: RelmarkServer, query: str) -> bool:
    response = requests.get(
        server.sparql,
        params={"query": query},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def update(server: RelmarkServer, sparql: str) -> requests.Response:
    return requests.post(
        server.sparql,
        data=sparql.encode(),
        headers={"Content-Type": "application/sparql-update", **server.auth},
        timeout=60,
    )


def put_scratch(server: RelmarkServer, turtle: str) -> None:
    """Replace the scratch graph through the Graph Store protocol."""
    response = requests.put(
        server.data,
        params={"graph": SCRATCH_GRAPH},
        data=turtle.encode(),
        headers={"Content-Type": "text/turtle", **server.auth},
        timeout=30,
    )
    assert response.status_code in (201, 204), response.text


def health(server: RelmarkServer) -> dict:
    response = requests.get(server.url + "/healthz", headers=server.auth, timeout=10)
    assert response.status_code == 200
    return response.json()


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_two_worker_processes_serve_and_healthz_says_so(server: RelmarkServer) -> None:
    assert len(workers_of(server)) == 2
    status = health(server)
    assert status["status"] == "ok"
    assert status["workers"] == 2
    assert status["generation"] >= 1
    assert status["store"] == str(server.store.resolve())
    snapshots = server.store.with_name(server.store.name + ".snapshots")
    assert str(status["generation"]) in {p.name for p in snapshots.iterdir()}


def test_workers_in_front_of_a_sparql_server_read_it_and_healthz_says_so(
    remote_server: RelmarkServer,
) -> None:
    assert len(workers_of(remote_server)) == 2
    status = health(remote_server)
    assert status["status"] == "ok" and status["remote"]["reachable"] is True
    assert status["workers"] == 2 and status["reads"] == "remote"
    assert status["generation"] > 1  # the demo data PUT through the supervisor


def test_concurrent_clients_read_the_demo_data(any_server: RelmarkServer) -> None:
    server = any_server
    expected = {
        DEMO_GRAPH_PREFIX + path.stem: len(list(ox.parse(path=str(path)))) for path in demo_paths()
    }

    def count(graph: str) -> tuple[str, int]:
        rows = select(server, f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        return graph, int(rows[0]["n"]["value"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(count, list(expected) * 8))
    assert len(answers) == 8 * len(expected)
    assert all(n == expected[graph] for graph, n in answers), answers


def test_a_write_is_visible_at_once_to_every_worker(any_server: RelmarkServer) -> None:
    server = any_server
    put_scratch(server, f'<urn:relmark:test:note> <{RDFS_COMMENT}> "put" .')
    for _ in range(6):  # new connections: either worker may answer
        rows = select(server, f"SELECT ?c {{ GRAPH <{SCRATCH_GRAPH}> {{ ?s ?p ?c }} }}")
        assert [r["c"]["value"] for r in rows] == ["put"]
    note = f"<urn:relmark:test:note> <{RDFS_COMMENT}>"
    for n in range(5):
        response = update(
            server,
            f"DELETE WHERE {{ GRAPH <{SCRATCH_GRAPH}> {{ ?s <{RDFS_COMMENT}> ?c }} }} ;\n"
            f'INSERT DATA {{ GRAPH <{SCRATCH_GRAPH}> {{ {note} "v{n}" }} }}',
        )
        assert response.status_code == 204, response.text
        with ThreadPoolExecutor(4) as pool:
            seen = list(
                pool.map(
                    lambda _: select(
                        server, f"SELECT ?c {{ GRAPH <{SCRATCH_GRAPH}> {{ ?s ?p ?c }} }}"
                    ),
                    range(4),
                )
            )
        assert all([r["c"]["value"] for r in rows] == [f"v{n}"] for rows in seen), seen
    response = requests.delete(
        server.data, params={"graph": SCRATCH_GRAPH}, headers=server.auth, timeout=30
    )
    assert response.status_code == 204
    assert not ask(server, f"ASK {{ GRAPH <{SCRATCH_GRAPH}> {{ ?s ?p ?o }} }}")


def test_labels_each_worker_keeps_follow_a_write_through_any_worker(
    remote_server: RelmarkServer,
) -> None:
    """A worker keeps the labels it read from the engine (``relmark.stores.remote.lookup_cache``); a
    write applied by the supervisor makes both read them again."""

    def sellers() -> set[str]:  # new connections: either worker may answer
        found = set()
        for _ in range(8):
            response = requests.get(
                f"{remote_server.url}/api/queries/repeat-share",
                params={"firm": "demo:banca-lariana", "lang": "en"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            found |= {row["seller"]["label"] for row in response.json()["rows"]}
        return found

    assert sellers() == {"Banca Lariana"}  # untagged: the bank has no English label
    label = f'<{DEMO}banca-lariana> <{RDFS_LABEL}> "Lariana Bank"@en'
    added = update(remote_server, f"INSERT DATA {{ GRAPH <{SCRATCH_GRAPH}> {{ {label} }} }}")
    assert added.status_code == 204, added.text
    assert sellers() == {"Lariana Bank"}
    removed = update(remote_server, f"DELETE DATA {{ GRAPH <{SCRATCH_GRAPH}> {{ {label} }} }}")
    assert removed.status_code == 204, removed.text
    assert sellers() == {"Banca Lariana"}


def test_workers_read_from_memory_copies_of_the_newest_snapshot(server: RelmarkServer) -> None:
    def every_worker_reads_memory() -> bool:  # new connections: either worker may answer
        return all(health(server)["reads"] == "memory" for _ in range(8))

    assert wait_for(every_worker_reads_memory, 60)
    before = health(server)["generation"]
    put_scratch(server, f'<urn:relmark:test:copy> <{RDFS_COMMENT}> "fresh" .')
    # the copies hold the old generation now: reads go to the new snapshot at once
    rows = select(server, f"SELECT ?c {{ GRAPH <{SCRATCH_GRAPH}> {{ ?s ?p ?c }} }}")
    assert [r["c"]["value"] for r in rows] == ["fresh"]
    assert wait_for(every_worker_reads_memory, 60)
    assert health(server)["generation"] > before
    rows = select(server, f"SELECT ?c {{ GRAPH <{SCRATCH_GRAPH}> {{ ?s ?p ?c }} }}")
    assert [r["c"]["value"] for r in rows] == ["fresh"]
    requests.delete(server.data, params={"graph": SCRATCH_GRAPH}, headers=server.auth, timeout=30)


def test_a_memory_copy_holds_exactly_its_version_and_respects_the_budget(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    scratch = ox.NamedNode(SCRATCH_GRAPH)
    store.add_quads(
        ox.Quad(t.subject, t.predicate, t.object, scratch)
        for t in ox.parse(path=str(demo_paths()[0]))
    )
    store.backup(tmp_path / "1")
    one = ox.Store.read_only(str(tmp_path / "1"))
    copies = MemoryCopyCache(max_quads=1_000_000)
    copies.want(1, one)
    assert wait_for(lambda: copies.get(1) is not None, 30)
    assert set(copies.get(1).quads_for_pattern(None, None, None, None)) == set(
        one.quads_for_pattern(None, None, None, None)
    )
    assert copies.get(2) is None
    note = ox.Quad(
        ox.NamedNode("urn:relmark:test:copy"),
        ox.NamedNode(RDFS_COMMENT),
        ox.Literal("two"),
        ox.NamedNode(SCRATCH_GRAPH),
    )
    store.add_quads([note])
    store.backup(tmp_path / "2")
    two = ox.Store.read_only(str(tmp_path / "2"))
    copies.want(2, two)
    assert copies.get(1) is None  # dropped at once: never two copies in memory
    assert wait_for(lambda: copies.get(2) is not None, 30)
    assert note in copies.get(2)
    small = MemoryCopyCache(max_quads=10)  # the store is larger: it stays on disk
    small.want(1, one)
    assert wait_for(lambda: not small.building, 30)
    assert small.get(1) is None and small.version is None
    off = MemoryCopyCache(max_quads=0)
    off.want(1, one)
    assert not off.building and off.get(1) is None
    store.close()


def test_supervisor_errors_keep_their_status(server: RelmarkServer) -> None:
    before = health(server)["generation"]
    violating = update(
        server,
        f"INSERT DATA {{ GRAPH <{SCRATCH_GRAPH}> {{ <urn:relmark:test:p1> a <{RM}Purchase> }} }}",
    )
    assert violating.status_code == 422, violating.text
    body = violating.json()
    assert body["report"], body
    assert "buyer" in body["detail"]
    assert not ask(server, "ASK { GRAPH ?g { <urn:relmark:test:p1> ?p ?o } }")

    malformed = update(server, "INSERT DATA { GRAPH <urn:x> { <urn:a> <urn:b> } }")
    assert malformed.status_code == 400, malformed.text
    assert malformed.json()["error"] == "malformed update"
    assert malformed.json()["where"]

    missing = requests.delete(
        server.data, params={"graph": "urn:relmark:data:never-was"}, headers=server.auth
    )
    assert missing.status_code == 404, missing.text
    assert health(server)["generation"] == before  # nothing was written, nothing published


def test_a_timed_out_query_retires_its_worker(server: RelmarkServer) -> None:
    before = {p.pid for p in workers_of(server)}
    assert len(before) == 2
    started = time.monotonic()
    response = requests.get(server.sparql, params={"query": RUNAWAY_QUERY}, timeout=30)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "query timeout"
    assert time.monotonic() - started < SERVER_QUERY_TIMEOUT + 2

    # (a) the server keeps answering fast queries meanwhile
    for _ in range(5):
        started = time.monotonic()
        assert ask(server, f"ASK {{ ?s a <{RM}FocalFirm> }}")
        assert time.monotonic() - started < 1.0

    # (b) the worker that ran the query is gone, and with it the evaluation
    def one_replaced() -> bool:
        now = {p.pid for p in workers_of(server)}
        return len(now) == 2 and len(now & before) == 1

    assert wait_for(one_replaced, 10), [p.pid for p in workers_of(server)]
    gone = (before - {p.pid for p in workers_of(server)}).pop()
    assert not psutil.pid_exists(gone)
    children = workers_of(server)
    for child in children:
        child.cpu_percent(None)
    time.sleep(1.0)
    busy = {child.pid: child.cpu_percent(None) for child in children}
    assert all(percent < 50 for percent in busy.values()), busy

    # (c) two workers again, both answering
    assert len(children) == 2
    assert health(server)["workers"] == 2
    assert ask(server, f"ASK {{ ?s a <{RM}FocalFirm> }}")


def test_a_crashed_worker_is_replaced(server: RelmarkServer) -> None:
    victim = workers_of(server)[0]
    victim.kill()
    victim.wait(5)
    assert wait_for(lambda: len(workers_of(server)) == 2, 10)
    assert victim.pid not in {p.pid for p in workers_of(server)}
    assert ask(server, f"ASK {{ ?s a <{RM}FocalFirm> }}")


def snapshots_of(store: Path) -> Path:
    return store.with_name(store.name + ".snapshots")


def test_stop_removes_workers_and_snapshots_and_start_removes_stale_ones(
    tmp_path: Path,
) -> None:
    stale = snapshots_of(tmp_path / "store") / "999"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("left by a crash")
    with running_relmark(tmp_path, workers=2) as server:
        assert sorted(p.name for p in snapshots_of(server.store).iterdir()) == ["1"]
        supervisor = psutil.Process(server.pid)
        children = supervisor.children()
        assert len(children) == 2
        supervisor.terminate()
        assert supervisor.wait(15) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive
    assert not snapshots_of(tmp_path / "store").exists()
    assert "stopped" in server.log.read_text()


def test_workers_exit_when_the_supervisor_dies(tmp_path: Path) -> None:
    with running_relmark(tmp_path, workers=2) as server:
        supervisor = psutil.Process(server.pid)
        children = supervisor.children()
        supervisor.kill()
        supervisor.wait(5)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive


# --- the write channel in one process: the same values the pipe carries --------------------
class Channel:
    """Replicas whose writes go, pickled both ways as over the pipe, to one StoreWriter."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.snapshots = writer.publisher.directory
        self.replica = self.other_worker()

    def other_worker(self) -> SnapshotReplica:
        publisher = self.writer.publisher
        return SnapshotReplica(
            self.writer.store.path,
            publisher.directory,
            lambda: publisher.generation.value,
            self._forward,
        )

    def _forward(self, method: str, *args: object) -> tuple[object, int]:
        request = pickle.loads(pickle.dumps(encode_write(method, args)))
        return reply_value(pickle.loads(pickle.dumps(self.writer.apply(method, request))))


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Channel]:
    store = EmbeddedStore(tmp_path / "store")
    publisher = SnapshotPublisher(store, multiprocessing.RawValue("q", 0))
    publisher.start()
    made = Channel(StoreWriter(store, publisher))
    yield made
    made.replica.close()
    made.writer.close()
    publisher.remove()


def ex(name: str) -> ox.NamedNode:
    return ox.NamedNode(f"urn:relmark:test:{name}")


def test_writes_reach_the_writer_and_come_back_as_snapshots(channel: Channel) -> None:
    replica, other = channel.replica, channel.other_worker()
    graph = ex("g")
    blank = ox.BlankNode("b1")
    quads = [
        ox.Quad(ex("a"), ex("p"), ox.Literal("ciao", language="it"), graph),
        ox.Quad(ex("a"), ex("q"), blank, graph),
        ox.Quad(blank, ex("p"), ox.Literal("2", datatype=ox.NamedNode(XSD_INTEGER)), graph),
    ]
    start = replica.generation
    replica.add_quads(quads)
    assert replica.generation == start + 1
    assert sorted(map(str, replica.triples(graph.value))) == sorted(map(str, quads))
    assert other.has_graph(graph.value)  # the other worker reads it at once
    assert other.count() == replica.count() == 3

    replica.replace_graph(graph.value, [ox.Triple(ex("x"), ex("p"), ex("y"))])
    assert [q.object for q in other.triples(graph.value)] == [ex("y")]
    assert replica.drop_graph(graph.value) is True
    unchanged = replica.generation
    assert replica.drop_graph(graph.value) is False
    assert replica.generation == unchanged  # nothing written, nothing published
    assert graph.value not in other.graph_names()

    assert sync_file_graph(replica, ONTOLOGY_GRAPH, ontology_paths()) is True
    synced = replica.generation
    assert sync_file_graph(replica, ONTOLOGY_GRAPH, ontology_paths()) is False
    assert replica.generation == synced
    assert other.graph_size(ONTOLOGY_GRAPH) > 100


def test_bulk_writes_and_restore_cross_the_channel(channel: Channel) -> None:
    replica = channel.replica
    one, two = "urn:relmark:data:one", "urn:relmark:data:two"
    replica.bulk_replace_graphs(
        {
            one: [("quads", [ox.Quad(ex("a"), ex("p"), ex("b"), ox.NamedNode(one))], "q")],
            two: [
                (ox.RdfFormat.TURTLE, b"<urn:relmark:test:c> <urn:relmark:test:p> 1 .", "t"),
                (ox.RdfFormat.N_TRIPLES, io.BytesIO(b"<urn:x> <urn:y> <urn:z> .\n"), "n"),
            ],
        }
    )
    assert replica.graph_size(one) == 1 and replica.graph_size(two) == 2
    dump = io.BytesIO()
    replica.dump(dump, ox.RdfFormat.N_QUADS)
    replica.update(f"DROP GRAPH <{one}>")
    assert not replica.has_graph(one)
    replica.restore(io.BytesIO(dump.getvalue()), ox.RdfFormat.N_QUADS)
    assert replica.graph_size(one) == 1 and replica.count() == 3


def test_writer_errors_arrive_as_the_same_exceptions(channel: Channel) -> None:
    replica = channel.replica
    before = replica.generation
    purchase = (
        f"INSERT DATA {{ GRAPH <{SCRATCH_GRAPH}> {{ <urn:relmark:test:p> a <{RM}Purchase> }} }}"
    )
    with pytest.raises(ValidationFailed) as failed:
        replica.update_validated(purchase, ShapesCheck(replica, ONTOLOGY_DIR), [SCRATCH_GRAPH])
    assert not failed.value.report.conforms
    assert any("buyer" in r.message for r in failed.value.report.results)

    with pytest.raises(SyntaxError) as malformed:
        replica.update("INSERT DATA { <urn:a> <urn:b> }")
    assert "1:" in malformed.value.msg

    with pytest.raises(SyntaxError) as unparsable:
        replica.bulk_replace_graphs(
            {SCRATCH_GRAPH: [(ox.RdfFormat.TURTLE, b"<urn:a> <urn:b> .", "body.ttl")]}
        )
    assert unparsable.value.filename == "body.ttl"
    assert unparsable.value.lineno == 1

    with pytest.raises(StoreError, match="ShapesCheck"):
        replica.update_validated(
            "INSERT DATA { <urn:a> <urn:b> <urn:c> }", lambda added, removed: None
        )
    assert replica.generation == before and replica.count() == 0

    channel.writer.close()
    with pytest.raises(StoreError, match="shutting down"):
        replica.update("INSERT DATA { <urn:a> <urn:b> <urn:c> }")


def test_old_snapshots_are_pruned_and_stay_readable_while_open(channel: Channel) -> None:
    replica = channel.replica
    replica.update("INSERT DATA { <urn:a> <urn:b> 0 }")
    stale = channel.other_worker()  # opened on this generation, never moved again below
    old = stale._db
    assert old is not None
    for n in range(1, KEEP_SNAPSHOTS + 3):
        replica.update(
            f"DELETE WHERE {{ <urn:a> <urn:b> ?n }} ; INSERT DATA {{ <urn:a> <urn:b> {n} }}"
        )
    kept = sorted(int(p.name) for p in channel.snapshots.iterdir())
    assert kept == list(range(replica.generation - KEEP_SNAPSHOTS + 1, replica.generation + 1))
    # files of a deleted snapshot stay readable through a store opened on it
    assert [q.object.value for q in old.quads_for_pattern(None, None, None)] == ["0"]
    assert [q.object.value for q in stale.triples(None)] == [str(KEEP_SNAPSHOTS + 2)]


def test_a_failed_write_to_a_remote_store_still_moves_the_write_count(
    oxigraph_engine: Engine,  # noqa: F811
) -> None:
    """An engine may have done part of a write that failed (Virtuoso commits each operation
    of an update on its own), so the workers must drop what they kept then too."""
    generation = multiprocessing.get_context("fork").RawValue("q", 0)
    counter = WriteCounter(generation)
    counter.start()
    store = open_store(oxigraph_engine.location, Settings.from_env(oxigraph_engine.env))
    writer = StoreWriter(store, counter)
    try:
        missing = "DROP GRAPH <urn:relmark:test:never-written>"  # not SILENT: an error
        reply = writer.apply("update", (missing,))
        with pytest.raises(StoreError):
            reply_value(reply)
        assert generation.value == 2
    finally:
        writer.close()
