"""Erasure (GDPR Art. 17, issue 22): forgetting a demo person removes them from every
data graph, the inferences, the provenance and the history, recomputes what others owed
to them, keeps a receipt without personal data, and refuses to store them again unless
forced.

The demo case: Pietro Neri's only link is the referral Laura Colombo made of him
(demo:ref-colombo-neri), which is what makes her relationship an advocate. Forgetting him
removes that referral, so she falls back to the stage below.

A real on-disk store, the app in process (Flask's test client), the command line through
click's CliRunner on a store of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from relmark import loading
from relmark.cli import main
from relmark.history.forget import ErasedResource
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.tokens import create, token_path
from relmark.vocab import DEMO, META_GRAPH, RM, demo_paths
from relmark.web import close_app, create_app

PERSON = DEMO + "pietro-neri"
REFERRAL = DEMO + "ref-colombo-neri"
REFERRER = DEMO + "cr-laura-colombo"
TRACES = (PERSON, REFERRAL, "Pietro Neri", "pietro-neri")
AGAIN = f'<{PERSON}> <http://www.w3.org/2000/01/rdf-schema#label> "Pietro Neri" .\n'


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    path = str(Path(tmp_path_factory.mktemp("forget")) / "store")
    store = open_store(path)
    app = create_app(Settings(store=path), store)
    loading.load_sources(store, [loading.read_source(str(p), None) for p in demo_paths()])
    app.config["admin"], _ = create(token_path(path, None), "admin", "dpo")
    app.config["writer"], _ = create(token_path(path, None), "writer", "crm")
    yield app
    close_app(app)
    store.close()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def receipt(app: Flask, client: FlaskClient) -> dict:
    assert RM + "Advocate" in _classes(client, REFERRER)
    response = client.post(
        "/api/forget",
        json={"iri": PERSON},
        headers={"Authorization": f"Bearer {app.config['admin']}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _classes(client: FlaskClient, iri: str) -> set[str]:
    response = client.get("/api/classify", query_string={"iri": iri})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {entry["class"] for entry in response.get_json()["classes"]}


def _everything(app: Flask) -> str:
    """Every quad of every graph, as N-Quads text."""
    store = app.extensions["relmark.store"]
    rows = store.query("SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }")
    return "\n".join(f"{r['s']} {r['p']} {r['o']} {r['g']}" for r in rows)


def test_only_an_admin_may_forget(app: Flask, client: FlaskClient) -> None:
    assert client.post("/api/forget", json={"iri": PERSON}).status_code == 401
    writer = {"Authorization": f"Bearer {app.config['writer']}"}
    assert client.post("/api/forget", json={"iri": PERSON}, headers=writer).status_code == 403
    assert PERSON in _everything(app)  # nothing was erased by the refused requests


def test_the_receipt_says_what_was_done_without_personal_data(receipt: dict) -> None:
    assert receipt["statements"] >= 8  # his label and type, the referral's statements
    assert receipt["resources"] == 2  # him and the referral that only linked him
    assert receipt["legalBasis"] == "https://w3id.org/dpv/legal/eu/gdpr#A17"
    assert receipt["requestedBy"] == "dpo"
    assert not any(trace in str(receipt) for trace in TRACES)


def test_no_graph_holds_the_person_any_more(app: Flask, receipt: dict) -> None:
    everything = _everything(app)
    for trace in TRACES:
        assert trace not in everything, trace
    # the receipt is in the meta graph with the digest, not the IRI
    store = app.extensions["relmark.store"]
    digests = {
        row["h"].value
        for row in store.query(
            f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ ?r <{RM}erasedIdentifierHash> ?h }} }}"
        )
    }
    assert hashlib.sha256(PERSON.encode()).hexdigest() in digests


def test_no_query_dump_explanation_or_history_names_them(
    client: FlaskClient, receipt: dict
) -> None:
    dump = client.get("/data", headers={"Accept": "application/n-quads"})
    assert dump.status_code == 200
    assert not any(trace in dump.get_data(as_text=True) for trace in TRACES)
    answer = client.get(
        "/sparql",
        query_string={"query": "SELECT * WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"},
        headers={"Accept": "application/sparql-results+json"},
    )
    assert answer.status_code == 200
    assert not any(trace in answer.get_data(as_text=True) for trace in TRACES)
    assert client.get("/api/classify", query_string={"iri": PERSON}).status_code == 404
    assert client.get("/api/history", query_string={"iri": PERSON}).status_code == 404
    market = client.get(
        "/api/queries/referral-market", query_string={"firm": DEMO + "banca-lariana"}
    )
    assert market.status_code == 200 and market.get_json()["rows"]
    assert not any(trace in market.get_data(as_text=True) for trace in TRACES)
    explanation = client.get("/api/explain", query_string={"iri": REFERRER, "class": RM + "Client"})
    assert explanation.status_code == 200
    assert not any(trace in explanation.get_data(as_text=True) for trace in TRACES)


def test_what_others_owed_to_them_is_recomputed(client: FlaskClient, receipt: dict) -> None:
    classes = _classes(client, REFERRER)
    assert RM + "Advocate" not in classes
    assert RM + "Client" in classes
    events = client.get("/api/history", query_string={"iri": REFERRER}).get_json()["events"]
    left = [e for e in events if e.get("class") == RM + "Advocate" and e["change"] == "left"]
    assert [e["write"]["kind"] for e in left] == ["forget"]
    assert left[0]["write"]["agent"] == "dpo"
    explanation = client.get(
        "/api/explain", query_string={"iri": REFERRER, "class": RM + "Advocate"}
    )
    assert explanation.status_code == 404


def test_storing_them_again_is_refused_unless_forced(
    app: Flask, client: FlaskClient, receipt: dict
) -> None:
    headers = {
        "Authorization": f"Bearer {app.config['writer']}",
        "Content-Type": "application/n-triples",
    }
    graph = {"graph": "urn:relmark:data:again"}
    refused = client.post("/data", query_string=graph, data=AGAIN, headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["error"] == "erased resource"
    assert PERSON not in _everything(app)
    store = app.extensions["relmark.store"]
    source = loading.Source("again.nt", AGAIN.encode(), loading.format_for("again.nt"))
    with pytest.raises(ErasedResource):
        loading.load_sources(store, [source])
    assert PERSON not in _everything(app)
    forced = client.post(
        "/data", query_string={**graph, "force": "true"}, data=AGAIN, headers=headers
    )
    assert forced.status_code in (201, 204), forced.get_data(as_text=True)
    assert PERSON in _everything(app)


def test_forgetting_an_unknown_resource_is_a_404(app: Flask, client: FlaskClient) -> None:
    admin = {"Authorization": f"Bearer {app.config['admin']}"}
    response = client.post("/api/forget", json={"iri": DEMO + "nobody-at-all"}, headers=admin)
    assert response.status_code == 404
    assert client.post("/api/forget", json={}, headers=admin).status_code == 400


def test_the_command_line_forgets_and_refuses_a_later_load(tmp_path: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "store")
    assert runner.invoke(main, ["--store", store, "demo"]).exit_code == 0
    assert runner.invoke(main, ["--store", store, "infer"]).exit_code == 0
    result = runner.invoke(main, ["--store", store, "forget", PERSON, "--requested-by", "dpo"])
    assert result.exit_code == 0, result.output
    assert '"statements"' in result.output and PERSON not in result.output
    again = runner.invoke(main, ["--store", store, "forget", PERSON])
    assert again.exit_code == 2
    data = tmp_path / "again.nt"
    data.write_text(AGAIN)
    refused = runner.invoke(main, ["--store", store, "load", str(data)])
    assert refused.exit_code == 2
    forced = runner.invoke(main, ["--store", store, "load", "--force", str(data)])
    assert forced.exit_code == 0, forced.output
