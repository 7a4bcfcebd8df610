"""The classification history (issue 22): every change of an inferred membership is an
event with its write and rule; as-of answers replay them; the named questions read them.

A real on-disk store, the app in process (Flask's test client), writes through the Graph
Store endpoint and loads through ``loading``; the command line through click's CliRunner
on a store of its own (RocksDB lets one process open a store at a time).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from relmark import loading
from relmark.cli import main
from relmark.history.record import Cause, refresh_and_record
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.tokens import create, token_path
from relmark.vocab import DEMO, HISTORY_GRAPH, RM, demo_paths
from relmark.web import close_app, create_app

FIRM = DEMO + "banca-lariana"
CLIENT = DEMO + "cr-stefano-bruni"  # a client (two purchases) who has referred nobody (yet)
ADVOCATE = DEMO + "cr-laura-colombo"
EXTRA = "urn:relmark:data:extra"

#: a referral by Stefano Bruni: his relationship climbs from client to advocate
REFERRAL = f"""
@prefix rm: <{RM}> .
@prefix demo: <{DEMO}> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
demo:ref-bruni-friend a rm:Referral ;
    rm:interactionDate "2026-11-20"^^xsd:date ;
    rm:channel rm:Phone ;
    rm:referrer demo:stefano-bruni ;
    rm:referredParty demo:bruni-friend ;
    rm:referredTo demo:banca-lariana .
demo:bruni-friend a rm:Person ; rdfs:label "A friend of Stefano Bruni" .
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    path = str(Path(tmp_path_factory.mktemp("history")) / "store")
    store = open_store(path)
    app = create_app(Settings(store=path), store)
    sources = [loading.read_source(str(p), None) for p in demo_paths()]
    loading.load_sources(store, sources, name="demo data")
    writer, _ = create(token_path(path, None), "writer", "marketing-import")
    app.config["writer"] = writer
    yield app
    close_app(app)
    store.close()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _events(client: FlaskClient, **params: str) -> list[dict]:
    response = client.get("/api/history", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["events"]


def _classes(client: FlaskClient, iri: str, when: str) -> dict[str, dict]:
    response = client.get("/api/classify", query_string={"iri": iri, "asOf": when})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {e["class"]: e for e in response.get_json()["classes"] if "class" in e}


def _history_size(app: Flask) -> int:
    store = app.extensions["relmark.store"]
    rows = store.query(
        f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{HISTORY_GRAPH}> {{ ?s ?p ?o }} }}"
    )
    return int(next(iter(rows))["n"].value)


def test_a_load_records_each_membership_with_its_write_and_rule(client: FlaskClient) -> None:
    events = _events(client, iri=ADVOCATE)
    entered = {e["class"]: e for e in events if e.get("class") and e["change"] == "entered"}
    advocate = entered[RM + "Advocate"]
    assert advocate["rule"] == "ladder-advocate"
    assert advocate["write"]["kind"] == "load"
    assert advocate["write"]["name"] == "demo data"
    # the firm-relative market memberships are recorded too, with their firm
    markets = _events(client, iri=DEMO + "laura-colombo")
    assert any(
        e.get("property") == RM + "inReferralMarketOf" and e.get("firm") == FIRM for e in markets
    )


def test_a_write_that_moves_someone_is_an_event_and_as_of_answers_both_sides(
    app: Flask, client: FlaskClient
) -> None:
    assert RM + "Client" in _classes(client, CLIENT, datetime.now(UTC).isoformat())
    before = datetime.now(UTC)
    time.sleep(0.01)
    response = client.post(
        "/data",
        query_string={"graph": EXTRA},
        data=REFERRAL,
        headers={
            "Content-Type": "text/turtle",
            "Authorization": f"Bearer {app.config['writer']}",
            "Relmark-Write-Name": "November referrals",
        },
    )
    assert response.status_code in (201, 204), response.get_data(as_text=True)
    then = _classes(client, CLIENT, before.isoformat())
    now = _classes(client, CLIENT, datetime.now(UTC).isoformat())
    assert RM + "Client" in then and RM + "Advocate" not in then
    assert RM + "Advocate" in now and RM + "Client" not in now
    cause = now[RM + "Advocate"]
    assert cause["rule"] == "ladder-advocate"
    assert cause["write"] == {
        "id": cause["write"]["id"],
        "kind": "graph-store",
        "name": "November referrals",
        "agent": "marketing-import",
    }
    left = [e for e in _events(client, iri=CLIENT) if e["change"] == "left"]
    assert [e["class"] for e in left if "class" in e] == [RM + "Client"]
    # who entered the advocate class since the write: Franco's relationship, nobody else
    since = _events(client, **{"class": "rm:Advocate", "since": before.isoformat()})
    assert [(e["resource"], e["change"]) for e in since] == [(CLIENT, "entered")]


def test_a_write_that_moves_nobody_records_nothing(app: Flask, client: FlaskClient) -> None:
    size = _history_size(app)
    comment = f'<{DEMO}stefano-bruni> <http://www.w3.org/2000/01/rdf-schema#comment> "met" .'
    response = client.post(
        "/data",
        query_string={"graph": EXTRA},
        data=comment,
        headers={
            "Content-Type": "application/n-triples",
            "Authorization": f"Bearer {app.config['writer']}",
        },
    )
    assert response.status_code == 204, response.get_data(as_text=True)
    assert _history_size(app) == size


def test_a_full_recompute_records_only_real_differences(app: Flask) -> None:
    store = app.extensions["relmark.store"]
    size = _history_size(app)
    summary = refresh_and_record(store, cause=Cause("recompute", "test"), full=True)
    assert summary is not None and not summary.incremental
    assert _history_size(app) == size


def test_the_named_questions_read_the_history(client: FlaskClient) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    today = datetime.now(UTC).date().isoformat()
    response = client.get(
        "/api/queries/ladder-moves", query_string={"asOf": today, "days": "1", "firm": FIRM}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = {r["relationship"]["value"]: r for r in response.get_json()["rows"]}
    assert rows[CLIENT]["after"]["value"] == RM + "Advocate"
    assert rows[CLIENT]["direction"]["value"] == "up"
    # on the day itself nothing was yet recorded yesterday: no stage on the first date
    assert rows[CLIENT].get("before") in (None, {}), rows[CLIENT]
    response = client.get("/api/queries/became-at-risk", query_string={"asOf": today, "days": "1"})
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = response.get_json()["rows"]
    assert rows, "the demo's at-risk relationships entered the class at the load"
    assert {r["writeKind"]["value"] for r in rows} == {"load"}
    at_risk = client.get(
        "/api/queries/at-risk-relationships", query_string={"firm": FIRM}
    ).get_json()["rows"]
    bank = {r["relationship"]["value"] for r in at_risk}
    assert bank <= {r["relationship"]["value"] for r in rows}
    response = client.get(
        "/api/queries/became-at-risk", query_string={"asOf": yesterday, "days": "30"}
    )
    assert response.get_json()["rows"] == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"iri": ADVOCATE, "class": "rm:Advocate"}, 400),
        ({"iri": DEMO + "nobody-at-all"}, 404),
        ({"class": "rm:Advocate", "since": "last tuesday"}, 400),
    ],
)
def test_bad_history_requests(client: FlaskClient, params: dict, status: int) -> None:
    response = client.get("/api/history", query_string=params)
    assert response.status_code == status
    assert set(response.get_json()) >= {"error", "detail"}


def test_bad_as_of_is_a_400_and_an_unknown_resource_a_404(client: FlaskClient) -> None:
    response = client.get("/api/classify", query_string={"iri": ADVOCATE, "asOf": "2026-13-40"})
    assert response.status_code == 400
    assert "asOf" in response.get_json()["error"]
    response = client.get(
        "/api/classify", query_string={"iri": DEMO + "nobody-at-all", "asOf": "2026-06-30"}
    )
    assert response.status_code == 404


def test_before_the_history_began_a_resource_had_no_inferred_class(client: FlaskClient) -> None:
    assert _classes(client, ADVOCATE, "2020-01-01") == {}


def test_the_command_line_answers_as_of(tmp_path: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "store")
    assert runner.invoke(main, ["--store", store, "demo"]).exit_code == 0
    assert runner.invoke(main, ["--store", store, "infer"]).exit_code == 0  # sets the store up
    now = datetime.now(UTC).isoformat()
    result = runner.invoke(main, ["--store", store, "classify", ADVOCATE, "--as-of", now])
    assert result.exit_code == 0, result.output
    assert "rm:Advocate" in result.output and "by ladder-advocate" in result.output
    result = runner.invoke(main, ["--store", store, "classify", ADVOCATE, "--as-of", "2020-01-01"])
    assert result.exit_code == 0 and "rm:Advocate" not in result.output
    result = runner.invoke(main, ["--store", store, "classify", ADVOCATE, "--as-of", "soon"])
    assert result.exit_code == 2
    result = runner.invoke(main, ["--store", store, "history", "--class", "rm:Advocate"])
    assert result.exit_code == 0 and "cr-laura-colombo> entered rm:Advocate" in result.output


def _feed(client: FlaskClient, **params: str) -> list[dict]:
    """The events of one bounded Server-Sent Events response, parsed."""
    response = client.get("/api/events", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    events = []
    for block in response.get_data(as_text=True).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "membership":
            events.append({"id": fields["id"], **json.loads(fields["data"])})
    return events


def test_the_change_feed_streams_new_events_with_filters(app: Flask, client: FlaskClient) -> None:
    before = datetime.now(UTC).isoformat()
    headers = {"Content-Type": "text/turtle", "Authorization": f"Bearer {app.config['writer']}"}
    writes: list[int] = []

    def write_later() -> None:
        time.sleep(0.5)
        referral = REFERRAL.replace("stefano-bruni", "alessia-conti").replace(
            "bruni-friend", "conti-friend"
        )
        response = client.post(
            "/data", query_string={"graph": EXTRA + "-2"}, data=referral, headers=headers
        )
        writes.append(response.status_code)

    writer = threading.Thread(target=write_later)
    writer.start()
    # opened before the write: the event arrives while the stream waits
    live = _feed(client, **{"class": "rm:Advocate", "wait": "3", "since": before})
    writer.join()
    assert writes and writes[0] in (201, 204)
    assert [(e["resource"], e["change"]) for e in live] == [(DEMO + "cr-alessia-conti", "entered")]
    # a reconnection from the last id misses nothing and repeats nothing
    assert _feed(client, **{"class": "rm:Advocate", "wait": "0", "since": live[-1]["id"]}) == []
    # filters: another class, another resource
    assert _feed(client, **{"class": "rm:Prospect", "wait": "0", "since": before}) == []
    only = _feed(client, iri=DEMO + "cr-alessia-conti", wait="0", since=before)
    assert {e["resource"] for e in only} == {DEMO + "cr-alessia-conti"}
    assert client.get("/api/events", query_string={"wait": "100000"}).status_code == 400


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/history", {"iri": "__main__"}),
        ("/api/history", {"class": "not an iri"}),
        ("/api/classify", {"iri": "relative/iri", "asOf": "2026-06-30"}),
        ("/api/events", {"class": "\u00e9 x", "wait": "0"}),
        ("/api/events", {"firm": "nope", "wait": "0"}),
    ],
)
def test_what_is_not_an_iri_is_a_400_before_any_stream(
    client: FlaskClient, path: str, params: dict
) -> None:
    response = client.get(path, query_string=params)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "not an IRI"
