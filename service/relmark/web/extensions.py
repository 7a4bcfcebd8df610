"""The app's shared resources and their one accessor each: store, settings, query runner.

Views call ``get_store()``; only ``init_app`` opens the store and only ``close_app``
closes it (flaskr's ``db.py`` pattern), so no view manages a store's lifecycle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from flask import Flask, current_app, g, request

from relmark.execution import QUERY_NICENESS, QUERY_WORKERS, QueryRunner
from relmark.history.record import Cause, ensure_and_record, refresh_and_record
from relmark.history.webhooks import Webhooks, outbox_path
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import ForwardsWrites, HasDeadline, Store

STORE = "relmark.store"
SETTINGS = "relmark.settings"
RUNNER = "relmark.query_runner"
OWNS_STORE = "relmark.owns_store"
SERVING = "relmark.serving_details"
WEBHOOKS = "relmark.webhooks"


def init_app(app: Flask, settings: Settings, store: Store | None) -> None:
    """Attach settings, store and query runner; bring system graphs and inferences up to date."""
    app.extensions[SETTINGS] = settings
    app.extensions[OWNS_STORE] = store is None
    if store is None:
        store = open_store(settings.store)
    app.extensions[STORE] = store
    deadline = store.deadline if isinstance(store, HasDeadline) else None
    app.extensions[RUNNER] = QueryRunner(QUERY_WORKERS, deadline=deadline)
    if not isinstance(store, ForwardsWrites):  # a worker's: its writer did it
        ensure_and_record(store, settings.ontology_dir)
        outbox = outbox_path(settings.store)
        if outbox is not None:  # webhooks: enqueued after each write, drained by a thread
            hooks = Webhooks(store, outbox, backoff=settings.webhook_backoff)
            app.extensions[WEBHOOKS] = hooks
            hooks.start()


def after_write() -> None:
    """Bring the inferences up to date after a view wrote the store, so the next read sees
    them.

    Only where this process applies its writes: a serving worker's (``ForwardedWrites``)
    were applied by the supervisor's ``StoreWriter``, which refreshed them before
    answering.
    """
    store = get_store()
    if not isinstance(store, ForwardsWrites):
        refresh_and_record(store, get_settings().ontology_dir, cause=request_cause())


#: the header a client names its write with, for the classification history
WRITE_NAME_HEADER = "Relmark-Write-Name"


def request_cause() -> Cause:
    """The history's cause of the current request's write: its kind (from the endpoint),
    the name the client gave it (``Relmark-Write-Name``) and the token's name."""
    path = request.path
    kind = "update" if path.startswith("/sparql") else "graph-store"
    if path.startswith("/api/"):
        kind = path.removeprefix("/api/").split("/", 1)[0]
    principal = g.get("relmark_principal")
    name = request.headers.get(WRITE_NAME_HEADER, "").strip()[:200] or None
    return Cause(kind, name, getattr(principal, "name", None))


def close_app(app: Flask) -> None:
    """Close the store if the app opened it (a store passed in belongs to the caller).

    Closing waits for running reads, and a timed-out query cannot be interrupted, so while
    one is still evaluating the store is left to RocksDB's crash-safe shutdown instead
    (every committed write is already in its write-ahead log).
    """
    hooks = app.extensions.pop(WEBHOOKS, None)
    if hooks is not None:
        hooks.close()
    store = app.extensions.pop(STORE, None)
    if store is None or not app.extensions.get(OWNS_STORE):
        return
    if app.extensions[RUNNER].running:
        print("relmark: a query is still running; not waiting for it", file=sys.stderr)
        return
    store.close()


def get_store() -> Store:
    """The store of the current app: the one accessor views use."""
    return current_app.extensions[STORE]


def get_settings() -> Settings:
    return current_app.extensions[SETTINGS]


def get_query_runner() -> QueryRunner:
    return current_app.extensions[RUNNER]


def set_query_timeout_hook(app: Flask, hook: Callable[[], None]) -> None:
    """Call ``hook`` (on the request's thread) whenever a query of ``app`` overruns."""
    app.extensions[RUNNER].on_timeout = hook


def lower_query_priority(app: Flask) -> None:
    """Run ``app``'s query threads at ``QUERY_NICENESS`` (a serving worker's)."""
    app.extensions[RUNNER].niceness = QUERY_NICENESS


def query_refusal(app: Flask) -> Callable[..., None]:
    """What refuses ``app``'s waiting and later queries with an error (a retiring worker)."""
    return app.extensions[RUNNER].refuse


def set_serving_details(app: Flask, details: Callable[[], dict[str, object]]) -> None:
    """Extra ``/healthz`` fields from the process model (workers, snapshot generation)."""
    app.extensions[SERVING] = details


def serving_details() -> dict[str, object]:
    details = current_app.extensions.get(SERVING)
    return {} if details is None else details()
