"""One round of an update: re-evaluate the (rule, focus) pairs the changes reach, settle
which conclusions are inferred now, and write the difference.

Each conclusion either the old or the new derivations name is inferred exactly when some
derivation still supports it and no input graph asserts it. The inferred triples that
changed are the next round's changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyoxigraph as ox

from relmark.reasoning.incremental.reach import Reach
from relmark.reasoning.incremental.reads import Focus, Located, Reads
from relmark.reasoning.incremental.records import Records
from relmark.reasoning.incremental.rule_index import RuleIndex
from relmark.reasoning.incremental.write import write
from relmark.reasoning.rules.evaluate import evaluate
from relmark.reasoning.rules.fixpoint import keep_inferred
from relmark.reasoning.rules.provenance import Derivation


@dataclass
class RoundResult:
    """What one round changed: the inferred triples added and removed, and the derivations
    recorded (by rule)."""

    added: list[ox.Triple] = field(default_factory=list)
    removed: list[ox.Triple] = field(default_factory=list)
    derivations: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    #: for each triple added or removed, the rule that concludes it now (or did before)
    rule_of: dict[ox.Triple, str] = field(default_factory=dict)


def run_round(
    reads: Reads, index: RuleIndex, records: Records, changed: list[Located]
) -> RoundResult:
    """Re-derive what ``changed`` reaches, write the difference, and say what changed."""
    result = RoundResult()
    reads.new_round()
    reach = Reach(reads, index)
    foci, creating = reach.reached(changed, records.recorded_users(changed))
    if not foci:
        return result
    old = records.recorded(foci)
    new = _rederive(reads, index, reach, foci, creating, old)
    concluded = {c for ds in new.values() for d in ds for c in d.conclusions}
    touched = {c for found in old.values() for _, c in found} | concluded
    premises = {p for ds in new.values() for d in ds for p in d.premises}
    where, inferred = reads.locate_all([*sorted(touched, key=str), *sorted(premises, key=str)])
    unasserted = {c for c in touched if not where[c]}
    others = records.supported_elsewhere(unasserted - concluded, foci)
    inferred_after = (unasserted & concluded) | others
    inferred_before = inferred & touched
    result.added = sorted(inferred_after - inferred_before, key=str)
    result.removed = sorted(inferred_before - inferred_after, key=str)
    kept = keep_inferred([d for ds in new.values() for d in ds], inferred_after)
    for derivation in kept:
        result.by_rule[derivation.rule.name] = result.by_rule.get(derivation.rule.name, 0) + 1
    result.derivations = len(kept)
    for derivation in kept:
        for conclusion in derivation.conclusions:
            result.rule_of.setdefault(conclusion, derivation.rule.name)
    for (name, _), found in old.items():
        for _, conclusion in found:
            result.rule_of.setdefault(conclusion, name)
    old_iris = {d for found in old.values() for d, _ in found}
    write(records, old_iris, kept, result.added, result.removed, where)
    reads.follow_write(result.added, result.removed)
    return result


def _rederive(
    reads: Reads,
    index: RuleIndex,
    reach: Reach,
    foci: set[Focus],
    creating: set[Focus],
    old: Mapping[Focus, list[tuple[ox.NamedNode, ox.Triple]]],
) -> dict[Focus, list[Derivation]]:
    """The new derivations of each (rule, focus) reached, the rule evaluated with its focus
    bound; none, without evaluating, where the rule recorded nothing and cannot come to hold.
    """
    new: dict[Focus, list[Derivation]] = {}
    for name, focus in sorted(foci, key=str):
        rule = index.by_name[name]
        if not old[(name, focus)] and (
            (name, focus) not in creating or reach.near.cannot_hold(rule, focus)
        ):
            new[(name, focus)] = []
            continue
        focused = index.focused[name]
        found = evaluate(reads.query, focused, focus)
        if focused is not rule:
            found = [Derivation(rule, d.bindings, d.premises, d.conclusions) for d in found]
        new[(name, focus)] = found
    return new
