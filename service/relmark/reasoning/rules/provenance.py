"""The provenance record of inferred triples: one vocabulary, written and read in one place.

For every inferred triple, ``urn:relmark:provenance`` holds the derivation that concluded
it::

    <urn:relmark:derivation:…> prov:used <urn:relmark:rule:NAME> ;          # the rule
        prov:generated <urn:relmark:statement:…> ;                           # conclusions
        prov:used <urn:relmark:statement:…> ;                                # premises
        <urn:relmark:rule-variable:customer> demo:anna .                      # bindings
    <urn:relmark:statement:…> rdf:subject … ; rdf:predicate … ; rdf:object … ;
        prov:atLocation <graph> .                                            # and where

Statements use RDF 1.1 reification, not RDF 1.2 triple terms, so the same record can be
written to any SPARQL 1.1 store (Virtuoso has no triple terms). Every IRI is a digest of
what it names, so the same inputs always give the same graph, whether a full run or an
incremental update wrote it. Rule nodes carry the label, the why and the source, so an
explanation reads everything it shows from the store.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import pyoxigraph as ox

from relmark.reasoning.rules.model import Rule
from relmark.vocab import INFERRED_GRAPH

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
PROV = "http://www.w3.org/ns/prov#"
DCTERMS = "http://purl.org/dc/terms/"

RDF_TYPE = ox.NamedNode(RDF + "type")
RDFS_LABEL = ox.NamedNode(RDFS + "label")
RDFS_COMMENT = ox.NamedNode(RDFS + "comment")
DCTERMS_SOURCE = ox.NamedNode(DCTERMS + "source")
PROV_PLAN = ox.NamedNode(PROV + "Plan")

DERIVATION_IRI_PREFIX = "urn:relmark:derivation:"
STATEMENT_IRI_PREFIX = "urn:relmark:statement:"
VARIABLE_IRI_PREFIX = "urn:relmark:rule-variable:"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Derivation:
    """One application of a rule: its bindings, the facts it used and what it concluded."""

    rule: Rule
    bindings: tuple[tuple[str, object], ...]
    premises: tuple[ox.Triple, ...]
    conclusions: tuple[ox.Triple, ...]

    @property
    def key(self) -> str:
        """The bindings as text: orders derivations and names them."""
        return "\n".join(f"{name}={value}" for name, value in self.bindings)

    @functools.cached_property
    def iri(self) -> str:  # a digest: asked several times per derivation by a full run
        return DERIVATION_IRI_PREFIX + digest(self.rule.name + "\n" + self.key)


def statement_iri(triple: ox.Triple, graph: str | None) -> ox.NamedNode:
    """The provenance node standing for ``triple`` as found in ``graph``."""
    return ox.NamedNode(STATEMENT_IRI_PREFIX + digest(f"{graph or ''}\n{triple}"))


# The record is built as N-Triples lines (pyoxigraph writes every term in that form with
# ``str``): a million-derivation run writes millions of them, and lines cost a fraction of
# Python term objects to make, compare and hand to pyoxigraph's bulk loader.

RDF_SUBJECT = f"<{RDF}subject>"
RDF_PREDICATE = f"<{RDF}predicate>"
RDF_OBJECT = f"<{RDF}object>"
PROV_USED = f"<{PROV}used>"
PROV_GENERATED = f"<{PROV}generated>"
PROV_AT_LOCATION = f"<{PROV}atLocation>"


def statement_lines(triple: ox.Triple, graph: str | None) -> tuple[str, list[str]]:
    """The statement node (as N-Triples) and its lines."""
    node = f"<{statement_iri(triple, graph).value}>"
    lines = [
        f"{node} {RDF_SUBJECT} {triple.subject} .",
        f"{node} {RDF_PREDICATE} {triple.predicate} .",
        f"{node} {RDF_OBJECT} {triple.object} .",
    ]
    if graph is not None:
        lines.append(f"{node} {PROV_AT_LOCATION} <{graph}> .")
    return node, lines


def rule_lines(rule: Rule) -> list[str]:
    """The rule as a prov:Plan with what an explanation shows of it."""
    node = ox.NamedNode(rule.iri)
    triples = [
        ox.Triple(node, RDF_TYPE, PROV_PLAN),
        ox.Triple(node, RDFS_LABEL, ox.Literal(rule.label, language="en")),
        ox.Triple(node, RDFS_LABEL, ox.Literal(rule.label_it, language="it")),
        ox.Triple(node, RDFS_COMMENT, ox.Literal(rule.why, language="en")),
    ]
    # The works cited, as the reference nodes the ontology graph describes; a header that
    # names none is kept as its text.
    sources = [ox.NamedNode(iri) for iri in rule.references] or [ox.Literal(rule.source)]
    triples += [ox.Triple(node, DCTERMS_SOURCE, source) for source in sources]
    if rule.why_it:
        triples.append(ox.Triple(node, RDFS_COMMENT, ox.Literal(rule.why_it, language="it")))
    return [f"{t} ." for t in triples]


def derivation_lines(
    derivation: Derivation,
    locations: Mapping[ox.Triple, list[str | None]],
    statements: dict[tuple[ox.Triple, str | None], tuple[str, list[str]]] | None = None,
) -> list[str]:
    """A derivation's record with the statement nodes it points to.

    ``locations`` gives the input graphs holding each premise; a premise found in none of
    them was inferred itself. ``statements`` memoises statement nodes across derivations
    (a threshold or a firm's fact is a premise of thousands of them).
    """
    memo = {} if statements is None else statements

    def statement_of(triple: ox.Triple, graph: str | None) -> tuple[str, list[str]]:
        key = (triple, graph)
        found = memo.get(key)
        if found is None:
            found = memo[key] = statement_lines(triple, graph)
        return found

    node = f"<{derivation.iri}>"
    lines = [f"{node} {PROV_USED} <{derivation.rule.iri}> ."]
    for conclusion in derivation.conclusions:
        statement, statement_record = statement_of(conclusion, INFERRED_GRAPH)
        lines.append(f"{node} {PROV_GENERATED} {statement} .")
        lines += statement_record
    for premise in derivation.premises:
        for graph in locations.get(premise) or [INFERRED_GRAPH]:
            statement, statement_record = statement_of(premise, graph)
            lines.append(f"{node} {PROV_USED} {statement} .")
            lines += statement_record
    for name, value in derivation.bindings:
        lines.append(f"{node} <{VARIABLE_IRI_PREFIX}{name}> {value} .")
    return lines


def provenance_graph(
    rules: Iterable[Rule],
    derivations: Iterable[Derivation],
    locations: Mapping[ox.Triple, list[str | None]],
) -> set[str]:
    """The whole provenance graph of a full run, as N-Triples lines."""
    lines: set[str] = set()
    for chunk in provenance_chunks(rules, derivations, locations):
        lines.update(chunk)
    return lines


def provenance_chunks(
    rules: Iterable[Rule],
    derivations: Iterable[Derivation],
    locations: Mapping[ox.Triple, list[str | None]],
    size: int = 500_000,
) -> Iterator[list[str]]:
    """The same lines in chunks of about ``size``, each line once, as they are made (so a
    writer can load one chunk while the next is made)."""
    seen: set[str] = set()
    chunk: list[str] = []

    def add(lines: Iterable[str]) -> None:
        for line in lines:
            if line not in seen:
                seen.add(line)
                chunk.append(line)

    for rule in rules:
        add(rule_lines(rule))
    statements: dict[tuple[ox.Triple, str | None], tuple[str, list[str]]] = {}
    for derivation in derivations:
        add(derivation_lines(derivation, locations, statements))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
