"""Webhooks of the change feed (issue 22): a write that makes a relationship at risk is
delivered once, signed with the subscription's secret, to a real HTTP receiver on
127.0.0.1; a receiver that is down gets it when it comes back; pending deliveries survive
the app being closed and recreated on the same store; bad URLs and missing tokens are
refused. The app runs in process (Flask's test client) on a real on-disk store; its
drainer thread makes real HTTP requests. Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask

from relmark import loading
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import Store
from relmark.tokens import create, token_path
from relmark.vocab import DEMO, RM, demo_paths
from relmark.web import close_app, create_app

AT_RISK = RM + "AtRiskRelationship"
EXTRA = "urn:relmark:data:webhooks"
#: a short back-off so a retry comes within the test's time
BACKOFF = 0.2


def _at_risk(name: str) -> str:
    """A new relationship of Banca Lariana with low commitment and a high propensity to
    leave: the kmv-at-risk-leaving rule makes it an rm:AtRiskRelationship."""
    return f"""
@prefix rm: <{RM}> .
@prefix demo: <{DEMO}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
demo:cr-{name} a rm:CustomerRelationship ;
    rm:focalParty demo:banca-lariana ;
    rm:counterparty demo:{name} ;
    rm:commitmentLevel 0.10 ;
    rm:propensityToLeave 0.90 .
demo:{name} a rm:Person ; rdfs:label "Webhook test person {name}" .
"""


class Receiver:
    """An HTTP server on an ephemeral 127.0.0.1 port that keeps what it is POSTed."""

    def __init__(self, port: int = 0) -> None:
        received = self.received = []  # type: list[tuple[dict[str, str], bytes]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _wait(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(Path(tmp_path_factory.mktemp("webhooks")) / "store")


@pytest.fixture(scope="module")
def store(store_path: str) -> Iterator[Store]:
    store = open_store(store_path)
    sources = [loading.read_source(str(p), None) for p in demo_paths()]
    loading.load_sources(store, sources, name="demo data")
    yield store
    store.close()


@pytest.fixture(scope="module")
def writer(store_path: str, store: Store) -> str:
    return create(token_path(store_path, None), "writer", "webhook-tests")[0]


def _app(store_path: str, store: Store) -> Flask:
    return create_app(Settings(store=store_path, webhook_backoff=BACKOFF), store)


@pytest.fixture()
def app(store_path: str, store: Store, writer: str) -> Iterator[Flask]:
    app = _app(store_path, store)
    yield app
    close_app(app)


def _subscribe(app: Flask, writer: str, url: str, **extra: str) -> dict:
    response = app.test_client().post(
        "/api/subscriptions",
        json={"url": url, **extra},
        headers={"Authorization": f"Bearer {writer}"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _write(app: Flask, writer: str, name: str) -> None:
    response = app.test_client().post(
        "/data",
        query_string={"graph": EXTRA},
        data=_at_risk(name),
        headers={"Content-Type": "text/turtle", "Authorization": f"Bearer {writer}"},
    )
    assert response.status_code in (201, 204), response.get_data(as_text=True)


def _unsubscribe(app: Flask, writer: str, sub_id: str) -> None:
    response = app.test_client().delete(
        f"/api/subscriptions/{sub_id}", headers={"Authorization": f"Bearer {writer}"}
    )
    assert response.status_code == 204


def _events(received: list[tuple[dict[str, str], bytes]], secret: str) -> list[dict]:
    """The events delivered, each body's signature checked with ``secret``."""
    events = []
    for headers, body in received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["Relmark-Signature"], expected)
        events.extend(json.loads(body)["events"])
    return events


def test_a_write_that_makes_a_relationship_at_risk_delivers_one_signed_event(
    app: Flask, writer: str
) -> None:
    receiver = Receiver()
    try:
        sub = _subscribe(app, writer, receiver.url, **{"class": "rm:AtRiskRelationship"})
        listed = app.test_client().get(
            "/api/subscriptions", headers={"Authorization": f"Bearer {writer}"}
        )
        assert listed.status_code == 200
        mine = [s for s in listed.get_json()["subscriptions"] if s["id"] == sub["id"]]
        assert mine and "secret" not in mine[0] and mine[0]["class"] == AT_RISK
        _write(app, writer, "webhook-one")
        assert _wait(lambda: len(receiver.received) >= 1), "no delivery within 15 s"
        time.sleep(1.0)  # a second delivery (a duplicate) would come in this time
        events = _events(receiver.received, sub["secret"])
        assert len(events) == 1, events
        (event,) = events
        assert event["resource"] == DEMO + "cr-webhook-one"
        assert event["class"] == AT_RISK and event["change"] == "entered"
        assert event["id"].startswith("urn:relmark:event:")
        assert event["write"]["kind"] == "graph-store" and event["write"]["id"]
        # a wrong secret does not verify
        headers, body = receiver.received[0]
        wrong = "sha256=" + hmac.new(b"wrong", body, hashlib.sha256).hexdigest()
        assert headers["Relmark-Signature"] != wrong
    finally:
        _unsubscribe(app, writer, sub["id"])
        receiver.stop()


def test_a_receiver_that_is_down_gets_the_event_when_it_comes_back(app: Flask, writer: str) -> None:
    probe = Receiver()  # takes a free port, then frees it: nobody listens there
    port = probe.port
    probe.stop()
    sub = _subscribe(app, writer, f"http://127.0.0.1:{port}/hook", **{"class": AT_RISK})
    receiver = None
    try:
        _write(app, writer, "webhook-two")
        hooks = app.extensions["relmark.webhooks"]
        mine = lambda: [d for d in hooks.deliveries() if d["subscription"] == sub["id"]]  # noqa: E731
        assert _wait(lambda: any(d["attempts"] >= 2 for d in mine())), mine()
        assert all(d["status"] == "pending" and d["lastError"] for d in mine())
        receiver = Receiver(port)
        assert _wait(lambda: len(receiver.received) >= 1), mine()
        events = _events(receiver.received, sub["secret"])
        assert [e["resource"] for e in events] == [DEMO + "cr-webhook-two"]
        assert _wait(lambda: all(d["status"] == "delivered" for d in mine()))
    finally:
        _unsubscribe(app, writer, sub["id"])
        if receiver is not None:
            receiver.stop()


def test_pending_deliveries_survive_a_restart(store_path: str, store: Store, writer: str) -> None:
    probe = Receiver()
    port = probe.port
    probe.stop()
    first = _app(store_path, store)
    sub = _subscribe(first, writer, f"http://127.0.0.1:{port}/hook", **{"class": AT_RISK})
    _write(first, writer, "webhook-three")
    close_app(first)  # the outbox keeps the pending delivery
    receiver = Receiver(port)
    second = _app(store_path, store)
    try:
        assert _wait(lambda: len(receiver.received) >= 1), "not delivered after the restart"
        events = _events(receiver.received, sub["secret"])
        assert [e["resource"] for e in events] == [DEMO + "cr-webhook-three"]
    finally:
        _unsubscribe(second, writer, sub["id"])
        close_app(second)
        receiver.stop()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/hook",
        "http://user:secret@127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://127.0.0.1.example.org/hook",
        "not a url",
    ],
)
def test_a_bad_url_is_refused(app: Flask, writer: str, url: str) -> None:
    response = app.test_client().post(
        "/api/subscriptions", json={"url": url}, headers={"Authorization": f"Bearer {writer}"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "bad webhook URL"


def test_subscriptions_need_a_writer_token(app: Flask, writer: str) -> None:
    client = app.test_client()
    assert (
        client.post("/api/subscriptions", json={"url": "http://127.0.0.1:9/h"}).status_code == 401
    )
    assert client.get("/api/subscriptions").status_code == 401
    assert client.delete("/api/subscriptions/x").status_code == 401
    missing = client.delete("/api/subscriptions/x", headers={"Authorization": f"Bearer {writer}"})
    assert missing.status_code == 404


def test_an_erasure_drops_the_deliveries_that_name_the_person(
    app: Flask, store_path: str, writer: str
) -> None:
    admin = create(token_path(store_path, None), "admin", "webhook-dpo")[0]
    probe = Receiver()
    port = probe.port
    probe.stop()
    sub = _subscribe(app, writer, f"http://127.0.0.1:{port}/hook")  # every event
    receiver = None
    try:
        _write(app, writer, "webhook-four")
        hooks = app.extensions["relmark.webhooks"]
        mine = lambda: [d for d in hooks.deliveries() if d["subscription"] == sub["id"]]  # noqa: E731
        assert _wait(lambda: any(d["attempts"] >= 1 for d in mine())), mine()
        response = app.test_client().post(
            "/api/forget",
            json={"iri": DEMO + "webhook-four"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        outbox = Path(store_path + ".outbox.sqlite3").read_bytes()
        assert b"webhook-four" not in outbox
        receiver = Receiver(port)
        time.sleep(2.0)  # several back-off periods: a delivery left behind would come now
        assert all(b"webhook-four" not in body for _, body in receiver.received)
    finally:
        _unsubscribe(app, writer, sub["id"])
        if receiver is not None:
            receiver.stop()
