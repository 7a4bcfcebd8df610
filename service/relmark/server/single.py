"""Serving the app: one process under waitress, or a supervisor with worker processes.

The entry point of ``relmark serve``. It sits above ``web`` (it builds the app) and
``server.supervisor`` (the multi-process model), so neither imports the other's runner.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import replace
from types import FrameType

from relmark.server.supervisor import serve_workers
from relmark.settings import Settings
from relmark.stores import SnapshotThread
from relmark.stores.base import Checkpoints, Optimizable
from relmark.web import create_app
from relmark.web.extensions import close_app, get_store


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    workers: int = 1,
) -> None:
    """Run the app under waitress until SIGINT/SIGTERM, then close the store cleanly.

    ``workers`` > 1 serves from that many processes with one writer (``relmark.server.supervisor``).
    The bind address goes into the settings: whether reads need a token depends on it.
    """
    settings = replace(settings, bind_host=host)
    if settings.reads_public:
        reads = "reads are open to anyone who can connect (RELMARK_PUBLIC_READS=0 closes them)"
    else:
        reads = "reads need a reader token (relmark token create --role reader)"
    print(f"relmark: bound to {host}: {reads}", file=sys.stderr)
    if workers > 1:
        serve_workers(settings, host, port, threads, workers)
        return
    import waitress

    app = create_app(settings)
    snapshots = None
    with app.app_context():
        store = get_store()
        if isinstance(store, Optimizable):
            store.optimize()  # once, before serving: reads are faster on compacted files
        if isinstance(store, Checkpoints):
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
