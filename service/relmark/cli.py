"""The ``relmark`` command line: serve, load, validate, query, dump, restore, infer, check.

Exit codes: 0 success, 1 a store or runtime error, 2 invalid input (parse error, SHACL
violation, bad query). Errors go to stderr as one readable message naming what and where.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import pyoxigraph as ox
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from relmark import loading
from relmark.settings import Settings
from relmark.store import EmbeddedStore, StoreError, open_store

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
    ctx.obj = Settings.from_env(store=store)


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
    from relmark.web import serve as run_server

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
    context, view = _validation_context(settings)
    try:
        result = loading.validate_sources(context, plan, ontology_dir=settings.ontology_dir)
    except loading.LoadError as error:
        fail(error.message, 2)
    finally:
        close = getattr(context, "close", None)
        if close is not None and not isinstance(context, ox.Store):
            close()
    err.print(view, highlight=False)
    if report == "json":
        _print_report(result, True)
    elif result.conforms:
        triples = sum(len(s.data) > 0 for s in sources)
        err.print(f"conforms: {triples} file(s) checked", highlight=False)
    else:
        _print_report(result, False)
    sys.exit(0 if result.conforms else 2)


def _validation_context(settings: Settings) -> tuple[object | None, str]:
    """The store `validate` checks against, and the sentence saying which view it used.

    An embedded store is opened read-only, so this works while `relmark serve` holds it.
    """
    location = str(settings.store)
    if location.startswith(("sparql+http://", "sparql+https://")):
        store = _open(settings)
        return store, f"checked against the store {location} as it would be after loading"
    path = Path(location)
    if not path.is_dir():
        return None, f"checked alone: there is no store at {path}"
    try:
        db = ox.Store.read_only(str(path))
    except OSError as error:
        fail(f"cannot read the store {path}: {error}")
    return db, f"checked against the store {path} as it would be after loading"


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
@click.pass_obj
def query(
    settings: Settings, sparql: str | None, fmt: str | None, named: str | None, params: tuple
) -> None:
    """Run a SPARQL query against the store ('-' reads it from stdin), or --named NAME."""
    if named is not None:
        from relmark.named_cli import print_named

        store = _open_for_reasons(settings)
        try:
            print_named(store, named, params, fmt, fail)
        finally:
            store.close()
        return
    if sparql is None:
        fail("give a SPARQL query (or '-' for stdin), or --named NAME", 2)
    if sparql == "-":
        sparql = sys.stdin.read()
    store = _open(settings)
    try:
        result = store.query(sparql)
        _print_result(result, fmt)
    except SyntaxError as error:
        fail(f"malformed query: {error.msg}", 2)
    finally:
        store.close()


def _print_result(result, fmt: str | None) -> None:
    out = sys.stdout.buffer
    if isinstance(result, ox.QueryBoolean):
        click.echo("true" if bool(result) else "false")
    elif isinstance(result, ox.QueryTriples):
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
@click.pass_obj
def dump(settings: Settings, fmt: str) -> None:
    """Write every graph of the store to stdout (a backup: `relmark dump > backup.nq`)."""
    store = _open(settings)
    try:
        store.dump(sys.stdout.buffer, DUMP_FORMATS[fmt])
    finally:
        store.close()


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


def _open_for_reasons(settings: Settings) -> EmbeddedStore:
    """The store, with its system graphs and inferences brought up to date first."""
    from relmark.reasoning.maintain import ensure_inferences

    store = _open(settings)
    try:
        ensure_inferences(store, settings.ontology_dir)
    except StoreError as error:
        store.close()
        fail(str(error))
    return store


@main.command()
@click.argument("iri")
@LANG_OPTION
@click.pass_obj
def classify(settings: Settings, iri: str, lang: str) -> None:
    """The classes of a resource: asserted ones with their graphs, inferred ones with rules."""
    from relmark.reasoning import explain as reasons

    store = _open_for_reasons(settings)
    try:
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
    finally:
        store.close()


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

    store = _open_for_reasons(settings)
    try:
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
    finally:
        store.close()


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
    from relmark.store import SYSTEM_GRAPHS
    from relmark.vocab import CONFIG_FILE, ontology_paths

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


if __name__ == "__main__":
    main()
