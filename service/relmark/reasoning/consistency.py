"""``relmark check``: is the ontology with the data consistent, is every class satisfiable?

HermiT (through owlready2, ``owl_reasoner.check_consistency``) answers yes or no but gives no
justification, and an "INCONSISTENT" alone does not tell a data steward what to fix. So
the reasoner's verdict is explained here in two steps, each confirmed by the reasoner:

1. The clash patterns this ontology can produce are looked for directly: a value outside
   its property's datatype range or ill-typed for its own datatype, two values of a
   functional datatype property, an individual in two
   disjoint classes (its asserted types, those its properties' domains and ranges give, and
   their superclasses), an individual typed ``owl:Nothing`` or an unsatisfiable class.
   Removing the suspects must make the data consistent, or they are not reported as the cause.
2. Otherwise the individuals are searched: the smallest set of individuals (with all their
   statements) that is inconsistent with the ontology, found by growing prefixes and binary
   search (a few reasoner runs per individual found, each a full HermiT run).

Unsatisfiable classes come from a run on the ontology alone (an inconsistent ABox hides
them), each with the told axioms that make it empty (two disjoint superclasses, a
superclass ``owl:Nothing`` or a complement) where the ontology states them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Set
from dataclasses import dataclass, field

import rdflib
from rdflib.namespace import OWL, RDF, RDFS, XSD

from relmark.reasoning.owl_reasoner import ConsistencyReport, check_consistency
from relmark.vocab import RM

#: Reasoner runs the individual search may spend before it gives up (each a full run).
SEARCH_BUDGET = 40

_NUMERIC = {
    XSD.decimal,
    XSD.integer,
    XSD.int,
    XSD.long,
    XSD.short,
    XSD.byte,
    XSD.nonNegativeInteger,
    XSD.positiveInteger,
    XSD.nonPositiveInteger,
    XSD.negativeInteger,
    XSD.unsignedInt,
    XSD.unsignedLong,
    XSD.unsignedShort,
    XSD.unsignedByte,
}
#: Literal datatypes accepted where a property's range is the key datatype.
_COMPATIBLE: dict[rdflib.term.Node, Set[rdflib.URIRef | None] | None] = {
    XSD.decimal: _NUMERIC,
    XSD.integer: _NUMERIC - {XSD.decimal},
    XSD.double: {XSD.double},
    XSD.float: {XSD.float},
    XSD.string: {XSD.string, None},
    RDF.langString: {RDF.langString},
    RDFS.Literal: None,  # anything
    XSD.boolean: {XSD.boolean},
    XSD.date: {XSD.date, XSD.dateTime},
    XSD.dateTime: {XSD.dateTime, XSD.dateTimeStamp, XSD.date},
    XSD.anyURI: {XSD.anyURI, XSD.string, None},
}


@dataclass(frozen=True)
class Clash:
    """One reason the data is inconsistent, with the statements involved."""

    kind: str  # "datatype", "functional", "disjoint", "nothing", "individuals"
    text: str
    statements: tuple[tuple[str, str, str], ...] = ()

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "text": self.text,
            "statements": [list(s) for s in self.statements],
        }


@dataclass(frozen=True)
class EmptyClass:
    """An unsatisfiable class and the told axioms that make it so (where found)."""

    iri: str
    reason: str
    axioms: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"class": self.iri, "reason": self.reason, "axioms": list(self.axioms)}


@dataclass
class Diagnosis:
    """The verdict for machines (fields, ``to_json``) and for people (``text``)."""

    reasoner: str
    consistent: bool
    ontology_consistent: bool
    unsatisfiable: list[EmptyClass] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)
    confirmed: bool = False
    reasoner_runs: int = 0
    seconds: float = 0.0
    statements: int = 0

    @property
    def ok(self) -> bool:
        return self.consistent and self.ontology_consistent and not self.unsatisfiable

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "reasoner": self.reasoner,
            "consistent": self.consistent,
            "ontology_consistent": self.ontology_consistent,
            "unsatisfiable": [c.to_json() for c in self.unsatisfiable],
            "clashes": [c.to_json() for c in self.clashes],
            "confirmed": self.confirmed,
            "reasoner_runs": self.reasoner_runs,
            "seconds": round(self.seconds, 2),
            "statements": self.statements,
        }

    @property
    def text(self) -> str:
        lines = []
        if self.ok:
            lines.append(
                f"{self.reasoner}: consistent, every class satisfiable "
                f"({self.statements:,} statements, {self.seconds:.1f} s)"
            )
            return "\n".join(lines)
        if not self.ontology_consistent:
            lines.append(f"{self.reasoner}: the ontology itself is INCONSISTENT")
        elif not self.consistent:
            lines.append(f"{self.reasoner}: the data is INCONSISTENT with the ontology")
        else:
            lines.append(f"{self.reasoner}: consistent")
        for clash in self.clashes:
            lines.append(f"  clash ({clash.kind}): {clash.text}")
            for statement in clash.statements:
                lines.append(f"      {_show_statement(statement)}")
        if self.clashes and self.clashes[-1].kind == "individuals":
            lines.append("  confirmed by the reasoner: these statements alone clash with it")
        elif self.clashes:
            lines.append(
                "  confirmed by the reasoner: without these statements the data is consistent"
                if self.confirmed
                else "  not confirmed: the reasoner still finds a clash without them"
            )
        elif not self.consistent:
            lines.append("  no explanation found within the search budget")
        if self.unsatisfiable:
            lines.append(f"  unsatisfiable classes ({len(self.unsatisfiable)}):")
            for empty in self.unsatisfiable:
                lines.append(f"    {_short(empty.iri)}: {empty.reason}")
                for axiom in empty.axioms:
                    lines.append(f"        {axiom}")
        lines.append(
            f"  ({self.statements:,} statements, {self.reasoner_runs} reasoner runs, "
            f"{self.seconds:.1f} s)"
        )
        return "\n".join(lines)


def _short(term: object) -> str:
    text = str(term)
    for prefix, namespace in (
        ("rm:", RM),
        ("owl:", str(OWL)),
        ("rdfs:", str(RDFS)),
        ("rdf:", str(RDF)),
        ("xsd:", str(XSD)),
    ):
        if text.startswith(namespace):
            return prefix + text[len(namespace) :]
    return f"<{text}>" if isinstance(term, rdflib.URIRef) or "://" in text else text


def _show_statement(statement: tuple[str, str, str]) -> str:
    return " ".join(statement) + " ."


def _literal(literal: rdflib.Literal) -> str:
    """A literal as Turtle would abbreviate it: numbers and booleans bare, else quoted."""
    if literal.datatype in _NUMERIC | {XSD.boolean} and not literal.ill_typed:
        return str(literal)
    if literal.datatype and literal.datatype != XSD.string:
        return f'"{literal}"^^{_short(literal.datatype)}'
    return literal.n3()


def _statement(triple: tuple) -> tuple[str, str, str]:
    s, p, o = triple
    shown = _literal(o) if isinstance(o, rdflib.Literal) else _short(o)
    return (_short(s), "a" if p == RDF.type else _short(p), shown)


# --- the reasoner, counted ------------------------------------------------------------------


class _Reasoner:
    def __init__(self, reasoner: str) -> None:
        self.name = reasoner
        self.runs = 0

    def consistent(self, graph: rdflib.Graph) -> bool:
        self.runs += 1
        return check_consistency(graph, self.name).consistent

    def report(self, graph: rdflib.Graph) -> ConsistencyReport:
        self.runs += 1
        return check_consistency(graph, self.name)


def _union(*graphs: Iterable[tuple]) -> rdflib.Graph:
    merged = rdflib.Graph()
    for graph in graphs:
        for triple in graph:
            merged.add(triple)
    return merged


# --- the entry point --------------------------------------------------------------------------


def diagnose(
    ontology: rdflib.Graph,
    data: rdflib.Graph,
    reasoner: str = "hermit",
    budget: int = SEARCH_BUDGET,
) -> Diagnosis:
    """Check ``ontology`` (TBox and config) alone and with ``data``; explain what fails."""
    started = time.perf_counter()
    runner = _Reasoner(reasoner)
    alone = runner.report(ontology)
    result = Diagnosis(
        reasoner=reasoner,
        consistent=alone.consistent,
        ontology_consistent=alone.consistent,
        statements=len(ontology) + len(data),
    )
    if alone.consistent:
        result.unsatisfiable = [_why_empty(ontology, iri) for iri in alone.unsatisfiable]
        if len(data):
            result.consistent = runner.consistent(_union(ontology, data))
    if not result.consistent:
        scope = data if alone.consistent else _abox(ontology)
        base = ontology if alone.consistent else _without(ontology, scope)
        empty = {rdflib.URIRef(c.iri) for c in result.unsatisfiable}
        suspects = _suspects(base, scope, empty)
        if suspects:
            removed = {t for clash in suspects for t in clash[1]}
            result.clashes = [c for c, _ in suspects]
            result.confirmed = runner.consistent(_union(base, _without(scope, removed)))
        if not result.confirmed:
            found = _search_individuals(runner, base, scope, budget)
            if found:
                result.clashes.append(found)
                result.confirmed = True
    result.reasoner_runs = runner.runs
    result.seconds = time.perf_counter() - started
    return result


def _abox(graph: rdflib.Graph) -> rdflib.Graph:
    """The assertions about individuals in ``graph`` (when the ontology itself clashes)."""
    schema = {
        s
        for s, _, o in graph.triples((None, RDF.type, None))
        if o
        in (
            OWL.Class,
            RDFS.Class,
            OWL.ObjectProperty,
            OWL.DatatypeProperty,
            OWL.AnnotationProperty,
            RDF.Property,
            OWL.Ontology,
            OWL.Restriction,
            RDFS.Datatype,
        )
    }
    individuals = {
        s for s, _, o in graph.triples((None, RDF.type, None)) if isinstance(s, rdflib.URIRef)
    } - schema
    abox = rdflib.Graph()
    for s in individuals:
        for triple in graph.triples((s, None, None)):
            abox.add(triple)
    return abox


def _without(graph: rdflib.Graph, removed: Iterable[tuple]) -> rdflib.Graph:
    drop = set(removed)
    kept = rdflib.Graph()
    for triple in graph:
        if triple not in drop:
            kept.add(triple)
    return kept


# --- step 1: the clash patterns, found directly -----------------------------------------------


def _superclasses(tbox: rdflib.Graph, cls: rdflib.term.Node) -> set:
    """``cls`` and its told named superclasses (subClassOf, equivalentClass, intersections)."""
    seen = {cls}
    todo = [cls]
    while todo:
        current = todo.pop()
        parents = set(tbox.objects(current, RDFS.subClassOf))
        parents |= set(tbox.objects(current, OWL.equivalentClass))
        parents |= set(tbox.subjects(OWL.equivalentClass, current))
        for members in tbox.objects(current, OWL.intersectionOf):
            parents |= set(rdflib.collection.Collection(tbox, members))
        for parent in parents:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _disjoint_pairs(tbox: rdflib.Graph) -> set[frozenset]:
    pairs = {frozenset((a, b)) for a, b in tbox.subject_objects(OWL.disjointWith)}
    for node in tbox.subjects(RDF.type, OWL.AllDisjointClasses):
        for members in tbox.objects(node, OWL.members):
            classes = list(rdflib.collection.Collection(tbox, members))
            pairs |= {frozenset(pair) for pair in itertools.combinations(classes, 2)}
    for a, b in tbox.subject_objects(OWL.complementOf):
        pairs.add(frozenset((a, b)))
    return {pair for pair in pairs if len(pair) == 2}


def _suspects(tbox: rdflib.Graph, data: rdflib.Graph, empty: set) -> list[tuple[Clash, set[tuple]]]:
    """The clashes found by pattern, each with the data statements to remove to undo it."""
    found: list[tuple[Clash, set[tuple]]] = []
    found += _datatype_clashes(tbox, data)
    found += _functional_clashes(tbox, data)
    found += _type_clashes(tbox, data, empty)
    return found


def _functional_clashes(tbox: rdflib.Graph, data: rdflib.Graph) -> list[tuple[Clash, set]]:
    """Two different values of a functional datatype property on one individual."""
    clashes = []
    for prop in sorted(set(tbox.subjects(RDF.type, OWL.FunctionalProperty)), key=str):
        values: dict = {}
        for s, o in data.subject_objects(prop):
            if isinstance(o, rdflib.Literal):
                values.setdefault(s, set()).add(o)
        for subject, literals in sorted(values.items(), key=lambda item: str(item[0])):
            distinct = {lit.toPython() if not lit.ill_typed else lit for lit in literals}
            if len(distinct) < 2:
                continue
            shown = ", ".join(sorted(_literal(lit) for lit in literals))
            text = (
                f"{_short(subject)}: {_short(prop)} is functional (one value at most), "
                f"but has {len(literals)}: {shown}"
            )
            triples = {(subject, prop, lit) for lit in literals}
            statements = (
                *(_statement(t) for t in sorted(triples, key=str)),
                (_short(prop), "a", "owl:FunctionalProperty"),
            )
            clashes.append((Clash("functional", text, statements), triples))
    return clashes


def _datatype_clashes(tbox: rdflib.Graph, data: rdflib.Graph) -> list[tuple[Clash, set]]:
    clashes = []
    object_properties = set(tbox.subjects(RDF.type, OWL.ObjectProperty))
    for s, p, o in data:
        if p == RDF.type:
            continue
        if isinstance(o, rdflib.Literal):
            if getattr(o, "ill_typed", False):
                text = f"{_short(s)}: {_literal(o)} is not a valid {_short(o.datatype)} value"
                clashes.append((Clash("datatype", text, (_statement((s, p, o)),)), {(s, p, o)}))
                continue
            if p in object_properties:
                text = (
                    f"{_short(s)}: {_short(p)} links to resources, but its value is the "
                    f"literal {_literal(o)}"
                )
                clashes.append((Clash("datatype", text, (_statement((s, p, o)),)), {(s, p, o)}))
                continue
            for datatype in tbox.objects(p, RDFS.range):
                if datatype not in _COMPATIBLE:
                    continue
                accepted = _COMPATIBLE[datatype]
                if accepted is None:
                    continue
                kind = o.datatype or (RDF.langString if o.language else None)
                if kind not in accepted:
                    shown = _short(kind) if kind else "a plain string"
                    text = (
                        f"{_short(s)}: {_short(p)} takes {_short(datatype)} values "
                        f"(rdfs:range), but {_literal(o)} is {shown}"
                    )
                    statements = (
                        _statement((s, p, o)),
                        (_short(p), "rdfs:range", _short(datatype)),
                    )
                    clashes.append((Clash("datatype", text, statements), {(s, p, o)}))
    return clashes


def _type_clashes(tbox: rdflib.Graph, data: rdflib.Graph, empty: set) -> list[tuple[Clash, set]]:
    """Individuals in disjoint classes, in owl:Nothing or in an unsatisfiable class."""
    clashes = []
    disjoint = _disjoint_pairs(tbox)
    supers: dict = {}
    subjects = {s for s in data.subjects() if isinstance(s, rdflib.URIRef)}
    objects = {o for o in data.objects() if isinstance(o, rdflib.URIRef)}
    for individual in sorted(subjects | objects):
        reasons: dict = {}  # class -> (statement that gives it, removable data triple or None)
        for cls in data.objects(individual, RDF.type):
            reasons.setdefault(cls, ((individual, RDF.type, cls), (individual, RDF.type, cls)))
        for p, _ in data.predicate_objects(individual):
            for cls in tbox.objects(p, RDFS.domain):
                reasons.setdefault(cls, ((p, RDFS.domain, cls), None))
        for _, p in data.subject_predicates(individual):
            for cls in tbox.objects(p, RDFS.range):
                if not isinstance(cls, rdflib.URIRef) or str(cls).startswith(str(XSD)):
                    continue
                reasons.setdefault(cls, ((p, RDFS.range, cls), None))
        closure: dict = {}
        for cls, reason in reasons.items():
            if cls not in supers:
                supers[cls] = _superclasses(tbox, cls)
            for parent in supers[cls]:
                closure.setdefault(parent, (cls, reason))
        for parent, (cls, reason) in closure.items():
            if parent == OWL.Nothing or parent in empty:
                if parent == OWL.Nothing:
                    what = "a subclass of owl:Nothing"
                elif parent == cls:
                    what = "an unsatisfiable class"
                else:
                    what = f"a subclass of the unsatisfiable {_short(parent)}"
                text = f"{_short(individual)} is in {_short(cls)}, {what}"
                removable = {reason[1]} if reason[1] else _statements_of(data, individual)
                clashes.append((Clash("nothing", text, (_statement(reason[0]),)), removable))
        members = sorted(closure, key=str)
        for a, b in itertools.combinations(members, 2):
            if frozenset((a, b)) not in disjoint:
                continue
            (cls_a, reason_a), (cls_b, reason_b) = closure[a], closure[b]
            if cls_a in empty or cls_b in empty:
                continue  # reported above as membership of an unsatisfiable class
            text = (
                f"{_short(individual)} is both {_short(a)} (as {_short(cls_a)}) and "
                f"{_short(b)} (as {_short(cls_b)}), which are disjoint"
            )
            statements = tuple(
                dict.fromkeys(
                    (
                        _statement(reason_a[0]),
                        _statement(reason_b[0]),
                        (_short(a), "owl:disjointWith", _short(b)),
                    )
                )
            )
            removable = {r for r in (reason_a[1], reason_b[1]) if r} or _statements_of(
                data, individual
            )
            clashes.append((Clash("disjoint", text, statements), removable))
    return clashes


def _statements_of(data: rdflib.Graph, individual: rdflib.term.Node) -> set[tuple]:
    return set(data.triples((individual, None, None))) | set(data.triples((None, None, individual)))


# --- step 2: searching the individuals --------------------------------------------------------


def _search_individuals(
    runner: _Reasoner, base: rdflib.Graph, data: rdflib.Graph, budget: int
) -> Clash | None:
    """The fewest individuals whose statements clash with ``base``, within ``budget`` runs."""
    groups: dict = {}
    for triple in data:
        groups.setdefault(triple[0], set()).add(triple)
    remaining = sorted(groups, key=str)
    found: list = []
    limit = runner.runs + budget

    def clashes(keys: list) -> bool:
        chosen = [t for key in keys for t in groups[key]]
        return not runner.consistent(_union(base, chosen))

    while runner.runs < limit:
        if found and clashes(found):
            triples = sorted((t for key in found for t in groups[key]), key=str)
            triples = _fewest(runner, base, triples, limit) or triples
            names = ", ".join(_short(key) for key in found)
            text = (
                f"these statements about {names} are inconsistent with the ontology together "
                "(found by removing statements until the reasoner agrees)"
            )
            return Clash("individuals", text, tuple(_statement(t) for t in triples))
        if not remaining:
            return None
        low, high = 1, len(remaining)
        if not clashes(found + remaining):
            return None
        while low < high and runner.runs < limit:
            middle = (low + high) // 2
            if clashes(found + remaining[:middle]):
                high = middle
            else:
                low = middle + 1
        found.append(remaining[low - 1])
        remaining = remaining[: low - 1]
    return None


def _fewest(runner: _Reasoner, base: rdflib.Graph, triples: list, limit: int) -> list | None:
    """A smallest subset of ``triples`` still inconsistent with ``base`` (None: no budget)."""
    found: list = []
    remaining = list(triples)
    while runner.runs < limit:
        if found and not runner.consistent(_union(base, found)):
            return found
        if not remaining or runner.consistent(_union(base, found + remaining)):
            return None
        low, high = 1, len(remaining)
        while low < high:
            if runner.runs >= limit:
                return None
            middle = (low + high) // 2
            if runner.consistent(_union(base, found + remaining[:middle])):
                low = middle + 1
            else:
                high = middle
        found.append(remaining[low - 1])
        remaining = remaining[: low - 1]
    return None


# --- step 3: why a class is empty -------------------------------------------------------------


def _why_empty(tbox: rdflib.Graph, iri: str) -> EmptyClass:
    cls = rdflib.URIRef(iri)
    closure = _superclasses(tbox, cls)
    if OWL.Nothing in closure:
        return EmptyClass(iri, f"{_short(cls)} is a subclass of owl:Nothing", ())
    for a, b in sorted(tuple(sorted(pair)) for pair in _disjoint_pairs(tbox)):
        if a in closure and b in closure:
            axioms = (
                f"{_short(cls)} ⊑ {_short(a)}",
                f"{_short(cls)} ⊑ {_short(b)}",
                f"{_short(a)} owl:disjointWith {_short(b)}",
            )
            return EmptyClass(
                iri,
                f"it is a subclass of both {_short(a)} and {_short(b)}, which are disjoint",
                axioms,
            )
    told = tuple(
        f"{_short(cls)} {_short(p)} {_short(o)}"
        for p, o in tbox.predicate_objects(cls)
        if p in (RDFS.subClassOf, OWL.equivalentClass, OWL.disjointWith)
    )
    return EmptyClass(
        iri, "the reasoner finds it empty; its told axioms are listed (no finer cause found)", told
    )


def rdflib_graph(ntriples: bytes | Iterable[bytes]) -> rdflib.Graph:
    """An rdflib graph from N-Triples bytes (how the store's graphs reach owlready2)."""
    graph = rdflib.Graph()
    chunks = [ntriples] if isinstance(ntriples, bytes) else list(ntriples)
    for chunk in chunks:
        if chunk:
            graph.parse(data=chunk, format="nt")
    return graph
