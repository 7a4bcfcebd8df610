"""``relmark forget`` and ``relmark history``: erasure and the classification history.

``relmark classify IRI --as-of DATE`` (in ``reason``) answers from the same history.
"""

from __future__ import annotations

import json

import click
import pyoxigraph as ox

from relmark.cli.common import fail, open_or_fail, read_view
from relmark.history.forget import UnknownPerson, forget
from relmark.history.read import BadTime, Event, as_of, events_in, events_of, parse_time
from relmark.history.terms import GDPR_ART_17
from relmark.reasoning import explain as reasons
from relmark.settings import Settings
from relmark.stores.base import Store
from relmark.vocab import RM


@click.command(name="forget")
@click.argument("iri")
@click.option(
    "--legal-basis",
    default=GDPR_ART_17,
    show_default=True,
    help="The legal basis of the erasure (an IRI, DPV's EU GDPR terms).",
)
@click.option("--requested-by", help="Who asked (kept in the receipt: not the person's data).")
@click.pass_obj
def forget_command(
    settings: Settings, iri: str, legal_basis: str, requested_by: str | None
) -> None:
    """Erase a person (GDPR Art. 17): their statements in every data graph, the records
    that only linked them, what was inferred from them, their history; print the receipt.

    Exit code 2 when the store has no statement about IRI.
    """
    store = open_or_fail(settings)
    try:
        receipt = forget(
            store,
            _iri(iri),
            ontology_dir=settings.ontology_dir,
            requested_by=requested_by,
            legal_basis=_iri(legal_basis),
        )
    except UnknownPerson as error:
        fail(str(error), 2)
    except ValueError as error:
        fail(f"{iri!r} is not an IRI: {error}", 2)
    finally:
        store.close()
    click.echo(json.dumps(receipt.as_json(), indent=2))


@click.command(name="history")
@click.argument("iri", required=False)
@click.option("--class", "class_iri", help="Who entered or left this class (rm:Name or IRI).")
@click.option("--since", help="From this date (ISO).")
@click.option("--until", help="Up to this date (ISO, inclusive).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def history_command(
    settings: Settings,
    iri: str | None,
    class_iri: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
) -> None:
    """A resource's membership events, or (--class) who entered or left a class."""
    if bool(iri) == bool(class_iri):
        fail("give either IRI or --class", 2)
    try:
        start = parse_time(since, end_of_day=False) if since else None
        end = parse_time(until, end_of_day=True) if until else None
    except BadTime as error:
        fail(str(error), 2)
    with read_view(settings) as store:
        if iri:
            found = events_of(store, _iri(iri))
            if not found:
                try:
                    reasons.check_resource(store, _iri(iri))
                except reasons.UnknownResource as error:
                    fail(str(error), 2)
        else:
            found = events_in(store, _iri(class_iri or ""), start, end)
    if fmt == "json":
        click.echo(json.dumps([e.as_json() for e in found], indent=2, ensure_ascii=False))
        return
    for event in found:
        click.echo(event_line(event))


def classify_as_of(store: Store, iri: str, when_text: str) -> None:
    """Print the memberships ``iri`` had at ``when_text``, each with its cause."""
    try:
        when = parse_time(when_text, end_of_day=True)
    except BadTime as error:
        fail(str(error), 2)
    found = as_of(store, _iri(iri), when)
    if not found and not events_of(store, _iri(iri)):
        try:
            reasons.check_resource(store, _iri(iri))
        except reasons.UnknownResource as error:
            fail(str(error), 2)
    click.echo(f"{iri} as of {when.isoformat()}")
    for event in found:
        what = (
            reasons.short_iri(event.cls)
            if event.cls
            else (f"{reasons.short_iri(event.prop or '')} {reasons.short_iri(event.firm or '')}")
        )
        click.echo(f"  {what}   [since {event.at.isoformat()}]")
        click.echo(f"      by {event.rule or 'an unknown rule'}; {_cause(event)}")


def event_line(event: Event) -> str:
    what = (
        reasons.short_iri(event.cls)
        if event.cls
        else (f"{reasons.short_iri(event.prop or '')} {reasons.short_iri(event.firm or '')}")
    )
    change = "entered" if event.entered else "left"
    return (
        f"{event.at.isoformat()}  {reasons.short_iri(event.resource)} {change} {what}"
        f"  (rule {event.rule or '?'}; {_cause(event)})"
    )


def _cause(event: Event) -> str:
    named = f" {event.write_name!r}" if event.write_name else ""
    agent = f" by {event.agent}" if event.agent else ""
    return f"write {event.write_kind}{named}{agent}"


def _iri(text: str) -> str:
    """An absolute IRI, or an ``rm:`` name expanded; exit code 2 for anything else."""
    iri = RM + text[3:] if text.startswith("rm:") else text
    try:
        ox.NamedNode(iri)
    except ValueError as error:
        fail(f"{text!r} is not an IRI: {error}", 2)
    return iri
