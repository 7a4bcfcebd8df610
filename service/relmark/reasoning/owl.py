"""OWL reasoning with owlready2: consistency and unsatisfiable classes.

OWL is the right tool for what the ontology itself claims (subsumption, domains and
ranges, disjointness). owlready2 cannot read Turtle, so the graphs are converted to
RDF/XML with rdflib first; the reasoner (HermiT by default, Pellet on request) runs in a
JVM, which the set-up installs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import owlready2
import rdflib
from rdflib.namespace import XSD


@dataclass(frozen=True)
class ConsistencyReport:
    """What the reasoner concluded, for machines (fields) and people (``text``)."""

    consistent: bool
    reasoner: str
    unsatisfiable: list[str] = field(default_factory=list)
    explanation: str = ""

    @property
    def ok(self) -> bool:
        return self.consistent and not self.unsatisfiable

    @property
    def text(self) -> str:
        if not self.consistent:
            return f"{self.reasoner}: INCONSISTENT\n{self.explanation}".rstrip()
        if self.unsatisfiable:
            listed = "\n".join(f"  - {iri}" for iri in self.unsatisfiable)
            return f"{self.reasoner}: consistent, but unsatisfiable classes:\n{listed}"
        return f"{self.reasoner}: consistent, no unsatisfiable class"


def merge_turtle(paths: Iterable[Path]) -> rdflib.Graph:
    """Parse Turtle files into one rdflib graph (owlready2 needs a single document)."""
    graph = rdflib.Graph()
    for path in paths:
        graph.parse(path, format="turtle")
    return graph


def owl2_datatypes(graph: rdflib.Graph) -> rdflib.Graph:
    """A copy of ``graph`` whose xsd:date literals are xsd:dateTime at midnight.

    xsd:date is not in the OWL 2 datatype map and HermiT refuses it; a date read as the
    start of that day keeps every comparison the ontology can make.
    """
    converted = rdflib.Graph()
    for s, p, o in graph:
        if isinstance(o, rdflib.Literal) and o.datatype == XSD.date:
            o = rdflib.Literal(f"{o}T00:00:00", datatype=XSD.dateTime)
        converted.add((s, p, o))
    return converted


def load_world(graph: rdflib.Graph) -> owlready2.World:
    """A fresh owlready2 world holding ``graph``, isolated from owlready2's default world."""
    world = owlready2.World()
    rdfxml = owl2_datatypes(graph).serialize(format="xml", encoding="utf-8")
    world.get_ontology("https://w3id.org/relmark/ontology").load(
        fileobj=io.BytesIO(rdfxml), format="rdfxml"
    )
    return world


def check_consistency(graph: rdflib.Graph, reasoner: str = "hermit") -> ConsistencyReport:
    """Run HermiT (or Pellet) on ``graph``: is it consistent, and is every class satisfiable?"""
    world = load_world(graph)
    run = owlready2.sync_reasoner_pellet if reasoner == "pellet" else owlready2.sync_reasoner
    try:
        with world.get_ontology("https://w3id.org/relmark/ontology"):
            run(world, infer_property_values=False, debug=0)
    except owlready2.OwlReadyInconsistentOntologyError as error:
        return ConsistencyReport(consistent=False, reasoner=reasoner, explanation=str(error))
    unsatisfiable = sorted(
        cls.iri for cls in world.inconsistent_classes() if cls is not owlready2.Nothing
    )
    return ConsistencyReport(consistent=True, reasoner=reasoner, unsatisfiable=unsatisfiable)
