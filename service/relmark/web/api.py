"""``/api/classify`` and ``/api/explain``: a resource's classes with reasons (DESIGN §5-§6).

Reads only: both answer from the store's asserted, inferred and provenance graphs through
``reasoning.explain``, so they work on a worker's snapshot as on the live store.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from relmark.reasoning.explain import (
    NotAnOntologyClass,
    NotExplained,
    UnknownResource,
    check_class,
    check_resource,
    classify,
    explain,
)
from relmark.store import Store
from relmark.web.errors import ApiError
from relmark.web.extensions import get_store

bp = Blueprint("api", __name__, url_prefix="/api")

LANGUAGES = ("en", "it")


@bp.get("/classify")
def classify_view() -> Response:
    """The classes of ``iri``: asserted ones with their graphs, inferred ones with rules."""
    store = get_store()
    iri = known_resource(store, _required("iri"))
    lang = _language()
    entries = []
    for entry in classify(store, iri, lang):
        if entry["status"] == "inferred":
            first = entry["rules"][0] if entry["rules"] else {"rule": None, "why": None}
            entry = {**entry, "rule": first["rule"], "why": first["why"]}
        entries.append(entry)
    return jsonify(iri=iri, lang=lang, classes=entries)


@bp.get("/explain")
def explain_view() -> Response:
    """Why ``iri`` is an instance of ``class``: a tree down to asserted facts and graphs."""
    store = get_store()
    iri = known_resource(store, _required("iri"))
    class_iri = ontology_class(store, _required("class"))
    lang = _language()
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


def _language() -> str:
    """``?lang=`` (en or it), else the best of ``Accept-Language``, else English."""
    lang = request.args.get("lang")
    if lang is not None:
        lang = lang.strip().lower()
        if lang not in LANGUAGES:
            raise ApiError(400, "unsupported language", detail=f"lang is one of {LANGUAGES}")
        return lang
    return request.accept_languages.best_match(LANGUAGES) or "en"
