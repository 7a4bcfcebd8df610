"""The provenance record of inferred triples: one vocabulary, written and read in one place.

For every inferred triple, ``urn:relmark:provenance`` holds the derivation that concluded
it (DESIGN §4-§5)::

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

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyoxigraph as ox

from relmark.store import INFERRED_GRAPH

if TYPE_CHECKING:
    from relmark.reasoning.rules import Rule

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
PROV = "http://www.w3.org/ns/prov#"
DCTERMS = "http://purl.org/dc/terms/"

RDF_TYPE = ox.NamedNode(RDF + "type")
RDF_SUBJECT = ox.NamedNode(RDF + "subject")
RDF_PREDICATE = ox.NamedNode(RDF + "predicate")
RDF_OBJECT = ox.NamedNode(RDF + "object")
RDFS_LABEL = ox.NamedNode(RDFS + "label")
RDFS_COMMENT = ox.NamedNode(RDFS + "comment")
DCTERMS_SOURCE = ox.NamedNode(DCTERMS + "source")
PROV_PLAN = ox.NamedNode(PROV + "Plan")
PROV_USED = ox.NamedNode(PROV + "used")
PROV_GENERATED = ox.NamedNode(PROV + "generated")
PROV_AT_LOCATION = ox.NamedNode(PROV + "atLocation")

RULE_IRI_PREFIX = "urn:relmark:rule:"
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

    @property
    def iri(self) -> str:
        return DERIVATION_IRI_PREFIX + digest(self.rule.name + "\n" + self.key)


def statement_iri(triple: ox.Triple, graph: str | None) -> ox.NamedNode:
    """The provenance node standing for ``triple`` as found in ``graph``."""
    return ox.NamedNode(STATEMENT_IRI_PREFIX + digest(f"{graph or ''}\n{triple}"))


def statement_triples(triple: ox.Triple, graph: str | None) -> list[ox.Triple]:
    node = statement_iri(triple, graph)
    triples = [
        ox.Triple(node, RDF_SUBJECT, triple.subject),
        ox.Triple(node, RDF_PREDICATE, triple.predicate),
        ox.Triple(node, RDF_OBJECT, triple.object),
    ]
    if graph is not None:
        triples.append(ox.Triple(node, PROV_AT_LOCATION, ox.NamedNode(graph)))
    return triples


def rule_triples(rule: Rule) -> list[ox.Triple]:
    """The rule as a prov:Plan with what an explanation shows of it."""
    node = ox.NamedNode(rule.iri)
    triples = [
        ox.Triple(node, RDF_TYPE, PROV_PLAN),
        ox.Triple(node, RDFS_LABEL, ox.Literal(rule.label, language="en")),
        ox.Triple(node, RDFS_LABEL, ox.Literal(rule.label_it, language="it")),
        ox.Triple(node, RDFS_COMMENT, ox.Literal(rule.why, language="en")),
        ox.Triple(node, DCTERMS_SOURCE, ox.Literal(rule.source)),
    ]
    if rule.why_it:
        triples.append(ox.Triple(node, RDFS_COMMENT, ox.Literal(rule.why_it, language="it")))
    return triples


def derivation_triples(
    derivation: Derivation, locations: Mapping[ox.Triple, list[str | None]]
) -> list[ox.Triple]:
    """A derivation's record with the statement nodes it points to.

    ``locations`` gives the input graphs holding each premise; a premise found in none of
    them was inferred itself.
    """
    node = ox.NamedNode(derivation.iri)
    triples = [ox.Triple(node, PROV_USED, ox.NamedNode(derivation.rule.iri))]
    for conclusion in derivation.conclusions:
        triples.append(ox.Triple(node, PROV_GENERATED, statement_iri(conclusion, INFERRED_GRAPH)))
        triples += statement_triples(conclusion, INFERRED_GRAPH)
    for premise in derivation.premises:
        for graph in locations.get(premise) or [INFERRED_GRAPH]:
            triples.append(ox.Triple(node, PROV_USED, statement_iri(premise, graph)))
            triples += statement_triples(premise, graph)
    for name, value in derivation.bindings:
        triples.append(ox.Triple(node, ox.NamedNode(VARIABLE_IRI_PREFIX + name), value))
    return triples


def provenance_graph(
    rules: Iterable[Rule],
    derivations: Iterable[Derivation],
    locations: Mapping[ox.Triple, list[str | None]],
) -> set[ox.Triple]:
    """The whole provenance graph of a full run."""
    triples: set[ox.Triple] = set()
    for rule in rules:
        triples.update(rule_triples(rule))
    for derivation in derivations:
        triples.update(derivation_triples(derivation, locations))
    return triples
