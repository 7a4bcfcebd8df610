"""Bearer tokens with roles, kept hashed in a JSON file beside the store.

Roles nest: ``admin`` ⊇ ``writer`` ⊇ ``reader`` (Fuseki's and GraphDB's read / write /
admin split). The file (``<store>.tokens.json``, or ``RELMARK_TOKEN_FILE``) holds for each
token its name, role, creation time and SHA-256 hash, never the token itself, so a copy of
the file (a backup, say) gives no access. A plain SHA-256 is enough because every token is
32 random bytes from ``secrets``: a slow password hash guards low-entropy secrets a person
chose, and there is nothing here to guess (GitHub and Datasette store API tokens the same
way). The server re-reads the file when it changes, so ``relmark token create/revoke``
take effect on a running server within one request.

``RELMARK_TOKEN`` (the one token of earlier versions) still works: it is an admin token
that is not in the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: From least to most: each role may do everything the ones before it may.
ROLES = ("reader", "writer", "admin")
#: Tokens start with this, so a leaked one is recognisable (secret scanners, logs).
PREFIX = "rmk_"
#: The name the RELMARK_TOKEN environment token goes by (in logs and /healthz).
ENV_TOKEN_NAME = "RELMARK_TOKEN"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class TokenError(ValueError):
    """A token file that cannot be read, or a request the file cannot honour."""


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to: its name and its role."""

    name: str
    role: str

    def roles(self) -> list[str]:
        """The roles this principal holds, its own and every lesser one."""
        return list(ROLES[: ROLES.index(self.role) + 1])

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: str
    created: str
    hash: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role, "created": self.created, "hash": self.hash}


def digest(token: str) -> str:
    """``sha256:<hex>`` of a token, as stored in the file."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def default_path(store: str) -> Path | None:
    """``<store>.tokens.json`` beside a store directory; None for a remote store."""
    if store.startswith(("sparql+http://", "sparql+https://")):
        return None
    return Path(store).with_name(Path(store).name + ".tokens.json")


def token_path(store: str, token_file: str | None) -> Path | None:
    """The token file in effect: ``RELMARK_TOKEN_FILE`` if set, else the default."""
    return Path(token_file) if token_file else default_path(store)


def read_entries(path: Path | None) -> list[TokenEntry]:
    """Every token in the file; a missing file holds none."""
    if path is None or not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [
            TokenEntry(**{k: e[k] for k in ("name", "role", "created", "hash")})
            for e in data["tokens"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TokenError(f"{path}: not a relmark token file ({error})") from None
    for entry in entries:
        if entry.role not in ROLES or not entry.hash.startswith("sha256:"):
            raise TokenError(f"{path}: token {entry.name!r} has role {entry.role!r} or a bad hash")
    return entries


def _write_entries(path: Path, entries: list[TokenEntry]) -> None:
    """Replace the file atomically, readable by its owner only (it guards personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"version": 1, "tokens": [e.to_json() for e in entries]}, indent=2)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create(path: Path, role: str, name: str | None = None) -> tuple[str, TokenEntry]:
    """A new token of ``role``: the token itself (shown once) and its stored entry."""
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    entries = read_entries(path)
    taken = {e.name for e in entries} | {ENV_TOKEN_NAME}
    if name is None:
        n = 1
        while f"{role}-{n}" in taken:
            n += 1
        name = f"{role}-{n}"
    if not _NAME.fullmatch(name):
        raise TokenError(f"a token name is 1-64 letters, digits, '.', '_' or '-': {name!r}")
    if name in taken:
        raise TokenError(f"a token named {name!r} exists; revoke it first or pick another name")
    token = PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    entry = TokenEntry(name=name, role=role, created=created, hash=digest(token))
    _write_entries(path, [*entries, entry])
    return token, entry


def revoke(path: Path, name: str) -> TokenEntry:
    """Remove the token called ``name``; TokenError if there is none."""
    entries = read_entries(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        raise TokenError(f"no token named {name!r} in {path}")
    _write_entries(path, kept)
    return next(e for e in entries if e.name == name)


class TokenStore:
    """What a server checks bearer tokens against: the file (re-read when it changes) and
    the ``RELMARK_TOKEN`` admin token.

    The file is stat'ed on each check (about a microsecond) rather than watched, so a
    token revoked with the CLI stops working on the next request in every worker process.
    """

    def __init__(self, path: Path | None, env_token: str | None) -> None:
        self.path = path
        self._env_hash = digest(env_token) if env_token else None
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._entries: list[TokenEntry] = []

    def _current(self) -> list[TokenEntry]:
        if self.path is None:
            return []
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._seen:
                self._entries = read_entries(self.path) if stamp else []
                self._seen = stamp
            return self._entries

    def verify(self, token: str) -> Principal | None:
        """The principal a presented token belongs to, or None.

        Hashes are compared in constant time; every entry is compared (no early exit), so
        timing does not tell which entry nearly matched.
        """
        given = digest(token)
        found: Principal | None = None
        if self._env_hash and hmac.compare_digest(given, self._env_hash):
            found = Principal(ENV_TOKEN_NAME, "admin")
        for entry in self._current():
            if hmac.compare_digest(given, entry.hash) and found is None:
                found = Principal(entry.name, entry.role)
        return found

    def empty(self) -> bool:
        """Whether no token exists at all (a read-only server open to everyone)."""
        return not self._env_hash and not self._current()

    def can_write(self) -> bool:
        """Whether any token may write: without one the server is read-only."""
        return bool(self._env_hash) or any(e.role != "reader" for e in self._current())
