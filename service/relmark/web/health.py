"""``/healthz``: a cheap liveness check that also says which store is served."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from relmark.web.extensions import get_store, serving_details

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    store = get_store()
    return jsonify(
        status="ok",
        store=str(store.path),
        triples=store.count(),
        graphs=len(store.graph_names()),
        **serving_details(),
    )
