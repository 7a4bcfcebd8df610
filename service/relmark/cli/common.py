"""What the ``relmark`` commands share: error output, the store to read, shared options.

Each command module (``load``, ``query``, ``reason``, ``serve``, ``tokens``) imports from
here, and ``relmark.cli`` only gathers the commands, so no command module imports another.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import NoReturn

import click
import requests
from rich.console import Console

from relmark.formats import Kind, named
from relmark.history.record import ensure_and_record
from relmark.i18n import DEFAULT_LANGUAGE, LANGUAGES
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import Store, StoreError
from relmark.stores.read_view import open_for_reading

err = Console(stderr=True, soft_wrap=True)

#: The output formats, by the names ``?format=`` knows them by on the HTTP side too.
RESULT_FORMATS = named(Kind.RESULTS)
GRAPH_FORMATS = named(Kind.RDF)
#: The formats of a backup: every graph, with its name.
DUMP_FORMATS = {name: GRAPH_FORMATS[name] for name in ("nquads", "trig")}


SERVER_OPTION = click.option(
    "--server",
    metavar="URL",
    help="Read through a running relmark at URL (e.g. http://127.0.0.1:8080) instead of "
    "the store directory; sends RELMARK_TOKEN when set.",
)


LANG_OPTION = click.option(
    "--lang", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True
)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def open_or_fail(settings: Settings) -> Store:
    try:
        return open_store(settings.store)
    except StoreError as error:
        fail(str(error))


def print_report(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        err.print(report.text, highlight=False, markup=False)


def server_request(server: str, settings: Settings, method: str, path: str, **kwargs):
    """A request to a running relmark (``--server``), with RELMARK_TOKEN if one is set.

    A refusal ends the command with the server's error (exit 2 for a 4xx: the input).
    """
    base = server.rstrip("/").removesuffix("/sparql")
    headers = kwargs.pop("headers", {})
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    err.print(f"note: read through the server at {base}", highlight=False, markup=False)
    try:
        response = requests.request(method, base + path, headers=headers, timeout=None, **kwargs)
    except requests.RequestException as error:
        fail(f"cannot reach the server at {base}: {error}")
    if not response.ok:
        try:
            body = response.json()
            reason = f"{body['error']}" + (f" ({body['detail']})" if body.get("detail") else "")
        except (ValueError, KeyError, TypeError):
            reason = response.text[:500]
        fail(
            f"the server answered {response.status_code}: {reason}",
            2 if response.status_code < 500 else 1,
        )
    return response


@contextlib.contextmanager
def read_view(settings: Settings) -> Iterator[Store]:
    """The store to read; while another process serves it, a copy of its newest snapshot.

    Which one it is goes to stderr, so that the output itself stays clean for pipes.
    """
    with open_for_reading(settings.store, settings) as view:
        if view.note is not None:
            err.print(f"note: {view.note}", highlight=False, markup=False)
        yield view.store


@contextlib.contextmanager
def reasons_view(settings: Settings) -> Iterator[Store]:
    """``read_view``, with its system graphs and inferences brought up to date first
    (on a snapshot's copy, the copy is: the served store is never written from here)."""
    with read_view(settings) as store:
        ensure_and_record(store, settings.ontology_dir)  # a StoreError: one line (_Commands)
        yield store
