"""The SPARQL 1.1 Protocol at /sparql, over a real ``relmark serve`` and real clients.

Spec: https://www.w3.org/TR/sparql11-protocol/ — every query form in every format, every
way of sending a query, datasets, updates with and without the token, each error status,
CORS and the service description. Responses are parsed and their content asserted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError

import pytest
import rdflib
import requests
from rdflib.plugins.stores.sparqlstore import SPARQLStore, SPARQLUpdateStore
from SPARQLWrapper import CSV, JSON, JSONLD, N3, POST, RDFXML, TSV, TURTLE, XML, SPARQLWrapper
from support.backends import ALL_SERVERS, EMBEDDED_SERVERS
from support.server import (
    DEMO_GRAPH_PREFIX,
    RDF_TYPES,
    SERVER_MAX_BODY,
    SERVER_MAX_ROWS,
    RelmarkServer,
)

from relmark.settings import Settings
from relmark.sparql.guard import iris_of
from relmark.sparql.inspect import dataset_of, is_single_lookup, may_write_any_graph
from relmark.sparql.lexer import code_only, masked, query_form
from relmark.vocab import DEMO, RM
from relmark.web import close_app, create_app

#: Every test that takes ``relmark_server`` runs on each back end (tests/conftest.py).
SERVER_BACKENDS = ALL_SERVERS

#: rdflib's parsers and SPARQLWrapper use rdflib's deprecated ConjunctiveGraph internally.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:SPARQLWrapper"),
]

RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
BANK = DEMO + "banca-lariana"
BANK_GRAPH = DEMO_GRAPH_PREFIX + "bank"
BRAND_GRAPH = DEMO_GRAPH_PREFIX + "brand"
PREFIXES = f"PREFIX demo: <{DEMO}>\nPREFIX rm: <{RM}>\nPREFIX rdfs: <{RDFS_LABEL[:-5]}>\n"

SELECT_BANK_LABELS = PREFIXES + "SELECT ?label WHERE { demo:banca-lariana rdfs:label ?label }"
ASK_BANK = PREFIXES + "ASK { demo:banca-lariana a rm:FocalFirm }"
ASK_NOTHING = PREFIXES + "ASK { demo:banca-lariana a rm:Brand }"
CONSTRUCT_BANK = (
    PREFIXES + "CONSTRUCT { ?s rdfs:label ?l } WHERE { ?s a rm:FocalFirm ; rdfs:label ?l }"
)
DESCRIBE_BANK = PREFIXES + "DESCRIBE demo:banca-lariana"
XSR = "{http://www.w3.org/2005/sparql-results#}"

# A cross join over the bank's graph that never yields a row: several seconds of pure
# evaluation, which pyoxigraph cannot interrupt.
SLOW_QUERY = f"""SELECT (COUNT(*) AS ?n) FROM <{BANK_GRAPH}> WHERE {{
  {{ ?a ?b ?c . ?d ?e ?f . ?g a <{RM}OrganizationalUnit>
     FILTER(CONTAINS(CONCAT(STR(?c), STR(?f), STR(?g)), "no such text")) }}
  UNION
  {{ ?a ?b ?c . ?d ?e ?f . ?g a <{RM}OrganizationalUnit>
     FILTER(CONTAINS(CONCAT(STR(?f), STR(?c), STR(?g)), "no such text either")) }}
}}"""


def get(
    server: RelmarkServer, query: str, accept: str | None = None, **params
) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    return requests.get(
        server.sparql, params={"query": query, **params}, headers=headers, timeout=30
    )


def count_quads(server: RelmarkServer) -> int:
    response = get(server, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


def labels_in(graph: rdflib.Graph, subject: str = BANK) -> set[str]:
    return {str(o) for o in graph.objects(rdflib.URIRef(subject), rdflib.RDFS.label)}


# --- SELECT and ASK in every results format ---------------------------------------------------
def parse_select(media_type: str, body: bytes) -> list[str]:
    """The ?label column, read with a parser for the format (not by string search)."""
    text = body.decode("utf-8")
    if media_type == "application/sparql-results+json":
        data = json.loads(text)
        assert data["head"]["vars"] == ["label"]
        return [b["label"]["value"] for b in data["results"]["bindings"]]
    if media_type == "application/sparql-results+xml":
        root = ET.fromstring(body)
        return [e.text or "" for e in root.iter(f"{XSR}literal")]
    if media_type == "text/csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["label"]
        return [row[0] for row in rows[1:]]
    rows = [line.split("\t") for line in text.splitlines()]
    assert rows[0] == ["?label"]
    return [rdflib.util.from_n3(row[0]).value for row in rows[1:]]


RESULT_TYPES = [
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
]


@pytest.mark.parametrize("media_type", RESULT_TYPES)
def test_select_in_every_results_format(relmark_server: RelmarkServer, media_type: str) -> None:
    response = get(relmark_server, SELECT_BANK_LABELS, accept=media_type)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == media_type
    assert "Accept" in response.headers["Vary"]
    labels = parse_select(media_type, response.content)
    assert sorted(labels) == ["Banca Lariana", "Banca Lariana S.p.A."]


@pytest.mark.parametrize("media_type", RESULT_TYPES)
def test_ask_in_every_results_format(relmark_server: RelmarkServer, media_type: str) -> None:
    for query, expected in ((ASK_BANK, True), (ASK_NOTHING, False)):
        response = get(relmark_server, query, accept=media_type)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].split(";")[0] == media_type
        if media_type == "application/sparql-results+json":
            assert response.json()["boolean"] is expected
        elif media_type == "application/sparql-results+xml":
            assert (
                ET.fromstring(response.content).find(f"{XSR}boolean").text == str(expected).lower()
            )
        else:
            assert response.text.strip().lower() == str(expected).lower()


@pytest.mark.parametrize("media_type", list(RDF_TYPES))
def test_construct_in_every_rdf_format(relmark_server: RelmarkServer, media_type: str) -> None:
    response = get(relmark_server, CONSTRUCT_BANK, accept=media_type)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == media_type
    graph = rdflib.Dataset()
    graph.parse(data=response.content, format=RDF_TYPES[media_type])
    triples = set(graph.quads((None, None, None, None)))
    assert {str(o) for s, p, o, _ in triples if str(s) == BANK} >= {
        "Banca Lariana",
        "Banca Lariana S.p.A.",
    }


@pytest.mark.parametrize("media_type", list(RDF_TYPES))
def test_describe_in_every_rdf_format(relmark_server: RelmarkServer, media_type: str) -> None:
    response = get(relmark_server, DESCRIBE_BANK, accept=media_type)
    assert response.status_code == 200, response.text
    graph = rdflib.Dataset()
    graph.parse(data=response.content, format=RDF_TYPES[media_type])
    subjects = {str(s) for s, _, _, _ in graph.quads((None, None, None, None))}
    assert subjects == {BANK}
    objects = {str(o) for _, _, o, _ in graph.quads((None, None, None, None))}
    assert {"Banca Lariana", RM + "FocalFirm"} <= objects


def test_select_as_results_format_is_not_acceptable_for_rdf_types(
    relmark_server: RelmarkServer,
) -> None:
    response = get(relmark_server, SELECT_BANK_LABELS, accept="text/turtle")
    assert response.status_code == 406
    body = response.json()
    assert body["error"] == "not acceptable"
    assert "application/sparql-results+json" in body["detail"]


def test_not_acceptable_at_all(relmark_server: RelmarkServer) -> None:
    response = get(relmark_server, SELECT_BANK_LABELS, accept="image/png")
    assert response.status_code == 406
    assert response.json()["error"] == "not acceptable"


def test_format_parameter_overrides_accept(relmark_server: RelmarkServer) -> None:
    response = get(relmark_server, SELECT_BANK_LABELS, accept="text/csv", format="json")
    assert response.headers["Content-Type"].startswith("application/sparql-results+json")
    response = get(relmark_server, CONSTRUCT_BANK, output="ntriples")
    assert response.headers["Content-Type"].startswith("application/n-triples")
    graph = rdflib.Graph().parse(data=response.text, format="nt")
    assert "Banca Lariana" in labels_in(graph)


# --- the three ways to send a query ----------------------------------------------------------
def test_get_post_form_and_post_direct_agree(relmark_server: RelmarkServer) -> None:
    accept = {"Accept": "application/sparql-results+json"}
    by_get = get(relmark_server, SELECT_BANK_LABELS, accept=accept["Accept"])
    by_form = requests.post(
        relmark_server.sparql, data={"query": SELECT_BANK_LABELS}, headers=accept, timeout=30
    )
    by_body = requests.post(
        relmark_server.sparql,
        data=SELECT_BANK_LABELS.encode(),
        headers={**accept, "Content-Type": "application/sparql-query; charset=utf-8"},
        timeout=30,
    )
    results = []
    for response in (by_get, by_form, by_body):
        assert response.status_code == 200, response.text
        results.append(sorted(parse_select("application/sparql-results+json", response.content)))
    assert results[0] == results[1] == results[2] == ["Banca Lariana", "Banca Lariana S.p.A."]


def test_non_ascii_query_text(relmark_server: RelmarkServer) -> None:
    query = PREFIXES + 'SELECT ?s WHERE { ?s rdfs:label "Caffè Aurora" }'
    for response in (
        get(relmark_server, query),
        requests.post(
            relmark_server.sparql,
            data=query.encode("utf-8"),
            headers={"Content-Type": "application/sparql-query"},
            timeout=30,
        ),
    ):
        assert response.status_code == 200, response.text
        bindings = response.json()["results"]["bindings"]
        assert [b["s"]["value"] for b in bindings] == [DEMO + "brand-caffe-aurora"]


def test_head_answers_like_get_without_a_body(relmark_server: RelmarkServer) -> None:
    response = requests.head(
        relmark_server.sparql,
        params={"query": SELECT_BANK_LABELS},
        headers={"Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.content == b""


# --- real clients ------------------------------------------------------------------------------
@pytest.mark.parametrize("return_format", [JSON, XML, CSV, TSV])
@pytest.mark.parametrize("method", ["GET", POST])
def test_sparqlwrapper_select(
    relmark_server: RelmarkServer, return_format: str, method: str
) -> None:
    client = SPARQLWrapper(relmark_server.sparql)
    client.setMethod(method)
    client.setQuery(SELECT_BANK_LABELS)
    client.setReturnFormat(return_format)
    result = client.query()
    converted = result.convert()
    if return_format == JSON:
        labels = [b["label"]["value"] for b in converted["results"]["bindings"]]
    elif return_format == XML:
        labels = [n.firstChild.data for n in converted.getElementsByTagName("literal")]
    elif return_format == CSV:
        labels = [row[0] for row in list(csv.reader(io.StringIO(converted.decode())))[1:]]
    else:
        labels = parse_select("text/tab-separated-values", converted)
    assert sorted(labels) == ["Banca Lariana", "Banca Lariana S.p.A."]


@pytest.mark.parametrize("return_format", [TURTLE, N3, RDFXML, JSONLD, XML])
def test_sparqlwrapper_construct(relmark_server: RelmarkServer, return_format: str) -> None:
    client = SPARQLWrapper(relmark_server.sparql)
    client.setQuery(CONSTRUCT_BANK)
    client.setReturnFormat(return_format)
    converted = client.query().convert()
    graph = converted if isinstance(converted, rdflib.Graph) else None
    if graph is None:  # SPARQLWrapper hands Turtle/N3/JSON-LD back as bytes
        fmt = "json-ld" if return_format == JSONLD else "turtle"
        graph = rdflib.Graph().parse(data=converted, format=fmt)
    assert labels_in(graph) == {"Banca Lariana", "Banca Lariana S.p.A."}


def test_sparqlwrapper_ask(relmark_server: RelmarkServer) -> None:
    client = SPARQLWrapper(relmark_server.sparql)
    client.setQuery(ASK_BANK)
    client.setReturnFormat(JSON)
    assert client.query().convert()["boolean"] is True


def test_rdflib_sparqlstore_union_and_one_graph(relmark_server: RelmarkServer) -> None:
    store = SPARQLStore(relmark_server.sparql, returnFormat="json")
    union = rdflib.Graph(store=store)
    rows = list(union.query(SELECT_BANK_LABELS))
    assert sorted(str(r.label) for r in rows) == ["Banca Lariana", "Banca Lariana S.p.A."]
    # a Graph with an identifier sends default-graph-uri: only that graph is seen
    brand = rdflib.Graph(store=store, identifier=rdflib.URIRef(BRAND_GRAPH))
    assert list(brand.query(SELECT_BANK_LABELS)) == []
    assert (rdflib.URIRef(DEMO + "brand-caffe-aurora"), None, None) in brand
    bank = rdflib.Graph(store=store, identifier=rdflib.URIRef(BANK_GRAPH))
    assert len(list(bank.query(SELECT_BANK_LABELS))) == 2


@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
def test_rdflib_sparqlstore_methods(relmark_server: RelmarkServer, method: str) -> None:
    store = SPARQLStore(relmark_server.sparql, method=method, returnFormat="xml")
    result = rdflib.Graph(store=store).query(ASK_BANK)
    assert result.askAnswer is True


# --- datasets --------------------------------------------------------------------------------
def test_default_graph_is_the_union_of_all_graphs(relmark_server: RelmarkServer) -> None:
    query = PREFIXES + "SELECT ?x WHERE { ?x a rm:FocalFirm }"
    found = {b["x"]["value"] for b in get(relmark_server, query).json()["results"]["bindings"]}
    assert BANK in found and len(found) >= 3  # the bank, the brand owner and the supplier


def test_default_graph_uri_narrows_the_default_graph(relmark_server: RelmarkServer) -> None:
    query = PREFIXES + "SELECT ?x WHERE { ?x a rm:FocalFirm }"
    response = get(relmark_server, query, **{"default-graph-uri": BANK_GRAPH})
    assert [b["x"]["value"] for b in response.json()["results"]["bindings"]] == [BANK]
    both = requests.get(
        relmark_server.sparql,
        params=[
            ("query", query),
            ("default-graph-uri", BANK_GRAPH),
            ("default-graph-uri", BRAND_GRAPH),
        ],
        timeout=30,
    )
    assert len(both.json()["results"]["bindings"]) == 2


def test_named_graph_uri_limits_graph_patterns(relmark_server: RelmarkServer) -> None:
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    response = requests.post(
        relmark_server.sparql,
        data=[("query", query), ("named-graph-uri", BANK_GRAPH), ("named-graph-uri", BRAND_GRAPH)],
        timeout=30,
    )
    graphs = {b["g"]["value"] for b in response.json()["results"]["bindings"]}
    assert graphs == {BANK_GRAPH, BRAND_GRAPH}
    # with only named graphs given, the default graph is empty
    response = get(relmark_server, ASK_BANK, **{"named-graph-uri": BANK_GRAPH})
    assert response.json()["boolean"] is False


def test_from_clause_is_honoured(relmark_server: RelmarkServer) -> None:
    query = PREFIXES + f"SELECT ?x FROM <{BANK_GRAPH}> WHERE {{ ?x a rm:FocalFirm }}"
    response = get(relmark_server, query)
    assert [b["x"]["value"] for b in response.json()["results"]["bindings"]] == [BANK]
    # the protocol's dataset replaces the query's
    response = get(relmark_server, query, **{"default-graph-uri": BRAND_GRAPH})
    assert BANK not in response.text


def test_default_graph_uri_must_be_an_iri(relmark_server: RelmarkServer) -> None:
    response = get(relmark_server, ASK_BANK, **{"default-graph-uri": "not an iri"})
    assert response.status_code == 400
    assert "default-graph-uri" in response.json()["error"]


# --- updates ---------------------------------------------------------------------------------
def labelled_person(iri: str, label: str | None, graph: str) -> str:
    label_triple = f'; rdfs:label "{label}"' if label else ""
    return PREFIXES + f"INSERT DATA {{ GRAPH <{graph}> {{ <{iri}> a rm:Person {label_triple} }} }}"


def test_update_without_token_is_401(relmark_server: RelmarkServer) -> None:
    before = count_quads(relmark_server)
    update = labelled_person(DEMO + "anon", "Anon", "urn:relmark:data:updates")
    response = requests.post(relmark_server.sparql, data={"update": update}, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"] == "a bearer token is required"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert count_quads(relmark_server) == before


def test_update_with_wrong_token_is_401(relmark_server: RelmarkServer) -> None:
    update = labelled_person(DEMO + "anon", "Anon", "urn:relmark:data:updates")
    response = requests.post(
        relmark_server.sparql,
        data=update.encode(),
        headers={"Content-Type": "application/sparql-update", "Authorization": "Bearer nope"},
        timeout=30,
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_update_with_token_applies(relmark_server: RelmarkServer) -> None:
    iri = DEMO + "giulia-test-update"
    update = labelled_person(iri, "Giulia Test", "urn:relmark:data:updates")
    response = requests.post(
        relmark_server.sparql, data={"update": update}, headers=relmark_server.auth, timeout=30
    )
    assert response.status_code == 204, response.text
    assert "Access-Control-Allow-Origin" not in response.headers
    ask = PREFIXES + f'ASK {{ <{iri}> rdfs:label "Giulia Test" }}'
    assert get(relmark_server, ask).json()["boolean"] is True
    # and by direct POST, taking it out again
    statements = f'<{iri}> rdfs:label "Giulia Test" ; a rm:Person'
    delete = PREFIXES + f"DELETE DATA {{ GRAPH <urn:relmark:data:updates> {{ {statements} }} }}"
    response = requests.post(
        relmark_server.sparql,
        data=delete.encode(),
        headers={"Content-Type": "application/sparql-update", **relmark_server.auth},
        timeout=30,
    )
    assert response.status_code == 204, response.text
    assert get(relmark_server, ask).json()["boolean"] is False


def test_violating_update_is_422_and_changes_nothing(relmark_server: RelmarkServer) -> None:
    before = count_quads(relmark_server)
    update = labelled_person(DEMO + "nameless", None, "urn:relmark:data:updates")
    response = requests.post(
        relmark_server.sparql, data={"update": update}, headers=relmark_server.auth, timeout=30
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["report"]
    assert "nameless" in json.dumps(body["report"])
    assert body["detail"]
    assert count_quads(relmark_server) == before
    ask = PREFIXES + "ASK { demo:nameless ?p ?o }"
    assert get(relmark_server, ask).json()["boolean"] is False


def test_violating_update_into_an_existing_graph_is_refused(relmark_server: RelmarkServer) -> None:
    """Deleting the bank's names leaves it without a label: the graph as it would be fails."""
    before = count_quads(relmark_server)
    update = (
        PREFIXES + f"DELETE WHERE {{ GRAPH <{BANK_GRAPH}> {{ demo:banca-lariana rdfs:label ?l }} }}"
    )
    response = requests.post(
        relmark_server.sparql, data={"update": update}, headers=relmark_server.auth, timeout=30
    )
    assert response.status_code == 422, response.text
    assert count_quads(relmark_server) == before


def test_update_with_a_graph_variable_checks_every_graph(relmark_server: RelmarkServer) -> None:
    before = count_quads(relmark_server)
    pattern = "GRAPH ?g { demo:banca-lariana rdfs:label ?l }"
    update = PREFIXES + f"DELETE {{ {pattern} }} WHERE {{ {pattern} }}"
    response = requests.post(
        relmark_server.sparql, data={"update": update}, headers=relmark_server.auth, timeout=30
    )
    assert response.status_code == 422, response.text
    assert count_quads(relmark_server) == before


def test_using_graph_uri_sets_the_dataset_of_the_where_clause(
    relmark_server: RelmarkServer,
) -> None:
    """Protocol §2.2.3: using-graph-uri is USING (the update's own default graph, not the
    store's), using-named-graph-uri is USING NAMED; the request's other graphs are unseen."""
    out = "urn:test:using-out"
    copy_labels = (
        f"INSERT {{ GRAPH <{out}> {{ ?s <urn:test:copied> ?l }} }} WHERE {{ ?s <{RDFS_LABEL}> ?l }}"
    )
    copy_named = (
        f"INSERT {{ GRAPH <{out}> {{ ?s <urn:test:named> ?l }} }} "
        f"WHERE {{ GRAPH ?g {{ ?s <{RDFS_LABEL}> ?l }} }}"
    )
    for update, params in (
        (copy_labels, {"using-graph-uri": BANK_GRAPH}),
        (copy_named, {"using-named-graph-uri": BRAND_GRAPH}),
    ):
        response = requests.post(
            relmark_server.sparql,
            params=params,
            data=update.encode(),
            headers={"Content-Type": "application/sparql-update", **relmark_server.auth},
            timeout=30,
        )
        assert response.status_code == 204, response.text
    copied = get(relmark_server, f"SELECT ?s ?p FROM <{out}> WHERE {{ ?s ?p ?l }}").json()
    rows = {(b["s"]["value"], b["p"]["value"]) for b in copied["results"]["bindings"]}
    labelled = get(
        relmark_server, f"SELECT DISTINCT ?s ?g WHERE {{ GRAPH ?g {{ ?s <{RDFS_LABEL}> ?l }} }}"
    ).json()
    by_graph: dict[str, set[str]] = {}
    for b in labelled["results"]["bindings"]:
        by_graph.setdefault(b["g"]["value"], set()).add(b["s"]["value"])
    assert {s for s, p in rows if p == "urn:test:copied"} == by_graph[BANK_GRAPH]
    assert {s for s, p in rows if p == "urn:test:named"} == by_graph[BRAND_GRAPH]
    requests.post(
        relmark_server.sparql,
        data={"update": f"DROP GRAPH <{out}>"},
        headers=relmark_server.auth,
        timeout=30,
    ).raise_for_status()


def test_using_graph_uri_with_using_in_the_update_is_400(relmark_server: RelmarkServer) -> None:
    before = count_quads(relmark_server)
    for update in (
        f"DELETE {{ ?s ?p ?o }} USING <{BANK_GRAPH}> WHERE {{ ?s ?p ?o }}",
        f"WITH <{BANK_GRAPH}> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}",
    ):
        response = requests.post(
            relmark_server.sparql,
            params={"using-graph-uri": BANK_GRAPH},
            data=update.encode(),
            headers={"Content-Type": "application/sparql-update", **relmark_server.auth},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert "using-graph-uri" in response.json()["detail"]
    assert count_quads(relmark_server) == before


def test_update_of_a_system_graph_is_403(relmark_server: RelmarkServer) -> None:
    for update in (
        'INSERT DATA { GRAPH <urn:relmark:ontology> { <urn:x> <urn:y> "z" } }',
        "PREFIX r: <urn:relmark:>\nINSERT DATA { GRAPH r:shapes { <urn:x> <urn:y> 'z' } }",
        # pyoxigraph decodes \u escapes inside IRIs: this is the ontology graph too
        "INSERT DATA { GRAPH <urn:relmark:\\u006Fntology> { <urn:x> <urn:y> 'z' } }",
    ):
        response = requests.post(
            relmark_server.sparql, data={"update": update}, headers=relmark_server.auth, timeout=30
        )
        assert response.status_code == 403, update
        assert "read-only" in response.json()["error"]


def test_rdflib_sparqlupdatestore_with_token(relmark_server: RelmarkServer) -> None:
    store = SPARQLUpdateStore(
        relmark_server.sparql,
        relmark_server.sparql,
        returnFormat="json",
        headers=relmark_server.auth,
    )
    graph = rdflib.Graph(store=store, identifier=rdflib.URIRef("urn:relmark:data:rdflib"))
    person = rdflib.URIRef(DEMO + "rdflib-person")
    with pytest.raises(HTTPError) as refused:  # a person with no name: the shapes say no
        graph.add((person, rdflib.RDF.type, rdflib.URIRef(RM + "Person")))
    assert refused.value.code == 422
    graph.addN(
        [
            (person, rdflib.RDF.type, rdflib.URIRef(RM + "Person"), graph),
            (person, rdflib.RDFS.label, rdflib.Literal("Via rdflib"), graph),
        ]
    )
    assert labels_in(graph, str(person)) == {"Via rdflib"}


def test_sparqlwrapper_update_with_token(relmark_server: RelmarkServer) -> None:
    iri = DEMO + "sparqlwrapper-person"
    client = SPARQLWrapper(relmark_server.sparql)
    client.setMethod(POST)
    client.addCustomHttpHeader("Authorization", relmark_server.auth["Authorization"])
    client.setQuery(labelled_person(iri, "Via SPARQLWrapper", "urn:relmark:data:sparqlwrapper"))
    assert client.query().response.status == 204
    ask = PREFIXES + f'ASK {{ <{iri}> rdfs:label "Via SPARQLWrapper" }}'
    assert get(relmark_server, ask).json()["boolean"] is True


def test_update_by_get_is_refused(relmark_server: RelmarkServer) -> None:
    response = requests.get(
        relmark_server.sparql,
        params={"update": "CLEAR DEFAULT"},
        headers=relmark_server.auth,
        timeout=30,
    )
    assert response.status_code == 400


def test_updates_disabled_without_a_token(tmp_path) -> None:
    app = create_app(Settings(store=str(tmp_path / "store"), token=None))
    client = app.test_client()
    response = client.post(
        "/sparql",
        data={"update": "INSERT DATA { <urn:a> <urn:b> <urn:c> }"},
        headers={"Authorization": "Bearer anything"},
    )
    assert response.status_code == 403
    assert response.json["error"] == "updates are disabled"
    response = client.put(
        "/data?graph=urn:relmark:data:x",
        data=b"<urn:a> <urn:b> <urn:c> .",
        headers={"Content-Type": "application/n-triples"},
    )
    assert response.status_code == 403
    description = rdflib.Graph().parse(data=client.get("/sparql").data, format="turtle")
    assert (None, SD.supportedLanguage, SD.SPARQL11Update) not in description
    close_app(app)


# --- errors ----------------------------------------------------------------------------------
def test_malformed_query_is_400_with_position(relmark_server: RelmarkServer) -> None:
    response = get(relmark_server, "SELECT * WHERE {\n  ?s ?p \n}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "malformed query"
    assert re.fullmatch(r"3:\d+", body["where"])
    assert body["where"] in body["detail"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_malformed_update_is_400_with_position(relmark_server: RelmarkServer) -> None:
    response = requests.post(
        relmark_server.sparql,
        data={"update": "INSERT DATA { <urn:a> <urn:b> }"},
        headers=relmark_server.auth,
        timeout=30,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "malformed update"
    assert body["where"] and body["where"].startswith("1:")


def test_post_without_query_or_update_is_400(relmark_server: RelmarkServer) -> None:
    response = requests.post(relmark_server.sparql, data={"nothing": "here"}, timeout=30)
    assert response.status_code == 400
    response = requests.post(
        relmark_server.sparql, data=[("query", ASK_BANK), ("query", ASK_BANK)], timeout=30
    )
    assert response.status_code == 400


def test_unsupported_post_content_type_is_415(relmark_server: RelmarkServer) -> None:
    response = requests.post(
        relmark_server.sparql, data=ASK_BANK, headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert response.status_code == 415
    assert "application/sparql-query" in response.json()["detail"]


def test_method_not_allowed_is_405(relmark_server: RelmarkServer) -> None:
    response = requests.put(relmark_server.sparql, data=b"x", timeout=30)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.json()["error"] == "method not allowed"


def test_unknown_path_is_404_json(relmark_server: RelmarkServer) -> None:
    response = requests.get(relmark_server.url + "/no/such/page", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"] == "not found"


def test_request_body_too_large_is_413(relmark_server: RelmarkServer) -> None:
    padding = "#" + "x" * (SERVER_MAX_BODY + 10) + "\n"
    for kwargs in (
        {"data": {"query": padding + ASK_BANK}},
        {
            "data": (padding + ASK_BANK).encode(),
            "headers": {"Content-Type": "application/sparql-query"},
        },
    ):
        response = requests.post(relmark_server.sparql, timeout=30, **kwargs)
        assert response.status_code == 413
        assert "RELMARK_MAX_BODY" in response.json()["detail"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/sparql-results+json",
        "application/sparql-results+xml",
        "text/csv",
        "text/tab-separated-values",
    ],
)
def test_result_too_large_is_413_in_every_format(
    relmark_server: RelmarkServer, accept: str
) -> None:
    assert count_quads(relmark_server) > SERVER_MAX_ROWS
    # one row over the limit (a LIMIT keeps remote engines quick under load)
    query = f"SELECT * WHERE {{ ?s ?p ?o }} LIMIT {SERVER_MAX_ROWS + 1}"
    response = get(relmark_server, query, accept)
    assert response.status_code == 413
    assert "LIMIT" in response.json()["detail"]
    # exactly the limit passes, however few bytes the format spends per row
    limited = get(relmark_server, f"SELECT ?s WHERE {{ ?s ?p ?o }} LIMIT {SERVER_MAX_ROWS}", accept)
    assert limited.status_code == 200, limited.text


def test_graph_result_too_large_is_413(relmark_server: RelmarkServer) -> None:
    response = get(relmark_server, "CONSTRUCT WHERE { ?s ?p ?o }")
    assert response.status_code == 413
    limited = get(relmark_server, f"SELECT * WHERE {{ ?s ?p ?o }} LIMIT {SERVER_MAX_ROWS}")
    assert len(limited.json()["results"]["bindings"]) == SERVER_MAX_ROWS


def test_slow_query_is_503_and_the_server_stays_responsive(relmark_server: RelmarkServer) -> None:
    started = time.monotonic()
    response = get(relmark_server, SLOW_QUERY)
    waited = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "query timeout"
    assert "Retry-After" in response.headers
    assert waited < 10
    started = time.monotonic()
    fast = get(relmark_server, ASK_BANK)
    assert fast.status_code == 200 and fast.json()["boolean"] is True
    assert time.monotonic() - started < 1.0


def test_concurrent_queries_are_served_in_parallel(relmark_server: RelmarkServer) -> None:
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: get(relmark_server, SELECT_BANK_LABELS), range(8)))
    assert all(r.status_code == 200 for r in responses)
    assert all(len(r.json()["results"]["bindings"]) == 2 for r in responses)


# --- CORS ----------------------------------------------------------------------------------------
def test_cors_on_reads(relmark_server: RelmarkServer) -> None:
    origin = {"Origin": "https://example.org"}
    response = requests.get(
        relmark_server.sparql, params={"query": ASK_BANK}, headers=origin, timeout=30
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response = requests.post(
        relmark_server.sparql, data={"query": ASK_BANK}, headers=origin, timeout=30
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_preflight_allows_reads_only(relmark_server: RelmarkServer) -> None:
    response = requests.options(
        relmark_server.sparql,
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed
    assert "authorization" not in allowed  # so no browser can send an update cross-origin
    response = requests.options(relmark_server.data, timeout=30)
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert "PUT" in response.headers["Allow"]


# --- service description -------------------------------------------------------------------
SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")


def test_service_description(relmark_server: RelmarkServer) -> None:
    response = requests.get(relmark_server.sparql, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/turtle")
    graph = rdflib.Graph().parse(data=response.text, format="turtle")
    (service,) = graph.subjects(rdflib.RDF.type, SD.Service)
    assert graph.value(service, SD.endpoint) == rdflib.URIRef(relmark_server.sparql)
    languages = set(graph.objects(service, SD.supportedLanguage))
    assert languages == {SD.SPARQL11Query, SD.SPARQL11Update}
    assert SD.UnionDefaultGraph in set(graph.objects(service, SD.feature))
    formats = {str(f) for f in graph.objects(service, SD.resultFormat)}
    assert "http://www.w3.org/ns/formats/SPARQL_Results_JSON" in formats
    assert "http://www.w3.org/ns/formats/Turtle" in formats
    dataset = graph.value(service, SD.defaultDataset)
    names = {str(graph.value(n, SD.name)) for n in graph.objects(dataset, SD.namedGraph)}
    assert {BANK_GRAPH, BRAND_GRAPH, "urn:relmark:ontology"} <= names
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_service_description_is_negotiated(relmark_server: RelmarkServer) -> None:
    response = requests.get(
        relmark_server.sparql, headers={"Accept": "application/ld+json"}, timeout=30
    )
    assert response.headers["Content-Type"].startswith("application/ld+json")
    graph = rdflib.Graph().parse(data=response.text, format="json-ld")
    assert (None, SD.endpoint, rdflib.URIRef(relmark_server.sparql)) in graph
    response = requests.get(relmark_server.sparql, headers={"Accept": "text/csv"}, timeout=30)
    assert response.status_code == 406


@pytest.mark.server_backends(*EMBEDDED_SERVERS)  # asserts the store's directory
def test_healthz(relmark_server: RelmarkServer) -> None:
    body = requests.get(  # the store's location is for admins (RELMARK_TOKEN is one)
        relmark_server.url + "/healthz", headers=relmark_server.auth, timeout=30
    ).json()
    assert body["status"] == "ok"
    assert body["store"] == str(relmark_server.store.resolve())
    assert body["triples"] > 1000
    assert body["graphs"] >= 6


# --- reading SPARQL text (relmark.sparql.lexer, .inspect) ----------------------------------
def test_dataset_of_reads_from_clauses_not_strings_or_comments() -> None:
    query = """PREFIX d: <urn:relmark:data:>
    # FROM <urn:in-a-comment>
    SELECT ?x FROM d:bank FROM NAMED <urn:relmark:data:brand>
    WHERE { ?x ?p "FROM <urn:in-a-string>" FILTER(?x<3) }"""
    assert dataset_of(query) == (["urn:relmark:data:bank"], ["urn:relmark:data:brand"])
    assert dataset_of("SELECT * WHERE { ?s ?p ?o }") is None


@pytest.mark.parametrize(
    ("query", "lookup"),
    [
        ("SELECT ?p ?o WHERE { <urn:x:anna> ?p ?o }", True),
        ("PREFIX rm: <urn:rm#>\nSELECT DISTINCT ?s { ?s a rm:Purchase . } LIMIT 5 OFFSET 2", True),
        ("select * { ?s <urn:p> <urn:o> }", True),
        ("SELECT * { ?s ?p ?o }", False),  # a full scan: through the timeout
        ("SELECT ?s { ?s a <urn:C> . ?s ?p ?o }", False),
        ("SELECT ?s { ?s a <urn:C> } ORDER BY ?s", False),
        ("SELECT (COUNT(*) AS ?n) { <urn:x> ?p ?o }", False),
        ("SELECT ?o { <urn:x> ?p ?o # }\n ?o ?q ?r }", False),
        ("SELECT ?o { <urn:x> <urn:p>+ ?o }", False),
        ("SELECT ?o { GRAPH ?g { <urn:x> ?p ?o } }", False),
        ("ASK { <urn:x> ?p ?o }", False),
    ],
)
def test_only_bounded_single_lookups_skip_the_timeout_hand_off(query: str, lookup: bool) -> None:
    assert is_single_lookup(query) is lookup


def test_iris_of_expands_prefixed_names() -> None:
    update = """PREFIX : <http://example.org/> PREFIX r: <urn:relmark:>
    INSERT DATA { GRAPH :g { :a :b "<urn:relmark:ontology>" } } ; DROP GRAPH r:shapes"""
    iris = iris_of(update)
    assert {"http://example.org/g", "http://example.org/a", "urn:relmark:shapes"} <= iris
    assert "urn:relmark:ontology" not in iris  # only inside a string


def test_may_write_any_graph() -> None:
    assert may_write_any_graph("DELETE WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert may_write_any_graph("CLEAR ALL")
    assert not may_write_any_graph("INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> 'GRAPH ?x' } }")
    # an IRI that spells a keyword is no keyword (IRIs are blanked before looking)
    assert not may_write_any_graph("INSERT DATA { GRAPH <urn:ALL> { <urn:NAMED> <urn:b> 1 } }")


@pytest.mark.parametrize("padding", [0, 20_000])  # a text kept, and one too long to keep
def test_masked_text_keeps_positions_and_blanks_iris_strings_and_comments(padding: int) -> None:
    query = "# SELECT in a comment\n" + " " * padding + 'ASK { <urn:SELECT> ?p "DESCRIBE {" }'
    for _ in range(2):  # the second reading may be the kept one: the same
        code = masked(query)
        assert len(code) == len(query)
        assert code.split() == ["ASK", "{", "?p", "}"]
        assert query_form(query) == "ASK"
        assert code_only(query).split() == ["ASK", "{", "<urn:SELECT>", "?p", "}"]


def test_relative_iris_resolve_against_the_endpoint_url(relmark_server: RelmarkServer) -> None:
    """Issue 16: relative IRIs in a query or update resolve against the endpoint's URL."""
    client = SPARQLWrapper(relmark_server.sparql)
    client.setQuery("CONSTRUCT { <s> <p> 1 } WHERE {}")
    client.setReturnFormat(TURTLE)
    graph = rdflib.Graph().parse(data=client.queryAndConvert(), format="turtle")
    assert {str(s) for s in graph.subjects()} == {relmark_server.url + "/s"}
    response = requests.post(
        relmark_server.sparql,
        data={"update": "INSERT DATA { GRAPH <relative-graph> { <s> <p> 'x' } }"},
        headers=relmark_server.auth,
        timeout=30,
    )
    assert response.status_code == 204, response.text
    graph_iri = relmark_server.url + "/relative-graph"
    rows = get(relmark_server, f"SELECT ?s FROM <{graph_iri}> WHERE {{ ?s ?p 'x' }}").json()
    assert [r["s"]["value"] for r in rows["results"]["bindings"]] == [relmark_server.url + "/s"]
    requests.post(
        relmark_server.sparql,
        data={"update": "DROP GRAPH <relative-graph>"},
        headers=relmark_server.auth,
        timeout=30,
    ).raise_for_status()
