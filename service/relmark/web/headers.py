"""Security headers on every response (OWASP Secure Headers; what Datasette and Fuseki's
UI send or recommend).

- ``X-Content-Type-Options: nosniff`` everywhere, so a browser never reads a SPARQL result
  or an RDF body as HTML or script;
- HTML pages get a Content-Security-Policy that allows only relmark's own scripts, styles,
  images and fetches: no inline script, no ``eval``, no plugins, no ``<base>``, forms only
  to relmark, and no framing (``frame-ancestors 'none'``, plus ``X-Frame-Options`` for old
  browsers). The pages keep their data for scripts in ``<script type="application/json">``
  blocks, which are data, not script, so the policy needs no ``'unsafe-inline'``;
- every other response gets ``default-src 'none'``: nothing it contains may load or run
  anything if a browser ever renders it;
- ``Referrer-Policy: no-referrer``: page URLs name customers (``/resource?iri=…``), which
  must not leak to the sites a page links to.
"""

from __future__ import annotations

from flask import Response

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"


def add_security_headers(response: Response) -> Response:
    """``after_request`` hook for the whole app (error responses included)."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if response.status_code != 204 and response.mimetype in ("text/html", "application/xhtml+xml"):
        headers["Content-Security-Policy"] = PAGE_POLICY
        headers["X-Frame-Options"] = "DENY"
    else:
        headers.setdefault("Content-Security-Policy", OTHER_POLICY)
    return response
