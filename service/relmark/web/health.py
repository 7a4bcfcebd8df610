"""``/healthz``: a cheap liveness check that also says which store is served."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from relmark.remote_store import RemoteError, RemoteStore
from relmark.web.extensions import get_store, serving_details

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    store = get_store()
    if getattr(store, "remote", False):
        return _remote_health(store)
    return jsonify(
        status="ok",
        store=str(store.path),
        triples=store.count(),
        graphs=len(store.graph_names()),
        **serving_details(),
    )


def _remote_health(store: RemoteStore) -> Response:
    """A remote store: whether its SPARQL server answers, and how fast (503 when not)."""
    remote = {"engine": store.engine.name, "query": store.config.query_url}
    try:
        remote["latency_ms"] = round(store.ping() * 1000, 1)
        body = {
            "status": "ok",
            "store": store.location,
            "triples": store.count(),
            "graphs": len(store.graph_names()),
        }
    except RemoteError as error:
        response = jsonify(
            status="unavailable",
            store=store.location,
            remote={**remote, "reachable": False},
            error="the store's SPARQL server is unavailable",
            detail=str(error),
            where=error.backend,
        )
        response.status_code = 503
        return response
    return jsonify(**body, remote={**remote, "reachable": True}, **serving_details())
