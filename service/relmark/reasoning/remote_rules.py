"""The rule engine on a remote SPARQL store: each rule as ``INSERT … WHERE``, to a fixpoint.

The embedded engine (``rules.materialise``) copies the rule inputs into memory; on a remote
store that would pull the whole data set into this process. Here the engine does the work:

1. every rule runs as one SPARQL Update, ``INSERT { GRAPH <staging> { template } }
   USING <input graphs> USING <staging> WHERE { the rule's WHERE }``, round after round
   until the staging graph stops growing (the fixpoint);
2. conclusions that some input graph asserts are deleted from staging (the embedded
   engine never counts them as inferred either);
3. the derivations (bindings and premises) are read back with the rules' own SELECTs,
   evaluated by the engine over the same dataset, and turned into provenance records by
   the very functions the embedded engine uses (``rules.evaluate``, ``provenance_graph``),
   so both back ends record identical provenance and ``explain.py`` answers identically;
4. the staging graphs are moved into ``urn:relmark:inferred`` and
   ``urn:relmark:provenance`` with one update (``MOVE``), only when something changed.

The staging graphs are dropped whatever happens. Derivations are read per rule (and per
group for rules with aggregating sub-selects), so reading them costs round trips in
proportion to the conclusions, not to the data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping

import pyoxigraph as ox

from relmark.reasoning import provenance as records
from relmark.reasoning import rules as engine
from relmark.reasoning.rules import NOT_RULE_INPUT, Rule, RunSummary, stored_lines
from relmark.remote_store import CHUNK_TRIPLES, STAGING_PREFIX, RemoteStore
from relmark.store import INFERRED_GRAPH, PROVENANCE_GRAPH, StoreError

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#: Premises looked up per query when finding the graphs that hold them.
LOCATE_BATCH = 200
#: A guard against a rule set that never settles (each round must add a triple).
MAX_ROUNDS = 1000


def _query_on(store: RemoteStore, graphs: list[str]) -> engine.Query:
    """The ``Query`` that ``rules.evaluate`` runs on: the engine, over exactly ``graphs``.

    (In the embedded engine it is the in-memory workspace's union of the rule inputs and
    what was inferred so far; here a default graph merged from the same graphs.)
    """

    def query(sparql: str, bound: Mapping[ox.Variable, object]) -> object:
        values = {k.value: v for k, v in bound.items()}
        return store.query(
            sparql, default_graph=graphs, named_graphs=[], substitutions=values or None
        )

    return query


def materialise(store: RemoteStore, rules: list[Rule]) -> RunSummary:
    """Infer everything the rules allow on the remote store, with provenance."""
    with engine.ONE_RUN_AT_A_TIME:
        started = time.perf_counter()
        run = uuid.uuid4().hex
        staging = f"{STAGING_PREFIX}{run}:inferred"
        default_copy = f"{STAGING_PREFIX}{run}:default"
        provenance_graph = f"{STAGING_PREFIX}{run}:provenance"
        try:
            inputs = _inputs(store, default_copy)
            rounds = _fixpoint(store, rules, inputs, staging)
            _drop_asserted(store, inputs, staging)
            inferred = {_triple(q) for q in store.triples(staging)}
            query = _query_on(store, [*inputs, staging])
            derivations = [d for rule in rules for d in engine.evaluate(query, rule)]
            engine._check_supported(inferred, derivations)
            derivations = engine.keep_inferred(derivations, inferred)
            premises = {p for d in derivations for p in d.premises}
            locations = _locate(store, premises, inputs, default_copy)
            provenance = records.provenance_graph(rules, derivations, locations)
            written = _write(store, staging, provenance_graph, inferred, provenance)
        finally:
            store._drop_staging([staging, default_copy, provenance_graph])
        return RunSummary.of_run(rules, rounds, inferred, derivations, provenance, written, started)


def _inputs(store: RemoteStore, default_copy: str) -> list[str]:
    """The rule input graphs; an engine's own default graph is copied to a named one first.

    (``USING`` and ``default-graph-uri`` can only name graphs by IRI.)
    """
    graphs = [g for g in store.graph_names() if g not in NOT_RULE_INPUT]
    default = store._graph_iri(None)
    if default is None:
        if store.query("ASK { ?s ?p ?o }", default_graph=[None]):
            store.update(f"ADD SILENT DEFAULT TO <{default_copy}>")
            graphs.append(default_copy)
    else:
        graphs.append(default)
    return graphs


def _insert_text(rule: Rule, inputs: list[str], staging: str) -> str:
    """The rule as ``INSERT { GRAPH <staging> { template } } USING … WHERE { … }``."""
    # select_sparql is the rule's text with CONSTRUCT { … } replaced by SELECT *
    shared = next(
        (
            n
            for n, (a, b) in enumerate(zip(rule.sparql, rule.select_sparql, strict=False))
            if a != b
        ),
        min(len(rule.sparql), len(rule.select_sparql)),
    )
    prologue = rule.select_sparql[:shared]
    rest = rule.select_sparql[len(prologue) :]
    if not rest.startswith("SELECT *"):
        raise StoreError(f"rule {rule.name}: cannot find its WHERE in {rule.path}")
    template = " .\n".join(
        " ".join(str(term) for term in (p.subject, p.predicate, p.object)) for p in rule.conclusions
    )
    using = "".join(f"USING <{graph}>\n" for graph in [*inputs, staging])
    return f"{prologue}INSERT {{ GRAPH <{staging}> {{\n{template} .\n}} }}\n{using}{rest[8:]}"


#: What a triple pattern reads: ``(predicate, class)`` for ``?x a rm:C``, ``(predicate,
#: None)`` otherwise; ``None`` when its predicate is a variable (it may read anything).
Signature = tuple[str, str | None]


def _reads(rule: Rule) -> set[Signature] | None:
    """The kinds of triples a rule's patterns (guards and sub-selects included) can match."""
    patterns = list(rule.premises)
    for subselect in rule.subselects:
        patterns += subselect.patterns
    for guard in rule.guards:
        patterns += guard.patterns
    reads: set[Signature] = set()
    for pattern in patterns:
        if not isinstance(pattern.predicate, ox.NamedNode):
            return None
        predicate = pattern.predicate.value
        if predicate == RDF_TYPE and isinstance(pattern.object, ox.NamedNode):
            reads.add((predicate, pattern.object.value))
        else:
            reads.add((predicate, None))
    return reads


def _affected(reads: set[Signature] | None, changed: set[Signature]) -> bool:
    if reads is None:
        return True
    return any(signature in reads or (signature[0], None) in reads for signature in changed)


def _signatures(store: RemoteStore, staging: str) -> dict[Signature, int]:
    """How many triples of each kind the rules have inferred so far."""
    query = (
        f"SELECT ?p ?c (COUNT(*) AS ?n) WHERE {{ GRAPH <{staging}> {{ ?s ?p ?o }} "
        f"BIND (IF(?p = <{RDF_TYPE}>, ?o, ?p) AS ?c) }} GROUP BY ?p ?c"
    )
    counts = {}
    for row in store.query(query, default_graph=[], named_graphs=[staging]):
        predicate = row["p"].value
        kind = row["c"].value if predicate == RDF_TYPE else None
        counts[(predicate, kind)] = int(row["n"].value)
    return counts


def _fixpoint(store: RemoteStore, rules: list[Rule], inputs: list[str], staging: str) -> int:
    """Apply the rules round after round until nothing new is inferred; the rounds.

    Semi-naive by kind of triple: after the first round, a rule runs again only when a
    kind of triple its patterns read (a predicate, or rdf:type with a given class) grew
    in the round before. (Its NOT EXISTS guards are included: a rule whose guard reads a
    conclusion is refused at the end by ``_check_supported`` anyway.)
    """
    updates = [(_reads(rule), _insert_text(rule, inputs, staging)) for rule in rules]
    counts: dict[Signature, int] = {}
    changed: set[Signature] | None = None  # None: the first round runs every rule
    rounds = 0
    while True:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise StoreError(f"the rules did not reach a fixpoint in {MAX_ROUNDS} rounds")
        for reads, update in updates:
            if changed is None or _affected(reads, changed):
                store.update(update)
        grown = _signatures(store, staging)
        changed = {k for k, n in grown.items() if counts.get(k) != n}
        if not changed:
            return rounds
        counts = grown


def _drop_asserted(store: RemoteStore, inputs: list[str], staging: str) -> None:
    """Conclusions an input graph asserts are not inferences (as in the embedded engine)."""
    for graph in inputs:
        store.update(
            f"DELETE {{ GRAPH <{staging}> {{ ?s ?p ?o }} }} "
            f"WHERE {{ GRAPH <{staging}> {{ ?s ?p ?o }} GRAPH <{graph}> {{ ?s ?p ?o }} }}"
        )


def _locate(
    store: RemoteStore, premises: Iterable[ox.Triple], inputs: list[str], default_copy: str
) -> dict[ox.Triple, list[str | None]]:
    """For each premise, the input graphs holding it (None = the default graph)."""
    default = store._graph_iri(None) or default_copy
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
        for solution in store.query(query, default_graph=[], named_graphs=inputs):
            triple = ox.Triple(solution["s"], solution["p"], solution["o"])
            if triple in wanted:
                graph = solution["g"].value
                found.setdefault(triple, set()).add(None if graph == default else graph)
    ordered = sorted(wanted, key=str)
    return {
        premise: sorted(found.get(premise, set()), key=lambda g: g or "") for premise in ordered
    }


def _write(
    store: RemoteStore,
    staging: str,
    provenance_graph: str,
    inferred: set[ox.Triple],
    provenance: set[str],
) -> tuple[int, int, bool]:
    """Move the staged graphs into place in one update, only if they changed.

    ``provenance`` is N-Triples lines, as ``provenance.provenance_graph`` makes them.
    """
    old_inferred = {_triple(q) for q in store.triples(INFERRED_GRAPH)}
    if old_inferred == inferred and stored_lines(store, PROVENANCE_GRAPH) == provenance:
        return 0, 0, False
    ordered = sorted(provenance)
    for start in range(0, len(ordered), CHUNK_TRIPLES):
        chunk = ordered[start : start + CHUNK_TRIPLES]
        store._post_graph(provenance_graph, ("\n".join(chunk) + "\n").encode("utf-8"))
    operations = []
    for source, target, triples in (
        (staging, INFERRED_GRAPH, inferred),
        (provenance_graph, PROVENANCE_GRAPH, provenance),
    ):
        if triples:
            operations.append(f"MOVE SILENT <{source}> TO <{target}>")
        else:
            operations.append(f"DROP SILENT GRAPH <{target}>")
    store.update(" ;\n".join(operations))
    return len(inferred - old_inferred), len(old_inferred - inferred), True


def _triple(quad: ox.Quad) -> ox.Triple:
    return ox.Triple(quad.subject, quad.predicate, quad.object)


__all__ = ["materialise"]
