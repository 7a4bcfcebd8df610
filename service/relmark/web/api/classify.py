"""``/api/classify`` and ``/api/explain``: a resource's classes with reasons.

Reads only: both answer from the store's asserted, inferred and provenance graphs through
``reasoning.explain``, so they work on a worker's snapshot as on the live store.
"""

from __future__ import annotations

import pyoxigraph as ox
from flask import Blueprint, Response, jsonify, request

from relmark.formats import Kind, format_for_content_type, rdf_format
from relmark.loading import LoadError, Source, ValidationFailed, parse_quads, validate_quads
from relmark.reasoning.explain import (
    NotAnOntologyClass,
    NotExplained,
    UnknownResource,
    check_class,
    check_resource,
    classify,
    explain,
)
from relmark.reasoning.maintain import rules_for
from relmark.reasoning.whatif import (
    WHAT_IF_GRAPH,
    WhatIfRefused,
    WhatIfTimeout,
    WhatIfUnsupported,
    record_subjects,
    what_if,
)
from relmark.reasoning.whynot import why_not
from relmark.stores.base import Store
from relmark.web.api.history import classify_as_of
from relmark.web.errors import ApiError, load_error
from relmark.web.extensions import get_settings, get_store
from relmark.web.i18n import request_language
from relmark.web.negotiation import not_rdf

bp = Blueprint("api", __name__, url_prefix="/api")

_BODY = "request body"


@bp.get("/classify")
def classify_view() -> Response:
    """The classes of ``iri``: asserted ones with their graphs, inferred ones with rules."""
    lang = request_language()
    store = get_store()
    when = request.args.get("asOf", "").strip()
    if when:  # from the classification history
        return classify_as_of(store, _required("iri"), when)
    iri = known_resource(store, _required("iri"))
    return jsonify(iri=iri, lang=lang, classes=_with_first_rule(classify(store, iri, lang)))


def _with_first_rule(entries: list[dict]) -> list[dict]:
    """Inferred entries also carry their first rule's name and why at the top level."""
    flattened = []
    for entry in entries:
        if entry["status"] == "inferred":
            first = entry["rules"][0] if entry["rules"] else {"rule": None, "why": None}
            entry = {**entry, "rule": first["rule"], "why": first["why"]}
        flattened.append(entry)
    return flattened


@bp.post("/classify")
def what_if_view() -> Response:
    """What if: classify a hypothetical record (RDF body) against the stored data.

    Nothing is written (the record goes into a scratch copy of the store that is deleted
    afterwards), so no write token is needed. ``?iri=`` names the resource to classify;
    without it every subject of the record is. Each class is asserted (``graphs`` shows
    ``urn:relmark:what-if`` for the record's own) or inferred with its rule and why;
    ``gained`` and ``lost`` say how the answer differs from the stored data's. 400 for an
    unparseable body (``where`` is line:column), 415 for a non-RDF one, 422 with the SHACL
    report when the record does not conform to the shapes.
    """
    store = get_store()
    lang = request_language()
    quads = _record()
    settings = get_settings()
    _check_record_size(quads, settings.whatif_max_triples)
    report = validate_quads(store, quads, ontology_dir=settings.ontology_dir)
    if not report.conforms:
        raise ValidationFailed(report)
    iri = request.args.get("iri", "").strip() or None
    subjects = record_subjects(quads)
    if iri is not None and iri not in subjects:
        iri = known_resource(store, iri)
    if iri is None and not subjects:
        raise ApiError(400, "the record is empty", detail="send at least one triple about an IRI")
    timeout = settings.whatif_timeout or settings.query_timeout
    try:
        results = what_if(
            store,
            quads,
            [iri] if iri else None,
            ontology_dir=settings.ontology_dir,
            lang=lang,
            timeout=timeout,
            memory_bound=settings.worker_memory or 0,
        )
    except WhatIfUnsupported as error:
        raise ApiError(501, "what-if is not available on this store", detail=str(error)) from None
    except WhatIfRefused as error:
        raise _what_if_refused(error, timeout) from None
    except (ApiError, ValidationFailed):
        raise
    except Exception as error:  # the helper's own failure: still an answer in our shape
        raise ApiError(
            500, "the what-if failed", detail=f"{type(error).__name__}: {error}"
        ) from error
    for result in results:
        result["classes"] = _with_first_rule(result["classes"])
    if iri is not None:
        return jsonify(hypothetical=True, lang=lang, **results[0])
    return jsonify(hypothetical=True, lang=lang, resources=results)


def _check_record_size(quads: list[ox.Quad], limit: int) -> None:
    """413 for a record over ``RELMARK_WHATIF_MAX_TRIPLES``: its cost grows with its size."""
    if len(quads) > limit:
        raise ApiError(
            413,
            "the record is too large",
            detail=f"{len(quads):,} triples; a what-if record holds at most {limit:,} "
            "(RELMARK_WHATIF_MAX_TRIPLES)",
        )


def _what_if_refused(error: WhatIfRefused, timeout: float) -> ApiError:
    """503 with ``Retry-After`` for a what-if that was stopped or could not start."""
    if isinstance(error, WhatIfTimeout):
        detail = f"{error} (RELMARK_WHATIF_TIMEOUT: {timeout:g} s); send a smaller record"
        title = "what-if timeout"
    else:
        detail, title = str(error), "what-if unavailable"
    retry = str(max(1, round(error.retry_after)))
    return ApiError(503, title, detail=detail, headers={"Retry-After": retry})


def _record() -> list[ox.Quad]:
    """The request body's statements (graphs ignored); 415/400 when it cannot be read."""
    fmt = format_for_content_type(request.mimetype or "", Kind.RDF)
    if fmt is None:
        raise not_rdf("the record", request.mimetype)
    source = Source(name=_BODY, data=request.get_data(), fmt=rdf_format(fmt))
    try:
        return parse_quads(source, WHAT_IF_GRAPH, get_settings().max_iri_length)
    except LoadError as error:
        raise load_error(error, _BODY) from None


@bp.get("/explain")
def explain_view() -> Response:
    """Why ``iri`` is an instance of ``class``: a tree down to asserted facts and graphs.

    With ``why=not``: for each rule concluding the class, its conditions met and unmet for
    ``iri`` and the nearest unmet one in words (``reasoning.whynot``).
    """
    lang = request_language()
    store = get_store()
    iri = known_resource(store, _required("iri"))
    class_iri = ontology_class(store, _required("class"))
    why = request.args.get("why")
    if why is not None:
        if why.strip().lower() != "not":
            raise ApiError(400, "unsupported value of 'why'", detail="pass why=not or leave it out")
        _, rules = rules_for(get_settings().ontology_dir)
        return jsonify(why_not(store, rules, iri, class_iri, lang))
    try:
        tree = explain(store, iri, class_iri, lang)
    except NotExplained:
        raise ApiError(
            404,
            "the resource is not in that class",
            detail=f"<{iri}> is neither asserted nor inferred to be an instance of <{class_iri}>",
        ) from None
    return jsonify(iri=iri, **{"class": class_iri}, lang=lang, explanation=tree)


def known_resource(store: Store, iri: str) -> str:
    try:
        return check_resource(store, iri)
    except UnknownResource as error:
        raise ApiError(404, "unknown resource", detail=str(error)) from None


def ontology_class(store: Store, iri: str) -> str:
    try:
        return check_class(store, iri)
    except NotAnOntologyClass as error:
        raise ApiError(400, "not an ontology class", detail=str(error)) from None


def _required(name: str) -> str:
    value = request.args.get(name, "").strip()
    if not value:
        raise ApiError(400, f"missing parameter {name!r}", detail=f"pass ?{name}=<IRI>")
    return value
