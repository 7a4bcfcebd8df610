"""The ``relmark`` command line: serve, load, validate, query, dump, restore, infer, check.

Exit codes: 0 success, 1 a store or runtime error, 2 invalid input (parse error, SHACL
violation, bad query). Errors go to stderr as one readable message naming what and where.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pyoxigraph as ox
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from relmark import loading
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import Store, StoreError
from relmark.stores.embedded import EmbeddedStore

err = Console(stderr=True, soft_wrap=True)

RESULT_FORMATS = {
    "json": ox.QueryResultsFormat.JSON,
    "xml": ox.QueryResultsFormat.XML,
    "csv": ox.QueryResultsFormat.CSV,
    "tsv": ox.QueryResultsFormat.TSV,
}
GRAPH_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "rdfxml": ox.RdfFormat.RDF_XML,
    "jsonld": ox.RdfFormat.JSON_LD,
}
DUMP_FORMATS = {"nquads": ox.RdfFormat.N_QUADS, "trig": ox.RdfFormat.TRIG}
SERVER_OPTION = click.option(
    "--server",
    metavar="URL",
    help="Read through a running relmark at URL (e.g. http://127.0.0.1:8080) instead of "
    "the store directory; sends RELMARK_TOKEN when set.",
)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def _open(settings: Settings) -> EmbeddedStore:
    try:
        return open_store(settings.store)
    except StoreError as error:
        fail(str(error))
        raise  # unreachable: fail() exits


class _Commands(click.Group):
    """A store failure no command handled itself (a remote engine gone mid-command, say)
    still ends in one readable line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreError as error:
            fail(str(error))


@click.group(cls=_Commands)
@click.option("--store", envvar="RELMARK_STORE", help="Store directory (default ./data/store).")
@click.version_option(package_name="relmark")
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """relmark: a knowledge-graph service for relationship marketing."""
    try:
        ctx.obj = Settings.from_env(store=store)
    except ValueError as error:  # a RELMARK_* variable that does not read (exit code 1)
        raise click.ClickException(f"bad setting: {error}") from None


@main.command()
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
    "always read from disk). About 400 bytes per quad per worker; 4-5x faster joins.",
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
    from relmark.server.single import serve as run_server

    if memory_copy is not None:
        settings = dataclasses.replace(settings, memory_copy_quads=memory_copy)

    try:
        run_server(settings, host=host, port=port, threads=threads, workers=workers)
    except StoreError as error:
        fail(str(error))


def _progress_bar(total: int) -> tuple[Progress, Callable[[int], None]]:
    """A rich bar that shows itself only once a load has taken more than a second."""
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task("loading", total=total)
    started = time.perf_counter()

    def advance(n: int) -> None:
        if not progress.live.is_started and time.perf_counter() - started > 1.0:
            progress.start()
        progress.advance(task, n)

    return progress, advance


def _print_report(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        err.print(report.text, highlight=False, markup=False)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--graph", help="Load every file into this graph (name or IRI).")
@click.option(
    "--format", "fmt", help="RDF format (turtle, ntriples, nquads, trig, rdfxml, jsonld)."
)
@click.option("--no-validate", is_flag=True, help="Skip the SHACL check (faster, at your risk).")
@click.option("--report", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def load(
    settings: Settings,
    files: tuple[str, ...],
    graph: str | None,
    fmt: str | None,
    no_validate: bool,
    report: str,
) -> None:
    """Load RDF files (plain or gzip; '-' = stdin) into the store, all or nothing.

    Each file replaces its own graph urn:relmark:data:<file name> unless --graph is given.
    """
    try:
        sources = [loading.read_source(name, fmt) for name in files]
    except loading.LoadError as error:
        fail(error.message, 2)
    store = _open(settings)
    progress, advance = _progress_bar(sum(len(s.data) for s in sources))
    try:
        summary = loading.load_sources(
            store,
            sources,
            graph=graph,
            validate=not no_validate,
            ontology_dir=settings.ontology_dir,
            progress=advance,
        )
    except loading.ValidationFailed as error:
        _print_report(error.report, report == "json")
        fail(f"{error}; nothing was loaded", 2)
    except loading.LoadError as error:
        fail(f"{error.message}; nothing was loaded", 2)
    except StoreError as error:
        fail(f"{error}; nothing was loaded")
    finally:
        if progress.live.is_started:
            progress.stop()
        store.close()
    err.print(summary.text, highlight=False)


#: In the meta graph: when the demo was last loaded (``relmark demo``).
DEMO_LOADED = "urn:relmark:meta:demoLoaded"


@main.command()
@click.option(
    "--reset",
    is_flag=True,
    help="Load the demo files again over their graphs, whatever the store holds.",
)
@click.pass_obj
def demo(settings: Settings, reset: bool) -> None:
    """Load the demo data (ontology/demo/*.ttl) into a new or empty store.

    `make run` runs this at every start, so without --reset it loads nothing once the
    store holds data, or once the demo was loaded before (a user who deleted it meant
    to): a restart never replaces what a user changed. --reset makes each demo file
    replace its graph urn:relmark:data:<file name> again; other graphs are left alone.
    """
    from relmark.vocab import META_GRAPH, demo_paths

    paths = demo_paths(settings.ontology_dir)
    if not paths:
        fail(f"no demo files in {settings.ontology_dir / 'demo'}", 2)
    store = _open(settings)
    try:
        if not reset:
            held = _held_data(store, META_GRAPH)
            if held is not None:
                err.print(
                    f"{held}: the demo is not loaded (`relmark demo --reset` reloads it)",
                    highlight=False,
                    markup=False,
                )
                return
        sources = [loading.read_source(str(path), None) for path in paths]
        summary = loading.load_sources(store, sources, ontology_dir=settings.ontology_dir)
        when = ox.Literal(
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#dateTime"),
        )
        store.update(
            f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{DEMO_LOADED}> ?p ?o }} }} ;"
            f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{DEMO_LOADED}> <{DEMO_LOADED}> {when} }} }}",
            system=True,
        )
    except (loading.LoadError, loading.ValidationFailed) as error:
        fail(f"{error}; the demo was not loaded", 2)
    finally:
        store.close()
    err.print(summary.text, highlight=False)


def _held_data(store: Store, meta_graph: str) -> str | None:
    """Why the demo must not be loaded: the data the store holds, or that it had the demo."""
    from relmark.vocab import SYSTEM_GRAPHS

    graphs = [g for g in store.graph_names() if g not in SYSTEM_GRAPHS]
    if graphs:
        shown = ", ".join(graphs[:3]) + (", …" if len(graphs) > 3 else "")
        return f"the store already holds data ({len(graphs)} graphs: {shown})"
    if next(iter(store.triples(None)), None) is not None:
        return "the store already holds data (in its default graph)"
    loaded = list(
        store.query(
            f"SELECT ?when {{ GRAPH <{meta_graph}> {{ <{DEMO_LOADED}> <{DEMO_LOADED}> ?when }} }}"
        )
    )
    if loaded:
        return f"the demo was loaded at {loaded[0]['when'].value} and removed since"
    return None


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", help="RDF format, when the extension does not tell.")
@click.option("--graph", help="Check as if loaded into this graph (as `load --graph`).")
@click.option("--report", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def validate(
    settings: Settings, files: tuple[str, ...], fmt: str | None, graph: str | None, report: str
) -> None:
    """Check files against the SHACL shapes without loading them (exit 2 if they fail).

    When the store exists, the files are checked against it as it would be after
    `relmark load` of the same files (each replacing its graph); otherwise alone.
    """
    try:
        sources = [loading.read_source(name, fmt) for name in files]
        plan: dict[str, list[loading.Source]] = {}
        for source in sources:
            target = loading.data_graph(graph or source.default_graph_name)
            plan.setdefault(target, []).append(source)
    except (loading.LoadError, StoreError) as error:
        fail(getattr(error, "message", str(error)), 2)
    location = str(settings.store)
    remote = location.startswith(("sparql+http://", "sparql+https://"))
    if not remote and not Path(location).is_dir():
        result = _validated(None, plan, settings)
        err.print(f"checked alone: there is no store at {location}", highlight=False)
    else:
        # the store itself, or (while `relmark serve` holds it) a copy of its newest snapshot
        with _read_view(settings) as store:
            result = _validated(store, plan, settings)
        err.print(
            f"checked against the store {location} as it would be after loading",
            highlight=False,
        )
    if report == "json":
        _print_report(result, True)
    elif result.conforms:
        err.print(f"conforms: {len(sources)} file(s) checked", highlight=False)
    else:
        _print_report(result, False)
    sys.exit(0 if result.conforms else 2)


def _validated(
    store: Store | None, plan: dict[str, list[loading.Source]], settings: Settings
) -> loading.validation.ValidationReport:
    """The files checked against ``store`` as after loading them (None: alone)."""
    try:
        return loading.validate_sources(store, plan, ontology_dir=settings.ontology_dir)
    except loading.LoadError as error:
        fail(error.message, 2)
        raise  # unreachable: fail() exits


@main.command()
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
        from relmark.cli.queries import print_named

        with _reasons_view(settings) as store:
            print_named(store, named, params, fmt, fail)
        return
    if sparql is None:
        fail("give a SPARQL query (or '-' for stdin), or --named NAME", 2)
    if sparql == "-":
        sparql = sys.stdin.read()
    from relmark.sparql.guard import SparqlLimits, SparqlRefused, check_query

    try:  # the same limits as /sparql: a deep text would kill this process too
        check_query(sparql, SparqlLimits.of(settings))
    except SparqlRefused as refused:
        fail(f"{refused}", 2)
    if server is not None:
        _print_result(_server_query(server, settings, sparql), fmt)
        return
    with _read_view(settings) as store:
        try:
            result = store.query(sparql)
            _print_result(result, fmt)
        except SyntaxError as error:
            fail(f"malformed query: {error.msg}", 2)


def _print_result(result, fmt: str | None) -> None:
    out = sys.stdout.buffer
    if isinstance(result, ox.QueryBoolean):
        click.echo("true" if bool(result) else "false")
    elif isinstance(result, ox.QueryTriples | list):  # (a list: triples from a server)
        out.write(
            ox.serialize(result, format=GRAPH_FORMATS.get(fmt or "turtle", ox.RdfFormat.TURTLE))
        )
    elif fmt in RESULT_FORMATS or (fmt is None and not sys.stdout.isatty()):
        out.write(result.serialize(format=RESULT_FORMATS[fmt or "json"]))
    else:
        table = Table(*[v.value for v in result.variables], show_lines=False)
        for solution in result:
            table.add_row(*["" if t is None else str(t) for t in solution])
        Console().print(table)


@main.command()
@click.option("--format", "fmt", type=click.Choice(list(DUMP_FORMATS)), default="nquads")
@SERVER_OPTION
@click.pass_obj
def dump(settings: Settings, fmt: str, server: str | None) -> None:
    """Write every graph of the store to stdout (a backup: `relmark dump > backup.nq`).

    Works while `relmark serve` runs on the store too: the dump is then its newest
    snapshot, the store at one instant between two writes (a note on stderr says which).
    With --server URL it is that server's whole dataset (GET /data), read the same way.
    """
    if server is not None:
        _server_dump(server, settings, fmt)
        return
    with _read_view(settings) as store:
        store.dump(sys.stdout.buffer, DUMP_FORMATS[fmt])


@main.command()
@click.argument("backup", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--format", "fmt", type=click.Choice(list(DUMP_FORMATS)), help="Default: by extension."
)
@click.pass_obj
def restore(settings: Settings, backup: str, fmt: str | None) -> None:
    """Replace the whole store with a dump, all or nothing."""
    try:
        source = loading.read_source(backup, fmt or ("nquads" if backup == "-" else None))
    except loading.LoadError as error:
        fail(error.message, 2)
    if not source.fmt.supports_datasets:
        fail("a backup is N-Quads or TriG (from `relmark dump`)", 2)
    store = _open(settings)
    try:
        started = time.perf_counter()
        store.restore(source.data, source.fmt)
        err.print(f"restored {store.count():,} quads in {time.perf_counter() - started:.2f} s")
    except SyntaxError as error:
        where = loading.syntax_error_location(backup, error)
        fail(f"{where}: {error.msg}; the store is unchanged", 2)
    finally:
        store.close()


LANG_OPTION = click.option(
    "--lang", type=click.Choice(["en", "it"]), default="en", show_default=True
)


def _server_request(server: str, settings: Settings, method: str, path: str, **kwargs):
    """A request to a running relmark (``--server``), with RELMARK_TOKEN if one is set.

    A refusal ends the command with the server's error (exit 2 for a 4xx: the input).
    """
    import requests

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


def _server_query(server: str, settings: Settings, sparql: str) -> object:
    """A query answered by a running relmark, parsed as a local answer would be."""
    accept = "application/sparql-results+json, application/n-triples;q=0.9"
    response = _server_request(
        server, settings, "POST", "/sparql", data={"query": sparql}, headers={"Accept": accept}
    )
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    if kind == "application/n-triples":
        return list(ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))
    return ox.parse_query_results(response.content, format=ox.QueryResultsFormat.JSON)


def _server_dump(server: str, settings: Settings, fmt: str) -> None:
    """A running relmark's whole dataset (its Graph Store, GET /data) to stdout."""
    media = DUMP_FORMATS[fmt].media_type
    response = _server_request(
        server, settings, "GET", "/data", headers={"Accept": media}, stream=True
    )
    for chunk in response.iter_content(chunk_size=1 << 20):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


@contextlib.contextmanager
def _read_view(settings: Settings) -> Iterator[Store]:
    """The store to read; while another process serves it, a copy of its newest snapshot.

    Which one it is goes to stderr, so that the output itself stays clean for pipes.
    """
    from relmark.stores.read_view import open_for_reading

    with open_for_reading(settings.store, settings) as view:
        if view.note is not None:
            err.print(f"note: {view.note}", highlight=False, markup=False)
        yield view.store


@contextlib.contextmanager
def _reasons_view(settings: Settings) -> Iterator[Store]:
    """``_read_view``, with its system graphs and inferences brought up to date first
    (on a snapshot's copy, the copy is: the served store is never written from here)."""
    from relmark.reasoning.maintain import ensure_inferences

    with _read_view(settings) as store:
        ensure_inferences(store, settings.ontology_dir)  # a StoreError: one line (_Commands)
        yield store


@main.command()
@click.argument("iri")
@LANG_OPTION
@click.pass_obj
def classify(settings: Settings, iri: str, lang: str) -> None:
    """The classes of a resource: asserted ones with their graphs, inferred ones with rules."""
    from relmark.reasoning import explain as reasons

    with _reasons_view(settings) as store:
        try:
            reasons.check_resource(store, iri)
        except reasons.UnknownResource as error:
            fail(str(error), 2)
        click.echo(iri)
        for entry in reasons.classify(store, iri, lang):
            name = reasons.short_iri(entry["class"])
            if entry["status"] == "asserted":
                where = ", ".join(g or "default graph" for g in entry["graphs"])
                click.echo(f"  {name} ({entry['label']})   [asserted in {where}]")
            else:
                click.echo(f"  {name} ({entry['label']})   [inferred]")
                for rule in entry["rules"]:
                    click.echo(f"      by {rule['rule']}: {rule['label']}")
                    click.echo(f"      why: {rule['why']}")


@main.command()
@click.argument("iri")
@click.argument("class_iri", metavar="CLASS")
@LANG_OPTION
@click.option(
    "--why-not",
    is_flag=True,
    help="For each rule concluding CLASS: which conditions hold and which do not.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def explain(
    settings: Settings, iri: str, class_iri: str, lang: str, why_not: bool, fmt: str
) -> None:
    """Why a resource is in a class (an IRI or rm:Name): a tree down to asserted facts."""
    from relmark.reasoning import explain as reasons

    with _reasons_view(settings) as store:
        try:
            reasons.check_resource(store, iri)
            class_iri = reasons.check_class(store, class_iri)
        except (reasons.UnknownResource, reasons.NotAnOntologyClass) as error:
            fail(str(error), 2)
        if why_not:
            from relmark.reasoning.maintain import rules_for
            from relmark.reasoning.whynot import why_not as why_not_answer
            from relmark.reasoning.whynot import why_not_text

            answer = why_not_answer(
                store, rules_for(settings.ontology_dir)[1], iri, class_iri, lang
            )
            if fmt == "json":
                click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
            else:
                click.echo(why_not_text(answer))
            return
        try:
            tree = reasons.explain(store, iri, class_iri, lang)
        except reasons.NotExplained:
            fail(f"<{iri}> is not an instance of <{class_iri}>", 2)
        click.echo(reasons.explanation_text(tree))


@main.command()
@click.option("--full", is_flag=True, help="Recompute every inference, changed or not.")
@click.pass_obj
def infer(settings: Settings, full: bool) -> None:
    """Bring the inferences (with their provenance) up to date now.

    relmark follows every write it makes by itself; run this after the rules, ontology or
    config changed, or with --full after other clients wrote straight to a remote SPARQL
    server (relmark cannot see those writes).
    """
    from relmark.reasoning.maintain import ensure_inferences, refresh_inferences

    store = _open(settings)
    try:  # (a store failure ends as one line: _Commands)
        summary = ensure_inferences(store, settings.ontology_dir)
        if full and summary is None:
            summary = refresh_inferences(store, settings.ontology_dir, full=True)
    finally:
        store.close()
    err.print(summary.text if summary else "the inferences are up to date", highlight=False)


@main.command()
@click.argument("files", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--reasoner", type=click.Choice(["hermit", "pellet"]), default="hermit", show_default=True
)
@click.option("--no-store", is_flag=True, help="Check the ontology and FILES only.")
@click.pass_obj
def check(
    settings: Settings, files: tuple[str, ...], fmt: str, reasoner: str, no_store: bool
) -> None:
    """OWL consistency of the ontology with the store's data (and FILES), and empty classes.

    Exit 0 when consistent and every class is satisfiable, 1 when not (with the clash and
    the statements involved, confirmed by the reasoner), 2 for unreadable input.
    """
    from relmark.reasoning.consistency import diagnose, rdflib_graph
    from relmark.vocab import CONFIG_FILE, SYSTEM_GRAPHS, ontology_paths

    try:
        extra = [
            q
            for name in files
            for q in loading.parse_quads(loading.read_source(name), "urn:relmark:check")
        ]
    except loading.LoadError as error:
        fail(error.message, 2)
    chunks = [ox.serialize((q.triple for q in extra), format=ox.RdfFormat.N_TRIPLES)]
    if not no_store:
        store = _open(settings)
        try:
            for graph in [None, *(g for g in store.graph_names() if g not in SYSTEM_GRAPHS)]:
                triples = (q.triple for q in store.triples(graph))
                chunks.append(ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES))
        finally:
            store.close()
    directory = settings.ontology_dir
    ontology = rdflib_graph(b"")
    for path in [*ontology_paths(directory), directory / CONFIG_FILE]:
        ontology.parse(path, format="turtle")
    diagnosis = diagnose(ontology, rdflib_graph(chunks), reasoner)
    if fmt == "json":
        click.echo(json.dumps(diagnosis.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(diagnosis.text)
    sys.exit(0 if diagnosis.ok else 1)


from relmark.cli.tokens import token as _token_commands  # noqa: E402  (relmark token …)

main.add_command(_token_commands)
from relmark.cli.importing import import_command  # noqa: E402  (relmark import …)

main.add_command(import_command)

if __name__ == "__main__":
    main()
