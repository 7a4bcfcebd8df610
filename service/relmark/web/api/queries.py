"""``/api/queries``: the named competency questions as a REST API (after Datasette's
canned queries).

``GET /api/queries`` lists the catalogue; ``GET /api/queries/<name>?param=…`` runs one
question with its parameters taken from the query string. The view only translates: the
catalogue, parameter typing and binding live in ``relmark.queries``. Answers come as JSON
(rows as objects, IRIs with labels in the chosen language), SPARQL JSON or CSV, one page at
a time with a ``next`` link (also sent as ``Link: <…>; rel="next"``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from relmark import queries
from relmark.errors import QueryTimeout
from relmark.queries import NamedQuery, NamedResult, ParameterError
from relmark.stores.base import Remote
from relmark.vocab import QUERIES_DIR
from relmark.web.cors import allow_cross_origin_reads, mark_read
from relmark.web.errors import ApiError, query_timeout
from relmark.web.extensions import get_query_runner, get_settings, get_store
from relmark.web.i18n import request_language
from relmark.web.negotiation import parse_accept, quality

bp = Blueprint("queries", __name__, url_prefix="/api")
bp.after_request(allow_cross_origin_reads)

#: A page holds this many rows unless ``?limit=`` says otherwise (at most RELMARK_MAX_ROWS);
#: Datasette's default page size, and each IRI on a page costs a label lookup.
DEFAULT_PAGE = 100
#: Seconds the class check of the parameters may take after the question timed out.
CHECK_AFTER_TIMEOUT = 5.0
#: The answer formats: ``?format=`` name → media type. The first is the default.
OUTPUTS = {
    "json": "application/json",
    "sparql-json": "application/sparql-results+json",
    "csv": "text/csv",
}


def catalogue() -> list[NamedQuery]:
    """The questions of the configured directory (``queries/`` unless a test says otherwise)."""
    try:
        return queries.load_catalogue(queries_dir())
    except queries.CatalogueError as error:
        raise ApiError(500, "the query catalogue is broken", detail=str(error)) from None


def queries_dir() -> Path:
    """``queries/``, unless the app was built with another ``RELMARK_QUERIES_DIR`` (tests)."""
    return Path(current_app.config.get("RELMARK_QUERIES_DIR", QUERIES_DIR))


@bp.get("/queries")
def list_queries() -> Response:
    """Every question with its title, description and parameters in ``?lang=``."""
    mark_read()
    lang = request_language()
    _only_params({"lang"})
    return jsonify(queries=[describe(query, lang) for query in catalogue()])


def describe(query: NamedQuery, lang: str) -> dict:
    """One catalogue entry, in the shape of the contract (BRIEF: named queries)."""
    return {
        "name": query.name,
        "question": query.question,
        "title": _pick(query.title, lang),
        "description": _pick(query.description, lang),
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "class": p.class_iri,
                "required": p.required,
                "default": p.default,
                "description": _pick(p.description, lang),
                "example": p.example,
            }
            for p in query.parameters
        ],
        "links": {
            "self": url_for("queries.list_queries", _external=True) + f"#{query.name}",
            "run": url_for("queries.run_query", name=query.name, _external=True),
        },
    }


@bp.get("/queries/<name>")
def run_query(name: str) -> Response:
    """Run one question; parameters from the query string, one page of answers."""
    mark_read()
    query = next((q for q in catalogue() if q.name == name), None)
    if query is None:
        known = ", ".join(q.name for q in catalogue())
        raise ApiError(404, "unknown query", detail=f"no question named {name!r}; known: {known}")
    lang = request_language()
    output = _output()
    settings = get_settings()
    limit = _count("limit", DEFAULT_PAGE, minimum=1, maximum=settings.max_result_rows)
    offset = _count("offset", 0, minimum=0, maximum=2**62)
    params = _query_params()
    store = get_store()

    started = threading.Event()

    def work(cancelled: threading.Event) -> tuple[NamedResult, dict[str, str]]:
        started.set()
        labelled = lang if output == "json" else None
        return queries.answer(store, query, params, limit=limit, offset=offset, lang=labelled)

    try:
        result, names = get_query_runner().run(work, settings.query_timeout)
    except ParameterError as error:
        raise parameter_error(error) from None
    except QueryTimeout as error:
        if isinstance(store, Remote) and started.is_set():  # (not when no worker was free)
            _check_classes_after_timeout(query, params)
        advice = "narrow the parameters or page with a smaller limit"
        raise query_timeout(error, settings.query_timeout, advice) from None
    next_url = _next_url(query, result) if result.has_more else None
    response = _render(query, result, names, output, next_url, lang)
    if next_url:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    response.vary.add("Accept")
    return response


def _check_classes_after_timeout(query: NamedQuery, params: Mapping[str, str]) -> None:
    """A 400 for an IRI of the wrong class, even when the question ran out of time.

    On a remote store ``queries.answer`` checks the classes while the question runs, and
    reports the check's error once the question ends; a question that times out never
    gets there, so the check runs again here. If it cannot finish in
    ``CHECK_AFTER_TIMEOUT`` seconds either, the timeout stands.
    """
    try:
        bindings = queries.bind_parameters(query, params)
    except ParameterError:  # bound once already, before the question
        return
    if not queries.class_checks(query, bindings):
        return
    store = get_store()
    seconds = min(CHECK_AFTER_TIMEOUT, get_settings().query_timeout)
    try:
        get_query_runner().run(
            lambda cancelled: queries.check_classes(store, query, bindings, params), seconds
        )
    except ParameterError as error:
        raise parameter_error(error) from None
    except Exception:  # the question's timeout is the answer then
        return


def _render(
    query: NamedQuery,
    result: NamedResult,
    names: Mapping[str, str],
    output: str,
    next_url: str | None,
    lang: str,
) -> Response:
    if output == "csv":
        return Response(queries.to_csv(result), content_type="text/csv; charset=utf-8")
    if output == "sparql-json":
        body = queries.sparql_json(result, [next_url] if next_url else [])
        return Response(
            current_app.json.dumps(body),
            content_type="application/sparql-results+json; charset=utf-8",
        )
    return jsonify(
        query=query.name,
        lang=lang,
        parameters={k: queries.binding_text(v) for k, v in result.bindings.items()},
        columns=result.columns,
        rows=queries.rows_json(result, names),
        limit=result.limit,
        offset=result.offset,
        next=next_url,
    )


def parameter_error(error: ParameterError) -> ApiError:
    """400 naming the parameter, the value received and what was expected."""
    shown = "no value" if error.value is None else f"{error.value!r}"
    if error.value is None:
        title = f"missing parameter {error.name!r}"
    elif error.expected.startswith("no such parameter"):
        title = f"unknown parameter {error.name!r}"
    else:
        title = f"ill-typed parameter {error.name!r}"
    return ApiError(
        400,
        title,
        detail=f"{error.name}: got {shown}, expected {error.expected}",
        where=error.name,
        extra={"parameter": error.name, "value": error.value, "expected": error.expected},
    )


def _query_params() -> dict[str, str]:
    """The question's parameters: every query-string field but the HTTP layer's own."""
    params: dict[str, str] = {}
    for name in request.args:
        if name in queries.RESERVED_NAMES:
            continue
        values = request.args.getlist(name)
        if len(values) != 1:
            raise parameter_error(ParameterError(name, values[0], "a single value (given twice)"))
        params[name] = values[0]
    return params


def _only_params(allowed: set[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise parameter_error(
            ParameterError(unknown[0], request.args[unknown[0]], "no such parameter here")
        )


def _count(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        return default
    expected = f"a whole number from {minimum} to {maximum}"
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit()):  # int() also takes "٣" and "1_000"
        raise parameter_error(ParameterError(name, raw, expected))
    value = int(digits)
    if not minimum <= value <= maximum:
        raise parameter_error(ParameterError(name, raw, expected))
    return value


def _output() -> str:
    """``?format=`` if given, else the best of Accept among JSON, SPARQL JSON and CSV."""
    named = request.args.get("format")
    if named is not None:
        if named not in OUTPUTS:
            raise parameter_error(ParameterError("format", named, f"one of {', '.join(OUTPUTS)}"))
        return named
    ranges = parse_accept(request.headers.get("Accept"))
    scored = [
        (quality(ranges, media), -rank, name) for rank, (name, media) in enumerate(OUTPUTS.items())
    ]
    acceptable = [entry for entry in scored if entry[0][0] > 0]
    if not acceptable:
        offered = ", ".join(OUTPUTS.values())
        raise ApiError(406, "not acceptable", detail=f"this resource is available as: {offered}")
    return max(acceptable)[2]


def _pick(texts: Mapping[str, str], lang: str) -> str:
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


def _next_url(query: NamedQuery, result: NamedResult) -> str:
    """The same request, one page further on."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "offset"]
    args.append(("offset", str(result.offset + len(result.rows))))
    base = url_for("queries.run_query", name=query.name, _external=True)
    return f"{base}?{urlencode(args)}"
