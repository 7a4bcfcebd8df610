"""The HTTP layer: a Flask app factory and a waitress runner.

The layer is thin: it translates HTTP to calls on the store and on ``loading``, and
errors to JSON (``errors.py``). Each HTTP area is one blueprint.
"""

from __future__ import annotations

import atexit
import signal
import sys
import weakref
from dataclasses import replace
from types import FrameType

from flask import Flask

from relmark.settings import Settings
from relmark.store import EmbeddedStore, Store
from relmark.web import api, auth, errors, graphs, headers, health, openapi, queries_api, sparql
from relmark.web.browse import bp as browse_bp
from relmark.web.cors import allow_cross_origin_reads
from relmark.web.extensions import close_app, get_settings, get_store, init_app
from relmark.web.json_provider import OrjsonProvider


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    """Build the app around ``store`` (opened from ``settings.store`` when not given).

    At start-up the ontology, shapes and config graphs are synced from their files, so a
    test's app and ``relmark serve`` see the same system graphs.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_body_bytes  # a form update is one field
    app.json = OrjsonProvider(app)
    init_app(app, settings, store)  # type: ignore[arg-type]
    errors.register(app)
    auth.init_app(app, settings)  # the read gate and the tokens (auth.py)
    app.after_request(allow_cross_origin_reads)  # also for reads refused before their view
    app.after_request(headers.add_security_headers)
    app.register_blueprint(sparql.bp)
    app.register_blueprint(graphs.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(queries_api.bp)  # named questions (issue 6)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(browse_bp)  # HTML pages (issue 7)
    atexit.register(_close_at_exit, weakref.ref(app))
    return app


def _close_at_exit(app_ref: weakref.ReferenceType[Flask]) -> None:
    """Close the store of an app still alive at exit (a weak reference: apps can be freed)."""
    app = app_ref()
    if app is not None:
        close_app(app)


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    workers: int = 1,
) -> None:
    """Run the app under waitress until SIGINT/SIGTERM, then close the store cleanly.

    ``workers`` > 1 serves from that many processes with one writer (``relmark.serving``).
    The bind address goes into the settings: whether reads need a token depends on it.
    """
    settings = replace(settings, bind_host=host)
    if auth.reads_public(settings):
        reads = "reads are open to anyone who can connect (RELMARK_PUBLIC_READS=0 closes them)"
    else:
        reads = "reads need a reader token (relmark token create --role reader)"
    print(f"relmark: bound to {host}: {reads}", file=sys.stderr)
    if workers > 1:
        from relmark.serving import serve_workers

        serve_workers(settings, host, port, threads, workers)
        return
    import waitress

    app = create_app(settings)
    snapshots = None
    with app.app_context():
        store = get_store()
        if isinstance(store, EmbeddedStore):
            store.optimize()  # once, before serving: reads are faster on compacted files
            from relmark.serving import SnapshotThread

            snapshots = SnapshotThread(store)  # for `relmark query` &c. while served
            snapshots.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # waitress's loop ends on SystemExit; the store is closed below

    signal.signal(signal.SIGTERM, stop)
    print(f"relmark: serving {settings.store} on http://{host}:{port}/sparql", file=sys.stderr)
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="relmark")
    finally:
        if snapshots is not None:
            snapshots.stop()
        close_app(app)


__all__ = ["close_app", "create_app", "get_settings", "get_store", "serve"]
