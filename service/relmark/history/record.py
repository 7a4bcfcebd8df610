"""Recording the classification history: one event per membership that an inference
refresh adds or removes, and one node for the write that caused them.

``refresh_and_record`` is what a write path calls instead of ``refresh_inferences``: the
refresh returns the inferred triples it added and removed (``RunSummary.delta``, known by
the incremental engine per round and by a full recompute as the difference of the graph
before and after), and this module keeps the memberships among them. A write that changes
no membership writes nothing here, so the history costs one small ``INSERT DATA`` only on
the writes that move someone.

The model (declared in rm.ttl):

    <urn:relmark:write:…> a prov:Activity, rm:DataWrite ; rm:writeKind "load" ;
        rdfs:label "what the user named it" ; prov:endedAtTime "…"^^xsd:dateTime ;
        prov:wasAssociatedWith "token name" .
    <urn:relmark:event:…> a rm:MembershipEntered (or rm:MembershipLeft) ;
        rm:eventResource <resource> ; rm:eventClass <class>
        (or rm:eventProperty rm:inCustomerMarketOf ; rm:eventFirm <firm>) ;
        time:inXSDDateTimeStamp "…"^^xsd:dateTime ; prov:wasGeneratedBy <write> ;
        rm:byRule "ladder-advocate" .
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph as ox

from relmark.history import terms
from relmark.reasoning.maintain import ensure_inferences, refresh_inferences
from relmark.reasoning.rules.materialise import InferredChange, RunSummary
from relmark.stores.base import Changes, Optimizable, Store, selected
from relmark.vocab import HISTORY_GRAPH, INFERRED_GRAPH

WRITE_PREFIX = "urn:relmark:write:"
EVENT_PREFIX = "urn:relmark:event:"
#: events in one write past which the store is compacted afterwards
COMPACT_AFTER = 10_000
#: called after each write's events are stored, with the store and the events as JSON
#: (``relmark.history.webhooks`` enqueues deliveries); a failing listener never fails the write
LISTENERS: list[Callable[[Store, list[dict[str, object]]], None]] = []


@dataclass(frozen=True)
class Cause:
    """The write an inference refresh follows: its kind (``load``, ``graph-store``,
    ``update``, ``recompute``, ``forget``…), what the user named it, and who made it."""

    kind: str
    name: str | None = None
    agent: str | None = None


def refresh_and_record(
    store: Store,
    ontology_dir: Path | None = None,
    changes: Changes | None = None,
    *,
    cause: Cause,
    full: bool = False,
    history: bool = True,
) -> RunSummary | None:
    """``refresh_inferences``, then the membership changes it made as history events."""
    if not history:
        return refresh_inferences(store, ontology_dir, changes, full=full)
    # (asked before the refresh: the refresh may create the inferred graph)
    baseline = _needs_baseline(store)
    summary = refresh_inferences(store, ontology_dir, changes, full=full)
    if summary is not None and summary.delta and memberships(summary.delta):
        if baseline:
            _record_baseline(store, summary.delta)
        record(store, summary.delta, cause)
    return summary


def ensure_and_record(
    store: Store, ontology_dir: Path | None = None, *, history: bool = True
) -> RunSummary | None:
    """``ensure_inferences`` (at start-up), recording what a recompute changed (rules,
    ontology or config edited since the last run) as a ``recompute`` write."""
    baseline = history and _needs_baseline(store)
    summary = ensure_inferences(store, ontology_dir)
    if history and summary is not None and summary.delta is not None:
        if baseline:
            _record_baseline(store, summary.delta)
        record(
            store, summary.delta, Cause("recompute", "inferences brought up to date at start-up")
        )
    return summary


def memberships(delta: list[InferredChange]) -> list[InferredChange]:
    """The changes of ``delta`` that are class memberships or market links, netted (a
    triple added in one round and removed in a later one changed nothing)."""
    net: dict[ox.Triple, InferredChange] = {}
    for change in delta:
        predicate = change.triple.predicate.value
        if predicate != terms.RDF_TYPE and not terms.is_market_link(predicate):
            continue
        if not isinstance(change.triple.subject, ox.NamedNode):
            continue
        earlier = net.pop(change.triple, None)
        if earlier is None or earlier.added == change.added:
            net[change.triple] = change
    return sorted(net.values(), key=lambda c: (str(c.triple), c.added))


def record(
    store: Store, delta: list[InferredChange], cause: Cause, when: datetime | None = None
) -> int:
    """Write the memberships ``delta`` changed as events of one write; returns how many."""
    changes = memberships(delta)
    if not changes:
        return 0
    when = when or datetime.now(UTC)
    stamp = ox.Literal(when.isoformat(), datatype=ox.NamedNode(terms.XSD_DATETIME))
    write = ox.NamedNode(WRITE_PREFIX + uuid.uuid4().hex)
    lines = [
        f"{write} a <{terms.PROV}Activity> , <{terms.DATA_WRITE}> ;"
        f" <{terms.WRITE_KIND}> {ox.Literal(cause.kind)} ;"
        f" <{terms.PROV}endedAtTime> {stamp} ."
    ]
    if cause.name:
        lines.append(f"{write} <{terms.RDFS_LABEL}> {ox.Literal(cause.name)} .")
    if cause.agent:
        lines.append(f"{write} <{terms.PROV}wasAssociatedWith> {ox.Literal(cause.agent)} .")
    published: list[dict[str, object]] = []
    for change in changes:
        event = ox.NamedNode(EVENT_PREFIX + uuid.uuid4().hex)
        lines.append(_event_lines(change, write, stamp, event))
        published.append(_event_json(change, event, write, when, cause))
    body = "\n".join(lines)
    store.update(f"INSERT DATA {{ GRAPH <{HISTORY_GRAPH}> {{ {body} }} }}", system=True)
    for listener in list(LISTENERS):
        try:
            listener(store, published)
        except Exception:  # the write is stored: a listener's fault must not undo it
            logging.getLogger(__name__).exception("history listener failed")
    if len(changes) >= COMPACT_AFTER and isinstance(store, Optimizable):
        # one large insert (a first run's memberships) leaves files behind that make every
        # later read of the store several times slower until it is compacted
        store.optimize()
    return len(changes)


def _event_json(
    change: InferredChange, event: ox.NamedNode, write: ox.NamedNode, when: datetime, cause: Cause
) -> dict[str, object]:
    """An event as listeners see it (the shape of ``read.Event.as_json`` plus its id)."""
    triple = change.triple
    answer: dict[str, object] = {
        "id": event.value,
        "resource": _value(triple.subject),
        "change": "entered" if change.added else "left",
        "at": when.isoformat(),
        "rule": change.rule,
        "write": {"id": write.value, "kind": cause.kind, "name": cause.name, "agent": cause.agent},
    }
    if triple.predicate.value == terms.RDF_TYPE:
        answer["class"] = _value(triple.object)
    else:
        answer["property"] = triple.predicate.value
        answer["firm"] = _value(triple.object)
    return answer


def _value(term: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple) -> str:
    return str(term) if isinstance(term, ox.Triple) else term.value


def _event_lines(
    change: InferredChange, write: ox.NamedNode, stamp: ox.Literal, event: ox.NamedNode
) -> str:
    triple = change.triple
    kind = terms.ENTERED if change.added else terms.LEFT
    parts = [
        f"{event} a <{kind}>",  # a time:Instant by rm.ttl (one triple fewer per event)
        f"<{terms.EVENT_RESOURCE}> {triple.subject}",
        f"<{terms.TIME}inXSDDateTimeStamp> {stamp}",
        f"<{terms.PROV}wasGeneratedBy> {write}",
    ]
    if triple.predicate.value == terms.RDF_TYPE:
        parts.append(f"<{terms.EVENT_CLASS}> {triple.object}")
    else:
        parts.append(f"<{terms.EVENT_PROPERTY}> {triple.predicate}")
        parts.append(f"<{terms.EVENT_FIRM}> {triple.object}")
    if change.rule:
        parts.append(f"<{terms.BY_RULE}> {ox.Literal(change.rule)}")
    return " ;\n  ".join(parts) + " ."


def _needs_baseline(store: Store) -> bool:
    """A store whose inferences predate its history: record them once as they stood."""
    return not store.has_graph(HISTORY_GRAPH) and store.has_graph(INFERRED_GRAPH)


def _record_baseline(store: Store, delta: list[InferredChange]) -> None:
    """The memberships inferred before the first recorded write, as entered by a
    ``baseline`` write: those inferred now, less what the write added, plus what it removed."""
    added = {c.triple for c in delta if c.added}
    before = [InferredChange(t, True, None) for t in _inferred_memberships(store) if t not in added]
    before += [InferredChange(c.triple, True, c.rule) for c in delta if not c.added]
    if not before:
        # an empty history graph still marks the baseline as taken
        store.update(
            f"INSERT DATA {{ GRAPH <{HISTORY_GRAPH}> {{ <{WRITE_PREFIX}baseline>"
            f' <{terms.WRITE_KIND}> "baseline" }} }}',
            system=True,
        )
        return
    record(store, before, Cause("baseline", "memberships inferred before the history began"))


def _inferred_memberships(store: Store) -> list[ox.Triple]:
    found = selected(
        store.query(
            f"SELECT ?s ?p ?o WHERE {{ GRAPH <{INFERRED_GRAPH}> {{ ?s ?p ?o }}"
            f" FILTER(isIRI(?s) && (?p = <{terms.RDF_TYPE}> ||"
            f' (STRSTARTS(STR(?p), "{terms.MARKET_LINK_PREFIX}") &&'
            f' STRENDS(STR(?p), "{terms.MARKET_LINK_SUFFIX}")))) }}'
        )
    )
    return [ox.Triple(s["s"], s["p"], s["o"]) for s in found]
