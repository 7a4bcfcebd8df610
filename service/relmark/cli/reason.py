"""``relmark classify``, ``explain``, ``infer`` and ``check``: what the reasoning concludes.

Each reads the store through ``reasons_view``: its inferences are brought up to date first
(on a snapshot's copy while ``relmark serve`` holds the store).
"""

from __future__ import annotations

import json
import sys

import click
import pyoxigraph as ox

from relmark import loading
from relmark.cli.common import LANG_OPTION, err, fail, open_or_fail, reasons_view
from relmark.cli.history import classify_as_of
from relmark.history.record import Cause, ensure_and_record, refresh_and_record
from relmark.reasoning import explain as reasons
from relmark.reasoning.consistency import diagnose, rdflib_graph
from relmark.reasoning.maintain import rules_for
from relmark.reasoning.whynot import why_not as why_not_answer
from relmark.reasoning.whynot import why_not_text
from relmark.settings import Settings
from relmark.stores.base import serialized
from relmark.vocab import CONFIG_FILE, SYSTEM_GRAPHS, ontology_paths


@click.command()
@click.argument("iri")
@LANG_OPTION
@click.option("--as-of", "as_of", help="The inferred classes at this date, from the history.")
@click.pass_obj
def classify(settings: Settings, iri: str, lang: str, as_of: str | None = None) -> None:
    """The classes of a resource: asserted ones with their graphs, inferred ones with rules."""
    with reasons_view(settings) as store:
        if as_of:
            classify_as_of(store, iri, as_of)
            return
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


@click.command()
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
    with reasons_view(settings) as store:
        try:
            reasons.check_resource(store, iri)
            class_iri = reasons.check_class(store, class_iri)
        except (reasons.UnknownResource, reasons.NotAnOntologyClass) as error:
            fail(str(error), 2)
        if why_not:
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


@click.command()
@click.option("--full", is_flag=True, help="Recompute every inference, changed or not.")
@click.pass_obj
def infer(settings: Settings, full: bool) -> None:
    """Bring the inferences (with their provenance) up to date now.

    relmark follows every write it makes by itself; run this after the rules, ontology or
    config changed, or with --full after other clients wrote straight to a remote SPARQL
    server (relmark cannot see those writes).
    """
    store = open_or_fail(settings)
    try:  # (a store failure ends as one line: _Commands)
        summary = ensure_and_record(store, settings.ontology_dir)
        if full and summary is None:
            cause = Cause("recompute", "relmark infer --full")
            summary = refresh_and_record(store, settings.ontology_dir, cause=cause, full=True)
    finally:
        store.close()
    err.print(summary.text if summary else "the inferences are up to date", highlight=False)


@click.command()
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
    try:
        extra = [
            q
            for name in files
            for q in loading.parse_quads(loading.read_source(name), "urn:relmark:check")
        ]
    except loading.LoadError as error:
        fail(error.message, 2)
    chunks = [serialized((q.triple for q in extra), ox.RdfFormat.N_TRIPLES)]
    if not no_store:
        store = open_or_fail(settings)
        try:
            for graph in [None, *(g for g in store.graph_names() if g not in SYSTEM_GRAPHS)]:
                triples = (q.triple for q in store.triples(graph))
                chunks.append(serialized(triples, ox.RdfFormat.N_TRIPLES))
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
