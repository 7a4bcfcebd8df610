"""The bearer token that guards every write (SPARQL Update, Graph Store writes)."""

from __future__ import annotations

import hmac

from flask import request

from relmark.web.errors import ApiError
from relmark.web.extensions import get_settings

_CHALLENGE = 'Bearer realm="relmark"'


def require_token() -> None:
    """Refuse a write unless it carries ``Authorization: Bearer <RELMARK_TOKEN>``.

    No token configured means the server is read-only (403, whoever asks); a missing or
    wrong token is 401 with a ``WWW-Authenticate`` challenge (RFC 6750 §3).
    """
    token = get_settings().token
    if not token:
        raise ApiError(
            403,
            "updates are disabled",
            detail="this server has no RELMARK_TOKEN set, so it accepts no writes",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(
            401,
            "a bearer token is required",
            detail="send Authorization: Bearer <token> to write",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "the bearer token is wrong",
            headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'},
        )
