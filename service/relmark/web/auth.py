"""Who may read and write: bearer tokens with the roles reader ⊆ writer ⊆ admin.

Flask-HTTPAuth parses ``Authorization: Bearer …``, checks roles and decides 401 against
403; ``relmark.tokens`` knows the tokens. The policy, in one place:

- **reads** (queries, ``GET /data``, ``/api/*``, the HTML pages) need a ``reader`` token,
  unless reads are public: by default only when the server is bound to 127.0.0.1,
  ``localhost`` or ``::1`` (where only this machine can connect), or when the operator
  says so with ``RELMARK_PUBLIC_READS=1``. Other loopback addresses such as 127.0.0.2 count
  as a network bind, which keeps the rule a plain comparison of the ``--host`` text;
- **writes** (SPARQL Update, Graph Store PUT/POST/DELETE) need ``writer``;
- **admin** alone may run store-wide updates (``CLEAR``/``DROP ALL``/``NAMED``/``DEFAULT``)
  and see the store's location in ``/healthz``. Tokens are made with the CLI, not over HTTP.

Without credentials, or with a token relmark does not know, the answer is 401 with a
``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3); a known token whose role is too low
gets 403. A request that sends a token is always checked, even where reads are public, so
a wrong token never passes silently as anonymous.
"""

from __future__ import annotations

import sys

from flask import Flask, Response, current_app, g, request
from flask_httpauth import HTTPTokenAuth

from relmark.settings import Settings
from relmark.tokens import Principal, TokenError, TokenStore, token_path
from relmark.web.cors import CORS_BLUEPRINTS, mark_read
from relmark.web.errors import ApiError
from relmark.web.extensions import get_settings

#: Endpoints anyone may call: liveness (which says less to anonymous callers) and the
#: pages' own CSS/JS, which hold no data.
OPEN_ENDPOINTS = frozenset({"health.healthz", "static", "browse.vendor"})
TOKENS = "relmark.tokens"
_REALM = "relmark"

auth = HTTPTokenAuth(scheme="Bearer", realm=_REALM)


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the token store and the read gate in front of every view."""
    app.extensions[TOKENS] = TokenStore(
        token_path(settings.store, settings.token_file), settings.token
    )
    app.before_request(gate)
    app.register_error_handler(TokenError, _broken_token_file)


def _broken_token_file(error: TokenError) -> Response:
    """500 for a token file that does not parse: every token is refused (fail closed) while
    open reads go on. The file's path and the parse error go to the log, not the client."""
    print(f"relmark: {error}", file=sys.stderr)
    return ApiError(
        500,
        "the token file cannot be read",
        detail="no token can be checked until the operator fixes it (relmark token list)",
    ).to_response()


def token_store() -> TokenStore:
    return current_app.extensions[TOKENS]


@auth.verify_token
def _verify(token: str) -> Principal | None:
    return token_store().verify(token.strip())  # a broken file: TokenError, 500 above


@auth.get_user_roles
def _roles(principal: Principal) -> list[str]:
    return principal.roles()


@auth.error_handler
def _refuse(status: int) -> None:
    """Raise our JSON (or HTML) error instead of Flask-HTTPAuth's plain-text one."""
    needed = g.get("relmark_needed_role", "reader")
    challenge = f'Bearer realm="{_REALM}"'
    if status == 403:
        principal = auth.current_user() or g.get("relmark_principal")
        who = f"{principal.name} is a {principal.role} token" if principal else "this token"
        raise ApiError(
            403,
            f"this needs the {needed} role",
            detail=f"{who}; ask an admin for a {needed} token (relmark token create)",
            headers={"WWW-Authenticate": challenge + ', error="insufficient_scope"'},
        )
    if auth.get_auth() is None:  # no Authorization header, or not a Bearer one
        raise ApiError(
            401,
            "a bearer token is required",
            detail=f"send Authorization: Bearer <token> with a {needed} token",
            headers={"WWW-Authenticate": challenge},
        )
    raise ApiError(
        401,
        "the bearer token is wrong",
        detail="relmark knows no such token (revoked, or mistyped)",
        headers={"WWW-Authenticate": challenge + ', error="invalid_token"'},
    )


def _passed() -> None:
    return None


def current_principal() -> Principal | None:
    """The caller's principal; None when no credentials came. A bad token is 401."""
    if "relmark_principal" not in g:
        principal = None
        if _credentials():
            auth.login_required(_passed)()  # raises through _refuse when not valid
            principal = auth.current_user()
        g.relmark_principal = principal
    return g.relmark_principal


def _credentials() -> bool:
    """Whether the request presents credentials to check. On a server that knows no token
    at all none can be right, and a write is refused as "updates are disabled" (403) below,
    which says more than "the bearer token is wrong" would."""
    return "Authorization" in request.headers and not token_store().empty()


def require_role(role: str) -> Principal | None:
    """Refuse the request unless its caller holds ``role`` (None: an open read)."""
    if role == "reader" and not _credentials() and get_settings().reads_public:
        return None
    if role != "reader" and not token_store().can_write():
        raise ApiError(
            403,
            "updates are disabled",
            detail="this server has no RELMARK_TOKEN and no writer or admin token "
            "(relmark token create --role writer), so it accepts no writes",
        )
    g.relmark_needed_role = role
    auth.login_required(role=role)(_passed)()
    principal = auth.current_user()
    g.relmark_principal = principal
    return principal


def require_token() -> None:
    """Refuse a write unless its token holds the writer role (the name of earlier versions)."""
    require_role("writer")


def require_admin() -> None:
    """Refuse a store-wide operation unless its token holds the admin role."""
    require_role("admin")


def gate() -> None:
    """``before_request``: every request but the open endpoints and preflights is a read
    at least; views that write ask for more (``require_token``, ``require_admin``)."""
    if request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS:
        return
    try:
        require_role("reader")
    except ApiError:
        if request.blueprint in CORS_BLUEPRINTS:
            mark_read()  # an allowed origin's script may see the 401 and ask for a token
        raise
