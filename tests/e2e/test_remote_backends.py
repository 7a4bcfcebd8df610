"""The same service on three back ends: embedded, an Oxigraph server, Virtuoso.

Each check runs against a real ``relmark serve`` in front of each back end (``backend``
fixture, tests/support/backends.py), with the demo data loaded by ``relmark load``. Answers are
compared with the demo files read by rdflib (an oracle independent of relmark) or, for
classification and explanation, with the embedded back end's answers.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
import requests
from support.backends import (
    BACKENDS,
    VENV_BIN,
    Backend,
    Engine,
    load_demo,
    oxigraph_engine,  # noqa: F401  (a fixture)
    oxigraph_server,
    relmark_cli,
    relmark_env,
    running_relmark_on,
    virtuoso_engine,  # noqa: F401  (a fixture)
    virtuoso_server,
)

from relmark.queries import find_query, load_catalogue, run_named
from relmark.reasoning import explain, remote_rules, rules
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import RemoteError, RemoteTimeout, RemoteUnavailable
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.remote.store import RemoteStore
from relmark.stores.remote.transport import RemoteConfig
from relmark.vocab import INFERRED_GRAPH, RM, demo_paths
from relmark.web.errors import remote_failed

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
PREFIXES = f"PREFIX rm: <{RM}>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
DEMO = "https://w3id.org/relmark/demo/"
DATA = "urn:relmark:data:"
RELATIONSHIPS = (
    PREFIXES + "SELECT ?r ?g WHERE { GRAPH ?g { ?r a rm:CustomerRelationship } "
    f'FILTER (STRSTARTS(STR(?g), "{DATA}")) }} ORDER BY ?r'
)
FOCAL_PARTIES = (
    PREFIXES + "CONSTRUCT { ?r rm:focalParty ?f } WHERE { GRAPH ?g { "
    f'?r a rm:CustomerRelationship ; rm:focalParty ?f }} FILTER (STRSTARTS(STR(?g), "{DATA}")) }}'
)


# --- the back ends, started once each ----------------------------------------------------


class BackendPool:
    """relmark in front of each back end, started on first use and stopped at the end."""

    def __init__(self, request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._factory = factory
        self._running: dict[str, tuple[Backend, object]] = {}

    def get(self, name: str) -> Backend:
        if name not in self._running:
            home = self._factory.mktemp(f"relmark-{name}")
            engine: Engine | None = None
            if name == "embedded":
                store = str(home / "store")
            else:
                engine = self._request.getfixturevalue(f"{name}_engine")
                store = engine.location
            load_demo(store, engine)
            context = running_relmark_on(store, engine, home)
            server = context.__enter__()
            self._running[name] = (Backend(name, server, store, engine), context)
        return self._running[name][0]

    def close(self) -> None:
        for _, context in self._running.values():
            context.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendPool]:
    backends = BackendPool(request, tmp_path_factory)
    try:
        yield backends
    finally:
        backends.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, pool: BackendPool) -> Backend:
    return pool.get(request.param)


@pytest.fixture(params=[b for b in BACKENDS if b != "embedded"])
def remote(request: pytest.FixtureRequest, pool: BackendPool) -> Backend:
    return pool.get(request.param)


@pytest.fixture
def reference(pool: BackendPool) -> Backend:
    return pool.get("embedded")


# --- helpers -------------------------------------------------------------------------------


def put_turtle(backend: Backend, graph: str, turtle: str) -> requests.Response:
    """A Graph Store PUT of Turtle into ``graph``, with the write token."""
    return requests.put(
        backend.server.data,
        params={"graph": graph},
        data=turtle.encode(),
        headers={"Content-Type": "text/turtle", **backend.server.auth},
        timeout=60,
    )


def sparql(backend: Backend, query: str, accept: str, **params: str) -> requests.Response:
    response = requests.post(
        backend.server.sparql,
        data={"query": query, **params},
        headers={"Accept": accept},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response


def expected_relationships(demo_graph: rdflib.Graph) -> list[str]:
    cls = rdflib.URIRef(RM + "CustomerRelationship")
    return sorted(str(s) for s in demo_graph.subjects(rdflib.RDF.type, cls))


def everything(backend: Backend) -> set[tuple[str, ...]]:
    """Every quad of every named graph: straight from the engine when there is one, else
    relmark's whole-dataset Graph Store read (N-Quads)."""
    if backend.engine is not None:
        return backend.engine.graph_triples()
    response = requests.get(
        backend.server.data, headers={"Accept": "application/n-quads"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return {
        (q.graph_name.value, str(q.subject), str(q.predicate), str(q.object))
        for q in ox.parse(response.content, format=ox.RdfFormat.N_QUADS)
        if isinstance(q.graph_name, ox.NamedNode)
    }


def data_quads(backend: Backend) -> set[tuple[str, ...]]:
    """The quads outside relmark's own graphs."""
    return {q for q in everything(backend) if not q[0].startswith("urn:relmark:")}


# --- the SPARQL protocol -------------------------------------------------------------------


def test_select_json(backend: Backend, demo_graph: rdflib.Graph) -> None:
    rows = sparql(backend, RELATIONSHIPS, "application/sparql-results+json").json()
    found = [b["r"]["value"] for b in rows["results"]["bindings"]]
    assert found == expected_relationships(demo_graph)
    graphs = {b["g"]["value"] for b in rows["results"]["bindings"]}
    assert graphs == {DATA + "bank", DATA + "b2b", DATA + "brand"} & graphs
    assert graphs


def test_select_xml(backend: Backend, demo_graph: rdflib.Graph) -> None:
    body = sparql(backend, RELATIONSHIPS, "application/sparql-results+xml").content
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    found = [uri.text for uri in ET.fromstring(body).findall(".//r:binding[@name='r']/r:uri", ns)]
    assert found == expected_relationships(demo_graph)


def test_select_csv(backend: Backend, demo_graph: rdflib.Graph) -> None:
    text = sparql(backend, RELATIONSHIPS, "text/csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["r"] for row in rows] == expected_relationships(demo_graph)


def test_ask(backend: Backend) -> None:
    yes = PREFIXES + f"ASK {{ <{DEMO}banca-lariana> ?p ?o }}"
    no = PREFIXES + f"ASK {{ <{DEMO}no-such-thing> ?p ?o }}"
    assert sparql(backend, yes, "application/sparql-results+json").json()["boolean"] is True
    assert sparql(backend, no, "application/sparql-results+json").json()["boolean"] is False


@pytest.mark.parametrize(
    "media_type,parser",
    [
        ("text/turtle", "turtle"),
        ("application/n-triples", "nt"),
        ("application/ld+json", "json-ld"),
    ],
)
def test_construct(
    backend: Backend, demo_graph: rdflib.Graph, media_type: str, parser: str
) -> None:
    body = sparql(backend, FOCAL_PARTIES, media_type).content
    got = {(str(s), str(o)) for s, _, o in rdflib.Graph().parse(data=body, format=parser)}
    focal = rdflib.URIRef(RM + "focalParty")
    wanted = {
        (str(r), str(f))
        for r in expected_relationships(demo_graph)
        for f in demo_graph.objects(rdflib.URIRef(r), focal)
    }
    assert got == wanted


def test_default_graph_uri_narrows(backend: Backend, demo_graph: rdflib.Graph) -> None:
    query = PREFIXES + "SELECT ?r WHERE { ?r a rm:CustomerRelationship }"
    union = sparql(backend, query, "application/sparql-results+json").json()
    bank = sparql(
        backend, query, "application/sparql-results+json", **{"default-graph-uri": DATA + "bank"}
    ).json()
    bank_graph = rdflib.Graph().parse(demo_paths()[1], format="turtle")  # bank.ttl
    assert demo_paths()[1].name == "bank.ttl"
    cls = rdflib.URIRef(RM + "CustomerRelationship")
    assert {b["r"]["value"] for b in bank["results"]["bindings"]} == {
        str(s) for s in bank_graph.subjects(rdflib.RDF.type, cls)
    }
    assert {b["r"]["value"] for b in union["results"]["bindings"]} >= set(
        expected_relationships(demo_graph)
    )


# --- writes --------------------------------------------------------------------------------


def person_update(iri: str, label: str | None, graph: str, verb: str = "INSERT") -> str:
    label_triple = f'; rdfs:label "{label}"' if label else ""
    return PREFIXES + f"{verb} DATA {{ GRAPH <{graph}> {{ <{iri}> a rm:Person {label_triple} }} }}"


def test_update_with_token_round_trip(backend: Backend) -> None:
    iri, graph = DEMO + f"remote-update-{backend.name}", DATA + "remote-updates"
    ask = PREFIXES + f'ASK {{ GRAPH <{graph}> {{ <{iri}> rdfs:label "Remote Ü" }} }}'
    refused = requests.post(
        backend.server.sparql, data={"update": person_update(iri, "Remote Ü", graph)}, timeout=60
    )
    assert refused.status_code == 401
    response = requests.post(
        backend.server.sparql,
        data={"update": person_update(iri, "Remote Ü", graph)},
        headers=backend.server.auth,
        timeout=60,
    )
    assert response.status_code == 204, response.text
    assert sparql(backend, ask, "application/sparql-results+json").json()["boolean"] is True
    if backend.engine is not None:  # really on the engine, in that graph
        rows = backend.engine.select(
            f"SELECT ?l WHERE {{ GRAPH <{graph}> {{ <{iri}> <{RDFS_LABEL}> ?l }} }}"
        )
        assert [r["l"] for r in rows] == ["Remote Ü"]
    delete = person_update(iri, "Remote Ü", graph, verb="DELETE")
    response = requests.post(
        backend.server.sparql, data={"update": delete}, headers=backend.server.auth, timeout=60
    )
    assert response.status_code == 204, response.text
    assert sparql(backend, ask, "application/sparql-results+json").json()["boolean"] is False


def test_violating_update_is_refused_and_changes_nothing(backend: Backend) -> None:
    before = data_quads(backend)
    update = person_update(DEMO + "nameless", None, DATA + "bank")
    response = requests.post(
        backend.server.sparql, data={"update": update}, headers=backend.server.auth, timeout=60
    )
    assert response.status_code == 422, response.text
    assert data_quads(backend) == before


def test_graph_store_round_trip(backend: Backend) -> None:
    graph = DATA + f"gsp-{backend.name}"
    turtle = (
        f"@prefix rm: <{RM}> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        f'<{DEMO}gsp-person> a rm:Person ; rdfs:label "Gràzia \\"GSP\\""@it .\n'
    )
    put = put_turtle(backend, graph, turtle)
    assert put.status_code == 201, put.text
    got = requests.get(
        backend.server.data,
        params={"graph": graph},
        headers={"Accept": "application/n-triples"},
        timeout=60,
    )
    assert got.status_code == 200, got.text
    sent = rdflib.Graph().parse(data=turtle, format="turtle")
    back = rdflib.Graph().parse(data=got.content, format="nt")
    assert set(back) == set(sent)
    gone = requests.delete(
        backend.server.data, params={"graph": graph}, headers=backend.server.auth, timeout=60
    )
    assert gone.status_code == 204, gone.text
    again = requests.get(backend.server.data, params={"graph": graph}, timeout=60)
    assert again.status_code == 404


def test_violating_put_leaves_the_store_unchanged(backend: Backend) -> None:
    before = everything(backend)
    nameless = f"@prefix rm: <{RM}> .\n<{DEMO}nameless> a rm:Person .\n"
    response = requests.put(
        backend.server.data,
        params={"graph": DATA + "bank"},
        data=nameless.encode(),
        headers={"Content-Type": "text/turtle", **backend.server.auth},
        timeout=60,
    )
    assert response.status_code == 422, response.text
    assert everything(backend) == before


def test_cli_load_is_all_or_nothing(remote: Backend, tmp_path: Path) -> None:
    """A SHACL-violating file, or a syntax error in the second file: nothing is written,
    and no staging graph is left behind on the engine."""
    good = tmp_path / "good.ttl"
    good.write_text(f'@prefix rm: <{RM}> .\n<{DEMO}cli-good> a rm:Person ; <{RDFS_LABEL}> "G" .\n')
    nameless = tmp_path / "nameless.ttl"
    nameless.write_text(f"@prefix rm: <{RM}> .\n<{DEMO}cli-nameless> a rm:Person .\n")
    broken = tmp_path / "broken.ttl"
    broken.write_text(f"<{DEMO}x> <{RDFS_LABEL}> .\n")
    before = everything(remote)
    for files in ([good, nameless], [good, broken]):
        result = relmark_cli(remote.store, remote.engine, "load", *map(str, files))
        assert result.returncode == 2, result.stderr
        assert "nothing was loaded" in result.stderr
        assert everything(remote) == before


# --- classification and explanations ------------------------------------------------------


def inferred_classes(backend: Backend) -> set[tuple[str, str]]:
    query = "SELECT ?s ?c WHERE { GRAPH <urn:relmark:inferred> { ?s a ?c } }"
    rows = sparql(backend, query, "application/sparql-results+json").json()
    return {(b["s"]["value"], b["c"]["value"]) for b in rows["results"]["bindings"]}


def test_the_same_inferences_as_embedded(remote: Backend, reference: Backend) -> None:
    wanted = inferred_classes(reference)
    assert len(wanted) > 100  # the demo data's 251 inferred triples are classifications
    assert inferred_classes(remote) == wanted


def test_classify_and_explain_answer_as_embedded(remote: Backend, reference: Backend) -> None:
    pairs = sorted(inferred_classes(reference))
    subjects = sorted({s for s, _ in pairs})
    for iri in subjects[:: max(1, len(subjects) // 25)]:  # 25 resources across the data
        for lang in ("en", "it"):
            params = {"iri": iri, "lang": lang}
            a = requests.get(reference.server.url + "/api/classify", params=params, timeout=60)
            b = requests.get(remote.server.url + "/api/classify", params=params, timeout=60)
            assert a.status_code == b.status_code == 200, b.text
            assert b.json() == a.json()
    for iri, cls in pairs[:: max(1, len(pairs) // 30)]:  # 30 explanations
        params = {"iri": iri, "class": cls, "lang": "en"}
        a = requests.get(reference.server.url + "/api/explain", params=params, timeout=60)
        b = requests.get(remote.server.url + "/api/explain", params=params, timeout=60)
        assert a.status_code == b.status_code == 200, b.text
        assert b.json() == a.json()


#: What Virtuoso 7.2 may still answer differently, per question: only slowly. Its
#: deviations are written around in queries/*.rq (see the comments there), sparql/rewrite.py
#: and remote_store.py (durations come back as seconds: ``_virtuoso_durations``); the
#: README, "Running on a SPARQL server", lists them.
VIRTUOSO_DIFFERENCES = {
    # right rows (test_ladder_stages_on_virtuoso_without_a_timeout), but ~1-1.5 s on an idle
    # machine for this data loaded by `relmark load` (0.1 s when PUT through /data), which
    # a busy test machine pushes over the tests' 2 s RELMARK_QUERY_TIMEOUT
    "ladder-stages": "no answer within 2 s",
    # Questions added with the history and the source texts' concepts, not yet written
    # around Virtuoso 7.2's deviations (see README, "Running on a SPARQL server"): their
    # rows are right on the Oxigraph server and the embedded store; on Virtuoso these
    # columns differ (a known gap, listed in the notes of issues 18 and 22).
    "became-at-risk": "stillAtRisk",
    "ladder-moves": "direction",
    "segment-profitability": "members",
}


def test_named_queries_answer_as_embedded(remote: Backend, reference: Backend) -> None:
    """Every question, with its required parameters and with all its examples, gives the
    same rows (labels included) as on the embedded store. The catalogue's LATERALs reach
    Virtuoso rewritten by sparql.rewrite; VIRTUOSO_DIFFERENCES is what is left."""
    catalogue = requests.get(reference.server.url + "/api/queries", timeout=60)
    # every file of the catalogue: the twenty numbered questions and the unnumbered ones
    assert len(catalogue.json()["queries"]) == len(load_catalogue()) > 20
    differ = {}
    for query in load_catalogue():
        examples = {
            p.name: DEMO + p.example[5:] if p.example.startswith("demo:") else p.example
            for p in query.parameters
            if p.example
        }
        required = {p.name: examples[p.name] for p in query.parameters if p.required}
        for params in (required, examples):
            url = f"/api/queries/{query.name}"
            a = requests.get(reference.server.url + url, params=params, timeout=60)
            b = requests.get(remote.server.url + url, params=params, timeout=60)
            assert a.status_code == 200, (query.name, a.text)
            if b.status_code != 200:
                differ[query.name] = b.json().get("detail", b.text)[:300]
            elif _rows(b, query.name) != _rows(a, query.name):
                differ[query.name] = _difference(a, b)
    assert set(differ) <= set(VIRTUOSO_DIFFERENCES if remote.name == "virtuoso" else {}), differ
    for name, what in differ.items():
        assert VIRTUOSO_DIFFERENCES[name] in what, what


def test_ladder_stages_on_virtuoso_without_a_timeout(pool: BackendPool, reference: Backend) -> None:
    """The ladder (LATERAL rewritten, BOUND(?x) && … for Virtuoso's COALESCE, no join on the
    computed rank) is right on Virtuoso: the same rows as embedded, given a minute."""
    remote = pool.get("virtuoso")
    assert remote.engine is not None
    settings = Settings.from_env({**remote.engine.env, "RELMARK_QUERY_TIMEOUT": "60"})
    store = open_store(remote.store, settings)
    try:
        params = {"firm": DEMO + "banca-lariana", "asOf": "2026-11-15"}
        result = run_named(store, find_query("ladder-stages"), params)
    finally:
        store.close()
    got = sorted(
        tuple((column, term.value) for column, term in row.items() if term is not None)
        for row in result.rows
    )
    answer = requests.get(
        reference.server.url + "/api/queries/ladder-stages", params=params, timeout=60
    )
    wanted = sorted(
        tuple((column, cell["value"]) for column, cell in row.items() if cell is not None)
        for row in answer.json()["rows"]
    )
    assert len(wanted) == 15
    assert got == wanted


def test_virtuoso_seconds_typed_as_durations_read_as_durations(pool: BackendPool) -> None:
    """Virtuoso's date - date is an xsd:integer of seconds; typed xsd:dayTimeDuration by the
    query, relmark reads it as the standard's duration. Virtuoso's own durations come back
    rounded (``2.26195e+08``): those are not guessed at, and an integer stays an integer."""
    remote = pool.get("virtuoso")
    assert remote.engine is not None
    store = open_store(remote.store, Settings.from_env(remote.engine.env))
    duration = "http://www.w3.org/2001/XMLSchema#dayTimeDuration"
    try:
        row = next(
            iter(
                store.query(
                    """PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
                    SELECT ?exact ?short ?rounded ?seconds WHERE {
                      BIND("2026-11-15"^^xsd:date - "2019-09-15"^^xsd:date AS ?seconds)
                      BIND(STRDT(STR(?seconds), xsd:dayTimeDuration) AS ?exact)
                      BIND(STRDT("90061.5", xsd:dayTimeDuration) AS ?short)
                      BIND(STRDT("P2618D", xsd:dayTimeDuration) AS ?rounded)
                    }"""
                )
            )
        )
    finally:
        store.close()
    assert row["exact"] == ox.Literal("P2618D", datatype=ox.NamedNode(duration))
    assert row["short"] == ox.Literal("P1DT1H1M1.5S", datatype=ox.NamedNode(duration))
    assert row["rounded"] == ox.Literal("2.26195e+08", datatype=ox.NamedNode(duration))
    assert row["seconds"] == ox.Literal("226195200", datatype=ox.NamedNode(XSD + "integer"))


def _difference(a: requests.Response, b: requests.Response) -> str:
    """Which columns differ, or how many rows."""
    rows_a, rows_b = a.json()["rows"], b.json()["rows"]
    if len(rows_a) != len(rows_b):
        return f"{len(rows_b)} rows instead of {len(rows_a)}"
    columns = set()
    for x, y in zip(rows_a, rows_b, strict=True):
        columns |= {c for c in x if x[c] != y.get(c)}
    return f"columns {sorted(columns)} differ"


#: Columns that hold when each store recorded a change (its own transaction time): two
#: stores loaded at different moments differ there and nowhere else.
RECORDED_AT = {"became-at-risk": ("at",), "ladder-moves": ("since",)}


def _rows(response: requests.Response, question: str = "") -> list[str]:
    skip = RECORDED_AT.get(question, ())
    rows = ({k: v for k, v in row.items() if k not in skip} for row in response.json()["rows"])
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def test_inferences_follow_a_graph_store_write(backend: Backend) -> None:
    """A write through relmark's HTTP API brings the inferences up to date on every back end."""
    graph = DATA + f"inference-{backend.name}"
    iri = DEMO + f"new-customer-{backend.name}"
    turtle = (
        f"@prefix rm: <{RM}> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        f'<{iri}> a rm:Person ; rdfs:label "New" ; rm:inCustomerMarketOf <{DEMO}banca-lariana> .\n'
    )
    before = inferred_classes(backend)
    put = put_turtle(backend, graph, turtle)
    assert put.status_code == 201, put.text
    try:
        assert (iri, RM + "Customer") in inferred_classes(backend) - before
    finally:
        requests.delete(
            backend.server.data, params={"graph": graph}, headers=backend.server.auth, timeout=60
        )
    assert inferred_classes(backend) == before


def test_check_reads_the_remote_like_the_embedded_store(remote: Backend, tmp_path: Path) -> None:
    """``relmark check`` (OWL consistency, HermiT) sees the same statements on both."""
    load_demo(str(tmp_path / "store"), None)
    embedded = relmark_cli(str(tmp_path / "store"), None, "check")
    result = relmark_cli(remote.store, remote.engine, "check")
    assert embedded.returncode == 0, embedded.stdout + embedded.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    counted = re.compile(r"consistent, every class satisfiable \(([\d,]+) statements")
    assert counted.search(result.stdout)[1] == counted.search(embedded.stdout)[1]


def test_what_if_answers_as_embedded(remote: Backend, reference: Backend) -> None:
    record = (
        f"@prefix rm: <{RM}> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        f'<{DEMO}what-if-person> a rm:Person ; rdfs:label "W" ; '
        f"rm:inCustomerMarketOf <{DEMO}banca-lariana> .\n"
    )
    answers = []
    for backend in (reference, remote):
        response = requests.post(
            backend.server.url + "/api/classify",
            params={"iri": DEMO + "what-if-person"},
            data=record.encode(),
            headers={"Content-Type": "text/turtle"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert RM + "Customer" in answers[0]["gained"]
    assert answers[1] == answers[0]


def test_copy_to_gives_an_embedded_copy(remote: Backend, tmp_path: Path) -> None:
    """``RemoteStore.copy_to``: what a what-if on a remote store would classify on."""
    assert remote.engine is not None
    store = open_store(remote.store, Settings.from_env(remote.engine.env))
    try:
        store.copy_to(tmp_path / "copy")
        copy = EmbeddedStore(tmp_path / "copy")
        try:
            assert copy.count() == store.count()
            non_empty = [g for g in store.graph_names() if store.graph_size(g)]  # (a dump
            assert copy.graph_names() == non_empty  # holds quads, so no empty graphs)
            iri = DEMO + "agrimac"
            assert explain.classify(copy, iri) == explain.classify(store, iri)
        finally:
            copy.close()
    finally:
        store.close()


def test_bearer_credentials_and_the_generic_engine(reference: Backend) -> None:
    """relmark's own endpoint as the remote: a standard-only engine that wants a Bearer
    token for updates. With the token an update lands; without it, a clear refusal."""
    server = reference.server
    config = RemoteConfig(server.sparql, gsp_url=server.data, bearer=server.token)
    graph, iri = DATA + "bearer", DEMO + "bearer-person"
    insert = person_update(iri, "Bearer", graph)
    ask = PREFIXES + f'ASK {{ <{iri}> rdfs:label "Bearer" }}'
    with RemoteStore(config) as store, RemoteStore(RemoteConfig(server.sparql)) as anonymous:
        assert store.engine.name == "generic"
        assert store.engine.lateral is None and store.supports_lateral()  # asked: pyoxigraph
        with pytest.raises(RemoteError, match="refused the update"):
            anonymous.update(insert)
        assert not store.query(ask)
        store.update(insert)
        try:
            assert store.query(ask)
            assert graph in store.graph_names()
            assert {str(q.object) for q in store.triples(graph)} >= {'"Bearer"'}
        finally:
            store.update(person_update(iri, "Bearer", graph, verb="DELETE"))
        assert not store.query(ask)


def test_bound_values_are_terms_not_text(remote: Backend, demo_graph: rdflib.Graph) -> None:
    """Substitutions reach the engine as a VALUES block of N-Triples terms: a hostile
    literal matches nothing and changes nothing; a bound variable is bound before an
    aggregate groups, as pyoxigraph's own substitutions are."""
    assert remote.engine is not None
    store = open_store(remote.store, Settings.from_env(remote.engine.env))
    try:
        before = everything(remote)
        hostile = ox.Literal('x" } } ; DROP ALL ; INSERT DATA { <urn:x> <urn:y> "z')
        assert not store.query("ASK { ?s ?p ?o }", substitutions={"o": hostile})
        assert everything(remote) == before
        firm = DEMO + "banca-lariana"
        counted = store.query(
            PREFIXES + "SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE { ?r a rm:CustomerRelationship ; "
            "rm:focalParty ?firm }",
            substitutions={"firm": ox.NamedNode(firm)},
        )
        cls, focal = rdflib.URIRef(RM + "CustomerRelationship"), rdflib.URIRef(RM + "focalParty")
        wanted = {
            r
            for r in demo_graph.subjects(rdflib.RDF.type, cls)
            if (r, focal, rdflib.URIRef(firm)) in demo_graph
        }
        assert int(next(iter(counted))["n"].value) == len(wanted) > 0
    finally:
        store.close()


# --- failures --------------------------------------------------------------------------------


def test_healthz_reports_the_remote(remote: Backend) -> None:
    body = requests.get(remote.server.url + "/healthz", headers=remote.server.auth, timeout=30)
    body = body.json()
    assert body["status"] == "ok"
    assert body["remote"]["reachable"] is True
    assert body["remote"]["engine"] == remote.name
    assert body["store"] == remote.store
    assert body["triples"] > 1889


@pytest.mark.parametrize("workers", [1, 2])
def test_remote_down_is_503(tmp_path: Path, workers: int) -> None:
    """Its own Oxigraph server, so stopping it disturbs no other test. With two workers a
    write fails in the supervisor, and its error crosses to the worker as the same one."""
    with (
        oxigraph_server(tmp_path) as engine,
        running_relmark_on(engine.location, engine, tmp_path, workers) as server,
    ):
        slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
        started = time.monotonic()
        response = requests.get(server.sparql, params={"query": slow}, timeout=60)
        assert response.status_code == 503, response.text
        assert time.monotonic() - started < 10  # our 2 s timeout, not the engine's
        assert engine.process is not None
        engine.process.terminate()
        engine.process.wait(timeout=30)
        response = requests.get(server.sparql, params={"query": "ASK {}"}, timeout=60)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"] == "the store's SPARQL server is unavailable"
        assert body["where"] == f"oxigraph at {engine.query_url}"
        assert "Traceback" not in response.text
        health = requests.get(server.url + "/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["remote"]["reachable"] is False
        put = requests.put(
            server.data,
            params={"graph": DATA + "down"},
            data=f"<{DEMO}a> <{DEMO}b> 1 .".encode(),
            headers={"Content-Type": "text/turtle", **server.auth},
            timeout=60,
        )
        assert put.status_code == 503, put.text
        assert put.json()["where"] == f"oxigraph at {engine.query_url}"


def test_an_engine_that_does_not_answer_in_time_is_our_query_timeout() -> None:
    """A real listener that accepts the connection and never answers (a stuck engine)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        store = RemoteStore(
            RemoteConfig(f"http://127.0.0.1:{port}/query", timeout=0.5, engine="oxigraph")
        )
        started = time.monotonic()
        with pytest.raises(RemoteTimeout) as caught:
            store.query("SELECT * WHERE { ?s ?p ?o }")
        assert time.monotonic() - started < 5  # not retried: the query was slow, not lost
        answer = remote_failed(caught.value)
        assert (answer.status, answer.error) == (503, "query timeout")
        assert "RELMARK_QUERY_TIMEOUT" in answer.detail


def test_a_deadline_ends_reads_sooner_than_the_configured_timeout() -> None:
    """How a request's query timeout holds on a remote store without another thread
    (``QueryRunner``): each read gets what is left of the deadline as its HTTP timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        store = RemoteStore(
            RemoteConfig(f"http://127.0.0.1:{port}/query", timeout=30, engine="oxigraph")
        )
        started = time.monotonic()
        with pytest.raises(RemoteTimeout), store.deadline(0.5):
            store.query("SELECT * WHERE { ?s ?p ?o }")
        assert time.monotonic() - started < 5  # the deadline, not the 30 s of the settings
        with store.deadline(0.0), pytest.raises(RemoteTimeout):  # none left: no request
            store.query("ASK {}")
        assert store.transport.read_timeout() == 30  # the block is over: the settings' timeout


class _RecordingEngine(BaseHTTPRequestHandler):
    """A stand-in SPARQL endpoint that records what it is sent: ``/moved`` redirects
    (307) to ``/query``, which answers SELECT with no rows and ASK with true."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers, body))  # type: ignore[attr-defined]
        if self.path.startswith("/moved"):
            self.send_response(307)
            self.send_header("Location", "/query" + self.path[len("/moved") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        select = b"SELECT" in body.upper()
        answer = (
            b'{"head":{"vars":["g"]},"results":{"bindings":[]}}'
            if select
            else (b'{"head":{},"boolean":true}')
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_requests_carry_the_credentials_and_follow_redirects() -> None:
    """Every request to the engine goes through one HTTP client (urllib3's pool): it sends
    the credentials and names relmark, and a redirect is followed (a 307 keeps the POST and
    its body), so a query reaches the engine wherever its URL points."""
    engine = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingEngine)
    engine.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{engine.server_port}"
        store = RemoteStore(
            RemoteConfig(f"{url}/query", engine="generic", user="ana", password="s3cret")
        )
        assert bool(store.query("ASK { ?s ?p ?o }")) is True
        path, headers, body = engine.seen[-1]
        assert path == "/query"  # (no graphs on this engine: no dataset parameters)
        assert body == b"query=ASK+%7B+%3Fs+%3Fp+%3Fo+%7D"  # a form: no direct POST here
        assert headers["Authorization"] == "Basic " + base64.b64encode(b"ana:s3cret").decode()
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert headers["User-Agent"] == "relmark"
        moved = RemoteStore(RemoteConfig(f"{url}/moved", engine="generic"))
        engine.seen.clear()  # type: ignore[attr-defined]
        assert bool(moved.query("ASK {}")) is True
        seen = engine.seen  # type: ignore[attr-defined]
        assert [path for path, _, _ in seen] == ["/moved", "/query"] * (len(seen) // 2), seen
        assert seen[-1][2] == b"query=ASK+%7B%7D"  # the body went on with the redirect
    finally:
        engine.shutdown()
        engine.server_close()


class _BusyEngine(BaseHTTPRequestHandler):
    """A stand-in engine that answers every request 503 with Retry-After, counting them."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen += 1  # type: ignore[attr-defined]
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_an_engine_503_is_its_answer_not_a_retry() -> None:
    """A 503 (with Retry-After) is the engine saying it is unavailable: relmark asks once
    and reports that (503 to its own client), rather than retrying or calling the engine
    unreachable."""
    engine = ThreadingHTTPServer(("127.0.0.1", 0), _BusyEngine)
    engine.seen = 0  # type: ignore[attr-defined]
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    try:
        store = RemoteStore(
            RemoteConfig(f"http://127.0.0.1:{engine.server_port}/q", engine="generic")
        )
        with pytest.raises(RemoteUnavailable, match=r"is unavailable \(503\)"):
            store.query("ASK {}")
        assert engine.seen == 1  # type: ignore[attr-defined]
    finally:
        engine.shutdown()
        engine.server_close()


def test_remote_store_without_server_fails_cleanly() -> None:
    result = relmark_cli("sparql+http://127.0.0.1:9/query", None, "query", "ASK {}")
    assert result.returncode == 1
    assert "cannot reach the SPARQL server" in result.stderr
    assert "Traceback" not in result.stderr


def test_dump_and_restore_round_trip(remote: Backend) -> None:
    """``relmark dump`` then ``relmark restore`` of that dump leaves the engine as it was."""
    before = everything(remote)
    dump = subprocess.run(
        [str(VENV_BIN / "relmark"), "--store", remote.store, "dump"],
        env=relmark_env(remote.engine),
        capture_output=True,
        timeout=300,
    )
    assert dump.returncode == 0, dump.stderr.decode()
    quads = list(ox.parse(dump.stdout, format=ox.RdfFormat.N_QUADS))
    graphs = {q.graph_name.value for q in quads if isinstance(q.graph_name, ox.NamedNode)}
    assert {DATA + "bank", DATA + "b2b", DATA + "brand", "urn:relmark:inferred"} <= graphs
    assert _without_blank_nodes(_values(quads), quads) == _without_blank_nodes(before, quads)
    assert len(_values(quads)) == len(before)
    result = subprocess.run(
        [str(VENV_BIN / "relmark"), "--store", remote.store, "restore", "-"],
        input=dump.stdout,
        env=relmark_env(remote.engine),
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    after = everything(remote)
    assert _without_blank_nodes(after, quads) == _without_blank_nodes(before, quads)
    assert len(after) == len(before)  # blank nodes come back with new labels, same number


def _values(quads: list[ox.Quad]) -> set[tuple[str, ...]]:
    """Named-graph quads as values, as ``everything`` reads them from an engine."""
    return {
        (q.graph_name.value, q.subject.value, q.predicate.value, q.object.value)
        for q in quads
        if isinstance(q.graph_name, ox.NamedNode)
    }


def _without_blank_nodes(rows: set[tuple[str, ...]], quads: list[ox.Quad]) -> set[tuple[str, ...]]:
    """Rows whose subject and object are not blank nodes (their labels vary per read):
    a subject or object counts as blank when no IRI or literal in ``quads`` has it."""
    named = {
        t.value for q in quads for t in (q.subject, q.object) if not isinstance(t, ox.BlankNode)
    }
    return {r for r in rows if r[1] in named and r[3] in named}


def test_virtuoso_cutting_an_answer_short_is_an_error(tmp_path: Path) -> None:
    """Virtuoso stops at ResultSetMaxRows (a header says so on queries, nothing does on
    Graph Store reads): relmark refuses the short answer instead of using it."""
    with virtuoso_server(tmp_path, max_rows=8) as engine:  # (the graph list: 5 rows)
        store = open_store(engine.location, Settings.from_env(engine.env))
        try:
            objects = ", ".join(str(n) for n in range(10))
            store.update(f"INSERT DATA {{ GRAPH <{DATA}ten> {{ <urn:a> <urn:p> {objects} }} }}")
            assert store.graph_size(DATA + "ten") == 10
            with pytest.raises(RemoteError, match="cut its answer at 8 rows"):
                store.query(f"SELECT ?o WHERE {{ GRAPH <{DATA}ten> {{ ?s ?p ?o }} }}")
            with pytest.raises(RemoteError, match="cut its answer"):
                list(store.triples(DATA + "ten"))
            # (an answer of exactly ResultSetMaxRows rows carries the header too: refused)
            rows = store.query(f"SELECT ?o WHERE {{ GRAPH <{DATA}ten> {{ ?s ?p ?o }} }} LIMIT 4")
            assert len(list(rows)) == 4
        finally:
            store.close()


# --- rule guards that bind literals ----------------------------------------------------------

EX = "https://example.org/literal-guard#"
XSD = "http://www.w3.org/2001/XMLSchema#"
#: A guard whose bound variable is a literal, matched by a triple pattern: the rule engine
#: asks it for many solutions at once, the values in one VALUES block (guard_query).
LITERAL_GUARD_RULE = f"""# rule: literal-guard
# label: Unblocked value
# label@it: Valore non bloccato
# why: Nothing blocks its value.
# source: [D] test

PREFIX ex: <{EX}>
CONSTRUCT {{ ?x a ex:Unblocked . }}
WHERE {{
  ?x ex:value ?v .
  FILTER NOT EXISTS {{ ?y ex:blocks ?v . }}
}}
"""
#: One value of each kind blocked, and its near misses not (another language, no language,
#: another day, another number, the other boolean). No two numbers of one value: Virtuoso
#: matches numbers by value (1 finds 1.0), the standard by term.
BLOCKED = ["false", "0.8", f'"2026-11-15"^^<{XSD}date>', '"ciao"@it', f"<{EX}thing>"]
NOT_BLOCKED = {
    "bool-true": "true",
    "decimal": "0.75",
    "date": f'"2026-11-16"^^<{XSD}date>',
    "lang-en": '"ciao"@en',
    "plain": '"ciao"',
    "lang-region": '"ciao"@it-CH',
    "integer": "7",
}


def _literal_guard_data() -> str:
    lines = [f"<{EX}blocker> <{EX}blocks> {value} ." for value in BLOCKED]
    lines += [f"<{EX}blocked-{n}> <{EX}value> {value} ." for n, value in enumerate(BLOCKED)]
    lines += [f"<{EX}{name}> <{EX}value> {value} ." for name, value in NOT_BLOCKED.items()]
    return "\n".join(lines)


def _unblocked(store: object, tmp_path: Path, remote: bool) -> set[str]:
    """Materialise the literal-guard rule over the data on ``store``: the unblocked subjects."""
    path = tmp_path / "literal-guard.rq"
    path.write_text(LITERAL_GUARD_RULE, encoding="utf-8")
    rule = rules.parse_rule(path)
    store.update(f"INSERT DATA {{ GRAPH <{DATA}literals> {{ {_literal_guard_data()} }} }}")
    if remote:
        remote_rules.materialise(store, [rule])
    else:
        rules.materialise(store, [rule])
    return {
        q.subject.value[len(EX) :]
        for q in store.triples(INFERRED_GRAPH)
        if q.object == ox.NamedNode(EX + "Unblocked")
    }


@pytest.mark.parametrize("engine_name", ["oxigraph", "virtuoso"])
def test_guards_binding_literals_infer_as_embedded(engine_name: str, tmp_path: Path) -> None:
    """A rule's FILTER NOT EXISTS that depends on a literal value (boolean, decimal, date,
    language-tagged string): the remote engine infers exactly what the embedded one does.
    (Its own engine: the inferred graph of the shared ones stays the demo's.)"""
    embedded = EmbeddedStore(tmp_path / "store")
    try:
        wanted = _unblocked(embedded, tmp_path, remote=False)
    finally:
        embedded.close()
    assert wanted == set(NOT_BLOCKED)
    factory = oxigraph_server if engine_name == "oxigraph" else virtuoso_server
    home = tmp_path / engine_name
    home.mkdir()
    with factory(home) as engine:
        store = open_store(engine.location, Settings.from_env(engine.env))
        try:
            assert _unblocked(store, tmp_path, remote=True) == wanted
        finally:
            store.close()


@pytest.mark.parametrize(
    "args",
    [
        ("query", "SELECT * WHERE { ?s ?p ?o } LIMIT 1"),
        ("query", "--named", "six-markets"),
        ("infer",),
        ("dump",),
    ],
    ids=["query", "named", "infer", "dump"],
)
def test_cli_with_the_engine_gone_is_one_line_not_a_traceback(args: tuple[str, ...]) -> None:
    """Nothing listens where the store points (the engine named, so nothing is asked at
    start): every command ends with exit 1 and one message naming the back end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = f"sparql+http://127.0.0.1:{port}/query"
    env = {**relmark_env(None), "RELMARK_REMOTE_ENGINE": "oxigraph", "RELMARK_QUERY_TIMEOUT": "2"}
    done = subprocess.run(
        [str(VENV_BIN / "relmark"), "--store", store, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"oxigraph at http://127.0.0.1:{port}/query" in done.stderr, done.stderr
