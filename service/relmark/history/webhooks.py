"""Webhook subscriptions and their deliveries: the push half of the change feed.

A subscription names a URL and, optionally, a class (or market property) and a resource.
After each write, ``record.LISTENERS`` hands the new history events to ``Webhooks.enqueue``,
which only inserts rows into an outbox (a small SQLite file beside the store,
``<store>.outbox.sqlite3``): the write never waits for a receiver. A background thread of
the serving process drains the outbox, POSTs one event per delivery signed with the
subscription's secret (``Relmark-Signature: sha256=<HMAC-SHA256 of the body>``), and retries
a failure with exponential back-off (base, 2×base, 4×base … at most ``BACKOFF_CAP``) until
``GIVE_UP`` after the first attempt, when the delivery is marked failed. The outbox is a
file, so pending deliveries survive a restart: the next drainer resumes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from relmark.history import forget, record
from relmark.stores.base import Store

log = logging.getLogger(__name__)

#: the longest pause between two attempts, and how long a delivery is tried at all (seconds)
BACKOFF_CAP = 300.0
GIVE_UP = 24 * 3600.0
#: seconds a receiver may take to answer one delivery
TIMEOUT = 5.0
SIGNATURE_HEADER = "Relmark-Signature"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, class TEXT, resource TEXT,
    secret TEXT NOT NULL, created TEXT NOT NULL, owner TEXT);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, subscription TEXT NOT NULL, body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, next_at REAL NOT NULL, last_error TEXT);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at);
"""


class BadSubscription(ValueError):
    """A subscription whose URL or filter cannot be accepted."""


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    cls: str | None
    resource: str | None
    created: str
    owner: str | None

    def as_json(self) -> dict[str, object]:
        """The subscription without its secret (shown once, at creation)."""
        return {
            "id": self.id,
            "url": self.url,
            "class": self.cls,
            "resource": self.resource,
            "created": self.created,
            "owner": self.owner,
        }


def check_url(url: str, allow: Iterable[str]) -> str:
    """``url`` if relmark may POST to it: http or https, no credentials in it, and starting
    with one of the ``allow`` prefixes at a boundary (``http://127.0.0.1`` allows
    ``http://127.0.0.1:8080/hook`` but not ``http://127.0.0.1.example.org``). Which hosts a
    deployment may call is its own decision (``RELMARK_WEBHOOK_ALLOW``); the default is the
    loopback only, so a token holder cannot make the server probe the network it sits in."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadSubscription(f"{url!r}: only http and https URLs can receive webhooks")
    if parts.username is not None or parts.password is not None:
        raise BadSubscription(f"{url!r}: a webhook URL may not carry credentials")
    if not parts.hostname:
        raise BadSubscription(f"{url!r}: no host")
    for prefix in allow:
        if url.startswith(prefix) and (
            len(url) == len(prefix) or prefix.endswith("/") or url[len(prefix)] in ":/?#"
        ):
            return url
    raise BadSubscription(
        f"{url!r} is not among the allowed webhook hosts ({', '.join(allow) or 'none'}); "
        "set RELMARK_WEBHOOK_ALLOW to allow it"
    )


def sign(secret: str, body: bytes) -> str:
    """The ``Relmark-Signature`` value of ``body``: what a receiver recomputes to trust it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    """The outbox of one store and its drainer thread."""

    def __init__(self, store: Store, path: str, *, backoff: float = 1.0, poll: float = 0.5):
        self.store = store
        self.path = path
        self.backoff = backoff
        self.poll = min(poll, backoff)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # deleted rows are overwritten, not left in free pages: an erasure must not leave the
        # erased IRI readable in the file
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(_SCHEMA)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._erasing: set[str] = set()
        record.LISTENERS.append(self.enqueue)
        forget.ERASURE_LISTENERS.append(self.erasing)

    # subscriptions -------------------------------------------------------------------

    def subscribe(
        self, url: str, cls: str | None, resource: str | None, owner: str | None
    ) -> tuple[Subscription, str]:
        """A new subscription and its secret (kept only here: never listed again)."""
        sub = Subscription(
            uuid.uuid4().hex, url, cls, resource, datetime.now(UTC).isoformat(), owner
        )
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sub.id, url, cls, resource, secret, sub.created, owner),
            )
        return sub, secret

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, url, class, resource, created, owner FROM subscriptions"
                " ORDER BY created"
            ).fetchall()
        return [Subscription(*row) for row in rows]

    def unsubscribe(self, sub_id: str) -> bool:
        """Remove a subscription and its undelivered events; False if there was none."""
        with self._lock:
            gone = self._db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,)).rowcount
            self._db.execute(
                "DELETE FROM deliveries WHERE subscription = ? AND status = 'pending'", (sub_id,)
            )
        return bool(gone)

    def deliveries(self) -> list[dict[str, object]]:
        """Every delivery's state (for tests and operators)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, subscription, status, attempts, last_error FROM deliveries"
            ).fetchall()
        keys = ("id", "subscription", "status", "attempts", "lastError")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # the outbox ----------------------------------------------------------------------

    def enqueue(self, store: Store, events: list[dict[str, object]]) -> None:
        """``record.LISTENERS`` callback: one delivery per matching (subscription, event).
        Only inserts rows, so a write costs one small SQLite transaction at most."""
        if store is not self.store or not events:
            return
        now = time.time()
        with self._lock:
            subs = self._db.execute("SELECT id, class, resource FROM subscriptions").fetchall()
            rows = []
            for sub_id, cls, resource in subs:
                for event in events:
                    if self._erasing & {event.get("resource"), event.get("firm")}:
                        continue  # an erasure's own events name what it erases
                    if cls and cls not in (event.get("class"), event.get("property")):
                        continue
                    if resource and resource != event.get("resource"):
                        continue
                    delivery = uuid.uuid4().hex
                    body = {"delivery": delivery, "subscription": sub_id, "events": [event]}
                    rows.append((delivery, sub_id, json.dumps(body, ensure_ascii=False), now, now))
            if rows:
                self._db.executemany(
                    "INSERT INTO deliveries (id, subscription, body, created, next_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        if rows:
            self._wake.set()

    def erasing(self, store: Store, iris: set[str], started: bool) -> None:
        """``forget.ERASURE_LISTENERS`` callback: while an erasure runs, enqueue nothing
        that names what it erases; before and after, drop the deliveries naming it (pending
        ones are never sent; sent ones no longer keep it in the outbox file)."""
        if store is not self.store:
            return
        with self._lock:
            if started:
                self._erasing |= iris
            else:
                self._erasing -= iris
            for iri in iris:
                self._db.execute(
                    "DELETE FROM deliveries WHERE instr(body, ?) > 0",
                    (json.dumps(iri)[1:-1],),
                )

    # the drainer ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the drainer; it resumes whatever the outbox still holds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="relmark-webhooks", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the drainer (a delivery in flight ends within ``TIMEOUT``); pending rows stay."""
        if self.enqueue in record.LISTENERS:
            record.LISTENERS.remove(self.enqueue)
        if self.erasing in forget.ERASURE_LISTENERS:
            forget.ERASURE_LISTENERS.remove(self.erasing)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT + 1)
        with self._lock:
            self._db.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain_once()
            except Exception:  # a broken row must not end the drainer
                log.exception("webhook drainer failed; retrying")
            self._wake.wait(self.poll)
            self._wake.clear()

    def drain_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        with self._lock:
            due = self._db.execute(
                "SELECT d.id, d.body, d.attempts, d.created, s.url, s.secret FROM deliveries d"
                " JOIN subscriptions s ON s.id = d.subscription"
                " WHERE d.status = 'pending' AND d.next_at <= ? ORDER BY d.created LIMIT 100",
                (time.time(),),
            ).fetchall()
        for delivery, body, attempts, created, url, secret in due:
            if self._stop.is_set():
                break
            error = self._post(url, secret, body.encode())
            attempts += 1
            now = time.time()
            if error is None:
                status, next_at = "delivered", now
            elif now - created >= GIVE_UP:
                status, next_at = "failed", now
            else:
                status = "pending"
                next_at = now + min(self.backoff * 2 ** (attempts - 1), BACKOFF_CAP)
            # a failure is a warning, so it shows where nothing configured logging
            log.log(
                logging.INFO if error is None else logging.WARNING,
                "webhook delivery %s to %s: attempt %d %s",
                delivery,
                url,
                attempts,
                "ok" if error is None else f"failed ({error}); {status}",
            )
            with self._lock:
                self._db.execute(
                    "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ?"
                    " WHERE id = ?",
                    (status, attempts, next_at, error, delivery),
                )
        return len(due)

    @staticmethod
    def _post(url: str, secret: str, body: bytes) -> str | None:
        """POST one delivery; None on a 2xx answer, else what went wrong."""
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, body),
                "User-Agent": "relmark-webhooks",
            },
        )
        try:
            # the URL was checked against the allow-list at subscription time, and
            # redirects are not followed: they could lead anywhere
            with _NO_REDIRECTS.open(request, timeout=TIMEOUT) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            return str(error) or type(error).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx answer is a failed delivery: following it would leave the allow-list."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def outbox_path(store_location: str) -> str | None:
    """``<store>.outbox.sqlite3`` for a store on disk; None for a remote or in-memory one
    (their deployments have no file beside the store to keep an outbox in)."""
    if "://" in store_location or not store_location or store_location == ":memory:":
        return None
    return store_location.rstrip("/") + ".outbox.sqlite3"
