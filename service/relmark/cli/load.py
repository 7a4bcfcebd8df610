"""``relmark load``, ``demo``, ``validate``, ``dump`` and ``restore``: data in and out.

Loads are all or nothing and validated against the SHACL shapes unless told otherwise;
a dump is a backup of every graph, and ``restore`` puts one back in place of the store.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import pyoxigraph as ox
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from relmark import loading
from relmark.cli.common import (
    DUMP_FORMATS,
    SERVER_OPTION,
    err,
    fail,
    open_or_fail,
    print_report,
    read_view,
    server_request,
)
from relmark.formats import rdf_format
from relmark.history.forget import ErasedResource
from relmark.settings import Settings
from relmark.shacl import ValidationReport
from relmark.stores.base import Store, StoreError, data_graph, selected
from relmark.vocab import META_GRAPH, SYSTEM_GRAPHS, demo_paths


def progress_bar(total: int) -> tuple[Progress, Callable[[int], None]]:
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


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--graph", help="Load every file into this graph (name or IRI).")
@click.option(
    "--format", "fmt", help="RDF format (turtle, ntriples, nquads, trig, rdfxml, jsonld)."
)
@click.option("--no-validate", is_flag=True, help="Skip the SHACL check (faster, at your risk).")
@click.option("--report", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--force", is_flag=True, help="Load even resources that were erased (relmark forget)."
)
@click.option("--name", "write_name", help="Name this write in the classification history.")
@click.pass_obj
def load(
    settings: Settings,
    files: tuple[str, ...],
    graph: str | None,
    fmt: str | None,
    no_validate: bool,
    report: str,
    force: bool = False,
    write_name: str | None = None,
) -> None:
    """Load RDF files (plain or gzip; '-' = stdin) into the store, all or nothing.

    Each file replaces its own graph urn:relmark:data:<file name> unless --graph is given.
    """
    try:
        sources = [loading.read_source(name, fmt) for name in files]
    except loading.LoadError as error:
        fail(error.message, 2)
    store = open_or_fail(settings)
    progress, advance = progress_bar(sum(len(s.data) for s in sources))
    try:
        summary = loading.load_sources(
            store,
            sources,
            graph=graph,
            validate=not no_validate,
            ontology_dir=settings.ontology_dir,
            progress=advance,
            force=force,
            name=write_name,
        )
    except loading.ValidationFailed as error:
        print_report(error.report, report == "json")
        fail(f"{error}; nothing was loaded", 2)
    except ErasedResource as error:
        fail(f"{error} (--force to load them); nothing was loaded", 2)
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


@click.command()
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
    paths = demo_paths(settings.ontology_dir)
    if not paths:
        fail(f"no demo files in {settings.ontology_dir / 'demo'}", 2)
    store = open_or_fail(settings)
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
    graphs = [g for g in store.graph_names() if g not in SYSTEM_GRAPHS]
    if graphs:
        shown = ", ".join(graphs[:3]) + (", …" if len(graphs) > 3 else "")
        return f"the store already holds data ({len(graphs)} graphs: {shown})"
    if next(iter(store.triples(None)), None) is not None:
        return "the store already holds data (in its default graph)"
    pattern = f"<{DEMO_LOADED}> <{DEMO_LOADED}> ?when"
    loaded = list(selected(store.query(f"SELECT ?when {{ GRAPH <{meta_graph}> {{ {pattern} }} }}")))
    if loaded:
        return f"the demo was loaded at {loaded[0]['when'].value} and removed since"
    return None


@click.command()
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
            target = data_graph(graph or source.default_graph_name)
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
        with read_view(settings) as store:
            result = _validated(store, plan, settings)
        err.print(
            f"checked against the store {location} as it would be after loading",
            highlight=False,
        )
    if report == "json":
        print_report(result, True)
    elif result.conforms:
        err.print(f"conforms: {len(sources)} file(s) checked", highlight=False)
    else:
        print_report(result, False)
    sys.exit(0 if result.conforms else 2)


def _validated(
    store: Store | None, plan: dict[str, list[loading.Source]], settings: Settings
) -> ValidationReport:
    """The files checked against ``store`` as after loading them (None: alone)."""
    try:
        return loading.validate_sources(store, plan, ontology_dir=settings.ontology_dir)
    except loading.LoadError as error:
        fail(error.message, 2)


@click.command()
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
        server_dump(server, settings, fmt)
        return
    with read_view(settings) as store:
        store.dump(sys.stdout.buffer, rdf_format(DUMP_FORMATS[fmt]))


@click.command()
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
    store = open_or_fail(settings)
    try:
        started = time.perf_counter()
        store.restore(source.data, source.fmt)
        err.print(f"restored {store.count():,} quads in {time.perf_counter() - started:.2f} s")
    except SyntaxError as error:
        where = loading.syntax_error_location(backup, error)
        fail(f"{where}: {error.msg}; the store is unchanged", 2)
    finally:
        store.close()


def server_dump(server: str, settings: Settings, fmt: str) -> None:
    """A running relmark's whole dataset (its Graph Store, GET /data) to stdout."""
    media = DUMP_FORMATS[fmt].media_type
    response = server_request(
        server, settings, "GET", "/data", headers={"Accept": media}, stream=True
    )
    for chunk in response.iter_content(chunk_size=1 << 20):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
