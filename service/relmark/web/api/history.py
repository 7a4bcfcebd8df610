"""``/api/history``, as-of classification and ``/api/forget``: relationships over time.

``GET /api/history?iri=`` lists a resource's membership events, ``?class=`` (a class or a
market link, ``rm:`` names accepted) who entered or left it, optionally between ``since``
and ``until``. ``GET /api/classify?asOf=`` (``classify_as_of``) answers from the history.
``POST /api/forget`` (admin role) erases a person (``history.forget``), and
``GET /api/events`` streams new events as Server-Sent Events. The work is in
``relmark.history``; this module only translates requests and errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pyoxigraph as ox
from flask import Blueprint, Response, jsonify, request, stream_with_context

from relmark.history.forget import UnknownPerson, forget
from relmark.history.read import (
    BadTime,
    Event,
    as_of,
    events_after,
    events_in,
    events_of,
    parse_time,
)
from relmark.history.terms import GDPR_ART_17
from relmark.reasoning.explain import UnknownResource, check_resource
from relmark.stores.base import ForwardsWrites, Store
from relmark.vocab import RM
from relmark.web.auth import current_principal, require_admin
from relmark.web.errors import ApiError
from relmark.web.extensions import get_settings, get_store

bp = Blueprint("history", __name__, url_prefix="/api")


@bp.get("/history")
def history_view() -> Response:
    """A resource's events (``iri``), or who entered or left a class (``class``)."""
    store = get_store()
    iri = request.args.get("iri", "").strip()
    class_iri = request.args.get("class", "").strip()
    if bool(iri) == bool(class_iri):
        raise ApiError(
            400,
            "pass exactly one of 'iri' and 'class'",
            detail="?iri=<resource> lists its events; ?class=rm:AtRiskRelationship lists "
            "who entered or left the class (with since= and until=, ISO dates)",
        )
    if iri:
        found = events_of(store, _iri(iri))
        if not found:
            _known(store, _iri(iri))
        return jsonify(iri=_iri(iri), events=[e.as_json() for e in found])
    since = _time("since", end_of_day=False)
    until = _time("until", end_of_day=True)
    found = events_in(store, _iri(class_iri), since, until)
    return jsonify(
        **{"class": _iri(class_iri)},
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        events=[e.as_json() for e in found],
    )


def classify_as_of(store: Store, iri: str, when_text: str) -> Response:
    """The memberships ``iri`` had at ``when_text`` (from the history), each with the event
    that made it one: the write that caused it and the rule."""
    try:
        when = parse_time(when_text, end_of_day=True)
    except BadTime as error:
        raise ApiError(400, "bad value of 'asOf'", detail=str(error)) from None
    iri = _iri(iri)
    found = as_of(store, iri, when)
    if not found and not events_of(store, iri):
        _known(store, iri)
    return jsonify(iri=iri, asOf=when.isoformat(), classes=[_membership(e) for e in found])


def _membership(event: Event) -> dict[str, object]:
    entry = event.as_json()
    entry.pop("change")
    entry["since"] = entry.pop("at")
    entry["status"] = "inferred"
    return entry


@bp.post("/forget")
def forget_view() -> Response:
    """Erase a person (GDPR Art. 17): ``iri`` (query, form or JSON body), optional
    ``legalBasis`` (an IRI; default GDPR Art. 17). Admin role. The answer is the receipt."""
    require_admin()
    store = get_store()
    if isinstance(store, ForwardsWrites):
        raise ApiError(
            501,
            "erasure is not available on a serving worker",
            detail="run `relmark forget IRI` or serve with --workers 1",
        )
    body = request.get_json(silent=True) if request.is_json else None
    values = body if isinstance(body, dict) else request.values
    iri = str(values.get("iri", "")).strip()
    if not iri:
        raise ApiError(400, "missing parameter 'iri'", detail="pass iri=<IRI of the person>")
    basis = str(values.get("legalBasis", "")).strip() or GDPR_ART_17
    principal = current_principal()
    try:
        receipt = forget(
            store,
            _iri(iri),
            ontology_dir=get_settings().ontology_dir,
            requested_by=getattr(principal, "name", None),
            legal_basis=_iri(basis),
        )
    except UnknownPerson as error:
        raise ApiError(404, "unknown resource", detail=str(error)) from None
    except ValueError as error:  # not an IRI
        raise ApiError(400, "bad IRI", detail=str(error)) from None
    return jsonify(receipt.as_json())


def _iri(text: str) -> str:
    """An absolute IRI, or an ``rm:`` name expanded; 400 for anything else."""
    iri = RM + text[3:] if text.startswith("rm:") else text
    try:
        ox.NamedNode(iri)
    except ValueError as error:
        raise ApiError(400, "not an IRI", detail=f"{text!r}: {error}") from None
    return iri


def _known(store: Store, iri: str) -> None:
    try:
        check_resource(store, iri)
    except UnknownResource as error:
        raise ApiError(404, "unknown resource", detail=str(error)) from None


def _time(name: str, *, end_of_day: bool):
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_time(text, end_of_day=end_of_day)
    except BadTime as error:
        raise ApiError(400, f"bad value of {name!r}", detail=str(error)) from None


#: how often the feed looks for new events, and the longest one response may stay open
#: (a stream holds one of waitress's threads: the client reconnects with Last-Event-ID)
EVENTS_POLL_SECONDS = 1.0
EVENTS_MAX_WAIT = 15.0


@bp.get("/events")
def events_view() -> Response:
    """The change feed: new history events as Server-Sent Events (``text/event-stream``).

    Filters: ``class`` (a class or market property), ``iri`` (a resource), ``firm``. Each
    event's id is its time; a client that reconnects with ``Last-Event-ID`` (or ``since``)
    gets what it missed. The stream ends after ``wait`` seconds (default 10, at most 15),
    because it holds a server thread; EventSource clients reconnect by themselves.
    """
    store = get_store()
    filters = {
        "class_iri": _optional_iri("class"),
        "resource": _optional_iri("iri"),
        "firm": _optional_iri("firm"),
    }
    start = request.headers.get("Last-Event-ID", "").strip() or request.args.get("since", "")
    try:
        after = parse_time(start, end_of_day=True) if start.strip() else datetime.now(UTC)
        wait = float(request.args.get("wait", "10"))
    except (BadTime, ValueError) as error:
        raise ApiError(
            400, "bad value of 'since', 'Last-Event-ID' or 'wait'", detail=str(error)
        ) from None
    if not 0 <= wait <= EVENTS_MAX_WAIT:
        raise ApiError(400, "bad value of 'wait'", detail=f"between 0 and {EVENTS_MAX_WAIT:g}")

    def stream() -> Iterator[str]:
        seen = after
        deadline = time.monotonic() + wait
        yield f"retry: {int(EVENTS_POLL_SECONDS * 1000)}\n\n"
        while True:
            for event in events_after(store, seen, **filters):
                seen = max(seen, event.at)
                body = json.dumps(event.as_json(), ensure_ascii=False)
                yield f"id: {event.at.isoformat()}\nevent: membership\ndata: {body}\n\n"
            if time.monotonic() >= deadline:
                return
            yield ": waiting\n\n"  # a comment: keeps proxies from closing an idle stream
            time.sleep(EVENTS_POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(stream()), mimetype="text/event-stream", headers=headers)


def _optional_iri(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    return _iri(value) if value else None
