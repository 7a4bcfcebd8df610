"""The Graph Store HTTP Protocol at /data, over a real ``relmark serve``.

Spec: https://www.w3.org/TR/sparql11-http-rdf-update/ — GET/PUT/POST/DELETE/HEAD on
``?graph=`` and ``?default``, writes validated against the shapes and guarded by the token.
"""

from __future__ import annotations

from decimal import Decimal

import pyoxigraph as ox
import pytest
import rdflib
import requests
from rdflib.compare import isomorphic
from support.backends import ALL_SERVERS
from support.server import DEMO_GRAPH_PREFIX, RDF_TYPES, SERVER_MAX_BODY, RelmarkServer

from relmark.vocab import DEMO, RM, demo_paths

#: Every test that takes ``relmark_server`` runs on each back end (tests/conftest.py).
SERVER_BACKENDS = ALL_SERVERS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")

BANK = DEMO + "banca-lariana"
BANK_GRAPH = DEMO_GRAPH_PREFIX + "bank"

PERSON_TTL = f"""@prefix rm: <{RM}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<{DEMO}gsp-anna> a rm:Person ; rdfs:label "Anna GSP" .
"""
NAMELESS_TTL = f"""@prefix rm: <{RM}> .
<{DEMO}gsp-nameless> a rm:Person .
"""


def by_value(graph: rdflib.Graph) -> rdflib.Graph:
    """The graph with xsd:decimal literals in canonical form.

    pyoxigraph stores a decimal by its value, so "1200.00" comes back as "1200": the same
    RDF literal value, another lexical form. Every other term must round-trip exactly.
    """
    canonical = rdflib.Graph()
    for s, p, o in graph:
        if isinstance(o, rdflib.Literal) and isinstance(o.value, Decimal):
            o = rdflib.Literal(format(o.value.normalize(), "f"), datatype=o.datatype)
        canonical.add((s, p, o))
    return canonical


def same_graph(a: rdflib.Graph, b: rdflib.Graph) -> bool:
    return isomorphic(by_value(a), by_value(b))


def demo_file(name: str) -> bytes:
    (path,) = [p for p in demo_paths() if p.stem == name]
    return path.read_bytes()


def put(server: RelmarkServer, graph: str, body: bytes, content_type: str = "text/turtle", **kw):
    headers = {"Content-Type": content_type, **server.auth, **kw.pop("headers", {})}
    return requests.put(
        server.data, params={"graph": graph}, data=body, headers=headers, timeout=60
    )


def post(server: RelmarkServer, graph: str, body: bytes, content_type: str = "text/turtle"):
    headers = {"Content-Type": content_type, **server.auth}
    return requests.post(
        server.data, params={"graph": graph}, data=body, headers=headers, timeout=60
    )


def fetch(server: RelmarkServer, graph: str, accept: str | None = None) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    return requests.get(server.data, params={"graph": graph}, headers=headers, timeout=60)


def count_quads(server: RelmarkServer) -> int:
    response = requests.get(
        server.sparql,
        params={"query": "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"},
        timeout=30,
    )
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


# --- the round trip ----------------------------------------------------------------------------
def test_round_trip(relmark_server: RelmarkServer) -> None:
    graph = "urn:relmark:data:gsp-round-trip"
    brand = demo_file("brand")
    expected = rdflib.Graph().parse(data=brand, format="turtle")

    created = put(relmark_server, graph, brand)
    assert created.status_code == 201, created.text
    back = fetch(relmark_server, graph)
    assert back.status_code == 200
    assert back.headers["Content-Type"].startswith("text/turtle")
    assert same_graph(rdflib.Graph().parse(data=back.text, format="turtle"), expected)

    replaced = put(relmark_server, graph, brand)
    assert replaced.status_code == 204
    again = rdflib.Graph().parse(data=fetch(relmark_server, graph).text, format="turtle")
    assert same_graph(again, expected)  # replaced, not doubled

    added = post(relmark_server, graph, PERSON_TTL.encode())
    assert added.status_code == 204, added.text
    grown = rdflib.Graph().parse(data=fetch(relmark_server, graph).text, format="turtle")
    assert len(grown) == len(expected) + 2
    assert (
        rdflib.URIRef(DEMO + "gsp-anna"),
        rdflib.RDFS.label,
        rdflib.Literal("Anna GSP"),
    ) in grown

    head = requests.head(relmark_server.data, params={"graph": graph}, timeout=30)
    assert head.status_code == 200
    assert head.headers["Content-Type"].startswith("text/turtle")
    assert head.content == b""

    deleted = requests.delete(
        relmark_server.data, params={"graph": graph}, headers=relmark_server.auth, timeout=30
    )
    assert deleted.status_code == 204
    assert fetch(relmark_server, graph).status_code == 404
    assert (
        requests.head(relmark_server.data, params={"graph": graph}, timeout=30).status_code == 404
    )
    again = requests.delete(
        relmark_server.data, params={"graph": graph}, headers=relmark_server.auth, timeout=30
    )
    assert again.status_code == 404
    assert again.json()["error"] == "no such graph"


@pytest.mark.parametrize("media_type", list(RDF_TYPES))
def test_get_in_every_rdf_format(relmark_server: RelmarkServer, media_type: str) -> None:
    response = fetch(relmark_server, BANK_GRAPH, accept=media_type)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == media_type
    dataset = rdflib.Dataset()
    dataset.parse(data=response.content, format=RDF_TYPES[media_type])
    expected = rdflib.Graph().parse(data=demo_file("bank"), format="turtle")
    got = rdflib.Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        got.add((s, p, o))
    assert same_graph(got, expected)


@pytest.mark.parametrize("media_type", ["application/n-triples", "application/ld+json"])
def test_put_in_other_formats(relmark_server: RelmarkServer, media_type: str) -> None:
    graph = f"urn:relmark:data:gsp-{RDF_TYPES[media_type]}"
    source = rdflib.Graph().parse(data=PERSON_TTL, format="turtle")
    body = source.serialize(format=RDF_TYPES[media_type]).encode()
    response = put(relmark_server, graph, body, content_type=media_type)
    assert response.status_code == 201, response.text
    back = rdflib.Graph().parse(data=fetch(relmark_server, graph).text, format="turtle")
    assert isomorphic(back, source)


def test_get_whole_dataset(relmark_server: RelmarkServer) -> None:
    response = requests.get(
        relmark_server.data, headers={"Accept": "application/n-quads"}, timeout=60
    )
    assert response.status_code == 200
    # pyoxigraph, not rdflib: the provenance graph holds RDF 1.2 triple terms (DESIGN §5)
    dataset = ox.Dataset(ox.parse(response.content, format=ox.RdfFormat.N_QUADS))
    label = ox.Quad(
        ox.NamedNode(BANK),
        ox.NamedNode(str(rdflib.RDFS.label)),
        ox.Literal("Banca Lariana"),
        ox.NamedNode(BANK_GRAPH),
    )
    assert label in set(dataset.quads_for_subject(ox.NamedNode(BANK)))
    response = requests.get(relmark_server.data, headers={"Accept": "text/turtle"}, timeout=60)
    assert response.status_code == 406  # Turtle cannot hold named graphs
    assert "application/trig" in response.json()["detail"]
    assert "text/turtle" not in response.json()["detail"]
    response = requests.get(
        relmark_server.data, headers={"Accept": "text/turtle, application/trig;q=0.5"}, timeout=60
    )
    assert response.headers["Content-Type"].startswith("application/trig")


def test_default_graph(relmark_server: RelmarkServer) -> None:
    body = b'<urn:relmark:test:s> <urn:relmark:test:p> "in the default graph" .\n'
    put_response = requests.put(
        relmark_server.data + "?default",
        data=body,
        headers={"Content-Type": "application/n-triples", **relmark_server.auth},
        timeout=30,
    )
    assert put_response.status_code == 204, put_response.text
    got = requests.get(
        relmark_server.data + "?default", headers={"Accept": "application/n-triples"}, timeout=30
    )
    assert got.status_code == 200
    assert isomorphic(
        rdflib.Graph().parse(data=got.text, format="nt"),
        rdflib.Graph().parse(data=body, format="nt"),
    )
    cleared = requests.delete(
        relmark_server.data + "?default", headers=relmark_server.auth, timeout=30
    )
    assert cleared.status_code == 204
    got = requests.get(
        relmark_server.data + "?default", headers={"Accept": "application/n-triples"}, timeout=30
    )
    assert got.status_code == 200 and got.text.strip() == ""


def test_post_to_the_store_creates_a_graph(relmark_server: RelmarkServer) -> None:
    response = requests.post(
        relmark_server.data,
        data=PERSON_TTL.encode(),
        headers={"Content-Type": "text/turtle", **relmark_server.auth},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    graph = response.json()["graph"]
    assert graph.startswith("urn:relmark:data:")
    located = requests.get(response.headers["Location"], timeout=30)
    assert located.status_code == 200
    assert "Anna GSP" in located.text
    requests.delete(
        relmark_server.data, params={"graph": graph}, headers=relmark_server.auth, timeout=30
    )


# --- refusals ----------------------------------------------------------------------------------
def test_invalid_data_is_422_and_nothing_is_written(relmark_server: RelmarkServer) -> None:
    before = count_quads(relmark_server)
    response = put(relmark_server, "urn:relmark:data:gsp-invalid", NAMELESS_TTL.encode())
    assert response.status_code == 422, response.text
    body = response.json()
    assert "gsp-nameless" in str(body["report"])
    assert fetch(relmark_server, "urn:relmark:data:gsp-invalid").status_code == 404
    # POST into an existing graph is checked together with what the graph already holds
    response = post(relmark_server, BANK_GRAPH, NAMELESS_TTL.encode())
    assert response.status_code == 422
    assert count_quads(relmark_server) == before


def test_parse_error_is_400_with_line_and_column(relmark_server: RelmarkServer) -> None:
    body = (
        b"@prefix rm: <https://w3id.org/relmark/ontology#> .\n"
        b"<urn:a> a rm:Person ;\n"
        b'  <urn:b> "unterminated .\n'
    )
    response = put(relmark_server, "urn:relmark:data:gsp-broken", body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "the request body does not parse"
    assert error["where"].split(":")[0] == "3"
    assert fetch(relmark_server, "urn:relmark:data:gsp-broken").status_code == 404


def test_unknown_content_type_is_415(relmark_server: RelmarkServer) -> None:
    response = put(relmark_server, "urn:relmark:data:gsp-x", b"x", content_type="image/png")
    assert response.status_code == 415
    assert "text/turtle" in response.json()["detail"]


def test_body_naming_other_graphs_is_400(relmark_server: RelmarkServer) -> None:
    body = b"<urn:a> <urn:b> <urn:c> <urn:relmark:data:elsewhere> .\n"
    response = put(
        relmark_server, "urn:relmark:data:gsp-x", body, content_type="application/n-quads"
    )
    assert response.status_code == 400
    assert "other graphs" in response.json()["error"]


def test_writes_need_the_token(relmark_server: RelmarkServer) -> None:
    for method in (requests.put, requests.post, requests.delete):
        response = method(
            relmark_server.data,
            params={"graph": BANK_GRAPH},
            data=PERSON_TTL.encode(),
            headers={"Content-Type": "text/turtle"},
            timeout=30,
        )
        assert response.status_code == 401, method
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = put(
        relmark_server, BANK_GRAPH, PERSON_TTL.encode(), headers={"Authorization": "Bearer no"}
    )
    assert wrong.status_code == 401
    assert fetch(relmark_server, BANK_GRAPH).status_code == 200  # untouched


@pytest.mark.parametrize(
    "graph",
    [
        "urn:relmark:ontology",
        "urn:relmark:shapes",
        "urn:relmark:config",
        "urn:relmark:inferred",
        "urn:relmark:provenance",
        "urn:relmark:meta",
    ],
)
def test_system_graphs_are_read_only(relmark_server: RelmarkServer, graph: str) -> None:
    assert put(relmark_server, graph, PERSON_TTL.encode()).status_code == 403
    assert post(relmark_server, graph, PERSON_TTL.encode()).status_code == 403
    response = requests.delete(
        relmark_server.data, params={"graph": graph}, headers=relmark_server.auth, timeout=30
    )
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]


def test_system_graphs_can_be_read(relmark_server: RelmarkServer) -> None:
    response = fetch(relmark_server, "urn:relmark:ontology")
    assert response.status_code == 200
    ontology = rdflib.Graph().parse(data=response.text, format="turtle")
    assert (rdflib.URIRef(RM + "Person"), rdflib.RDF.type, rdflib.OWL.Class) in ontology


def test_bad_graph_parameters_are_400(relmark_server: RelmarkServer) -> None:
    both = requests.get(relmark_server.data + "?default&graph=urn:x", timeout=30)
    assert both.status_code == 400
    relative = requests.get(relmark_server.data, params={"graph": "not an iri"}, timeout=30)
    assert relative.status_code == 400
    put_nowhere = requests.put(
        relmark_server.data,
        data=b"",
        headers={"Content-Type": "text/turtle", **relmark_server.auth},
        timeout=30,
    )
    assert put_nowhere.status_code == 400


def test_not_acceptable_is_406(relmark_server: RelmarkServer) -> None:
    response = fetch(relmark_server, BANK_GRAPH, accept="application/sparql-results+json")
    assert response.status_code == 406


def test_body_too_large_is_413(relmark_server: RelmarkServer) -> None:
    body = b"# " + b"x" * (SERVER_MAX_BODY + 1) + b"\n"
    response = put(relmark_server, "urn:relmark:data:gsp-big", body)
    assert response.status_code == 413
    assert response.json()["error"] == "request entity too large"


def test_cors_on_reads_not_on_writes(relmark_server: RelmarkServer) -> None:
    assert fetch(relmark_server, BANK_GRAPH).headers["Access-Control-Allow-Origin"] == "*"
    response = put(relmark_server, "urn:relmark:data:gsp-cors", PERSON_TTL.encode())
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response.headers
