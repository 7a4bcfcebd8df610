"""``relmark serve``: the SPARQL endpoint, Graph Store, API and pages over HTTP."""

from __future__ import annotations

import dataclasses

import click

from relmark.cli.common import fail
from relmark.server.single import serve as run_server
from relmark.settings import Settings
from relmark.stores.base import StoreError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per process.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="HTTP processes; in production, the number of cores. With more than one, a "
    "supervisor process owns the store and applies every write, and a worker whose query "
    "times out is replaced (which stops the query).",
)
@click.option(
    "--memory-copy",
    "memory_copy",
    type=click.IntRange(min=0),
    default=None,
    help="With --workers > 1: each worker reads from an in-memory copy of the store when "
    "it holds at most this many quads (default 5,000,000, env RELMARK_MEMORY_COPY; 0: "
    "always read from disk). About 400 bytes per quad per worker, for faster joins.",
)
@click.pass_obj
def serve(
    settings: Settings,
    host: str,
    port: int,
    threads: int,
    workers: int,
    memory_copy: int | None,
) -> None:
    """Serve the SPARQL endpoint, Graph Store and API over HTTP (waitress)."""
    if memory_copy is not None:
        settings = dataclasses.replace(settings, memory_copy_quads=memory_copy)

    try:
        run_server(settings, host=host, port=port, threads=threads, workers=workers)
    except StoreError as error:
        fail(str(error))
