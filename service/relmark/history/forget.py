"""Erasure (GDPR Art. 17): forget a person in the data, the inferences and the history.

``forget`` removes, in every data graph, every statement whose subject or object is the
person, and the records that only existed to link them: the instances of the ontology's
record classes (``RECORD_CLASSES``: relationships, interactions such as referrals,
purchases, programme memberships, consents, roles, opportunities) that point to the
person, and, in turn, records that point only to records being erased (a survey of an
erased relationship) but to no other party. The inferences are then refreshed
incrementally from exactly those removed quads, so what was concluded from the person
(and its provenance) goes, and conclusions about others that depended on them are
recomputed (a customer whose only referral named the person stops being an advocate).
Finally the history events of everything erased are deleted.

What stays is a receipt in ``urn:relmark:meta`` with no personal data: when, who asked
(the token's name), how many statements, the legal basis (DPV terms), and a SHA-256
digest of the erased IRI, which is how a later load that names the IRI again is refused
(``check_not_erased``) unless forced. The digest is pseudonymous, not anonymous: whoever
already knows the IRI can confirm it was erased, nobody can read it back.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph as ox

from relmark.history import terms
from relmark.history.record import Cause, refresh_and_record
from relmark.stores.base import Changes, Store, selected
from relmark.vocab import HISTORY_GRAPH, META_GRAPH, ONTOLOGY_GRAPH, RM, SYSTEM_GRAPHS

#: the classes whose instances are records about their parties, not parties themselves
RECORD_CLASSES = (
    RM + "Relationship",
    RM + "Interaction",
    RM + "Purchase",
    RM + "LoyaltyProgramMembership",
    RM + "ContactConsent",
    RM + "StakeholderRole",
    RM + "SalesOpportunity",
    "http://schema.org/BuyAction",
)
#: the classes of parties: a record that also points to one of these is theirs too
PARTY_CLASSES = (RM + "Person", RM + "Organization", RM + "Stakeholder", RM + "Brand")
RECEIPT_PREFIX = "urn:relmark:erasure:"


class UnknownPerson(LookupError):
    """The IRI to forget appears in no data graph."""


class ErasedResource(ValueError):
    """A write names an IRI that was erased; ``iris`` are the ones it names."""

    def __init__(self, iris: list[str]) -> None:
        super().__init__(
            f"{len(iris)} resource(s) in this write were erased (GDPR Art. 17) and may not "
            "be stored again unless forced"
        )
        self.iris = iris


@dataclass(frozen=True)
class Receipt:
    """What an erasure did, without personal data."""

    id: str
    at: str
    statements: int
    resources: int
    inferences_removed: int
    legal_basis: str
    requested_by: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "receipt": self.id,
            "at": self.at,
            "statements": self.statements,
            "resources": self.resources,
            "inferencesRemoved": self.inferences_removed,
            "legalBasis": self.legal_basis,
            "requestedBy": self.requested_by,
        }


#: told of an erasure before it starts (``True``) and after it ends (``False``), with the
#: erased IRIs: ``relmark.history.webhooks`` holds back and drops deliveries that name them
ERASURE_LISTENERS: list[Callable[[Store, set[str], bool], None]] = []


def digest(iri: str) -> str:
    return hashlib.sha256(iri.encode("utf-8")).hexdigest()


def forget(
    store: Store,
    iri: str,
    *,
    ontology_dir: Path | None = None,
    requested_by: str | None = None,
    legal_basis: str = terms.GDPR_ART_17,
    history: bool = True,
) -> Receipt:
    """Erase ``iri`` and what only existed to link it; refresh the inferences; keep a receipt."""
    erased = _erasure_set(store, iri)
    quads = _quads_about(store, erased)
    if not quads:
        raise UnknownPerson(f"<{iri}> appears in no data graph: nothing to forget")
    for listener in list(ERASURE_LISTENERS):
        listener(store, erased, True)
    try:
        store.update(_delete(quads, erased))
        summary = refresh_and_record(
            store,
            ontology_dir,
            Changes(added=[], removed=quads),
            cause=Cause("forget", "erasure (GDPR Art. 17)", requested_by),
            history=history,
        )
        _forget_history(store, erased)
    finally:
        for listener in list(ERASURE_LISTENERS):
            listener(store, erased, False)
    receipt = Receipt(
        id=RECEIPT_PREFIX + uuid.uuid4().hex,
        at=datetime.now(UTC).isoformat(),
        statements=len(quads),
        resources=len(erased),
        inferences_removed=summary.removed if summary is not None else 0,
        legal_basis=legal_basis,
        requested_by=requested_by,
    )
    _write_receipt(store, receipt, iri)
    return receipt


def erased_digests(store: Store) -> set[str]:
    """The digests of every erased IRI (from the receipts)."""
    rows = selected(
        store.query(f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ ?r <{terms.ERASED_HASH}> ?h }} }}")
    )
    return {row["h"].value for row in rows}


def check_not_erased(store: Store, quads: Iterable[ox.Quad], *, force: bool = False) -> None:
    """Refuse (``ErasedResource``) quads that name an erased IRI, unless ``force``."""
    if force:
        return
    known = erased_digests(store)
    if not known:
        return
    seen: set[str] = set()
    for quad in quads:
        for term in (quad.subject, quad.object):
            if isinstance(term, ox.NamedNode):
                seen.add(term.value)
    named = sorted(i for i in seen if digest(i) in known)
    if named:
        raise ErasedResource(named)


def _erasure_set(store: Store, iri: str) -> set[str]:
    """The person and the records that only existed to link them.

    Simple queries with the IRIs bound, the class tests done here: one query that mixed
    property paths, ``GRAPH ?g`` and nested ``NOT EXISTS`` took minutes on 2k triples.
    """
    records = _subclasses(store, RECORD_CLASSES)
    parties = _subclasses(store, PARTY_CLASSES)
    firms = _subclasses(store, (RM + "FocalFirm",))
    # records pointing to the person (a referral they made or received, their relationship)
    erased = {iri} | _records_pointing_to(store, {iri}, records)
    frontier = erased - {iri}
    while frontier:  # records pointing to erased records and to no other party
        candidates = _records_pointing_to(store, frontier, records) - erased
        others = _objects_with_types(store, candidates)
        frontier = set()
        for candidate in candidates:
            linked = others.get(candidate, {})
            if any(
                o not in erased and types & parties and not types & firms
                for o, types in linked.items()
            ):
                continue
            frontier.add(candidate)
        erased |= frontier
    return erased


def _subclasses(store: Store, roots: Iterable[str]) -> set[str]:
    rows = selected(
        store.query(
            f"SELECT DISTINCT ?c WHERE {{ {_values('?root', roots)} GRAPH <{ONTOLOGY_GRAPH}> {{"
            f" ?c <http://www.w3.org/2000/01/rdf-schema#subClassOf>* ?root }} }}"
        )
    )
    return {row["c"].value for row in rows} | set(roots)


def _records_pointing_to(store: Store, targets: set[str], records: set[str]) -> set[str]:
    """The instances of a record class that some data graph says point to ``targets``."""
    known = " ".join(str(ox.NamedNode(t)) for t in sorted(targets))
    rows = selected(
        store.query(
            f"SELECT DISTINCT ?r ?g ?t WHERE {{ VALUES ?x {{ {known} }} GRAPH ?g {{ ?r ?p ?x }}"
            f" ?r a ?t FILTER(isIRI(?r)) }}"
        )
    )
    return {
        row["r"].value
        for row in rows
        if row["g"].value not in SYSTEM_GRAPHS and row["t"].value in records
    }


def _objects_with_types(store: Store, subjects: set[str]) -> dict[str, dict[str, set[str]]]:
    """For each subject: the IRIs it points to, each with its types."""
    found: dict[str, dict[str, set[str]]] = {}
    if not subjects:
        return found
    known = " ".join(str(ox.NamedNode(s)) for s in sorted(subjects))
    rows = selected(
        store.query(
            f"SELECT DISTINCT ?r ?o ?t WHERE {{ VALUES ?r {{ {known} }} ?r ?q ?o FILTER(isIRI(?o))"
            f" OPTIONAL {{ ?o a ?t }} }}"
        )
    )
    for row in rows:
        types = found.setdefault(row["r"].value, {}).setdefault(row["o"].value, set())
        if row["t"] is not None:
            types.add(row["t"].value)
    return found


def _quads_about(store: Store, erased: set[str]) -> list[ox.Quad]:
    """Every quad of a data graph whose subject or object is erased, and the blank nodes
    hanging from the erased subjects (an address written as ``[ … ]``)."""
    known = " ".join(str(ox.NamedNode(e)) for e in sorted(erased))
    data = _data_graph_filter("?g")
    found: set[ox.Quad] = set()
    for pattern in (
        "{ ?s ?p ?o VALUES ?s { X } } UNION { ?s ?p ?o VALUES ?o { X } }",
        "{ VALUES ?x { X } ?x ?q ?s FILTER(isBlank(?s)) ?s ?p ?o }",
    ):
        body = pattern.replace("X", known)
        for row in selected(
            store.query(f"SELECT ?g ?s ?p ?o WHERE {{ GRAPH ?g {{ {body} }} {data} }}")
        ):
            found.add(ox.Quad(row["s"], row["p"], row["o"], row["g"]))
    return sorted(found, key=str)


def _delete(quads: list[ox.Quad], erased: set[str]) -> str:
    """One update removing ``quads`` (blank nodes by pattern: DELETE DATA cannot name them)."""
    plain = [q for q in quads if not isinstance(q.subject, ox.BlankNode)]
    parts = []
    by_graph: dict[str, list[str]] = {}
    for q in plain:
        by_graph.setdefault(str(q.graph_name), []).append(f"{q.subject} {q.predicate} {q.object} .")
    for graph, lines in by_graph.items():
        parts.append(f"DELETE DATA {{ GRAPH {graph} {{ {' '.join(lines)} }} }}")
    if len(plain) < len(quads):
        known = " ".join(str(ox.NamedNode(e)) for e in sorted(erased))
        parts.insert(
            0,
            f"DELETE {{ GRAPH ?g {{ ?b ?p ?o }} }} WHERE {{ GRAPH ?g {{ VALUES ?x {{ {known} }}"
            f" ?x ?q ?b FILTER(isBlank(?b)) ?b ?p ?o }} }}",
        )
    return " ;\n".join(parts)


def _forget_history(store: Store, erased: set[str]) -> None:
    """Delete the history events of every erased resource (and those naming it as firm)."""
    known = " ".join(str(ox.NamedNode(e)) for e in sorted(erased))
    store.update(
        f"DELETE {{ GRAPH <{HISTORY_GRAPH}> {{ ?e ?p ?o }} }} WHERE {{ GRAPH <{HISTORY_GRAPH}> {{"
        f" VALUES ?x {{ {known} }}"
        f" {{ ?e <{terms.EVENT_RESOURCE}> ?x }} UNION {{ ?e <{terms.EVENT_FIRM}> ?x }}"
        f" ?e ?p ?o }} }}",
        system=True,
    )


def _write_receipt(store: Store, receipt: Receipt, iri: str) -> None:
    node = ox.NamedNode(receipt.id)
    stamp = ox.Literal(receipt.at, datatype=ox.NamedNode(terms.XSD_DATETIME))
    lines = [
        f"{node} a <{terms.ERASURE_RECEIPT}> , <{terms.PROV}Activity>",
        f"<{terms.DPV}hasProcessing> <{terms.DPV}Erase>",
        f"<{terms.DPV}hasLegalBasis> {ox.NamedNode(receipt.legal_basis)}",
        f"<{terms.PROV}endedAtTime> {stamp}",
        f"<{terms.ERASED_STATEMENTS}> {ox.Literal(str(receipt.statements), datatype=ox.NamedNode('http://www.w3.org/2001/XMLSchema#integer'))}",
        f"<{terms.ERASED_HASH}> {ox.Literal(digest(iri))}",
    ]
    if receipt.requested_by:
        lines.append(f"<{terms.REQUESTED_BY}> {ox.Literal(receipt.requested_by)}")
    body = " ;\n  ".join(lines) + " ."
    store.update(f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ {body} }} }}", system=True)


def _values(variable: str, iris: Iterable[str]) -> str:
    return f"VALUES {variable} {{ {' '.join(f'<{i}>' for i in iris)} }}"


def _data_graph_filter(variable: str) -> str:
    system = ", ".join(f"<{g}>" for g in sorted(SYSTEM_GRAPHS))
    return f"FILTER({variable} NOT IN ({system}))"
