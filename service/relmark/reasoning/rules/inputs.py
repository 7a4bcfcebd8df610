"""The facts the rules read: which graphs, each fact once, and where each one is stated.

The rules see facts, not where they were stated; the provenance says where. Full runs,
incremental updates and why-not answers all read the inputs through these functions.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable

import pyoxigraph as ox

from relmark.stores.base import GraphBytes, Store, asked, selected
from relmark.vocab import (
    HISTORY_GRAPH,
    INFERRED_GRAPH,
    META_GRAPH,
    PROVENANCE_GRAPH,
    SHAPES_GRAPH,
)

#: Graphs the rules never read: their own output, the shapes, bookkeeping.
NOT_RULE_INPUT = frozenset(
    {INFERRED_GRAPH, PROVENANCE_GRAPH, SHAPES_GRAPH, META_GRAPH, HISTORY_GRAPH}
)


INFERRED_NODE = ox.NamedNode(INFERRED_GRAPH)


def rule_inputs(store: Store) -> list[str | None]:
    """The graphs the rules read: the default graph, then every named graph but their own
    output, the shapes and the bookkeeping (in name order)."""
    return [None, *named_inputs(store)]


def named_inputs(store: Store) -> list[str]:
    """The named graphs the rules read (``rule_inputs`` without the default graph)."""
    return [g for g in store.graph_names() if g not in NOT_RULE_INPUT]


def workspace(store: Store) -> ox.Store:
    """An in-memory store holding each fact of the rule inputs once, in its default graph.

    The rules see facts, not where they were stated: with each input graph kept as its
    own graph, a query over their union would find one solution per copy of each premise,
    so a rule of k patterns over facts held in N graphs would make N^k solutions for one
    conclusion, in time and memory. A store is a set, so loading every graph into one default
    graph keeps one copy of each fact. Which graphs hold a premise is looked up once,
    at the end, for the provenance (``locate_facts``).
    """
    work = ox.Store()
    export = store.graph_bytes if isinstance(store, GraphBytes) else None
    stated = 0  # facts counted once per graph stating them
    for graph in rule_inputs(store):
        if export is None:
            quads = [fact(triple_of(q)) for q in store.triples(graph)]
            stated += len(quads)
            work.bulk_extend(quads)
            continue
        data = export(graph)
        stated += data.count(b"\n")
        if b"_:" in data:
            # blank nodes: keep the store's own identifiers (pyoxigraph's loader renames
            # them per load), so a node named in two graphs stays one node here, and the
            # provenance names the node the store holds
            parsed = ox.parse(data, format=ox.RdfFormat.N_TRIPLES, lenient=True)
            work.bulk_extend(fact(triple_of(q)) for q in parsed)
        else:
            # lenient: pyoxigraph wrote these bytes itself, no need to validate IRIs again
            work.bulk_load(data, format=ox.RdfFormat.N_TRIPLES, lenient=True)
    with contextlib.suppress(TypeError):  # a store that cannot be weakly referenced
        SHARED_FACTS[store] = stated > len(work)
    return work


#: Whether some fact is stated in two input graphs of a store, as last found (by a full
#: run's ``workspace`` for free, or by the incremental engine). Only speed depends on it.
SHARED_FACTS: weakref.WeakKeyDictionary[object, bool] = weakref.WeakKeyDictionary()


def distinct_workspace(store: Store, with_inferred: bool = False) -> ox.Store:
    """``workspace`` for other engines, with the inferred graph as its own graph if asked
    (the incremental engine reads the inferences of the last run, the full run makes its
    own)."""
    work = workspace(store)
    if with_inferred:
        data = store.graph_bytes(INFERRED_GRAPH) if isinstance(store, GraphBytes) else None
        if data is None or b"_:" in data:
            work.bulk_extend(
                ox.Quad(q.subject, q.predicate, q.object, INFERRED_NODE)
                for q in store.triples(INFERRED_GRAPH)
            )
        else:
            work.bulk_load(
                data, format=ox.RdfFormat.N_TRIPLES, to_graph=INFERRED_NODE, lenient=True
            )
    return work


def fact(triple: ox.Triple) -> ox.Quad:
    """A fact as the workspace holds it: in its default graph."""
    return ox.Quad(triple.subject, triple.predicate, triple.object)


def locate_facts(store: Store, facts: Iterable[ox.Triple]) -> dict[ox.Triple, list[str | None]]:
    """For each of ``facts``, every input graph stating it (None: the default graph), in
    the order of ``rule_inputs``; [] for a fact no input graph states (an inferred one).

    One pass over the input graphs, each as the N-Triples pyoxigraph writes in Rust,
    matched line by line against the facts written the same way (``str`` of a pyoxigraph
    term is its N-Triples form; ``stored_lines`` relies on that too): no query per fact,
    and the cost is one read of the inputs whatever number of facts the run used.
    """
    wanted = {f"{t} .".encode(): t for t in facts}
    found: dict[ox.Triple, list[str | None]] = {t: [] for t in wanted.values()}
    if not wanted:
        return found
    export = store.graph_bytes if isinstance(store, GraphBytes) else None
    for graph in rule_inputs(store):
        if export is None:
            for quad in store.triples(graph):
                triple = triple_of(quad)
                if triple in found:
                    found[triple].append(graph)
            continue
        for line in export(graph).split(b"\n"):
            stated = wanted.get(line)
            if stated is not None:
                found[stated].append(graph)
    for triple in [t for t, graphs in found.items() if not graphs]:
        # not written as the serialiser writes it (never seen, but a premise recorded as
        # inferred when it is stated would have no explanation): asked one by one
        found[triple] = _graphs_stating(store, triple)
    return found


def _graphs_stating(store: Store, triple: ox.Triple) -> list[str | None]:
    """The input graphs stating one fact, by query."""
    terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
    inputs = named_inputs(store)
    found: list[str | None] = []
    if asked(store.query("ASK { ?s ?p ?o }", default_graph=[None], substitutions=terms)):
        found.append(None)
    solutions = store.query(
        "SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", named_graphs=inputs, substitutions=terms
    )
    named = {s["g"].value for s in selected(solutions)}
    return found + [g for g in inputs if g in named]


def stored_lines(store: Store, graph: str) -> set[str]:
    """A stored graph as N-Triples lines (serialised in Rust where the store can)."""
    if isinstance(store, GraphBytes):
        return set(filter(None, store.graph_bytes(graph).decode("utf-8").split("\n")))
    return {f"{q.subject} {q.predicate} {q.object} ." for q in store.triples(graph)}


def triple_of(quad: ox.Quad) -> ox.Triple:
    return ox.Triple(quad.subject, quad.predicate, quad.object)


def shares_facts(store: Store, inputs: list[str | None]) -> bool:
    """Whether two of the input graphs state a fact in common: whether counting the facts
    of every input graph finds more than counting each fact once.

    Counted by the store, in one query: cheaper than joining every graph with every other
    in SPARQL, or reading the graphs out.
    """
    named = [g for g in inputs if g is not None]  # the default graph (None) is read anyway
    solutions = store.query(
        _COUNT_FACTS, default_graph=[None], named_graphs=named or ["urn:relmark:none"]
    )
    row = next(iter(selected(solutions)), None)
    if row is None or row["all"] is None:
        return False
    return int(row["all"].value) > int(row["distinct"].value)


#: Every input fact counted once per graph stating it (?all) and once (?distinct).
_COUNT_FACTS = (
    "SELECT (COUNT(*) AS ?distinct) (SUM(?copies) AS ?all) {"
    " SELECT ?s ?p ?o (COUNT(*) AS ?copies) {"
    " { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } } GROUP BY ?s ?p ?o }"
)
