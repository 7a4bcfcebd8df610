"""``/healthz``: a cheap liveness check that says more the more the caller may see.

Anyone may call it (load balancers carry no token), and it tells each caller only what
their role may know:

- anonymous, on a server whose reads need a token: ``status`` only (200 ``ok`` or 503
  ``unavailable``);
- a reader (or anyone where reads are public): also the counts (``triples``, ``graphs``),
  the process model (``workers``, ``generation``, ``reads``) and whether a remote store
  answers, with its latency;
- an admin: also where the store is (``store``: its directory or URL) and, for a remote
  store, its engine, query URL and the error's text when it is down.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from relmark.stores.base import OnDisk, Remote, RemoteError, Store
from relmark.web.auth import current_principal
from relmark.web.extensions import get_settings, get_store, serving_details

bp = Blueprint("health", __name__)


def _level() -> str:
    """``anonymous``, ``reader`` or ``admin``: how much this caller may see."""
    principal = current_principal()
    if principal is not None and principal.may("admin"):
        return "admin"
    if principal is not None or get_settings().reads_public:
        return "reader"
    return "anonymous"


@bp.get("/healthz")
def healthz() -> Response:
    level = _level()
    store = get_store()
    if isinstance(store, Remote):
        return _remote_health(store, store, level)
    if level == "anonymous":
        return jsonify(status="ok")
    body: dict[str, object] = {
        "status": "ok",
        "triples": store.count(),
        "graphs": len(store.graph_names()),
        **serving_details(),
    }
    if level == "admin" and isinstance(store, OnDisk):
        body["store"] = str(store.path)
    return jsonify(body)


def _remote_health(store: Store, server: Remote, level: str) -> Response:
    """A remote store (``server``: the same store, as ``Remote``): whether its SPARQL
    server answers, and how fast (503 when not)."""
    remote: dict[str, object] = {}
    if level == "admin":
        remote.update(server.describe())
    try:
        latency_ms = round(server.ping() * 1000, 1)
        counts = {"triples": store.count(), "graphs": len(store.graph_names())}
    except RemoteError as error:
        body: dict[str, object] = {"status": "unavailable"}
        if level != "anonymous":
            body["remote"] = {**remote, "reachable": False}
            body["error"] = "the store's SPARQL server is unavailable"
        if level == "admin":
            body.update(store=server.location, detail=str(error), where=error.backend)
        response = jsonify(body)
        response.status_code = 503
        return response
    if level == "anonymous":
        return jsonify(status="ok")
    body = {
        "status": "ok",
        **counts,
        "remote": {**remote, "reachable": True, "latency_ms": latency_ms},
    }
    if level == "admin":
        body["store"] = server.location
    return jsonify(**body, **serving_details())
