"""A full run: every rule over a copy of the inputs to a fixpoint, then one all-or-none write.

``materialise`` evaluates every rule over the asserted graphs, the ontology, the config and
what the rules inferred so far, until nothing new follows; then it writes the conclusions
to ``urn:relmark:inferred`` and, for every inferred triple, the derivation that concluded
it to ``urn:relmark:provenance`` (``provenance.py``). It recomputes from scratch and
writes only when the result differs; after a write, the incremental engine re-evaluates
only the rules and resources the change can reach, with the same ``evaluate``.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pyoxigraph as ox

from relmark.reasoning.rules.evaluate import bind_values
from relmark.reasoning.rules.fixpoint import fixpoint, keep_inferred
from relmark.reasoning.rules.inputs import (
    INFERRED_NODE,
    fact,
    locate_facts,
    stored_lines,
    triple_of,
    workspace,
)
from relmark.reasoning.rules.model import Rule, Value
from relmark.reasoning.rules.provenance import Derivation, provenance_chunks, provenance_graph
from relmark.stores.base import BulkPart, Store, selected
from relmark.vocab import INFERRED_GRAPH, PROVENANCE_GRAPH


@dataclass(frozen=True)
class InferredChange:
    """One inferred triple a run added or removed, and the rule that (no longer) concludes
    it (None where the run does not know: a removal in a full recompute). What the
    classification history records (``relmark.history``)."""

    triple: ox.Triple
    added: bool
    rule: str | None


@dataclass
class RunSummary:
    """What a run did, for machines (fields) and people (``text``)."""

    rules: int
    rounds: int
    inferred: int
    derivations: int
    provenance: int
    added: int
    removed: int
    written: bool
    seconds: float
    by_rule: dict[str, int] = field(default_factory=dict)
    incremental: bool = False
    #: the inferred triples added and removed, when the run knows them (None: unknown)
    delta: list[InferredChange] | None = None

    @classmethod
    def of_run(
        cls,
        rules: list[Rule],
        rounds: int,
        inferred: set[ox.Triple],
        derivations: list[Derivation],
        provenance: set[str] | int,
        written: tuple[int, int, bool],
        started: float,
    ) -> RunSummary:
        """The summary of a full run that started at ``started`` (``time.perf_counter``)."""
        by_rule: dict[str, int] = {rule.name: 0 for rule in rules}
        for derivation in derivations:
            by_rule[derivation.rule.name] += 1
        added, removed, changed = written
        return cls(
            rules=len(rules),
            rounds=rounds,
            inferred=len(inferred),
            derivations=len(derivations),
            provenance=provenance if isinstance(provenance, int) else len(provenance),
            added=added,
            removed=removed,
            written=changed,
            seconds=time.perf_counter() - started,
            by_rule=by_rule,
        )

    @property
    def text(self) -> str:
        if self.incremental:
            head = (
                f"incremental update, {self.rounds} rounds, {self.seconds:.2f} s: "
                f"+{self.added} −{self.removed} inferred triples, "
                f"{self.derivations} derivations re-evaluated"
            )
        else:
            head = (
                f"{self.rules} rules, {self.rounds} rounds, {self.seconds:.2f} s: "
                f"{self.inferred} inferred triples from {self.derivations} derivations "
                f"(+{self.added} −{self.removed} since the last run"
                f"{'' if self.written else ', nothing written'})"
            )
        lines = [head]
        for name, count in sorted(self.by_rule.items()):
            lines.append(f"  {name}: {count}")
        return "\n".join(lines)


#: One run at a time per process: runs read and write the same two graphs.
ONE_RUN_AT_A_TIME = threading.Lock()


def materialise(store: Store, rules: list[Rule]) -> RunSummary:
    """Infer everything the rules allow, with provenance; write only what changed.

    Full recompute: inferences are rebuilt from the asserted graphs, the ontology and the
    config, so data removed since the last run takes its conclusions with it. The rule
    inputs are copied into an in-memory store for the fixpoint (many small queries run
    an order of magnitude faster there, and readers of ``store`` never see a half-done
    result); the outcome is written back in one all-or-none replace.
    """
    with ONE_RUN_AT_A_TIME, _no_cycle_collection():
        started = time.perf_counter()
        work = workspace(store)

        def query(sparql: str, bound: Mapping[ox.Variable, Value]) -> ox.QuerySolutions:
            sparql, rest = bind_values(sparql, bound)
            # the union of the distinct facts (default graph) and what was inferred so far
            # (its own graph, which never holds a fact of the default graph)
            return selected(work.query(sparql, use_default_graph_as_union=True, substitutions=rest))

        rounds, inferred, derivations = fixpoint(
            rules,
            query,
            asserted=lambda candidates: {t for t in candidates if fact(t) in work},
            add=lambda new: work.extend(
                ox.Quad(t.subject, t.predicate, t.object, INFERRED_NODE) for t in new
            ),
        )
        derivations = keep_inferred(derivations, inferred)
        premises = {p for d in derivations for p in d.premises}  # shared by many: once each
        locations = locate_facts(store, premises - inferred)
        old_inferred = {triple_of(q) for q in store.triples(INFERRED_GRAPH)}
        if old_inferred != inferred:  # the provenance changes too: write it as it is made
            chunks = provenance_chunks(rules, derivations, locations)
            written, lines = write_as_made(store, inferred, old_inferred, chunks)
            summary = RunSummary.of_run(
                rules, rounds, inferred, derivations, lines, written, started
            )
            summary.delta = full_run_delta(derivations, inferred, old_inferred)
            return summary
        provenance = provenance_graph(rules, derivations, locations)
        written = _write(store, inferred, provenance)
        summary = RunSummary.of_run(
            rules, rounds, inferred, derivations, provenance, written, started
        )
        summary.delta = []  # the inferred triples are those of the last run
        return summary


def full_run_delta(
    derivations: list[Derivation], inferred: set[ox.Triple], old: set[ox.Triple]
) -> list[InferredChange]:
    """The real differences of a full run, each added triple with a rule that concludes it."""
    rule_of: dict[ox.Triple, str] = {}
    for derivation in derivations:
        for conclusion in derivation.conclusions:
            rule_of.setdefault(conclusion, derivation.rule.name)
    changes = [InferredChange(t, True, rule_of.get(t)) for t in inferred - old]
    return changes + [InferredChange(t, False, None) for t in old - inferred]


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector for a full run.

    A run makes millions of short-lived rows, triples and lines and no reference cycles;
    each collection walks every live container, a cost that grows with the run for
    nothing. Reference counting still frees everything; the collector resumes (and
    catches up) when the run ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write(store: Store, inferred: set[ox.Triple], provenance: set[str]) -> tuple[int, int, bool]:
    """Replace the inferred and provenance graphs, all or none, only if they changed.

    ``provenance`` is N-Triples lines (``provenance.py``), compared with the stored graph
    as lines and loaded by pyoxigraph's bulk loader. Returns the inferred triples added
    and removed, and whether anything was written.
    """
    old_inferred = {triple_of(q) for q in store.triples(INFERRED_GRAPH)}
    if old_inferred == inferred and stored_lines(store, PROVENANCE_GRAPH) == provenance:
        return 0, 0, False
    node = ox.NamedNode(INFERRED_GRAPH)
    quads = [ox.Quad(t.subject, t.predicate, t.object, node) for t in inferred]
    body = "\n".join(provenance).encode("utf-8")
    store.bulk_replace_graphs(
        {
            INFERRED_GRAPH: [("quads", quads, INFERRED_GRAPH)] if quads else [],
            PROVENANCE_GRAPH: [(ox.RdfFormat.N_TRIPLES, body, PROVENANCE_GRAPH)] if body else [],
        }
    )
    return len(inferred - old_inferred), len(old_inferred - inferred), True


def write_as_made(
    store: Store,
    inferred: set[ox.Triple],
    old_inferred: set[ox.Triple],
    chunks: Iterator[list[str]],
) -> tuple[tuple[int, int, bool], int]:
    """Replace the inferred and provenance graphs, all or none, while the provenance lines
    are still being made: a thread makes the next chunk while pyoxigraph's bulk loader,
    which releases the GIL, loads the last one, so making the lines costs no wall time.
    Returns what ``_write`` does, and the line count.
    """
    made: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()
    count = 0

    def make() -> None:
        nonlocal count
        try:
            with _no_cycle_collection():
                for chunk in chunks:
                    count += len(chunk)
                    made.put("\n".join(chunk).encode("utf-8"))
        except BaseException as error:  # handed to the writer, which undoes the write
            made.put(error)
        else:
            made.put(None)

    def parts() -> Iterator[BulkPart]:
        while (item := made.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield (ox.RdfFormat.N_TRIPLES, item, PROVENANCE_GRAPH)

    maker = threading.Thread(target=make, name="relmark-provenance", daemon=True)
    maker.start()
    node = ox.NamedNode(INFERRED_GRAPH)
    quads = [ox.Quad(t.subject, t.predicate, t.object, node) for t in inferred]
    store.bulk_replace_graphs(
        {
            INFERRED_GRAPH: [("quads", quads, INFERRED_GRAPH)] if quads else [],
            PROVENANCE_GRAPH: parts(),
        }
    )
    maker.join()
    return (len(inferred - old_inferred), len(old_inferred - inferred), True), count
