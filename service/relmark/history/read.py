"""Reading the classification history: a resource's events, who entered or left a class
in a period, and the memberships a resource had at a given time (replaying its events).

Times are transaction times: when relmark recorded the change, not when it happened in
the world. A date given alone means the end of that day (UTC), so "as of 2026-06-30"
includes that day's writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pyoxigraph as ox

from relmark.history import terms
from relmark.stores.base import Store, selected
from relmark.vocab import HISTORY_GRAPH


class BadTime(ValueError):
    """A time that is neither an ISO date nor an ISO date-time."""


@dataclass(frozen=True)
class Event:
    """One recorded change of a membership and the write that caused it."""

    resource: str
    entered: bool
    at: datetime
    cls: str | None  # the class (rdf:type) or None for a market link
    prop: str | None  # the market link (rm:in…MarketOf)
    firm: str | None
    rule: str | None
    write: str
    write_kind: str
    write_name: str | None
    agent: str | None

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return (self.cls, self.prop, self.firm)

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "resource": self.resource,
            "change": "entered" if self.entered else "left",
            "at": self.at.isoformat(),
            "rule": self.rule,
            "write": {
                "id": self.write,
                "kind": self.write_kind,
                "name": self.write_name,
                "agent": self.agent,
            },
        }
        if self.cls is not None:
            answer["class"] = self.cls
        else:
            answer["property"] = self.prop
            answer["firm"] = self.firm
        return answer


def parse_time(text: str, *, end_of_day: bool) -> datetime:
    """An ISO date or date-time as an aware UTC datetime (a date: its end or its start)."""
    text = text.strip()
    try:
        if "T" in text or " " in text:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        day = date.fromisoformat(text)
    except ValueError:
        raise BadTime(f"{text!r} is not an ISO date (2026-06-30) or date-time") from None
    if end_of_day:
        return datetime.combine(day + timedelta(days=1), time.min, UTC) - timedelta(microseconds=1)
    return datetime.combine(day, time.min, UTC)


_SELECT = f"""
SELECT ?e ?kind ?r ?at ?cls ?prop ?firm ?rule ?w ?wkind ?wname ?agent WHERE {{
  GRAPH <{HISTORY_GRAPH}> {{
    {{filter}}
    ?e a ?kind ; <{terms.EVENT_RESOURCE}> ?r ; <{terms.TIME}inXSDDateTimeStamp> ?at ;
       <{terms.PROV}wasGeneratedBy> ?w .
    FILTER(?kind IN (<{terms.ENTERED}>, <{terms.LEFT}>))
    OPTIONAL {{ ?e <{terms.EVENT_CLASS}> ?cls }}
    OPTIONAL {{ ?e <{terms.EVENT_PROPERTY}> ?prop ; <{terms.EVENT_FIRM}> ?firm }}
    OPTIONAL {{ ?e <{terms.BY_RULE}> ?rule }}
    OPTIONAL {{ ?w <{terms.WRITE_KIND}> ?wkind }}
    OPTIONAL {{ ?w <{terms.RDFS_LABEL}> ?wname }}
    OPTIONAL {{ ?w <{terms.PROV}wasAssociatedWith> ?agent }}
  }}
  {{time_filter}}
}}"""


def _events(store: Store, pattern: str, time_filter: str = "") -> list[Event]:
    query = _SELECT.replace("{filter}", pattern).replace("{time_filter}", time_filter)
    found = []
    for row in selected(store.query(query)):
        found.append(
            Event(
                resource=row["r"].value,
                entered=row["kind"].value == terms.ENTERED,
                at=_aware(datetime.fromisoformat(row["at"].value)),
                cls=_value(row["cls"]),
                prop=_value(row["prop"]),
                firm=_value(row["firm"]),
                rule=_value(row["rule"]),
                write=row["w"].value,
                write_kind=_value(row["wkind"]) or "write",
                write_name=_value(row["wname"]),
                agent=_value(row["agent"]),
            )
        )
    return sorted(found, key=lambda e: (e.at, e.resource, str(e.key), e.entered))


def events_of(store: Store, iri: str) -> list[Event]:
    """Every recorded event of ``iri``, oldest first."""
    return _events(store, f"?e <{terms.EVENT_RESOURCE}> {ox.NamedNode(iri)} .")


def events_in(
    store: Store,
    class_iri: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Event]:
    """Who entered or left ``class_iri`` (a class, or a market link property) in a period."""
    node = ox.NamedNode(class_iri)
    pattern = (
        f"{{ ?e <{terms.EVENT_CLASS}> {node} }} UNION {{ ?e <{terms.EVENT_PROPERTY}> {node} }}"
    )
    bounds = []
    if since is not None:
        bounds.append(f"?at >= {_literal(since)}")
    if until is not None:
        bounds.append(f"?at <= {_literal(until)}")
    time_filter = f"FILTER({' && '.join(bounds)})" if bounds else ""
    return _events(store, pattern, time_filter)


def events_after(
    store: Store,
    after: datetime,
    *,
    class_iri: str | None = None,
    resource: str | None = None,
    firm: str | None = None,
) -> list[Event]:
    """The events recorded after ``after`` (the change feed), optionally only those of a
    class or market property, of a resource, or relative to a firm."""
    patterns = []
    if class_iri is not None:
        node = ox.NamedNode(class_iri)
        patterns.append(
            f"{{ ?e <{terms.EVENT_CLASS}> {node} }} UNION {{ ?e <{terms.EVENT_PROPERTY}> {node} }}"
        )
    if resource is not None:
        patterns.append(f"?e <{terms.EVENT_RESOURCE}> {ox.NamedNode(resource)} .")
    if firm is not None:
        patterns.append(f"?e <{terms.EVENT_FIRM}> {ox.NamedNode(firm)} .")
    return _events(store, " ".join(patterns), f"FILTER(?at > {_literal(after)})")


def as_of(store: Store, iri: str, when: datetime) -> list[Event]:
    """The memberships ``iri`` had at ``when``: for each, the event that made it one."""
    current: dict[tuple, Event] = {}
    for event in events_of(store, iri):
        if event.at > when:
            break
        if event.entered:
            current[event.key] = event
        else:
            current.pop(event.key, None)
    return sorted(current.values(), key=lambda e: str(e.key))


def has_history(store: Store) -> bool:
    return store.has_graph(HISTORY_GRAPH)


def _literal(moment: datetime) -> str:
    return str(ox.Literal(moment.isoformat(), datatype=ox.NamedNode(terms.XSD_DATETIME)))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(term: object) -> str | None:
    return None if term is None else term.value  # type: ignore[attr-defined]
