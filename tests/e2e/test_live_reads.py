"""Reads and backups from the command line while ``relmark serve`` holds the store.

``relmark query | classify | explain | dump`` read the newest snapshot the server
published (``relmark.stores.read_view``) and say so on stderr; a dump taken while writes arrive
is the store at one instant, and restoring it gives that store back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
import rdflib.compare
import requests
from support.paths import RELMARK
from support.server import SERVER_TOKEN, RelmarkServer, put_demo_data, running_relmark

from relmark.stores.base import StoreLocked
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.read_view import open_for_reading
from relmark.stores.snapshots import KEEP_SNAPSHOTS, SnapshotPublisher, snapshots_of
from relmark.vocab import META_GRAPH

DEMO = "https://w3id.org/relmark/demo/"
ELISA = DEMO + "cr-elisa-mariani"
RM = "https://w3id.org/relmark/ontology#"
#: The graph the consistency test writes: write k sets the counter to k and adds item k.
SEQ_GRAPH = "urn:relmark:data:live-reads"
COUNTER = ox.NamedNode("urn:relmark-test:counter")
VALUE = ox.NamedNode("urn:relmark-test:value")
NUMBER = ox.NamedNode("urn:relmark-test:number")
SNAPSHOT_NOTE = "is served by another process: read its snapshot"


def numbered_write(k: int) -> str:
    """One write: the counter moves to k and item k appears, together or not at all."""
    return (
        f"DELETE {{ GRAPH <{SEQ_GRAPH}> {{ <{COUNTER.value}> <{VALUE.value}> ?v }} }} "
        f"INSERT {{ GRAPH <{SEQ_GRAPH}> {{ <{COUNTER.value}> <{VALUE.value}> {k} . "
        f"<urn:relmark-test:item-{k}> <{NUMBER.value}> {k} }} }} "
        f"WHERE {{ OPTIONAL {{ GRAPH <{SEQ_GRAPH}> {{ <{COUNTER.value}> <{VALUE.value}> ?v }} }} }}"
    )


def state_of(quads: list[ox.Quad]) -> tuple[set[int], set[int]]:
    """(numbers of the items, values of the counter) in a dump."""
    items = {int(q.object.value) for q in quads if q.predicate == NUMBER}
    counter = {int(q.object.value) for q in quads if q.predicate == VALUE}
    return items, counter


def assert_one_state(quads: list[ox.Quad]) -> int:
    """The dump holds the state after some write k (items 1..k, counter k); returns k."""
    items, counter = state_of(quads)
    k = max(items, default=0)
    assert items == set(range(1, k + 1)), f"items with gaps: {sorted(items)[:20]}…"
    assert counter == ({k} if k else set()), f"counter {counter} with items up to {k}"
    return k


#: rdflib's own N-Quads parser uses its deprecated ``Dataset.default_context``.
rdflib_internal_deprecation = pytest.mark.filterwarnings(
    "ignore:Dataset.default_context is deprecated:DeprecationWarning"
)


def isomorphic(left: bytes, right: bytes) -> bool:
    """Equal N-Quads datasets up to blank node names (a restore names them anew), by rdflib.

    Each quad becomes a triple whose predicate also names the graph, so a blank node
    shared by two graphs stays one node.
    """

    def graph(data: bytes) -> rdflib.Graph:
        dataset = rdflib.Dataset()
        dataset.parse(data=data, format="nquads")
        merged = rdflib.Graph()
        for s, p, o, g in dataset.quads():
            merged.add((s, rdflib.URIRef(f"{p}#graph={g}"), o))
        return merged

    left_graph, right_graph = graph(left), graph(right)
    return len(left_graph) == len(right_graph) and rdflib.compare.isomorphic(
        left_graph, right_graph
    )


def relmark(store: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(RELMARK), "--store", str(store), *args],
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "RELMARK_TOKEN": SERVER_TOKEN},  # for --server
    )


@pytest.fixture(scope="module", params=(1, 2), ids=lambda n: f"workers={n}")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelmarkServer]:
    home = tmp_path_factory.mktemp(f"live-reads-{request.param}")
    with running_relmark(home, workers=request.param) as running:
        put_demo_data(running)
        yield running


def update(server: RelmarkServer, sparql: str) -> None:
    response = requests.post(
        server.sparql, data={"update": sparql}, headers=server.auth, timeout=60
    )
    assert response.status_code == 204, response.text


def http_count(server: RelmarkServer, query: str) -> int:
    response = requests.get(
        server.sparql,
        params={"query": query},
        headers={"Accept": "application/sparql-results+json", **server.auth},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


COUNT = "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }"


def cli_count(store: Path, query: str) -> tuple[int, str]:
    result = relmark(store, "query", query, "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    answer = json.loads(result.stdout)
    return int(answer["results"]["bindings"][0]["n"]["value"]), result.stderr.decode()


def test_query_classify_explain_dump_work_while_served(server: RelmarkServer) -> None:
    """Each command answers from the snapshot, says so, and agrees with the server."""
    served = http_count(server, COUNT)
    count, note = cli_count(server.store, COUNT)
    assert SNAPSHOT_NOTE in note, note
    assert count == served

    classify = relmark(server.store, "classify", ELISA)
    assert classify.returncode == 0, classify.stderr.decode()
    assert b"rm:CustomerRelationship" in classify.stdout
    assert SNAPSHOT_NOTE in classify.stderr.decode()

    explain = relmark(server.store, "explain", ELISA, "rm:CustomerRelationship")
    assert explain.returncode == 0, explain.stderr.decode()
    assert b"asserted" in explain.stdout
    assert SNAPSHOT_NOTE in explain.stderr.decode()

    dump = relmark(server.store, "dump")
    assert dump.returncode == 0, dump.stderr.decode()
    assert SNAPSHOT_NOTE in dump.stderr.decode()
    assert len(list(ox.parse(dump.stdout, format=ox.RdfFormat.N_QUADS))) >= served


def test_a_read_sees_an_acknowledged_write(server: RelmarkServer) -> None:
    """With workers, a snapshot is published before the write is answered; in one process,
    when the command asks for one: either way the command sees the write at once."""
    marker = "urn:relmark-test:seen-by-the-cli"
    ask = f"SELECT (COUNT(*) AS ?n) {{ GRAPH ?g {{ <{marker}> ?p ?o }} }}"
    graph = "urn:relmark:data:marker"
    update(server, f"INSERT DATA {{ GRAPH <{graph}> {{ <{marker}> <{marker}> 1 }} }}")
    count, note = cli_count(server.store, ask)
    assert count == 1, note


@rdflib_internal_deprecation
def test_dump_during_writes_is_one_state_and_restores_to_it(
    server: RelmarkServer, tmp_path: Path
) -> None:
    """A thread writes numbered updates through HTTP while ``relmark dump`` runs: each dump
    holds the store after one write k (items 1..k, counter k: no gap, no torn write); the
    dump restored into a new store and dumped again is the same dataset."""
    done = 0
    stop = threading.Event()
    failures: list[str] = []

    def writer() -> None:
        nonlocal done
        k = 0
        while not stop.is_set():
            k += 1
            response = requests.post(
                server.sparql, data={"update": numbered_write(k)}, headers=server.auth, timeout=60
            )
            if response.status_code != 204:
                failures.append(response.text)
                return
            done = k

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        while done < 3 and thread.is_alive():
            time.sleep(0.05)
        dumps = []
        for attempt in range(4):  # from the snapshot, then through the server (GET /data)
            before = done
            via = ("--server", server.url) if attempt % 2 else ()
            result = relmark(server.store, "dump", *via)
            after = done
            assert result.returncode == 0, result.stderr.decode()
            quads = list(ox.parse(result.stdout, format=ox.RdfFormat.N_QUADS))
            k = assert_one_state(quads)
            assert before <= k, (before, k)  # every answered write is in
            assert k <= after + 1, (k, after)  # (+1: a write done but not yet answered)
            dumps.append((k, before, after, result.stdout, attempt))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, failures
    assert any(after > before for _, before, after, _, _ in dumps), "no write ran during a dump"

    k, _, _, data, _ = dumps[-2]  # (a snapshot's)
    backup = tmp_path / "backup.nq"
    backup.write_bytes(data)
    restored = tmp_path / "restored"
    result = relmark(restored, "restore", str(backup))
    assert result.returncode == 0, result.stderr.decode()
    again = relmark(restored, "dump")
    assert again.returncode == 0 and SNAPSHOT_NOTE not in again.stderr.decode()
    dumped = set(ox.parse(data, format=ox.RdfFormat.N_QUADS))
    assert isomorphic(again.stdout, data)

    # and it is the served store as it was after write k: today's store, less later writes
    final = relmark(server.store, "dump")
    assert final.returncode == 0
    now = set(ox.parse(final.stdout, format=ox.RdfFormat.N_QUADS))
    last = assert_one_state(list(now))
    assert last >= k
    seq = ox.NamedNode(SEQ_GRAPH)
    then = {q for q in now if q.graph_name != seq or q.predicate not in (VALUE, NUMBER)}
    then |= {q for q in dumped if q.graph_name == seq}
    meta = ox.NamedNode(META_GRAPH)  # relmark's bookkeeping (fingerprints of the data)
    assert {q for q in then if q.graph_name != meta} == {q for q in dumped if q.graph_name != meta}


def test_snapshots_pruned_while_read_never_give_a_partial_view(tmp_path: Path) -> None:
    """The serving code publishes and prunes snapshots as fast as it can while another
    thread opens read views over and over: every view opens, and each is one state."""
    path = tmp_path / "store"
    store = EmbeddedStore(path)  # held open: the views below must use the snapshots
    publisher = SnapshotPublisher(store, _Generation())
    publisher.start()
    stop = threading.Event()
    written = 0

    def write_and_publish() -> None:
        nonlocal written
        k = 0
        while not stop.is_set():
            k += 1
            store.update(numbered_write(k))
            publisher.publish()
            written = k

    thread = threading.Thread(target=write_and_publish, daemon=True)
    thread.start()
    seen = []
    try:
        for _ in range(30):
            with open_for_reading(path) as view:
                assert view.note is not None and SNAPSHOT_NOTE in view.note
                quads = list(view.store.triples(SEQ_GRAPH))
                seen.append(assert_one_state(quads))
    finally:
        stop.set()
        thread.join(timeout=30)
        publisher.remove()
        store.close()
    assert written > KEEP_SNAPSHOTS * 3, written  # pruning really went on meanwhile
    assert seen == sorted(seen) and seen[-1] > 0, seen
    assert not list(tmp_path.glob(".relmark-read-*")), "a read view's copy was left behind"


def test_a_killed_commands_copy_is_removed_by_the_next_one(server: RelmarkServer) -> None:
    """A command killed mid-read leaves its hard-linked copy; the next command removes it
    (it would keep pruned snapshots on disk), and leaves a live process's copy alone."""
    parent = server.store.parent
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        orphan = parent / f".relmark-read-{dead.stdout.strip()}-x"
        alive = parent / f".relmark-read-{sleeper.pid}-x"
        for copy in (orphan, alive):
            (copy / "0").mkdir(parents=True)
        _, note = cli_count(server.store, COUNT)
        assert SNAPSHOT_NOTE in note
        assert not orphan.exists() and alive.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    shutil.rmtree(alive)
    assert not list(parent.glob(".relmark-read-*"))


class _Generation:
    """The shared generation number, as a one-process server keeps it."""

    value = 0


def test_opening_a_served_store_never_recovers_its_write_in_progress(tmp_path: Path) -> None:
    """While the server does a journaled write, its journal looks like a crashed one; a
    second open must not put the backup over the live store (it did before reads could go
    to snapshots)."""
    path = tmp_path / "store"
    store = EmbeddedStore(path)
    try:
        store.update(numbered_write(1))
        with store._journaled():  # the server, in the middle of a bulk load
            with pytest.raises(StoreLocked):
                EmbeddedStore(path)
            result = relmark(path, "query", "SELECT * { ?s ?p ?o }")
            assert result.returncode == 1
            assert b"published no snapshot" in result.stderr, result.stderr
            assert store._journal.exists() and store._backup_dir.exists()
        assert assert_one_state(list(store.triples(SEQ_GRAPH))) == 1
    finally:
        store.close()
    assert not snapshots_of(path).exists()


@rdflib_internal_deprecation
def test_query_and_dump_through_the_server(server: RelmarkServer, tmp_path: Path) -> None:
    """``--server URL``: the SPARQL endpoint and the Graph Store answer; no store is opened."""
    unused = tmp_path / "no-store-here"
    result = relmark(unused, "query", "--server", server.url, COUNT, "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert f"read through the server at {server.url}" in result.stderr.decode()
    answer = json.loads(result.stdout)
    assert int(answer["results"]["bindings"][0]["n"]["value"]) == http_count(server, COUNT)

    construct = f"CONSTRUCT {{ <{ELISA}> ?p ?o }} WHERE {{ <{ELISA}> ?p ?o }}"
    result = relmark(unused, "query", "--server", server.url + "/sparql", construct)
    assert result.returncode == 0, result.stderr.decode()
    assert f"{RM}commitmentLevel".encode() in result.stdout

    result = relmark(unused, "query", "--server", server.url, "SELECT ?x WHERE {")
    assert result.returncode == 2 and b"the server answered 400" in result.stderr

    through = relmark(unused, "dump", "--server", server.url)
    direct = relmark(server.store, "dump")
    assert through.returncode == 0 and direct.returncode == 0, through.stderr.decode()
    assert isomorphic(through.stdout, direct.stdout)
    assert not unused.exists()

    nobody = relmark(unused, "dump", "--server", "http://127.0.0.1:9")
    assert nobody.returncode == 1 and b"cannot reach the server" in nobody.stderr
