"""The recorded derivations an update replaces: found by focus, by statement, by premise.

The provenance graph is the incremental engine's memory of the last result: which
derivation concluded what from which facts. A round reads the derivations of the (rule,
focus) pairs it re-evaluates, with their stored lines, so that its write changes only the
lines that differ.
"""

from __future__ import annotations

import pyoxigraph as ox

from relmark.reasoning.incremental.reads import TABLE_ROWS, Focus, Located, Reads, inline
from relmark.reasoning.rules.evaluate import bind_values, values_table
from relmark.reasoning.rules.model import VALUES_SLOT, Rule
from relmark.reasoning.rules.provenance import (
    PROV,
    RDF,
    STATEMENT_IRI_PREFIX,
    statement_iri,
)
from relmark.stores.base import selected
from relmark.vocab import INFERRED_GRAPH, PROVENANCE_GRAPH

_PROV = f"PREFIX prov: <{PROV}>\nPREFIX rdf: <{RDF}>\n"


_RECORDS = f"SELECT ?d ?p ?o WHERE {{{VALUES_SLOT}?d ?p ?o }}"


_USERS = _PROV + (
    f"SELECT ?rule ?focus ?statement WHERE {{ {VALUES_SLOT}"
    " ?d prov:used ?statement ; prov:used ?rule ; prov:generated ?c . ?rule a prov:Plan ."
    " ?c rdf:subject ?focus . }"
)


_RECORDED = _PROV + (
    f"SELECT ?d ?p ?o ?rule ?focus WHERE {{ {VALUES_SLOT}"
    " ?c rdf:subject ?focus ; rdf:predicate ?p ; rdf:object ?o ."
    " ?d prov:generated ?c ; prov:used ?rule . }"
)


#: A rule's derivations of a focus, found from their conclusions' statements (?c ?rule)
#: or from the focus (?rule ?focus), with every line of their records (?lp ?lo).
_RECORDED_WITH_LINES = _PROV + (
    "SELECT ?d ?c ?rule ?focus ?p ?o ?lp ?lo WHERE {"
    " { #statements ?d prov:generated ?c ; prov:used ?rule . }"
    " UNION { #foci ?c rdf:subject ?focus ; rdf:predicate ?p ; rdf:object ?o ."
    " ?d prov:generated ?c ; prov:used ?rule . }"
    " ?d ?lp ?lo . }"
)


_GENERATED_BY = _PROV + (
    f"SELECT ?rule ?statement WHERE {{ {VALUES_SLOT}"
    " ?d prov:generated ?statement ; prov:used ?rule . ?rule a prov:Plan . }"
)


class Records:
    """The stored derivations of a rule set, read for one update."""

    def __init__(self, reads: Reads, by_name: dict[str, Rule]) -> None:
        self.reads = reads
        self.store = reads.store
        self.by_name = by_name
        #: The stored lines (predicate, object) of the derivations ``recorded`` found.
        self.records: dict[ox.NamedNode, set[tuple[object, object]]] = {}

    def recorded_users(self, changed: list[Located]) -> set[Focus]:
        """The (rule, focus) of every recorded derivation that used a removed triple.

        An added triple (or one added to another graph) was used by no derivation yet:
        the derivations it now supports, or that now record it in one more graph, are
        the ones its patterns reach.
        """
        statements = sorted({statement_iri(t, g) for t, g, gone in changed if gone}, key=str)
        found = set()
        for solution in self.reads.rows(
            _USERS, "?statement", [(s,) for s in statements], [PROVENANCE_GRAPH]
        ):
            name = solution["rule"].value.rsplit(":", 1)[-1]
            if name in self.by_name:
                found.add((name, solution["focus"]))
        return found

    def recorded(self, foci: set[Focus]) -> dict[Focus, list[tuple[ox.NamedNode, ox.Triple]]]:
        """The recorded derivations of each (rule, focus), each with a conclusion; their
        stored lines are kept for ``write`` (``self.records``).

        Where a rule's conclusions are fixed by its focus (``?relationship a rm:Client``)
        their statement nodes are looked up directly: the statements about a resource
        are many and scattered (their IRIs are digests), so reading them all is a cold
        read of many pages where these are a few.
        """
        found: dict[Focus, set[tuple[ox.NamedNode, ox.Triple]]] = {pair: set() for pair in foci}
        iris = {ox.NamedNode(self.by_name[name].iri): name for name, _ in foci}
        fixed: dict[tuple[ox.NamedNode, ox.NamedNode], tuple[Focus, ox.Triple]]
        fixed = {}
        rest = []
        for name, focus in foci:
            rule = self.by_name[name]
            if inline(focus) and all(
                inline(p.predicate) and inline(p.object) for p in rule.conclusions
            ):
                for pattern in rule.conclusions:
                    predicate, obj = pattern.predicate, pattern.object
                    # constants: inline() held for each, above
                    assert not isinstance(predicate, ox.Variable)
                    assert not isinstance(obj, ox.Variable)
                    triple = ox.Triple(focus, predicate, obj)
                    key = (statement_iri(triple, INFERRED_GRAPH), ox.NamedNode(rule.iri))
                    fixed[key] = ((name, focus), triple)
            elif inline(focus):
                rest.append((ox.NamedNode(rule.iri), focus))
        self.records = {}
        by_statement = sorted(fixed, key=str)
        by_focus = sorted(rest, key=str)
        for start in range(0, max(len(by_statement), len(by_focus)), TABLE_ROWS):
            sparql = _RECORDED_WITH_LINES.replace(
                "#statements", values_table("?c ?rule", by_statement[start : start + TABLE_ROWS])
            ).replace("#foci", values_table("?rule ?focus", by_focus[start : start + TABLE_ROWS]))
            for s in selected(self.store.query(sparql, default_graph=[PROVENANCE_GRAPH])):
                d = s["d"]
                if s["focus"] is None:
                    pair, triple = fixed[(s["c"], s["rule"])]
                else:
                    pair = (iris[s["rule"]], s["focus"])
                    triple = ox.Triple(s["focus"], s["p"], s["o"])
                found[pair].add((d, triple))
                self.records.setdefault(d, set()).add((s["lp"], s["lo"]))
        for name, focus in foci:
            if not inline(focus):  # a blank node: one query of its own
                bound = {
                    ox.Variable("rule"): ox.NamedNode(self.by_name[name].iri),
                    ox.Variable("focus"): focus,
                }
                sparql, unbound = bind_values(_RECORDED, bound)
                for s in selected(
                    self.store.query(
                        sparql,
                        default_graph=[PROVENANCE_GRAPH],
                        substitutions={v.value: t for v, t in unbound.items()},
                    )
                ):
                    found[(name, focus)].add((s["d"], ox.Triple(focus, s["p"], s["o"])))
        return {pair: sorted(records, key=str) for pair, records in found.items()}

    def supported_elsewhere(self, triples: set[ox.Triple], foci: set[Focus]) -> set[ox.Triple]:
        """Those of ``triples`` a recorded derivation of a (rule, focus) not re-evaluated
        in this round still concludes."""
        by_statement = {statement_iri(t, INFERRED_GRAPH): t for t in triples}
        table = sorted(((s,) for s in by_statement), key=str)
        found = set()
        for solution in self.reads.rows(_GENERATED_BY, "?statement", table, [PROVENANCE_GRAPH]):
            triple = by_statement[solution["statement"]]
            name = solution["rule"].value.rsplit(":", 1)[-1]
            if (name, triple.subject) not in foci:
                found.add(triple)
        return found

    def stored_records(self, derivations: set[ox.NamedNode]) -> tuple[set[str] | None, set]:
        """The derivations' stored lines (None if one holds a blank node) and the statement
        nodes they point to."""
        missing = [(d,) for d in sorted(derivations, key=str) if d not in self.records]
        for s in self.reads.rows(_RECORDS, "?d", missing, [PROVENANCE_GRAPH]):
            self.records.setdefault(s["d"], set()).add((s["p"], s["o"]))
        lines: set[str] = set()
        used = set()
        blank = False
        for d in derivations:
            for p, o in self.records.get(d, ()):
                blank = blank or isinstance(o, ox.BlankNode)
                lines.add(f"{d} {p} {o} .")
                if isinstance(o, ox.NamedNode) and o.value.startswith(STATEMENT_IRI_PREFIX):
                    used.add(o)
        return (None if blank else lines), used
