"""The HTML pages over HTTP, without a browser: what each page says about the demo data,
the resource page's content negotiation, the forms that work without JavaScript.

Expected answers come from the knowledge files (rdflib) or from /sparql, never from the
page code itself. In-process (the ``client`` fixture on the demo data): what is tested is
what the pages say, which a subprocess would add nothing to. The browser-driven checks, on a
real server, are in ``tests/e2e/test_browser.py``.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import rdflib
from flask.testing import FlaskClient
from rdflib.namespace import OWL, RDF, RDFS, SKOS
from support.browse_support import ADVOCATE, ADVOCATE_RELATIONSHIP, BANK
from werkzeug.test import TestResponse

from relmark.vocab import DEMO, RM, VENDOR_DIR

RMNS = rdflib.Namespace(RM)


def linked(page: str, path: str, param: str = "iri") -> list[str]:
    """The ``param`` values of the links to ``path`` on a page, in page order."""
    found = []
    for href in re.findall(r'href="([^"]+)"', page):
        url = urlsplit(html.unescape(href))
        if url.path == path:
            found += parse_qs(url.query).get(param, [])
    return found


def get(
    client: FlaskClient,
    path: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    return client.get(path, query_string=params, headers=headers)


def sparql_select(client: FlaskClient, query: str) -> list[dict[str, str]]:
    """Rows of a SELECT through /sparql: the oracle the pages are compared with."""
    prefixes = f"PREFIX rm: <{RM}>\nPREFIX demo: <{DEMO}>\n"
    response = client.post(
        "/sparql",
        data={"query": prefixes + query},
        headers={"Accept": "application/sparql-results+json"},
    )
    assert response.status_code == 200, response.text
    return [
        {name: cell["value"] for name, cell in row.items()}
        for row in response.get_json()["results"]["bindings"]
    ]


def text_of(page: str) -> str:
    """The page as plain text, one space between words."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def title_of(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    assert found, "the page has no <title>"
    return html.unescape(found[1]).strip()


def subjects_of_kind(demo_graph: rdflib.Graph, ontology_graph: rdflib.Graph, cls: str) -> int:
    classes = set(ontology_graph.transitive_subjects(RDFS.subClassOf, RMNS[cls]))
    return len({s for s, _, t in demo_graph.triples((None, RDF.type, None)) if t in classes})


# --- home, search -----------------------------------------------------------------------------
def test_home_counts_the_demo_data(client, demo_graph, ontology_graph):
    page = get(client, "/").text
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', page))
    inferred = sparql_select(
        client,
        "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <urn:relmark:inferred> { ?s a ?c } }",
    )[0]["n"]
    assert counts == {
        "stakeholders": str(subjects_of_kind(demo_graph, ontology_graph, "Stakeholder")),
        "relationships": str(subjects_of_kind(demo_graph, ontology_graph, "Relationship")),
        "interactions": str(subjects_of_kind(demo_graph, ontology_graph, "Interaction")),
        "inferred_classifications": inferred,
    }
    firms = set(linked(page, "/pictures", "firm"))
    assert firms == {str(s) for s in demo_graph.subjects(RDF.type, RMNS.FocalFirm)}


def test_search_finds_labels_in_both_languages(client):
    italian = get(client, "/search", params={"q": "promotore"}).text
    assert linked(italian, "/ontology/class") == [ADVOCATE]
    bank = get(client, "/search", params={"q": "banca lariana"}).text
    assert BANK in linked(bank, "/resource")
    nothing = get(client, "/search", params={"q": "zzz-no-such-label"}).text
    assert "Nothing found." in nothing


# --- ontology ---------------------------------------------------------------------------------
def test_class_tree_lists_every_class(client, ontology_graph):
    page = get(client, "/ontology").text
    in_tree = set(re.findall(r'<li data-iri="([^"]+)"', page))
    declared = {
        str(c) for c in ontology_graph.subjects(RDF.type, OWL.Class) if str(c).startswith(RM)
    }
    assert in_tree == declared


def test_language_follows_the_query_and_accept_language(client):
    url = "/ontology/class?iri=rm:Advocate"
    assert title_of(get(client, url).text) == "advocate · relmark"
    assert title_of(get(client, url + "&lang=it").text) == "promotore · relmark"
    italian = get(client, url, headers={"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"})
    assert title_of(italian.text) == "promotore · relmark"
    assert 'lang="it"' in italian.text
    # links on an Italian page keep the language
    assert "/ontology/class?iri=" in italian.text
    explicit = get(client, url + "&lang=it").text
    assert re.search(r'href="/ontology/class\?iri=[^"]+&amp;lang=it"', explicit)


def test_class_page_of_advocate(client):
    page = get(client, "/ontology/class", params={"iri": ADVOCATE}).text
    text = text_of(page)
    assert "promotore @it" in text and "advocate @en" in text
    # issue 18: an advocate is a customer who climbed the ladder (the definition says so)
    assert "Rung 5: a relationship with a customer who has climbed the ladder" in text
    assert "ladder-advocate" in text  # the rule that infers it, with its why
    # (its why, since issue 18: repeat purchases as well as a recommendation)
    assert "A customer who has bought from the firm repeatedly and has actively recommended" in text
    inferred = sparql_select(
        client,
        "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { GRAPH <urn:relmark:inferred> "
        "{ ?s a rm:Advocate } }",
    )[0]["n"]
    assert re.search(r'data-count="inferred">' + inferred + "<", page)
    assert re.search(r'data-count="asserted">0<', page)
    assert re.search(r"Superclasses.*?loyalty stage", text)


def test_the_rules_sources_are_citations_linked_to_their_doi(client):
    """A rule's ``# source:`` reaches the reader as the citation of references.ttl, linked
    to the DOI: on the class page under the rule, and on the explanation page."""
    fournier = "Fournier, S. (1998). Consumers and Their Brands"
    page = get(client, "/ontology/class", params={"iri": RM + "Enmity"}).text
    rules_part = page.split("fournier-enmity", 1)[1]
    cited = re.search(r'<p class="source">[^<]*<a href="([^"]+)"[^>]*>([^<]+)</a>', rules_part)
    assert cited and cited[1] == "https://doi.org/10.1086/209515"
    assert html.unescape(cited[2]).startswith(fournier)
    explanation = get(
        client,
        "/explain",
        params={"iri": DEMO + "voltaris-group", "class": RM + "GlobalAccount"},
    ).text
    shown = text_of(explanation)
    assert "Sources: Kotler, P. and Armstrong, G. (2018). Principles of Marketing" in shown
    assert "Sources: Relationship Marketing - Foundations for Relationship Strategy" in shown


def test_class_page_says_the_shapes_in_plain_words(client):
    page = text_of(get(client, "/ontology/class", params={"iri": RM + "Person"}).text)
    # the name shape is declared on rm:Stakeholder and reaches rm:Person
    assert (
        "at least 1 value(s); each a text or a text with a language tag; "
        "a violation rejects the data." in page
    )
    assert "inherited from stakeholder" in page
    italian = text_of(
        get(client, "/ontology/class", params={"iri": RM + "Person", "lang": "it"}).text
    )
    assert "almeno 1 valore/i; ciascuno un testo o un testo con tag di lingua" in italian


def test_property_page(client, ontology_graph):
    page = text_of(get(client, "/ontology/property?iri=rm:employedBy").text)
    assert "object property" in page
    domain = ontology_graph.value(RMNS.employedBy, RDFS.domain)
    assert f"Domain {ontology_graph.value(domain, RDFS.label)}" in page
    asserted = sparql_select(
        client,
        "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s rm:employedBy ?o } "
        "FILTER(STRSTARTS(STR(?g), 'urn:relmark:data:')) }",
    )[0]["n"]
    assert f"{asserted} asserted" in page


def test_thirty_r_groups_in_order(client, ontology_graph):
    page = get(client, "/ontology/thirty-r").text
    notations = re.findall(r"<td>(R\d+)</td>", page)
    assert notations == [f"R{n}" for n in range(1, 31)]
    groups = re.findall(r'<h2 id="g\d"><a [^>]+>([^<]+)</a>', page)
    assert groups == [
        "classic market relationships",
        "special market relationships",
        "mega relationships",
        "nano relationships",
    ]


def test_selling_steps_and_ladder_in_order(client, ontology_graph):
    steps = get(client, "/ontology/selling-steps", params={"lang": "it"}).text
    expected = sorted(
        (
            int(ontology_graph.value(s, RMNS.stepNumber)),
            str(ontology_graph.value(s, SKOS.prefLabel)),
        )
        for s in ontology_graph.subjects(RDF.type, RMNS.SellingStep)
        if ontology_graph.value(s, SKOS.prefLabel)
    )
    italian = {
        int(ontology_graph.value(s, RMNS.stepNumber)): str(label)
        for s in ontology_graph.subjects(RDF.type, RMNS.SellingStep)
        for label in ontology_graph.objects(s, RDFS.label)
        if label.language == "it"
    }
    assert len(expected) == 7
    assert re.findall(r"<strong>([^<]+)</strong>", steps) == [italian[n] for n in range(1, 8)]
    ladder = get(client, "/ontology/loyalty-ladder").text
    counts = {
        row["c"]: row["n"]
        for row in sparql_select(
            client,
            "SELECT ?c (COUNT(DISTINCT ?r) AS ?n) WHERE { ?r a ?c . ?c rm:stageRank ?k } "
            "GROUP BY ?c",
        )
    }
    rows = [
        (rank, linked(row, "/ontology/class")[0], n)
        for rank, row, n in re.findall(
            r"<tr><td>(\d)</td><td>(.*?)</td><td>.*?</td>\s*<td><a [^>]+>(\d+)</a></td></tr>",
            ladder,
            re.S,
        )
    ]
    stages = ["Partner", "Advocate", "Supporter", "Client", "Purchaser", "Prospect"]
    assert [(int(rank), iri) for rank, iri, _ in rows] == [
        (6 - i, RM + stage) for i, stage in enumerate(stages)
    ]
    assert {iri: n for _, iri, n in rows} == {
        RM + stage: counts.get(RM + stage, "0") for stage in stages
    }
    assert 'role="img"' in ladder and '<title id="funnel-title">' in ladder


def test_members_page_marks_inferred_members(client):
    page = get(client, "/ontology/members", params={"class": ADVOCATE}).text
    listed = set(linked(page, "/resource"))
    expected = {
        row["s"]
        for row in sparql_select(
            client, "SELECT ?s WHERE { GRAPH <urn:relmark:inferred> { ?s a rm:Advocate } }"
        )
    }
    assert listed == expected and ADVOCATE_RELATIONSHIP in listed


def test_unknown_pages_are_html_404(client):
    for path in ("/ontology/class?iri=rm:NoSuchClass", "/resource?iri=urn:x:nothing"):
        response = get(client, path)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<title>404 · relmark</title>" in response.text


# --- resources ----------------------------------------------------------------------------------
def _statements(client: FlaskClient, iri: str) -> set[tuple[str, str]]:
    rows = sparql_select(
        client,
        f"SELECT DISTINCT ?p ?o WHERE {{ GRAPH ?g {{ <{iri}> ?p ?o }} "
        "FILTER(?g != <urn:relmark:provenance>) }",
    )
    return {(row["p"], row["o"]) for row in rows}


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [("text/turtle", "turtle"), ("application/ld+json", "json-ld")],
)
def test_resource_negotiates_turtle_and_json_ld(client, accept, fmt):
    response = get(client, "/resource", params={"iri": BANK}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(accept)
    assert "Accept" in response.headers["Vary"]
    graph = rdflib.Graph().parse(data=response.text, format=fmt)
    assert {(str(p), str(o)) for s, p, o in graph} == _statements(client, BANK)
    assert {str(s) for s in graph.subjects()} == {BANK}


def test_resource_page_for_a_browser(client):
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = get(
        client,
        "/resource",
        params={"iri": ADVOCATE_RELATIONSHIP},
        headers={"Accept": browser_accept},
    )
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'rel="alternate"; type="text/turtle"' in response.headers["Link"]
    for fmt, media_type in (("turtle", "text/turtle"), ("jsonld", "application/ld+json")):
        twin = get(
            client,
            "/resource",
            params={"iri": ADVOCATE_RELATIONSHIP, "format": fmt},
            headers={"Accept": browser_accept},
        )
        assert twin.headers["Content-Type"].startswith(media_type)
    page = response.text
    # the inferred stage with its "why?", the asserted class, the other stages' "why not?"
    assert re.search(
        r'<details class="why" data-mode="why" data-iri="[^"]+" data-class="' + re.escape(ADVOCATE),
        page,
    )
    not_in = set(re.findall(r'data-mode="not" data-iri="[^"]+" data-class="([^"]+)"', page))
    assert not_in == {RM + s for s in ("Prospect", "Purchaser", "Client", "Supporter", "Partner")}
    text = text_of(page)
    assert "customer relationship rm:CustomerRelationship asserted" in text
    assert "advocate rm:Advocate inferred" in text
    # the no-JavaScript explanation page reaches asserted facts
    explanation = get(
        client, "/explain", params={"iri": ADVOCATE_RELATIONSHIP, "class": ADVOCATE}
    ).text
    assert explanation.count('class="leaf asserted"') >= 3
    why_not = get(
        client,
        "/explain",
        params={"iri": ADVOCATE_RELATIONSHIP, "class": RM + "Partner", "why": "not"},
    ).text
    api = get(
        client,
        "/api/explain",
        params={"iri": ADVOCATE_RELATIONSHIP, "class": RM + "Partner", "why": "not"},
    ).get_json()
    assert re.findall(r'<section class="candidate">\s*<h2>[^<]*<code>([^<]+)</code>', why_not) == [
        c["rule"] for c in api["candidates"]
    ]
    assert html.escape(api["nearest"], quote=False) in why_not


# --- query page without JavaScript ----------------------------------------------------------
def test_editor_form_answers_without_javascript(client):
    query = (
        "PREFIX rm: <https://w3id.org/relmark/ontology#> SELECT ?step ?n "
        "WHERE { ?step rm:stepNumber ?n } ORDER BY ?n"
    )
    page = get(client, "/query", params={"query": query}).text
    assert "(7 rows)" in page
    assert re.findall(r'<span class="literal">(\d)</span>', page) == [str(n) for n in range(1, 8)]
    broken = get(client, "/query", params={"query": "SELEKT nothing"})
    assert broken.status_code == 400
    assert 'role="alert">malformed query' in broken.text


def test_named_question_form_without_javascript(client):
    page = get(client, "/query").text
    assert 'id="q-clients-without-referral"' in page
    assert f'<option value="{BANK}"' in page  # the firm parameter offers the focal firms
    answer = get(client, "/query/named/clients-without-referral", params={"firm": BANK})
    assert answer.status_code == 200
    api = get(client, "/api/queries/clients-without-referral", params={"firm": BANK}).get_json()
    section = answer.text.split('id="q-clients-without-referral"')[1].split("</details>")[0]
    shown = linked(section.split('class="named-results"')[1], "/resource")
    expected = [row["relationship"]["value"] for row in api["rows"]]
    assert expected, "the demo has clients without referral"
    assert set(shown) >= set(expected)
    assert (
        "/api/queries/clients-without-referral?firm=" in answer.text and "format=csv" in answer.text
    )


# --- pictures and their data -----------------------------------------------------------------
def test_network_api_has_the_firms_stakeholders(client):
    data = get(client, "/api/network", params={"firm": BANK}).get_json()
    expected = {
        row["s"]
        for row in sparql_select(
            client,
            "SELECT DISTINCT ?s WHERE { { ?s rm:inMarketOf demo:banca-lariana } UNION "
            "{ ?r rm:focalParty demo:banca-lariana ; rm:counterparty ?s } UNION "
            "{ ?s rm:unitOf+ demo:banca-lariana } UNION { BIND(demo:banca-lariana AS ?s) } }",
        )
    }
    assert {n["id"] for n in data["nodes"]} == expected
    ids = {n["id"] for n in data["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in data["edges"])
    customers = {
        row["s"]
        for row in sparql_select(
            client, "SELECT ?s WHERE { ?s rm:inCustomerMarketOf demo:banca-lariana }"
        )
    }
    for node in data["nodes"]:
        if node["id"] in customers:
            assert node["market"] == "CustomerMarket"
    kinds = {e["kind"] for e in data["edges"]}
    assert {"CustomerRelationship", "Purchase", "employedBy"} <= kinds
    assert get(client, "/api/network", params={"firm": DEMO + "nobody"}).status_code == 404


def test_pictures_page_has_tables_and_svg_text(client):
    page = get(client, "/pictures", params={"firm": BANK}).text
    markets = {
        row["p"]: row["n"]
        for row in sparql_select(
            client,
            "SELECT ?p (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s ?p demo:banca-lariana "
            "VALUES ?p { rm:inCustomerMarketOf rm:inReferralMarketOf rm:inSupplierMarketOf "
            "rm:inRecruitmentMarketOf rm:inInfluenceMarketOf rm:inInternalMarketOf } } GROUP BY ?p",
        )
    }
    table = page.split('<table class="markets">')[1].split("</table>")[0]
    shown = re.findall(r"<td>(\d+)</td>", table)
    order = ["Customer", "Referral", "Supplier", "Recruitment", "Influence", "Internal"]
    assert shown == [markets.get(f"{RM}in{m}MarketOf", "0") for m in order]
    assert page.count('role="img"') == 3  # network, funnel, bars
    assert '<title id="bars-title">' in page and '<desc id="bars-desc">' in page


@pytest.mark.skipif(
    not (VENDOR_DIR / "cytoscape" / "dist" / "cytoscape.min.js").is_file(),
    reason="node_modules/ is not installed (`make npm-deps` runs `npm ci`)",
)
def test_vendor_route_serves_only_its_allow_list(client):
    script = get(client, "/vendor/cytoscape/dist/cytoscape.min.js")
    assert script.status_code == 200 and "cytoscape" in script.text[:2000]
    for path in ("/vendor/cytoscape/package.json", "/vendor/../pyproject.toml"):
        assert get(client, path).status_code == 404
