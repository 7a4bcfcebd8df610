"""Typed HTTP errors, and the one place that turns every error into a response.

Views raise ``ApiError`` or let a typed error of the domain propagate (``relmark.errors``,
``loading``); ``register`` maps each to its status and to ``{"error": …, "detail": …,
"where": …}``. Werkzeug's own HTTP errors (404 of an unknown URL, 405, 413 from
``MAX_CONTENT_LENGTH``, …) and unhandled failures (500) take the same path.

Who gets HTML instead of JSON is one policy (``wants_html``): the machine API's paths
always answer JSON; a page answers HTML unless the client prefers JSON; any other URL
answers HTML only to a client that prefers it (a browser). The HTML is one template
(``templates/errors/error.html``), with the pages' header and language when the error
happened on a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    has_request_context,
    jsonify,
    render_template,
    request,
)
from werkzeug.exceptions import HTTPException

from relmark.errors import BackendFailed, BackendUnavailable, Busy, QueryTimeout
from relmark.loading import LoadError, ValidationFailed
from relmark.web.extensions import get_settings


class ApiError(Exception):
    """An error a client caused or must know about, carrying its HTTP status."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: Any = None,
        where: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {detail}" if detail else f"{status} {error}")
        self.status = status
        self.error = error
        self.detail = detail
        self.where = where
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def __reduce__(self) -> tuple:  # a copy is the same error (``QueryRunner.refuse``)
        return type(self), (
            self.status,
            self.error,
            self.detail,
            self.where,
            self.headers,
            self.extra,
        )

    def to_response(self) -> Response:
        """The JSON body ``{"error", "detail", "where"}`` (plus ``extra`` keys such as a
        SHACL report), or the HTML error page for a client that wants one (``wants_html``)."""
        if wants_html():
            response = Response(
                render_template(
                    "errors/error.html",
                    status=self.status,
                    title=str(self.status),
                    error=self.error,
                    detail=self.detail if isinstance(self.detail, str | None) else str(self.detail),
                    where=self.where,
                ),
                content_type="text/html; charset=utf-8",
            )
        else:
            body = {"error": self.error, "detail": self.detail, "where": self.where, **self.extra}
            response = jsonify(body)
        response.vary.add("Accept")
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


#: Paths of the machine API: their errors are JSON whatever the client accepts.
API_PATHS = ("/sparql", "/data", "/api", "/healthz", "/static/", "/vendor/")


#: The blueprint of the HTML pages (``web.pages``), nested ones included.
PAGES_BLUEPRINT = "browse"


def wants_html() -> bool:
    """Whether this request's error is an HTML page rather than JSON.

    Never on the machine API's paths. On a page, unless the client prefers JSON (a page's
    reader is a person; ``curl -H 'Accept: application/json'`` still gets JSON). Anywhere
    else, only when the client prefers HTML to JSON, as a browser does.
    """
    if not has_request_context():
        return False
    path = request.path
    if any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in API_PATHS):
        return False
    if on_a_page():
        best = request.accept_mimetypes.best_match(["text/html", "application/json"])
        return best != "application/json"
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def on_a_page() -> bool:
    """The request was routed to one of the HTML pages."""
    blueprint = request.blueprint or ""
    return blueprint == PAGES_BLUEPRINT or blueprint.startswith(PAGES_BLUEPRINT + ".")


_POSITION = re.compile(r"\bat (\d+):(\d+)\b")


def syntax_error(error: SyntaxError, what: str = "query") -> ApiError:
    """400 for a SPARQL text pyoxigraph rejected, with ``where`` as ``line:column``.

    pyoxigraph reports SPARQL positions only inside the message (``error at 1:25: …``).
    """
    message = error.msg or str(error)
    found = _POSITION.search(message)
    where = f"{found[1]}:{found[2]}" if found else None
    if where is None and error.lineno:
        where = f"{error.lineno}:{error.offset or 0}"
    return ApiError(400, f"malformed {what}", detail=message, where=where)


def validation_failed(failure: ValidationFailed) -> ApiError:
    """422 with the SHACL report: machine-readable under ``report``, prose under ``detail``."""
    report = failure.report
    data = report.to_json()
    if isinstance(data, str | bytes):
        data = json.loads(data)
    return ApiError(
        422,
        "the data does not conform to the shapes; nothing was written",
        detail=report.text,
        extra={"report": data},
    )


def load_error(error: LoadError, source_name: str) -> ApiError:
    """400 for an unparseable request body; ``where`` is ``line:column`` within the body."""
    where = error.where
    if where and where.startswith(source_name + ":"):
        where = where[len(source_name) + 1 :]
    message = error.message
    if error.where is not None and message.startswith(f"{error.where}: "):
        message = message[len(error.where) + 2 :]
    return ApiError(400, "the request body does not parse", detail=message, where=where)


def remote_failed(error: BackendFailed) -> ApiError:
    """503 when the store's back-end server is unreachable or too slow, 502 when it failed.

    A read it did not answer in time is our query timeout, whichever of the two clocks
    (ours, or the HTTP client's, set to the same RELMARK_QUERY_TIMEOUT) ran out first.
    """
    if isinstance(error, QueryTimeout) and error.seconds is not None:
        return query_timeout(error, error.seconds, "narrow the query or add a LIMIT")
    if isinstance(error, BackendUnavailable):
        return ApiError(
            503,
            "the store's SPARQL server is unavailable",
            detail=str(error),
            where=error.backend,
            headers={"Retry-After": "5"},
        )
    return ApiError(502, "the store's SPARQL server failed", detail=str(error), where=error.backend)


def query_timeout(error: Exception, seconds: float, advice: str) -> ApiError:
    """503 for a query that did not answer within RELMARK_QUERY_TIMEOUT."""
    return ApiError(
        503,
        "query timeout",
        detail=f"{error}: no answer within {seconds:g} s (RELMARK_QUERY_TIMEOUT); {advice}",
        headers={"Retry-After": str(max(1, round(seconds)))},
    )


def busy(error: Busy) -> ApiError:
    """503 with ``Retry-After`` for work refused because every slot is taken."""
    retry = max(1, round(error.retry_after))
    return ApiError(
        503, "the server is busy", detail=str(error), headers={"Retry-After": str(retry)}
    )


def retiring_error() -> ApiError:
    """503 for a query held by a worker on its way out (a new connection reaches another)."""
    return ApiError(
        503,
        "the worker is restarting",
        detail="this worker process is being replaced (after a query overran its timeout, "
        "or on shutdown); the query was not answered here; retry at once",
        headers={"Retry-After": "1"},
    )


def _timed_out(error: QueryTimeout) -> ApiError:
    """A query timeout no view turned into its own advice."""
    seconds = error.seconds if error.seconds is not None else get_settings().query_timeout
    return query_timeout(error, seconds, "narrow the query or add a LIMIT")


def _http_exception(error: HTTPException) -> Response:
    """Werkzeug's errors in our JSON shape, keeping headers such as ``Allow`` on 405."""
    headers = {
        k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")
    }
    detail = error.description
    if error.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        size = f"{limit:,} bytes" if limit else "this server accepts"
        detail = f"the request body is larger than {size} (RELMARK_MAX_BODY)"
    name = (error.name or "error").lower()
    return ApiError(error.code or 500, name, detail=detail, headers=headers).to_response()


def register(app: Flask) -> None:
    """Map every typed error to its status, once for the whole app."""
    app.register_error_handler(ApiError, lambda e: e.to_response())
    app.register_error_handler(ValidationFailed, lambda e: validation_failed(e).to_response())
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(BackendFailed, lambda e: remote_failed(e).to_response())
    app.register_error_handler(Busy, lambda e: busy(e).to_response())
    app.register_error_handler(QueryTimeout, lambda e: _timed_out(e).to_response())
