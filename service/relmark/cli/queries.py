"""``relmark query --named NAME --param k=v``: a named question on the command line.

The same catalogue, parameter typing and binding as ``/api/queries/<name>`` (``relmark.queries``),
printed as a table on a terminal, else as the API's JSON, or as CSV.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

import click
import pyoxigraph as ox
from rich.console import Console
from rich.table import Table

from relmark import queries
from relmark.stores.base import Store

NAMED_FORMATS = ("table", "json", "csv")


def print_named(
    store: Store,
    name: str,
    params: Iterable[str],
    fmt: str | None,
    fail: Callable[[str, int], None],
    lang: str = "en",
) -> None:
    """Run question ``name`` with ``k=v`` parameters and print every answer."""
    if fmt is not None and fmt not in NAMED_FORMATS:
        fail(f"a named question prints as {', '.join(NAMED_FORMATS)}, not {fmt}", 2)
    try:
        query = queries.find_query(name)
    except queries.CatalogueError as error:
        fail(str(error), 1)
        return
    if query is None:
        known = ", ".join(q.name for q in queries.load_catalogue())
        fail(f"no named question {name!r}; known: {known}", 2)
        return
    values: dict[str, str] = {}
    for param in params:
        key, eq, value = param.partition("=")
        if not eq or not key:
            fail(f"--param takes k=v, not {param!r}", 2)
        values[key.strip()] = value
    try:
        result = queries.run_named(store, query, values)
    except queries.ParameterError as error:
        fail(str(error), 2)
        return
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "csv":
        sys.stdout.write(queries.to_csv(result))
        return
    names = queries.labels(store, queries.result_iris(result), lang)
    if fmt == "json":
        body = {
            "query": query.name,
            "parameters": {k: queries.binding_text(v) for k, v in result.bindings.items()},
            "columns": result.columns,
            "rows": queries.rows_json(result, names),
        }
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    table = Table(*result.columns, title=query.title.get(lang, query.title["en"]))
    for row in result.rows:
        table.add_row(*[_cell(term, names) for term in row.values()])
    Console().print(table)


def _cell(term: object, names: dict[str, str]) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.NamedNode):
        return names.get(term.value, term.value)
    return str(getattr(term, "value", term))
