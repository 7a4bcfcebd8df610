"""CORS for reads: which other origins' pages may read relmark's answers.

``RELMARK_CORS_ORIGINS`` lists the origins (``https://app.example.org,…``); unset, it is
``*`` while reads are public (Fuseki's default, so public data stays usable from any page) and
no origin at all once reads need a token. ``*`` is never sent when reads need a token: a
listed origin gets its own name echoed back with ``Vary: Origin``, so a cache never hands
one origin's answer to another. Set it empty to refuse every other origin.

A view marks a response as a read with ``mark_read()``; writes are never marked. Preflights
allow the ``Authorization`` header only to listed origins on a server whose reads need a
token (their pages must send one); with public reads no browser may send a token
cross-origin, so no page can use a visitor's token to write.
"""

from __future__ import annotations

import sys

from flask import Response, g, request

from relmark.settings import Settings
from relmark.web.extensions import get_settings

#: Blueprints whose reads other origins may make (the machine API, not the HTML pages).
CORS_BLUEPRINTS = frozenset({"sparql", "graphs", "queries", "openapi"})
_warned: set[int] = set()


def mark_read() -> None:
    """This request reads: its response (error or not) may go to an allowed origin."""
    g.cors_read = True


def allowed_origins(settings: Settings, public: bool) -> tuple[str, ...]:
    """The origins in effect: ``("*",)``, a list of origins, or ``()`` for none."""
    origins = settings.cors_origins
    if origins is None:
        return ("*",) if public else ()
    if "*" in origins and not public:
        if id(settings) not in _warned:
            _warned.add(id(settings))
            print(
                "relmark: RELMARK_CORS_ORIGINS=* is ignored because reads need a token; "
                "list the origins instead",
                file=sys.stderr,
            )
        return tuple(o for o in origins if o != "*")
    return ("*",) if "*" in origins else origins


def _policy() -> tuple[tuple[str, ...], bool]:
    settings = get_settings()
    public = settings.reads_public
    return allowed_origins(settings, public), public


def _allow_origin(response: Response, origins: tuple[str, ...]) -> bool:
    """Set ``Access-Control-Allow-Origin`` if the request's origin may read; say whether."""
    if origins == ("*",):
        response.headers["Access-Control-Allow-Origin"] = "*"
        return True
    if origins:
        response.vary.add("Origin")
        origin = request.headers.get("Origin", "").rstrip("/")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            return True
    return False


def allow_cross_origin_reads(response: Response) -> Response:
    """``after_request`` hook: the CORS header on responses to marked reads."""
    if g.get("cors_read") and "Access-Control-Allow-Origin" not in response.headers:
        origins, _ = _policy()
        _allow_origin(response, origins)
    return response


def preflight(allow: str, cross_origin: str) -> Response:
    """Answer OPTIONS: ``allow`` lists every method, ``cross_origin`` those open to browsers."""
    response = Response(status=204)
    response.headers["Allow"] = allow
    origins, public = _policy()
    if _allow_origin(response, origins):
        headers = "Accept, Content-Type" if public else "Accept, Authorization, Content-Type"
        response.headers.update(
            {
                "Access-Control-Allow-Methods": cross_origin,
                "Access-Control-Allow-Headers": headers,
                "Access-Control-Max-Age": "86400",
            }
        )
    return response
