"""An update of the inferences after a write: rounds until nothing more changes."""

from __future__ import annotations

import time

import pyoxigraph as ox

from relmark.reasoning.incremental.reads import Located, Reads
from relmark.reasoning.incremental.records import Records
from relmark.reasoning.incremental.rederive import run_round
from relmark.reasoning.incremental.rule_index import rule_index
from relmark.reasoning.rules.materialise import ONE_RUN_AT_A_TIME, InferredChange, RunSummary
from relmark.reasoning.rules.model import Rule, RuleError
from relmark.stores.base import Changes, Store
from relmark.vocab import INFERRED_GRAPH

#: A rule set whose consequences still change after this many rounds is not stratified.
MAX_ROUNDS = 50


def update_inferences(store: Store, rules: list[Rule], changes: Changes) -> RunSummary:
    """Bring the inferred and provenance graphs up to date with ``changes`` (already written)."""
    with ONE_RUN_AT_A_TIME:
        started = time.perf_counter()
        index = rule_index(rules)
        reads = Reads(store, index)
        records = Records(reads, index.by_name)
        changed: list[Located] = [
            (ox.Triple(q.subject, q.predicate, q.object), _graph(q.graph_name), gone)
            for quads, gone in ((changes.added, False), (changes.removed, True))
            for q in quads
        ]
        if changed and reads.overlapping(changed):
            reads.use_workspace()
        rounds = derivations = added = removed = 0
        by_rule: dict[str, int] = {}
        delta: list[InferredChange] = []
        while changed:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise RuleError(f"inferences still change after {MAX_ROUNDS} rounds")
            result = run_round(reads, index, records, changed)
            derivations += result.derivations
            added += len(result.added)
            removed += len(result.removed)
            for name, count in result.by_rule.items():
                by_rule[name] = by_rule.get(name, 0) + count
            delta += [InferredChange(t, True, result.rule_of.get(t)) for t in result.added]
            delta += [InferredChange(t, False, result.rule_of.get(t)) for t in result.removed]
            changed = [(t, INFERRED_GRAPH, False) for t in result.added]
            changed += [(t, INFERRED_GRAPH, True) for t in result.removed]
        return RunSummary(
            rules=len(rules),
            rounds=rounds,
            inferred=added - removed,  # the change (counting a large graph takes a while)
            derivations=derivations,
            provenance=0,
            added=added,
            removed=removed,
            written=rounds > 0,
            seconds=time.perf_counter() - started,
            by_rule=by_rule,
            incremental=True,
            delta=delta,
        )


def _graph(name: ox.NamedNode | ox.BlankNode | ox.DefaultGraph) -> str | None:
    return name.value if isinstance(name, ox.NamedNode) else None
