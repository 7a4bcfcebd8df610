"""What every update of one rule set needs to know about the rules, worked out once.

Which patterns a changed triple can match (by its predicate and object), the shortest
chains from a pattern's variables to a rule's focus, the rules rewritten to take their
focus inside their sub-selects, and which of the rules' query texts may read the union of
all graphs. ``maintain.rules_for`` parses a rule set once, so the index is kept by the
identity of that list.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import pyoxigraph as ox

from relmark.reasoning.rules.fixpoint import patterns_read
from relmark.reasoning.rules.inputs import NOT_RULE_INPUT
from relmark.reasoning.rules.model import VALUES_SLOT, Pattern, Rule, Value, is_variable
from relmark.reasoning.rules.provenance import (
    DCTERMS_SOURCE,
    PROV,
    PROV_PLAN,
    RDF,
    RDF_TYPE,
    RDFS_COMMENT,
    RDFS_LABEL,
)
from relmark.sparql import lexer
from relmark.stores.base import CONTENT_HASH, Store, selected
from relmark.vocab import INFERRED_GRAPH, META_GRAPH, PROVENANCE_GRAPH, SHAPES_GRAPH

#: A pattern a rule reads or concludes (group None), its group, the variables the group
#: shares with the rule's WHERE, all the group's variables, and which change of a triple
#: it matches can make the rule hold where it did not: "added" (a premise), "removed" (a
#: FILTER NOT EXISTS), None (either: an aggregate, or a negation nested somewhere).
Reader = tuple[
    Rule, Pattern, "tuple[Pattern, ...] | None", frozenset[str], frozenset[str], str | None
]


_EXISTS = lexer.keyword("EXISTS")

#: Where a focused rule's sub-select takes the focus as a VALUES row (``_focused``).
FOCUS_SLOT = "\n#relmark:focus-values\n"


class RuleIndex:
    """What the updates of one rule set share, worked out once per rule set (not per
    update: hashing a rule set for a cache would cost each update more than its reads)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.by_name = {rule.name: rule for rule in rules}
        self.focused = {rule.name: _focused(rule) for rule in rules}
        #: Every pattern a rule reads or concludes, by its predicate and object (None: a
        #: variable there), so that a changed triple is tried on the patterns it may match.
        self.by_key: dict[tuple[Value | None, Value | None], list[Reader]] = {}
        none: frozenset[str] = frozenset()
        for rule in rules:
            entries: list[Reader] = [(rule, p, None, none, none, None) for p in rule.conclusions]
            for group, outer, grows in _groups(rule):
                variables = frozenset(
                    t.value
                    for p in group
                    for t in (p.subject, p.predicate, p.object)
                    if is_variable(t)
                )
                entries += [(rule, p, group, outer, variables, grows) for p in group]
            for entry in entries:
                pattern = entry[1]
                key = (_constant(pattern.predicate), _constant(pattern.object))
                self.by_key.setdefault(key, []).append(entry)
        self.chains: dict[tuple[str, frozenset[str]], tuple[Pattern, ...] | None] = {}
        self.shared: dict[str, frozenset[object]] = {}
        self.unions: dict[frozenset[object] | None, frozenset[str]] = {}

    def reach(self, rule: Rule, bound: frozenset[str]) -> tuple[Pattern, ...] | None:
        key = (rule.name, bound)
        if key not in self.chains:
            self.chains[key] = _reach(rule, bound)
        return self.chains[key]

    def union_templates(self, shared: frozenset[object] | None) -> frozenset[str]:
        if shared not in self.unions:
            self.unions[shared] = _union_templates(self.rules, self.focused, shared)
        return self.unions[shared]


_INDEXES: dict[int, RuleIndex] = {}


def rule_index(rules: list[Rule]) -> RuleIndex:
    """The rule set's ``RuleIndex`` (by identity: ``maintain.rules_for`` parses it once)."""
    found = _INDEXES.get(id(rules))
    if found is None or found.rules is not rules:
        if len(_INDEXES) > 8:
            _INDEXES.clear()
        found = _INDEXES[id(rules)] = RuleIndex(rules)
    return found


def _groups(rule: Rule) -> list[tuple[tuple[Pattern, ...], frozenset[str], str | None]]:
    """The rule's pattern groups, each with the variables it shares with the rule's WHERE
    and the change that can make the rule hold through it (``Reader``).

    A text with EXISTS left in it (beyond the guards the engine takes out) negates or
    tests patterns the parsed rule does not list: no direction is assumed there.
    """
    outer = frozenset(
        t.value for p in rule.premises for t in (p.subject, p.predicate, p.object) if is_variable(t)
    )
    groups = [(rule.premises, outer, None if _has_exists(rule.match_sparql) else "added")]
    groups += [
        (guard.patterns, outer, None if _has_exists(guard.ask_sparql) else "removed")
        for guard in rule.guards
    ]
    groups += [(sub.patterns, frozenset(sub.keys) & outer, None) for sub in rule.subselects]
    return groups


def _has_exists(sparql: str) -> bool:
    """Whether a query's text (its comments, strings and IRIs aside) says EXISTS."""
    return _EXISTS.search(lexer.masked(sparql)) is not None


def _reach(rule: Rule, bound: frozenset[str]) -> tuple[Pattern, ...] | None:
    """The patterns on the shortest chains from the bound variables to the rule's focus.

    pyoxigraph plans a rule's whole WHERE poorly from a few bound values, and a chain with
    the values written in as constants well. The chain may reach more foci than
    the full pattern would, never fewer; the rule itself then decides for each one.
    """
    chosen: list[Pattern] = []
    for start in sorted(bound):
        path = _chain(rule.premises, start, rule.focus)
        if path is None:
            return None
        chosen += [p for p in path if p not in chosen]
    return tuple(chosen)


def _chain(patterns: tuple[Pattern, ...], start: str, goal: str) -> list[Pattern] | None:
    """The fewest patterns linking variable ``start`` to variable ``goal`` (breadth first)."""
    paths: dict[str, list[Pattern]] = {start: []}
    frontier = [start]
    while frontier and goal not in paths:
        following = []
        for variable in frontier:
            for pattern in patterns:
                names = [
                    t.value for t in (pattern.subject, pattern.object) if isinstance(t, ox.Variable)
                ]
                if variable in names:
                    for other in names:
                        if other not in paths:
                            paths[other] = [*paths[variable], pattern]
                            following.append(other)
        frontier = following
    return paths.get(goal)


def _focused(rule: Rule) -> Rule:
    """The rule with its focus bound inside each sub-select grouped by it, too.

    pyoxigraph computes a sub-select's aggregate over the whole store before joining it
    with the focus, so a rule counting per account would count for every account to
    answer for one. Restricting a sub-select to the focus
    changes nothing when the focus is one of its GROUP BY keys and it has no LIMIT or
    OFFSET: only the focus's own groups could join the outer row anyway.
    """
    text = rule.match_sparql
    for subselect in rule.subselects:
        if rule.focus not in subselect.keys:
            continue
        body = subselect.select_sparql.split(VALUES_SLOT, 1)[1]
        if text.count("{" + body) != 1:
            continue
        at = text.index("{" + body) + 1
        tail = text[at + len(body) :]
        tail = tail[: tail.find("}")] if "}" in tail else tail
        by = re.search(r"\bGROUP\s+BY\b(.*)", tail, re.IGNORECASE | re.DOTALL)
        if by is None or re.search(r"\b(LIMIT|OFFSET)\b", tail, re.IGNORECASE):
            continue
        if not re.search(rf"[?$]{re.escape(rule.focus)}\b", by.group(1).split("HAVING")[0]):
            continue
        text = text[:at] + FOCUS_SLOT.replace("values", "values " + rule.focus) + text[at:]
    if text == rule.match_sparql:
        return rule
    return dataclasses.replace(rule, match_sparql=text)


_FOCUS_MARK = re.compile(r"\n#relmark:focus-values ([A-Za-z0-9_]+)\n")


def fill_focus_slot(sparql: str, bound: Mapping[ox.Variable, object]) -> str:
    """A focused rule's sub-select slots filled with the focus's value (``_focused``)."""
    if "#relmark:focus-values" not in sparql:
        return sparql

    def values(match: re.Match) -> str:
        value = bound.get(ox.Variable(match.group(1)))
        if isinstance(value, ox.NamedNode | ox.Literal):
            return f"\nVALUES ?{match.group(1)} {{ {value} }}\n"
        return "\n"

    return _FOCUS_MARK.sub(values, sparql)


#: Whether the graphs rules do not read are the provenance, shapes and meta graphs alone.
UNREAD_KNOWN = {INFERRED_GRAPH, PROVENANCE_GRAPH, SHAPES_GRAPH, META_GRAPH} == NOT_RULE_INPUT


#: The predicates and classes of the provenance record (``provenance.py``).
_PROVENANCE_TERMS = frozenset(
    [RDFS_LABEL, RDFS_COMMENT, DCTERMS_SOURCE, PROV_PLAN]
    + [ox.NamedNode(RDF + name) for name in ("subject", "predicate", "object")]
    + [ox.NamedNode(PROV + name) for name in ("used", "generated", "atLocation")]
)


def _constant(term: Value | ox.Variable) -> Value | None:
    return None if isinstance(term, ox.Variable) else term


def shared_terms(store: Store, derived: RuleIndex) -> frozenset[object] | None:
    """The constant predicates (and classes, for ``a``) of the rules' patterns that a graph
    the rules do not read holds too; None when that is not known.

    The provenance graph's vocabulary is its own (``provenance.py``), the meta graph's
    too; only the shapes graph could use a rule's terms, so the answer is kept as long
    as its content hash is the same.
    """
    key_triple = f"<{SHAPES_GRAPH}> <{CONTENT_HASH.value}> ?h"
    found = list(
        selected(store.query(f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ {key_triple} }} }}"))
    )
    if not found:
        return None
    key = found[0]["h"].value
    if key not in derived.shared:
        predicates, classes = set(), set()
        for rule in derived.rules:
            for pattern in [*patterns_read(rule), *rule.conclusions]:
                if pattern.predicate == RDF_TYPE and isinstance(pattern.object, ox.NamedNode):
                    classes.add(pattern.object)
                elif isinstance(pattern.predicate, ox.NamedNode):
                    predicates.add(pattern.predicate)
        sparql = (
            "SELECT DISTINCT ?term WHERE {"
            f" {{ VALUES ?term {{ {' '.join(map(str, predicates)) or '<urn:x>'} }} ?s ?term ?o }}"
            f" UNION {{ VALUES ?term {{ {' '.join(map(str, classes)) or '<urn:x>'} }}"
            f" ?s <{RDF_TYPE.value}> ?term }} }}"
        )
        graphs: list[str | None] = [SHAPES_GRAPH, META_GRAPH]
        shared = {s["term"] for s in selected(store.query(sparql, default_graph=graphs))}
        shared |= _PROVENANCE_TERMS  # the provenance record uses these alone
        derived.shared[key] = frozenset(shared)
    return derived.shared[key]


def separate(pattern: Pattern, shared: frozenset[object] | None) -> bool:
    """Whether no triple of a graph the rules do not read can match ``pattern``."""
    if shared is None or not isinstance(pattern.predicate, ox.NamedNode):
        return False
    if pattern.predicate == RDF_TYPE:
        return isinstance(pattern.object, ox.NamedNode) and pattern.object not in shared
    return pattern.predicate not in shared


def _union_templates(
    rules: list[Rule], focused: Mapping[str, Rule], shared: frozenset[object] | None
) -> frozenset[str]:
    """The rules' query texts that may read the union of all graphs (``separate``).

    A text with an EXISTS left in it (a FILTER EXISTS, a nested guard) has patterns the
    parsed rule does not list: it keeps reading the rule inputs one by one.
    """
    texts = set()
    for rule in rules:
        parts: list[tuple[str, tuple[Pattern, ...]]] = []
        inner = tuple(p for sub in rule.subselects for p in sub.patterns)
        parts.append((rule.match_sparql, rule.premises + inner))
        parts.append((focused[rule.name].match_sparql, rule.premises + inner))
        parts.append((rule.reach_sparql, rule.premises))
        parts += [(guard.ask_sparql, guard.patterns) for guard in rule.guards]
        parts += [(sub.select_sparql, sub.patterns) for sub in rule.subselects]
        for text, patterns in parts:
            if _has_exists(text):
                continue
            if all(separate(p, shared) for p in patterns):
                texts.add(text)
    return frozenset(texts)
