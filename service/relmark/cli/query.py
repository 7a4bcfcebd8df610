"""``relmark query``: a SPARQL query or a named question, on the store or a server."""

from __future__ import annotations

import sys

import click
import pyoxigraph as ox
from rich.console import Console
from rich.table import Table

from relmark.cli.common import (
    GRAPH_FORMATS,
    RESULT_FORMATS,
    SERVER_OPTION,
    fail,
    read_view,
    reasons_view,
    server_request,
)
from relmark.cli.queries import print_named
from relmark.formats import rdf_format, results_format
from relmark.settings import Settings
from relmark.sparql.guard import SparqlLimits, SparqlRefused, check_query
from relmark.stores.base import QueryResult, serialized


@click.command()
@click.argument("sparql", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", *RESULT_FORMATS, *GRAPH_FORMATS]),
    help="Output format; a table on a terminal, JSON (or Turtle) otherwise.",
)
@click.option("--named", help="Run a named question of queries/ instead (see /api/queries).")
@click.option("--param", "params", multiple=True, help="A named question's parameter, k=v.")
@SERVER_OPTION
@click.pass_obj
def query(
    settings: Settings,
    sparql: str | None,
    fmt: str | None,
    named: str | None,
    params: tuple,
    server: str | None,
) -> None:
    """Run a SPARQL query against the store ('-' reads it from stdin), or --named NAME.

    While `relmark serve` holds the store, the query reads its newest snapshot; with
    --server URL it goes to that server's SPARQL endpoint instead.
    """
    if server is not None and named is not None:
        fail("--named runs here; use the server's /api/queries for a question there", 2)
    if named is not None:
        with reasons_view(settings) as store:
            print_named(store, named, params, fmt, fail)
        return
    if sparql is None:
        fail("give a SPARQL query (or '-' for stdin), or --named NAME", 2)
    if sparql == "-":
        sparql = sys.stdin.read()
    try:  # the same limits as /sparql: a deep text would kill this process too
        check_query(sparql, SparqlLimits.of(settings))
    except SparqlRefused as refused:
        fail(f"{refused}", 2)
    if server is not None:
        _print_result(server_query(server, settings, sparql), fmt)
        return
    with read_view(settings) as store:
        try:
            result = store.query(sparql)
            _print_result(result, fmt)
        except SyntaxError as error:
            fail(f"malformed query: {error.msg}", 2)


def _print_result(result: QueryResult | list[ox.Quad], fmt: str | None) -> None:
    out = sys.stdout.buffer
    if isinstance(result, ox.QueryBoolean):
        click.echo("true" if bool(result) else "false")
    elif isinstance(result, ox.QueryTriples | list):  # (a list: triples from a server)
        graph_format = GRAPH_FORMATS.get(fmt or "turtle", GRAPH_FORMATS["turtle"])
        out.write(serialized(result, rdf_format(graph_format)))
    elif fmt in RESULT_FORMATS or (fmt is None and not sys.stdout.isatty()):
        data = result.serialize(format=results_format(RESULT_FORMATS[fmt or "json"]))
        assert data is not None, "serialize returns the bytes when given no output"
        out.write(data)
    else:
        table = Table(*[v.value for v in result.variables], show_lines=False)
        for solution in result:
            table.add_row(*["" if t is None else str(t) for t in solution])
        Console().print(table)


def server_query(server: str, settings: Settings, sparql: str) -> QueryResult | list[ox.Quad]:
    """A query answered by a running relmark, parsed as a local answer would be."""
    accept = "application/sparql-results+json, application/n-triples;q=0.9"
    response = server_request(
        server, settings, "POST", "/sparql", data={"query": sparql}, headers={"Accept": accept}
    )
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    if kind == "application/n-triples":
        return list(ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))
    return ox.parse_query_results(response.content, format=ox.QueryResultsFormat.JSON)
