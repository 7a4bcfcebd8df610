"""CORS for reads: any origin may query and read graphs; no browser may write cross-origin.

A view marks a response as a read with ``mark_read()``; writes are never marked, and
preflights never allow the ``Authorization`` header that every write needs.
"""

from __future__ import annotations

from flask import Response, g


def mark_read() -> None:
    """This request reads: its response (error or not) may go to any origin."""
    g.cors_read = True


def allow_cross_origin_reads(response: Response) -> Response:
    """``after_request`` hook: the CORS header on responses to marked reads."""
    if g.get("cors_read"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def preflight(allow: str, cross_origin: str) -> Response:
    """Answer OPTIONS: ``allow`` lists every method, ``cross_origin`` those open to browsers."""
    response = Response(status=204)
    response.headers.update(
        {
            "Allow": allow,
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": cross_origin,
            "Access-Control-Allow-Headers": "Accept, Content-Type",
            "Access-Control-Max-Age": "86400",
        }
    )
    return response
