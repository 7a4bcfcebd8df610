"""``POST /api/classify``: classify a hypothetical record without writing anything.

Run on a live server with one process and with two workers (where the store is a
snapshot replica); the store must be the same before and after: same quad count, and the
hypothetical statements are not in it (SPARQL ASK through /sparql).
"""

from __future__ import annotations

import json

import pytest
import requests
from support.server import RelmarkServer

from relmark.reasoning.whatif import WHAT_IF_GRAPH
from relmark.vocab import DEMO, RM

SUPPORTER = DEMO + "cr-elisa-mariani"
REFERRAL = DEMO + "ref-what-if-elisa"

PREFIXES = """\
@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix demo: <https://w3id.org/relmark/demo/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""
A_REFERRAL = (
    PREFIXES
    + """
demo:ref-what-if-elisa a rm:Referral ;
    rm:referrer demo:elisa-mariani ;
    rm:referredTo demo:banca-lariana ;
    rm:referredParty demo:marta-sala ;
    rm:interactionDate "2026-11-20"^^xsd:date .
"""
)
A_REFERRAL_JSONLD = {
    "@context": {"rm": RM, "demo": DEMO},
    "@id": "demo:ref-what-if-elisa",
    "@type": "rm:Referral",
    "rm:referrer": {"@id": "demo:elisa-mariani"},
    "rm:referredTo": {"@id": "demo:banca-lariana"},
    "rm:referredParty": {"@id": "demo:marta-sala"},
    "rm:interactionDate": {
        "@value": "2026-11-20",
        "@type": "http://www.w3.org/2001/XMLSchema#date",
    },
}
ASK_REFERRAL = f"ASK {{ GRAPH ?g {{ <{REFERRAL}> ?p ?o }} }}"


def what_if(
    server: RelmarkServer, body: str | bytes, content_type: str = "text/turtle", **params: str
) -> requests.Response:
    return requests.post(
        server.url + "/api/classify",
        params=params,
        data=body.encode() if isinstance(body, str) else body,
        headers={"Content-Type": content_type},
        timeout=60,
    )


def store_state(server: RelmarkServer) -> tuple[int, bool]:
    """The quad count (/healthz) and whether the hypothetical referral is stored (ASK)."""
    health = requests.get(server.url + "/healthz", timeout=30).json()
    ask = requests.get(
        server.sparql,
        params={"query": ASK_REFERRAL},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    assert ask.status_code == 200, ask.text
    return health["triples"], ask.json()["boolean"]


def classes(answer: dict) -> dict[str, dict]:
    return {entry["class"]: entry for entry in answer["classes"]}


def test_a_hypothetical_referral_makes_a_supporter_an_advocate(relmark_server: RelmarkServer):
    before = store_state(relmark_server)
    assert before[1] is False
    response = what_if(relmark_server, A_REFERRAL, iri=SUPPORTER)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["hypothetical"] is True and answer["iri"] == SUPPORTER
    entries = classes(answer)
    assert entries[RM + "Advocate"]["status"] == "inferred"
    assert entries[RM + "Advocate"]["rule"] == "ladder-advocate"
    assert entries[RM + "Advocate"]["why"]
    assert RM + "Supporter" not in entries
    assert entries[RM + "CustomerRelationship"]["status"] == "asserted"
    assert answer["gained"] == [RM + "Advocate"]
    assert answer["lost"] == [RM + "Supporter"]
    # nothing was written: same quads, no referral, and the stored answer is unchanged
    assert store_state(relmark_server) == before
    stored = requests.get(
        relmark_server.url + "/api/classify", params={"iri": SUPPORTER}, timeout=30
    ).json()
    assert RM + "Supporter" in classes(stored) and RM + "Advocate" not in classes(stored)


def test_json_ld_and_every_subject_of_the_record(relmark_server: RelmarkServer):
    before = store_state(relmark_server)
    response = what_if(relmark_server, json.dumps(A_REFERRAL_JSONLD), "application/ld+json")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["iri"] for r in answer["resources"]] == [REFERRAL]
    referral = answer["resources"][0]
    entries = classes(referral)
    assert entries[RM + "Referral"]["status"] == "asserted"
    assert entries[RM + "Referral"]["graphs"] == [WHAT_IF_GRAPH]
    assert referral["gained"] == sorted(entries)
    assert referral["lost"] == []
    assert store_state(relmark_server) == before


def test_the_referral_also_puts_the_referrer_in_the_referral_market(
    relmark_server: RelmarkServer,
):
    response = what_if(relmark_server, A_REFERRAL, iri=DEMO + "elisa-mariani")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer["gained"]) == {RM + "ReferralMarket", RM + "ReferralSource"}
    assert classes(answer)[RM + "ReferralMarket"]["rule"] == "market-referral"


def test_malformed_rdf_is_400_with_line_and_column(relmark_server: RelmarkServer):
    body = PREFIXES + "demo:x a rm:Referral ;\n    rm:referrer demo:elisa-mariani ,, .\n"
    response = what_if(relmark_server, body, iri=SUPPORTER)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == "the request body does not parse"
    line, column = error["where"].split(":")
    assert int(line) == 5 and int(column) > 0


def test_a_record_violating_the_shapes_is_422_with_the_report(relmark_server: RelmarkServer):
    before = store_state(relmark_server)
    body = PREFIXES + (
        "demo:ref-no-referrer a rm:Referral ; rm:referredTo demo:banca-lariana ;\n"
        '    rm:interactionDate "2026-11-20"^^xsd:date .\n'
    )
    response = what_if(relmark_server, body, iri=SUPPORTER)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["report"]["conforms"] is False
    paths = {result["path"] for result in error["report"]["results"]}
    assert any("referrer" in str(path) for path in paths), error["report"]
    assert store_state(relmark_server) == before


@pytest.mark.parametrize(
    ("content_type", "params", "status"),
    [
        ("application/pdf", {"iri": SUPPORTER}, 415),
        ("text/turtle", {"iri": DEMO + "nobody"}, 404),
    ],
)
def test_errors(relmark_server: RelmarkServer, content_type: str, params: dict, status: int):
    response = what_if(relmark_server, A_REFERRAL, content_type, **params)
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_no_token_needed_and_no_scratch_left_behind(relmark_server: RelmarkServer):
    response = what_if(relmark_server, A_REFERRAL, iri=SUPPORTER)
    assert response.status_code == 200, response.text
    leftovers = list(relmark_server.store.parent.glob(".relmark-what-if-*"))
    assert leftovers == []
