"""The HTTP layer: the Flask app factory (``server/`` runs the app).

The layer is thin: it translates HTTP to calls on the store, ``loading``, ``queries``
and ``reasoning``, and errors to JSON or an HTML page (``errors.py``). Each HTTP area is
one blueprint: the machine API under ``api/``, the HTML pages under ``pages/``.
"""

from __future__ import annotations

import atexit
import weakref

from flask import Flask

from relmark.settings import Settings
from relmark.stores.base import Store
from relmark.web import auth, errors, headers
from relmark.web.api import classify as api
from relmark.web.api import graphs, health, openapi, sparql
from relmark.web.api import history as history_api
from relmark.web.api import importing as importing_api
from relmark.web.api import queries as queries_api
from relmark.web.api import subscriptions as subscriptions_api
from relmark.web.cors import allow_cross_origin_reads
from relmark.web.extensions import close_app, get_settings, get_store, init_app
from relmark.web.json_provider import OrjsonProvider
from relmark.web.pages.browse import bp as browse_bp


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    """Build the app around ``store`` (opened from ``settings.store`` when not given).

    At start-up the ontology, shapes and config graphs are synced from their files, so a
    test's app and ``relmark serve`` see the same system graphs.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_body_bytes  # a form update is one field
    app.json = OrjsonProvider(app)
    init_app(app, settings, store)
    errors.register(app)
    auth.init_app(app, settings)  # the read gate and the tokens (auth.py)
    app.after_request(allow_cross_origin_reads)  # also for reads refused before their view
    app.after_request(headers.add_security_headers)
    app.register_blueprint(sparql.bp)
    app.register_blueprint(graphs.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(queries_api.bp)  # named questions
    app.register_blueprint(openapi.bp)
    app.register_blueprint(importing_api.bp)  # spreadsheets through mappings
    app.register_blueprint(history_api.bp)  # history, as-of, erasure
    app.register_blueprint(subscriptions_api.bp)  # webhooks of the change feed
    app.register_blueprint(browse_bp)  # HTML pages (with query and pictures nested)
    atexit.register(_close_at_exit, weakref.ref(app))
    return app


def _close_at_exit(app_ref: weakref.ReferenceType[Flask]) -> None:
    """Close the store of an app still alive at exit (a weak reference: apps can be freed)."""
    app = app_ref()
    if app is not None:
        close_app(app)


__all__ = ["close_app", "create_app", "get_settings", "get_store"]
