"""``/api/subscriptions``: webhook subscriptions to the change feed (writer role).

``POST`` with ``{"url": …, "class": …, "resource": …}`` (filters optional) answers 201 with
the subscription and its secret, shown this once; ``GET`` lists them without secrets;
``DELETE /api/subscriptions/<id>`` ends one. Deliveries are ``relmark.history.webhooks``'.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from relmark.history.webhooks import BadSubscription, Webhooks, check_url
from relmark.vocab import RM
from relmark.web.auth import require_role
from relmark.web.errors import ApiError
from relmark.web.extensions import WEBHOOKS, get_settings

bp = Blueprint("subscriptions", __name__, url_prefix="/api")


def _hooks() -> Webhooks:
    hooks = current_app.extensions.get(WEBHOOKS)
    if hooks is None:
        raise ApiError(
            501,
            "webhooks are not available on this server",
            detail="webhooks need a store on disk served by one process (--workers 1): "
            "their outbox is a file beside the store",
        )
    return hooks


def _optional_iri(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or any(c in value for c in ' <>"{}|\\^`'):
        raise ApiError(400, f"bad value of {name!r}", detail="an IRI or an rm: name")
    iri = RM + value[3:] if value.startswith("rm:") else value
    if ":" not in iri:
        raise ApiError(400, f"bad value of {name!r}", detail=f"{value!r} is not an IRI")
    return iri


@bp.post("/subscriptions")
def subscribe_view() -> tuple[Response, int]:
    """Create a subscription: 201 with its id and its secret (the HMAC key of deliveries)."""
    principal = require_role("writer")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        raise ApiError(
            400,
            "a JSON object with 'url' is expected",
            detail='{"url": "http://127.0.0.1:9000/hook", "class": "rm:AtRiskRelationship"}',
        )
    try:
        url = check_url(body["url"].strip(), get_settings().webhook_allow)
    except BadSubscription as error:
        raise ApiError(400, "bad webhook URL", detail=str(error)) from None
    sub, secret = _hooks().subscribe(
        url,
        _optional_iri(body, "class"),
        _optional_iri(body, "resource"),
        getattr(principal, "name", None),
    )
    return jsonify(**sub.as_json(), secret=secret), 201


@bp.get("/subscriptions")
def subscriptions_view() -> Response:
    """Every subscription, without secrets."""
    require_role("writer")
    return jsonify(subscriptions=[s.as_json() for s in _hooks().subscriptions()])


@bp.delete("/subscriptions/<name>")
def unsubscribe_view(name: str) -> tuple[str, int]:
    """End a subscription and drop its pending deliveries."""
    require_role("writer")
    if not _hooks().unsubscribe(name):
        raise ApiError(404, "unknown subscription", detail=name)
    return "", 204
