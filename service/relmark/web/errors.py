"""Typed HTTP errors and the one place that turns errors into JSON responses (DESIGN §6).

Views raise ``ApiError`` (or let a domain error from ``loading`` propagate); ``register``
maps each to ``{"error": …, "detail": …, "where": …}`` with its status. Werkzeug's own
HTTP errors (404, 405, 413 from ``MAX_CONTENT_LENGTH``, …) get the same JSON shape.

A browser asking for a page (its ``Accept`` prefers HTML, and the path is not one of the
machine API's) gets the same error as an HTML page instead (``templates/errors/error.html``);
``curl`` and every API client keep the JSON.
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

from relmark.loading import LoadError, ValidationFailed
from relmark.stores.base import RemoteError, RemoteTimeout, RemoteUnavailable


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

    def to_response(self) -> Response:
        """The JSON body of DESIGN §6 (plus ``extra`` keys such as a SHACL report), or an
        HTML page for a browser asking for a page."""
        if wants_html():
            response = Response(
                render_template(
                    "errors/error.html",
                    status=self.status,
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


def wants_html() -> bool:
    """A browser asked for a page: HTML preferred to JSON, on a path that is not the API's."""
    if not has_request_context():
        return False
    path = request.path
    if any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in API_PATHS):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


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
    if message.startswith(f"{error.where}: "):
        message = message[len(error.where) + 2 :]
    return ApiError(400, "the request body does not parse", detail=message, where=where)


def remote_failed(error: RemoteError) -> ApiError:
    """503 when the remote SPARQL server is unreachable or too slow, 502 when it failed.

    A read it did not answer in time is our query timeout, whichever of the two clocks
    (ours, or the HTTP client's, set to the same RELMARK_QUERY_TIMEOUT) ran out first.
    """
    if isinstance(error, RemoteTimeout):
        return query_timeout(error, error.seconds, "narrow the query or add a LIMIT")
    if isinstance(error, RemoteUnavailable):
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


def not_rdf(what: str, mimetype: str | None) -> ApiError:
    """415 for a body that should be RDF; names the formats relmark reads."""
    from relmark.web.negotiation import Kind, formats_of

    accepted = ", ".join(f.media_type for f in formats_of(Kind.RDF))
    return ApiError(
        415,
        "unsupported media type",
        detail=f"send {what} as one of: {accepted} (got {mimetype or 'no Content-Type'})",
    )


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
    app.register_error_handler(RemoteError, lambda e: remote_failed(e).to_response())
