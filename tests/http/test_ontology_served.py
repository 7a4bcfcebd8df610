"""The ontology at its own IRI: HTML for browsers, the merged ontology files in Turtle,
RDF/XML, JSON-LD and N-Triples for clients that ask, downloads, the version IRI, and the
w3id.org redirect rules (w3id/.htaccess) landing on routes that answer in the format asked.

In-process (Flask's test client over a temporary store): what is checked is routing,
negotiation and serialisation, which no socket changes; rdflib, not pyoxigraph, reads the
answers, so a serialisation only relmark's own parser accepts would fail here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import rdflib
from flask import Flask
from flask.testing import FlaskClient
from rdflib.namespace import RDFS, SKOS
from support.paths import ROOT

from relmark.settings import Settings
from relmark.vocab import RM
from relmark.web import close_app, create_app

HTACCESS = ROOT / "w3id" / ".htaccess"
BASE = "https://relmark.example.org"
CUSTOMER = rdflib.URIRef(RM + "Customer")
ONTOLOGY = rdflib.URIRef(RM.rstrip("#"))

#: media type → (rdflib parser name, extension of the download)
FORMATS = {
    "text/turtle": ("turtle", "ttl"),
    "application/rdf+xml": ("xml", "rdf"),
    "application/ld+json": ("json-ld", "jsonld"),
    "application/n-triples": ("nt", "nt"),
}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app(Settings(store=str(tmp_path_factory.mktemp("served") / "store")))
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def parsed(body: bytes, media_type: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=body, format=FORMATS[media_type][0])
    return graph


def assert_is_the_ontology(graph: rdflib.Graph) -> None:
    """rm:Customer's labels (rm.ttl) and its Italian definition (rm-it.ttl): all files."""
    assert (CUSTOMER, RDFS.label, rdflib.Literal("customer", lang="en")) in graph
    assert (CUSTOMER, RDFS.label, rdflib.Literal("cliente", lang="it")) in graph
    italian = [d for d in graph.objects(CUSTOMER, SKOS.definition) if d.language == "it"]
    assert italian, "rm-it.ttl is not merged into the document"
    assert (ONTOLOGY, rdflib.OWL.versionIRI, None) in graph
    cited = rdflib.URIRef("https://w3id.org/relmark/references#fournier-1998")
    assert (cited, rdflib.DCTERMS.bibliographicCitation, None) in graph  # references.ttl


# --- content negotiation at /ontology ---------------------------------------------------


@pytest.mark.parametrize("media_type", FORMATS)
def test_each_format_by_accept_parses_and_holds_the_ontology(client, media_type):
    response = client.get("/ontology", headers={"Accept": media_type})
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert "Accept" in response.headers["Vary"]
    assert_is_the_ontology(parsed(response.data, media_type))


@pytest.mark.parametrize("media_type", FORMATS)
def test_each_format_by_name_and_by_extension_is_the_same_document(client, media_type):
    _, ext = FORMATS[media_type]
    by_accept = client.get("/ontology", headers={"Accept": media_type}).data
    by_name = client.get(f"/ontology?format={ext}", headers={"Accept": BROWSER})
    download = client.get(f"/ontology.{ext}")
    for response in (by_name, download):
        assert response.status_code == 200 and response.mimetype == media_type
        assert response.data == by_accept
    assert re.fullmatch(
        rf'attachment; filename="relmark-\d+\.\d+\.\d+\.{ext}"',
        download.headers["Content-Disposition"],
    )


def test_browsers_get_the_page_with_download_links_and_term_anchors(client):
    for accept in ("text/html", BROWSER, None):
        response = client.get("/ontology", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for _, ext in FORMATS.values():
        assert f'href="/ontology.{ext}"' in page
    # …/ontology#Customer and …/ontology#inMarketOf land on their entries.
    assert page.count('id="Customer"') == 1
    assert 'id="inMarketOf"' in page
    assert "https://w3id.org/relmark/ontology/0.2.0" in page


def test_html_preferred_by_q_value_wins_over_turtle(client):
    response = client.get("/ontology", headers={"Accept": "text/turtle;q=0.5, text/html"})
    assert response.mimetype == "text/html"
    response = client.get("/ontology", headers={"Accept": "text/turtle, text/html;q=0.5"})
    assert response.mimetype == "text/turtle"


@pytest.mark.parametrize(
    "accept", ["image/png", "application/sparql-results+json", "text/csv, image/*"]
)
def test_an_unsupported_accept_is_406_naming_the_formats(client, accept):
    response = client.get("/ontology", headers={"Accept": accept})
    assert response.status_code == 406
    assert "application/rdf+xml" in response.get_data(as_text=True)


def test_a_format_name_the_ontology_is_not_offered_in_is_406_and_an_unknown_one_400(client):
    assert client.get("/ontology?format=trig").status_code == 406
    assert client.get("/ontology?format=nonsense").status_code == 400
    assert client.get("/ontology.xls").status_code == 404


def test_the_version_iri_answers_and_other_versions_do_not(client):
    response = client.get("/ontology/0.2.0", headers={"Accept": "text/turtle"})
    assert response.status_code == 200 and response.mimetype == "text/turtle"
    assert_is_the_ontology(parsed(response.data, "text/turtle"))
    assert client.get("/ontology/0.2.0", headers={"Accept": "text/html"}).mimetype == "text/html"
    download = client.get("/ontology/0.2.0.nt")
    assert download.mimetype == "application/n-triples"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert client.get("/ontology/0.1.0").status_code == 404
    assert client.get("/ontology/0.1.0.ttl").status_code == 404
    # the term pages are still there, not taken for versions
    assert client.get("/ontology/class?iri=rm:Customer").status_code == 200


def test_a_download_is_revalidated_by_its_etag(client):
    first = client.get("/ontology.ttl")
    assert first.headers["ETag"]
    again = client.get("/ontology.ttl", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    other = client.get("/ontology.nt", headers={"If-None-Match": first.headers["ETag"]})
    assert other.status_code == 200


# --- the w3id.org rules --------------------------------------------------------------------

_COND = re.compile(r"^RewriteCond\s+%\{HTTP_ACCEPT\}\s+(\S+)(?:\s+\[(\w+)\])?$")
_RULE = re.compile(r"^RewriteRule\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]$")


def rewrite_rules() -> list[tuple[list[str], re.Pattern, str]]:
    """The .htaccess as (Accept conditions ORed, path pattern, target) in file order.

    Only the constructs the file uses are read (Accept conditions, all ``[OR]``-joined
    within a rule, and ``[R=303,L]`` rules); anything else there fails the test, so the
    simulation below cannot silently differ from Apache's.
    """
    rules, conditions = [], []
    for raw in HTACCESS.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("Header ", "Options ", "RewriteEngine ")):
            continue
        if match := _COND.match(line):
            conditions.append(match.group(1))
            continue
        match = _RULE.match(line)
        assert match, f"a line the test does not understand: {line}"
        assert {"R=303", "L"} <= set(match.group(3).split(",")), line
        rules.append((conditions, re.compile(match.group(1)), match.group(2)))
        conditions = []
    return rules


def redirect(path: str, accept: str) -> str:
    """Where w3id.org sends ``https://w3id.org/relmark/<path>`` for this Accept header."""
    for conditions, pattern, target in rewrite_rules():
        match = pattern.search(path)
        if match and (not conditions or any(re.search(c, accept) for c in conditions)):
            return match.expand(target.replace("$", "\\"))
    raise AssertionError(f"no rule for {path!r}")


def test_every_rule_targets_a_route_of_relmark(app):
    adapter = app.url_map.bind("localhost")
    targets = [target for _, _, target in rewrite_rules()]
    assert len(targets) >= 10
    for target in targets:
        assert target.startswith(BASE + "/"), target
        path = re.sub(r"\$\d", "0.2.0", target[len(BASE) :]).split("?", 1)[0]
        endpoint, _ = adapter.match(path, method="GET")
        assert endpoint.startswith("browse."), (target, endpoint)


@pytest.mark.parametrize("media_type", FORMATS)
@pytest.mark.parametrize("iri_path", ["ontology", "ontology/0.2.0", "references"])
def test_w3id_sends_each_accept_header_to_that_format(client, iri_path, media_type):
    target = redirect(iri_path, media_type)
    response = client.get(target[len(BASE) :], headers={"Accept": media_type})
    assert response.status_code == 200, target
    assert response.mimetype == media_type, target
    assert_is_the_ontology(parsed(response.data, media_type))


def test_w3id_sends_browsers_to_the_pages(client):
    for iri_path, expected in (
        ("ontology", "/ontology"),
        ("ontology/0.2.0", "/ontology/0.2.0"),
        ("", "/"),
    ):
        target = redirect(iri_path, BROWSER)
        assert target == BASE + expected
        response = client.get(target[len(BASE) :], headers={"Accept": BROWSER})
        assert response.status_code == 200 and response.mimetype == "text/html", target
    demo = redirect("demo/banca-lariana", BROWSER)
    assert demo == BASE + "/resource?iri=https://w3id.org/relmark/demo/banca-lariana"
