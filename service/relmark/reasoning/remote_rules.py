"""The rule engine on a remote SPARQL store: the engine evaluates every rule, round by round.

The embedded engine (``rules.materialise``) copies the rule inputs into memory; on a remote
store that would pull the whole data set into this process. Here the server does the
evaluation:

1. each round, every rule that may have something new to conclude is evaluated by the
   server as its SELECT (``rules.evaluate``, the very function the embedded engine uses:
   the rule's WHERE without its FILTER NOT EXISTS, whose guards are then asked in batches of
   1,000 solutions), over the input graphs (each fact once: ``_distinct_inputs``) plus
   a staging graph; new conclusions that no input graph asserts are posted to the
   staging graph, so the next round sees them
   (``rules.fixpoint``, shared with the embedded engine);
2. the provenance records are made from the derivations of the last round by the functions
   the embedded engine uses, so both back ends record identical provenance and
   ``explain.py`` answers identically;
3. only when something changed, ``urn:relmark:inferred`` and ``urn:relmark:provenance``
   are brought to the run's content (``_write``): on a first run the provenance is posted
   into its empty graph and the staged inferences moved into place; afterwards only the
   difference is posted and applied, in one update.

Why not one ``INSERT … WHERE`` per rule, which would keep the solutions on the server:
Oxigraph's server evaluates a FILTER NOT EXISTS per row over the whole store, which makes
a guarded rule quadratic in the size of the data; and the derivations would have to be
read back with these same SELECTs for the provenance anyway. The staging graphs are
dropped whatever happens.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping

import pyoxigraph as ox

from relmark.reasoning.rules import fixpoint as engine
from relmark.reasoning.rules import provenance as records
from relmark.reasoning.rules.evaluate import Query
from relmark.reasoning.rules.inputs import NOT_RULE_INPUT, stored_lines
from relmark.reasoning.rules.materialise import ONE_RUN_AT_A_TIME, RunSummary, full_run_delta
from relmark.reasoning.rules.model import Rule, Value
from relmark.stores.base import STAGING_PREFIX, EvaluatesRemotely, StoreError, asked, selected
from relmark.vocab import INFERRED_GRAPH, PROVENANCE_GRAPH

#: Premises looked up per query when finding the graphs that hold them.
LOCATE_BATCH = 200


def _query_on(store: EvaluatesRemotely, graphs: list[str]) -> Query:
    """The ``Query`` that ``rules.evaluate`` runs on: the engine, over exactly ``graphs``.

    (In the embedded engine it is the in-memory workspace's union of the rule inputs and
    what was inferred so far; here a default graph merged from the same graphs.)
    """

    dataset: list[str | None] = list(graphs)

    def query(sparql: str, bound: Mapping[ox.Variable, Value]) -> ox.QuerySolutions:
        values = {k.value: v for k, v in bound.items()}
        return selected(
            store.query(
                sparql, default_graph=dataset, named_graphs=[], substitutions=values or None
            )
        )

    return query


def materialise(store: EvaluatesRemotely, rules: list[Rule]) -> RunSummary:
    """Infer everything the rules allow on the remote store, with provenance."""
    with ONE_RUN_AT_A_TIME:
        started = time.perf_counter()
        store.forget_graphs()  # the run reads every graph as the engine has it now
        run = uuid.uuid4().hex
        staging = f"{STAGING_PREFIX}{run}:inferred"
        default_copy = f"{STAGING_PREFIX}{run}:default"
        provenance_graph = f"{STAGING_PREFIX}{run}:provenance"
        facts = f"{STAGING_PREFIX}{run}:facts"
        try:
            inputs = _inputs(store, default_copy)
            read = _distinct_inputs(store, inputs, facts)

            def asserted(candidates: set[ox.Triple]) -> set[ox.Triple]:
                found = _locate(store, candidates, inputs, default_copy)
                return {triple for triple, graphs in found.items() if graphs}

            def add(new: set[ox.Triple]) -> None:
                store.post_lines(staging, (f"{t} ." for t in new))

            query = _query_on(store, [*read, staging])
            rounds, inferred, derivations = engine.fixpoint(rules, query, asserted, add)
            derivations = engine.keep_inferred(derivations, inferred)
            premises = {p for d in derivations for p in d.premises}
            locations = _locate(store, premises, inputs, default_copy)
            provenance = records.provenance_graph(rules, derivations, locations)
            old_inferred = {_triple(q) for q in store.triples(INFERRED_GRAPH)}
            written = _write(store, staging, provenance_graph, inferred, provenance, old_inferred)
        finally:
            store.drop_staging([staging, default_copy, provenance_graph, facts])
        summary = RunSummary.of_run(
            rules, rounds, inferred, derivations, provenance, written, started
        )
        summary.delta = full_run_delta(derivations, inferred, old_inferred)
        return summary


def _inputs(store: EvaluatesRemotely, default_copy: str) -> list[str]:
    """The rule input graphs; an engine's own default graph is copied to a named one first.

    (``USING`` and ``default-graph-uri`` can only name graphs by IRI.)
    """
    graphs = [g for g in store.graph_names() if g not in NOT_RULE_INPUT]
    default = store.engine_graph(None)
    if default is None:
        if asked(store.query("ASK { ?s ?p ?o }", default_graph=[None])):
            store.update(f"ADD SILENT DEFAULT TO <{default_copy}>", system=True)
            graphs.append(default_copy)
    else:
        graphs.append(default)
    return graphs


def _distinct_inputs(store: EvaluatesRemotely, inputs: list[str], facts: str) -> list[str]:
    """The graphs the rules read: ``inputs``, or, when two of them state a fact in common,
    one staging graph holding each of their facts once.

    A default graph merged from several graphs is read by the servers as the sum of its
    graphs (Oxigraph finds a fact once per graph stating it), so a rule of k patterns over
    facts held in N graphs found N^k solutions per conclusion. A graph is a set: adding
    every input graph to one keeps each fact once. The copy is a transactional copy of the
    inputs on the server, made only when some fact is shared (found by one counting query).
    """
    if len(inputs) < 2:
        return inputs
    counts = store.query(_COUNT_FACTS, default_graph=[], named_graphs=inputs)
    counted = next(iter(selected(counts)), None)
    if counted is None or counted["all"] is None:
        return inputs
    if int(counted["all"].value) <= int(counted["distinct"].value):
        return inputs
    store.update(" ;\n".join(f"ADD SILENT <{g}> TO <{facts}>" for g in inputs), system=True)
    return [facts]


#: Every input fact counted once per graph stating it (?all) and once (?distinct).
_COUNT_FACTS = (
    "SELECT (COUNT(*) AS ?distinct) (SUM(?copies) AS ?all) {"
    " SELECT ?s ?p ?o (COUNT(*) AS ?copies) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?s ?p ?o }"
)


def _locate(
    store: EvaluatesRemotely, premises: Iterable[ox.Triple], inputs: list[str], default_copy: str
) -> dict[ox.Triple, list[str | None]]:
    """For each premise, the input graphs holding it (None = the default graph)."""
    default = store.engine_graph(None) or default_copy
    wanted = set(premises)
    found: dict[ox.Triple, set[str | None]] = {}
    keys = sorted({(t.subject, t.predicate) for t in wanted}, key=str)
    for start in range(0, len(keys), LOCATE_BATCH):
        # Objects are matched here, not in the query: Virtuoso does not find a literal
        # such as "false"^^xsd:boolean when it is bound by VALUES.
        rows = " ".join(f"({s} {p})" for s, p in keys[start : start + LOCATE_BATCH])
        query = (
            f"SELECT ?s ?p ?o ?g WHERE {{ VALUES (?s ?p) {{ {rows} }} GRAPH ?g {{ ?s ?p ?o }} }}"
        )
        for solution in selected(store.query(query, default_graph=[], named_graphs=inputs)):
            triple = ox.Triple(solution["s"], solution["p"], solution["o"])
            if triple in wanted:
                graph = solution["g"].value
                found.setdefault(triple, set()).add(None if graph == default else graph)
    ordered = sorted(wanted, key=str)
    return {
        premise: sorted(found.get(premise, set()), key=lambda g: g or "") for premise in ordered
    }


def _write(
    store: EvaluatesRemotely,
    staging: str,
    provenance_graph: str,
    inferred: set[ox.Triple],
    provenance: set[str],
    old_inferred: set[ox.Triple],
) -> tuple[int, int, bool]:
    """Bring the inferred and provenance graphs to the run's content, in one update.

    ``provenance`` is N-Triples lines, as ``provenance.provenance_graph`` makes them.
    Nothing is written when nothing changed; a first run is ``_first_write``; otherwise only
    the difference travels: what is new and what is gone are each posted to a staging graph
    and one update removes and adds them (a re-run after a change writes a few triples, not
    the millions of a ``MOVE``, which Oxigraph's server copies at ~6,500 triples/s in one
    transaction).
    """
    old_lines = stored_lines(store, PROVENANCE_GRAPH)
    if old_inferred == inferred and old_lines == provenance:
        return 0, 0, False
    new_inferred, gone_inferred = inferred - old_inferred, old_inferred - inferred
    changes = {  # per graph: the N-Triples lines to add, and those to remove
        INFERRED_GRAPH: ({f"{t} ." for t in new_inferred}, {f"{t} ." for t in gone_inferred}),
        PROVENANCE_GRAPH: (provenance - old_lines, old_lines - provenance),
    }
    if not old_inferred and not old_lines:
        _first_write(store, staging, inferred, provenance)
        return len(inferred), 0, True
    if any("_:" in line for _, gone in changes.values() for line in gone):
        # blank nodes to remove (posted, they would be new nodes that match nothing): the
        # staged graphs replace the stored ones
        _post_lines(store, provenance_graph, provenance)
        operations = []
        for source, target, content in (
            (staging, INFERRED_GRAPH, inferred),
            (provenance_graph, PROVENANCE_GRAPH, provenance),
        ):
            if content:
                operations.append(f"MOVE SILENT <{source}> TO <{target}>")
            else:
                operations.append(f"DROP SILENT GRAPH <{target}>")
        store.update(" ;\n".join(operations), system=True)
        return len(new_inferred), len(gone_inferred), True
    operations = []
    parts: list[str] = []
    try:
        for target, (new, gone) in changes.items():
            plus, minus = f"{provenance_graph}:{len(parts)}+", f"{provenance_graph}:{len(parts)}-"
            parts += [plus, minus]
            _post_lines(store, plus, new)
            _post_lines(store, minus, gone)
            if gone:
                operations.append(
                    f"DELETE {{ GRAPH <{target}> {{ ?s ?p ?o }} }} "
                    f"WHERE {{ GRAPH <{minus}> {{ ?s ?p ?o }} }}"
                )
            if new:
                operations.append(f"ADD SILENT <{plus}> TO <{target}>")
        store.update(" ;\n".join(operations), system=True)
    finally:
        store.drop_staging(parts)
    return len(new_inferred), len(gone_inferred), True


def _first_write(
    store: EvaluatesRemotely, staging: str, inferred: set[ox.Triple], provenance: set[str]
) -> None:
    """The first run's graphs: provenance posted straight into its empty graph, then the
    inferred triples moved into place in one update.

    Nothing reads a provenance record whose conclusion is not inferred, so the provenance
    graph may fill before the inferred one appears; moving it too would cost a transactional
    copy of millions of triples, most of a first run's time on a large store. If the
    run fails in between, the provenance graph is emptied again; after a crash there, the
    next start re-runs (no fingerprint was stored) and writes the difference.
    """
    try:
        _post_lines(store, PROVENANCE_GRAPH, provenance)
        if inferred:
            store.update(f"MOVE SILENT <{staging}> TO <{INFERRED_GRAPH}>", system=True)
    except BaseException:
        with contextlib.suppress(StoreError):
            store.update(f"DROP SILENT GRAPH <{PROVENANCE_GRAPH}>", system=True)
        raise


def _post_lines(store: EvaluatesRemotely, graph: str, lines: Iterable[str]) -> None:
    """N-Triples lines to a staging graph, in a stable order."""
    store.post_lines(graph, sorted(lines))


def _triple(quad: ox.Quad) -> ox.Triple:
    return ox.Triple(quad.subject, quad.predicate, quad.object)


__all__ = ["materialise"]
