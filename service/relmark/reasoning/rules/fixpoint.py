"""Applying a rule set until nothing new follows, and checking the result is supported.

Negation and aggregates must only look at asserted facts (or at conclusions of rules that
do not depend on them): ``fixpoint`` checks at the end that every conclusion is still
supported and refuses a rule set that breaks this.
"""

from __future__ import annotations

from collections.abc import Callable

import pyoxigraph as ox

from relmark.reasoning.rules.evaluate import Query, evaluate
from relmark.reasoning.rules.model import Pattern, Rule, RuleError
from relmark.reasoning.rules.provenance import Derivation


def fixpoint(
    rules: list[Rule],
    query: Query,
    asserted: Callable[[set[ox.Triple]], set[ox.Triple]],
    add: Callable[[set[ox.Triple]], None],
) -> tuple[int, set[ox.Triple], list[Derivation]]:
    """Evaluate the rules round after round until nothing new follows.

    ``query`` reads the rule inputs plus what ``add`` was given so far; ``asserted`` says
    which conclusions an input graph already holds (those are not inferences). Semi-naive:
    after round 1 only the rules that read a conclusion that just appeared run again.
    Returns the rounds, the inferred triples and the last derivations of every rule, whose
    support has been checked. Shared by the embedded and the remote engine.
    """
    inferred: set[ox.Triple] = set()
    known: set[ox.Triple] = set()  # conclusions found asserted
    readers = _readers(rules)
    latest: dict[str, list[Derivation]] = {}
    due = list(rules)
    rounds = 0
    derivations: list[Derivation] = []
    while due:
        rounds += 1
        for rule in due:
            latest[rule.name] = evaluate(query, rule)
        derivations = [d for rule in rules for d in latest.get(rule.name, [])]
        candidates = {c for d in derivations for c in d.conclusions} - inferred - known
        known |= asserted(candidates) if candidates else set()
        new = candidates - known
        inferred |= new
        if new:
            add(new)
        grown = {d.rule.name for d in derivations if any(c in new for c in d.conclusions)}
        due = [rule for rule in rules if readers[rule.name] & grown]
    _check_supported(inferred, derivations)
    return rounds, inferred, derivations


def _readers(rules: list[Rule]) -> dict[str, set[str]]:
    """For each rule, the rules whose conclusions one of its patterns could match."""
    return {
        rule.name: {
            other.name
            for other in rules
            if any(
                _may_match(pattern, conclusion)
                for pattern in patterns_read(rule)
                for conclusion in other.conclusions
            )
        }
        for rule in rules
    }


def patterns_read(rule: Rule) -> list[Pattern]:
    """Every triple pattern a rule reads: its WHERE, its guards and its sub-selects."""
    patterns = list(rule.premises)
    for guard in rule.guards:
        patterns += guard.patterns
    for subselect in rule.subselects:
        patterns += subselect.patterns
    return patterns


def _may_match(one: Pattern, other: Pattern) -> bool:
    return all(
        isinstance(a, ox.Variable) or isinstance(b, ox.Variable) or a == b
        for a, b in (
            (one.subject, other.subject),
            (one.predicate, other.predicate),
            (one.object, other.object),
        )
    )


def _check_supported(inferred: set[ox.Triple], derivations: list[Derivation]) -> None:
    """Every conclusion must still follow at the fixpoint (no negation of inferred facts)."""
    supported = {c for d in derivations for c in d.conclusions}
    lost = inferred - supported
    if lost:
        example = sorted(str(t) for t in lost)[0]
        raise RuleError(
            f"{len(lost)} inferred triples no longer follow at the fixpoint (e.g. {example}): "
            "a rule negates or counts facts that other rules infer"
        )


def keep_inferred(derivations: list[Derivation], inferred: set[ox.Triple]) -> list[Derivation]:
    """Derivations reduced to their inferred conclusions (asserted ones need no reason)."""
    kept: dict[str, Derivation] = {}
    for derivation in derivations:
        conclusions = tuple(c for c in derivation.conclusions if c in inferred)
        if conclusions:
            kept.setdefault(
                derivation.iri,
                Derivation(derivation.rule, derivation.bindings, derivation.premises, conclusions),
            )
    return [kept[iri] for iri in sorted(kept)]
