"""The named questions added with the concepts of the source texts (ontology 0.2.0), through
the real HTTP server: each answers its case and leaves out its near-miss.

The data is tests/e2e/seed_questions.ttl, PUT through the Graph Store Protocol into a fresh server
that holds nothing else, so the rules run on it as on any user's data. Each expectation is
written from the data by hand, with the reason for every row that must be absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.server import RelmarkServer, running_relmark

from relmark.queries import load_catalogue
from relmark.vocab import RM

DATA = Path(__file__).with_name("seed_questions.ttl")
EX = "https://w3id.org/relmark/demo/seedq-"
FIRM = EX + "firm"

#: The questions this file covers: the ones without a number in the original twenty.
NEW_QUESTIONS = {
    "practices-versus-orientation",
    "delighted-customers",
    "relationships-by-phase",
    "value-co-creation",
    "shared-account-teamwork",
    "loyal-customers-missing-from-database",
    "segment-profitability",
    "referrers-by-kind",
    "courtesy-contacts-without-consent",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    with running_relmark(tmp_path_factory.mktemp("seed-questions")) as running:
        response = requests.put(
            running.data,
            params={"graph": "urn:relmark:test:seed-questions"},
            data=DATA.read_bytes(),
            headers={"Content-Type": "text/turtle", **running.auth},
            timeout=120,
        )
        assert response.status_code in (201, 204), response.text
        yield running


def short(cell: dict | None) -> object:
    """A JSON cell as the expectations write it: ex:/rm: names, numbers, booleans, None."""
    if cell is None:
        return None
    value = cell["value"]
    if cell["type"] == "iri":
        for prefix, namespace in (("ex:", EX), ("rm:", RM)):
            if value.startswith(namespace):
                return prefix + value[len(namespace) :]
        return value
    datatype = cell.get("datatype", "")
    if datatype.endswith("#boolean"):
        return value in ("true", "1")
    if datatype.endswith(("#integer", "#decimal", "#double")):
        return float(value)
    return value


def answer(server: RelmarkServer, name: str, columns: tuple[str, ...], firm: str = FIRM) -> list:
    response = requests.get(f"{server.url}/api/queries/{name}", params={"firm": firm}, timeout=60)
    assert response.status_code == 200, response.text
    return [tuple(short(row.get(c)) for c in columns) for row in response.json()["rows"]]


def test_every_new_question_is_in_the_catalogue_and_documented() -> None:
    catalogue = {q.name: q for q in load_catalogue()}
    assert set(catalogue) >= NEW_QUESTIONS
    for name in NEW_QUESTIONS:
        assert set(catalogue[name].title) == {"en", "it"}
        assert set(catalogue[name].description) == {"en", "it"}


def test_practices_versus_orientation(server: RelmarkServer) -> None:
    # The transaction-oriented firm uses two of Gordon's practices: both flagged false.
    assert sorted(
        answer(server, "practices-versus-orientation", ("practice", "relationshipOriented"))
    ) == [
        ("rm:CustomerLoyaltyPractice", False),
        ("rm:DatabaseMarketing", False),
    ]
    # The relationship-oriented firm's practice is part of relationship marketing there.
    assert answer(
        server, "practices-versus-orientation", ("practice", "relationshipOriented"), EX + "firm2"
    ) == [("rm:OneToOneMarketing", True)]


def test_delighted_customers(server: RelmarkServer) -> None:
    # Ana: both judged contacts (one with the firm, one with its clerk) delighted her.
    # Bo is the near-miss: one contact delighted him, the sales call in the relationship did not.
    assert answer(server, "delighted-customers", ("relationship", "customer", "contacts")) == [
        ("ex:cr-ana", "ex:ana", 2.0)
    ]


def test_relationships_by_phase_in_order(server: RelmarkServer) -> None:
    rows = answer(server, "relationships-by-phase", ("relationship", "phase", "position"))
    assert rows == [("ex:cr-bo", "rm:Formation", "1"), ("ex:cr-ana", "rm:Strengthening", "2")]


def test_value_co_creation(server: RelmarkServer) -> None:
    # The plain joint initiative with Acme is not a value co-creation: absent.
    rows = answer(
        server,
        "value-co-creation",
        ("customer", "initiative", "value", "customerShare", "alignment", "interdependence"),
    )
    assert rows == [("ex:acme", "ex:vc1", 1000.0, 0.4, 0.7, None)]


def test_shared_account_teamwork(server: RelmarkServer) -> None:
    # Solo's opportunity has one team only: not a shared account, absent.
    rows = answer(
        server,
        "shared-account-teamwork",
        ("account", "team", "rewarded", "teamMeasure", "teamworkTraining"),
    )
    assert sorted(rows) == [
        ("ex:acme", "ex:teamA", True, False, True),  # own-result measure only
        ("ex:acme", "ex:teamB", False, True, False),  # plan rewards individual sales only
    ]


def test_loyal_customers_missing_from_database(server: RelmarkServer) -> None:
    rows = answer(
        server, "loyal-customers-missing-from-database", ("customer", "listed", "reachable")
    )
    mine = {row for row in rows if row[0] in ("ex:carla", "ex:dario", "ex:elena")}
    # Carla is listed and has an e-mail: the near-miss, absent.
    assert mine == {("ex:dario", False, True), ("ex:elena", True, False)}


def test_segment_profitability(server: RelmarkServer) -> None:
    rows = answer(
        server, "segment-profitability", ("segment", "respondsProfitably", "members", "loyal")
    )
    assert sorted(rows, key=lambda row: row[0]) == [
        ("ex:seg1", True, 2.0, 2.0),  # Carla and Dario, both buying again and satisfied
        ("ex:seg2", False, 1.0, 0.0),  # Fabio has no relationship with the firm
        ("ex:seg3", None, 0.0, 0.0),  # not yet judged, no members
    ]


def test_referrers_by_kind(server: RelmarkServer) -> None:
    rows = answer(server, "referrers-by-kind", ("referrer", "isCustomer"))
    assert rows == [("ex:carla", True), ("ex:lawyer", False)]


def test_courtesy_contacts_without_consent(server: RelmarkServer) -> None:
    # c1 went by e-mail, for which Ana consented; c6 reached only the firm's own clerk.
    rows = answer(server, "courtesy-contacts-without-consent", ("contact", "customer", "channel"))
    assert rows == [("ex:c5", "ex:ana", "rm:Phone")]


def test_term_pages_show_sources_as_citations(server: RelmarkServer) -> None:
    """A source is shown by its citation and linked to its DOI, not as a bare IRI."""
    page = requests.get(
        f"{server.url}/ontology/class", params={"iri": "rm:InteractiveMarketing"}, timeout=30
    )
    assert page.status_code == 200
    assert "Bitner, M. J. (1995). Building Service Relationships" in page.text
    assert 'href="https://doi.org/10.1177/009207039502300403"' in page.text
    assert "references#bitner-1995" not in page.text
