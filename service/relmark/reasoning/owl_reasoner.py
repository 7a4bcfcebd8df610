"""OWL reasoning with owlready2: is the ontology (with data) consistent, is every class
satisfiable?

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


# --- the independent oracle: the rules' classes, as OWL classifies them -----------------------
#
# The SPARQL rules (ontology/rules/*.rq) classify the data; owlready2 and HermiT classify
# it again from the same facts, with one OWL definition (an equivalent class or a SWRL
# rule, in the CHECK namespace) per rm: class the rules infer, written from the rules'
# own conditions and the thresholds in the config. Where OWL reads the data differently
# from SPARQL, the definitions make the difference explicit:
#
# * Open world. A rule's FILTER NOT EXISTS and its counts ("exactly one purchase", "at
#   least two") are not entailed by OWL from the facts alone. The check closes the world
#   on exactly the properties those patterns read, for the individuals they read them on:
#   "p max n", n the number of asserted values, which get unique names (below), so they
#   are all the values there are. This is what owlready2's close_world says ("p only
#   {the asserted values}"), without its nominal, which HermiT reasons about far more
#   slowly. A closed
#   object property counts the values of its sub-properties too: OWL entails rm:buyer and
#   rm:seller values as rm:participant values, and a closure that left them out would make
#   the data inconsistent; no rule reads a purchase as a joint initiative, so the answers
#   do not change.
# * No unique names. SPARQL takes two IRIs for two things ("FILTER (?a != ?b)", counts);
#   OWL does not. The check states owl:AllDifferent for the individuals the counts and
#   inequalities compare (purchases, brands, teams, alliance members, closed values), and
#   gives each individual a definition names (a firm, rm:Enduring, …) a class of its own,
#   asserted on it and disjoint from the others': it stands for the nominal {individual}.
# * A variable shared inside and outside a negation or a count ("no referral *for this
#   firm*") has no OWL class expression. The check grounds it: one disjunct per firm that
#   can bind it (the asserted objects of rm:focalParty, rm:candidateOf, rm:sellingFirm).
#   Joins without negation ("the same consumer", "the same product category", "a
#   different brand", "the purchase the referral led to") are DL-safe SWRL rules.
# * "Highest stage wins" on the loyalty ladder is not an ordering the rules compute: each
#   ladder rule excludes the conditions of the rungs above it (or, for the prospect and the
#   purchaser, has too few purchases for them), and the OWL definitions carry the same
#   exclusions, so no ranking is needed on either side.
# * Types. A rule's "?x a rm:C" reads asserted types only; OWL also reads the types that
#   domains, ranges and subclass axioms entail. On the demo data this changes no answer,
#   though it is visible: rm:targetedBy has range rm:FocalFirm, so for OWL the competitor
#   that targets a segment (demo:stahlwerk-kugel) is a focal firm too.
# * Results. The rule engine writes only what is not asserted already, so its classes
#   are read as "inferred plus asserted"; classify_with_owl answers the same way: the
#   members of each CHECK class plus the individuals the input asserts in the rm: class.
