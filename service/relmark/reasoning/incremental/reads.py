"""The store reads of one update: each distinct query once per round, many triples per query.

Most of an update's time goes to query overhead (parsing and planning), not to the
answers, so within a round (the store does not change until its write) each distinct
query runs once: the guard several ladder rules share (no referral between this customer
and this firm) is asked once, and the reaching chains that the patterns of many rules
have in common are followed once. What is asked about many triples (where each is
stated, what used it) is one query with a VALUES table, not one query per triple.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence

import pyoxigraph as ox

from relmark.reasoning.incremental.rule_index import (
    UNREAD_KNOWN,
    RuleIndex,
    fill_focus_slot,
    shared_terms,
)
from relmark.reasoning.rules.evaluate import bind_values, values_table
from relmark.reasoning.rules.inputs import (
    NOT_RULE_INPUT,
    SHARED_FACTS,
    distinct_workspace,
    shares_facts,
)
from relmark.reasoning.rules.model import VALUES_SLOT, Value
from relmark.stores.base import Store, asked, selected
from relmark.vocab import INFERRED_GRAPH

#: A changed triple, the graph it changed in, and whether it was removed (else added).
Located = tuple[ox.Triple, str | None, bool]

#: A rule (by name) and a resource its conclusions are about.
Focus = tuple[str, ox.NamedNode | ox.BlankNode | ox.Triple]

#: Rows per VALUES table (one query each).
TABLE_ROWS = 500


#: Run with the default graph alone as default: ?g unbound there, else the named graph.
_HELD = f"SELECT ?i ?g WHERE {{{VALUES_SLOT}{{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }} }}"


class _Rows(list[ox.QuerySolution]):
    """A query's solutions kept for the rest of a round: a list that still has ``variables``."""

    def __init__(self, solutions: ox.QuerySolutions) -> None:
        super().__init__(solutions)
        self.variables = solutions.variables


class Reads:
    """The rule inputs of one store, and the queries of one update over them."""

    def __init__(self, store: Store, index: RuleIndex) -> None:
        self.store = store
        self.inputs: list[str | None] = [None]
        self.inputs += [g for g in store.graph_names() if g not in NOT_RULE_INPUT]
        self.readable = [*self.inputs, INFERRED_GRAPH]
        self.memo: dict[tuple[str, tuple[tuple[ox.Variable, Value], ...]], _Rows] = {}
        #: Constant predicates and classes some graph the rules do not read also holds.
        self.shared = shared_terms(store, index) if UNREAD_KNOWN else None
        self.union_templates = index.union_templates(self.shared)
        #: Where the rules are evaluated when input graphs share facts (``use_workspace``).
        self.work: ox.Store | None = None

    def new_round(self) -> None:
        """Forget the last round's answers: its write changed the store."""
        self.memo = {}

    def overlapping(self, changed: list[Located]) -> bool:
        """Whether some fact is stated in more than one input graph (then the rules' queries
        over the union of the graphs would find one solution per copy of each premise).

        Found by a full run (``rules.inputs.SHARED_FACTS``) or, once per store object,
        counted (``shares_facts``, one query); then kept up to date from the writes:
        an added triple stated elsewhere too makes it true; while it is true, a removal has
        it counted again, so it turns false once the copies are gone. (A wrong answer costs
        time, never correctness: either way the rules find the same solutions.)
        """
        known = SHARED_FACTS.get(self.store)
        if known is False:
            added = [t for t, graph, gone in changed if not gone and graph != INFERRED_GRAPH]
            where, _ = self.locate_all(added) if added else ({}, set())
            known = any(len(graphs) > 1 for graphs in where.values())
        elif known is None or any(gone for _, _, gone in changed):
            known = shares_facts(self.store, self.inputs)  # (adding cannot end a sharing)
        SHARED_FACTS[self.store] = known
        return known

    def use_workspace(self) -> None:
        """Evaluate the rules of this update over an in-memory copy holding each fact once
        (``rules.inputs.distinct_workspace``, as a full run does) and the inferences, kept
        in step with every round's write.

        On the store itself a rule of k patterns over facts held in N graphs finds N^k
        solutions per conclusion (in pyoxigraph's joins, DISTINCT or not). Copying the
        inputs costs what a full run's copy does; it is paid only while some fact is
        stated twice.
        """
        self.work = distinct_workspace(self.store, with_inferred=True)

    def query(
        self, sparql: str, bound: Mapping[ox.Variable, Value], union: bool | None = None
    ) -> _Rows:
        """A SELECT over the rule inputs, answered once per round for the same text and values.

        ``union``: whether no graph but the rule inputs can match its patterns, so it may
        read the union of all graphs (one index, where a list of graphs takes one per
        graph); by default, whether it is such a query of a rule.
        """
        key = (_canonical(sparql), tuple(sorted(bound.items(), key=lambda item: item[0].value)))
        if key in self.memo:
            return self.memo[key]
        if union is None:
            union = sparql in self.union_templates
        sparql = fill_focus_slot(sparql, bound)
        sparql, rest = bind_values(sparql, bound)
        if self.work is not None:  # the distinct facts and the inferences (``use_workspace``)
            result = self.work.query(sparql, use_default_graph_as_union=True, substitutions=rest)
        else:
            result = self.store.query(
                sparql,
                default_graph=None if union else self.readable,
                substitutions={v.value: t for v, t in rest.items()},
            )
        rows = self.memo[key] = _Rows(selected(result))
        return rows
        return result

    def rows(
        self,
        sparql: str,
        names: str,
        table: Sequence[tuple[Value, ...]],
        graphs: list[str | None] | None,
    ) -> list[ox.QuerySolution]:
        """``sparql`` with ``VALUES (names) { table }`` at its slot (IRIs and literals only).

        ``graphs`` None: the union default graph (and GRAPH ?g over every named graph).
        """
        found: list[ox.QuerySolution] = []
        for start in range(0, len(table), TABLE_ROWS):
            values = "\n" + values_table(names, table[start : start + TABLE_ROWS]) + "\n"
            found += selected(
                self.store.query(sparql.replace(VALUES_SLOT, values, 1), default_graph=graphs)
            )
        return found

    def locate_all(
        self, triples: Iterable[ox.Triple]
    ) -> tuple[dict[ox.Triple, list[str | None]], set[ox.Triple]]:
        """For each triple the input graphs holding it ([] if only inferred, or nowhere), and
        those the inferred graph holds: one query for all."""
        triples = list(dict.fromkeys(triples))
        table = [t for t in triples if inline(t)]
        where: dict[ox.Triple, list[str | None]] = {t: [] for t in triples}
        inferred: set[ox.Triple] = set()
        rows = [(ox.Literal(i), t.subject, t.predicate, t.object) for i, t in enumerate(table)]
        inputs = set(self.inputs[1:])
        named: dict[ox.Triple, set[str]] = {}
        for s in self.rows(_HELD, "?i ?s ?p ?o", rows, [None]):
            triple = table[int(s["i"].value)]
            graph = s["g"]
            if graph is None:
                where[triple].append(None)
            elif graph.value == INFERRED_GRAPH:
                inferred.add(triple)
            elif graph.value in inputs:
                named.setdefault(triple, set()).add(graph.value)
        for triple, graphs in named.items():
            where[triple] += sorted(graphs)
        for triple in triples:
            if not inline(triple):  # a blank node: VALUES cannot hold it
                where[triple] = self.locate(triple)
                terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
                ask = "ASK { ?s ?p ?o }"
                if asked(
                    self.store.query(ask, default_graph=[INFERRED_GRAPH], substitutions=terms)
                ):
                    inferred.add(triple)
        return where, inferred

    def locate(self, triple: ox.Triple) -> list[str | None]:
        """The input graphs holding ``triple``; [] if only inferred (or nowhere)."""
        terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
        found: list[str | None] = []
        if asked(self.store.query("ASK { ?s ?p ?o }", default_graph=[None], substitutions=terms)):
            found.append(None)
        holding = self.store.query(
            "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }", substitutions=terms
        )
        named = {s["g"].value for s in selected(holding)} & set(self.inputs[1:])
        return found + sorted(named)

    def follow_write(self, added: list[ox.Triple], removed: list[ox.Triple]) -> None:
        """Keep the workspace's inferences in step with a round's write (the next round
        reads them)."""
        if self.work is None:
            return
        node = ox.NamedNode(INFERRED_GRAPH)
        for triple in removed:
            self.work.remove(ox.Quad(triple.subject, triple.predicate, triple.object, node))
        self.work.extend(ox.Quad(t.subject, t.predicate, t.object, node) for t in added)


@functools.lru_cache(maxsize=4096)
def _canonical(sparql: str) -> str:
    """A query's text without comment lines and, where that is safe, runs of white space.

    Two rules' copies of one guard differ only there (and in their headers): the same key
    lets a round ask it once.
    """
    if '"""' in sparql or "'''" in sparql:
        return sparql
    lines = [line for line in sparql.splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    if '"' in text or "'" in text or "#" in re.sub(r"<[^<>\s]*>", "", text):
        return text  # a literal, or a comment after a pattern: white space may matter
    return " ".join(text.split())


def inline(item: object) -> bool:
    """Whether a term (or each term of a triple) can be written into a VALUES table."""
    if isinstance(item, ox.Triple):
        return all(inline(t) for t in (item.subject, item.predicate, item.object))
    return isinstance(item, ox.NamedNode | ox.Literal)
