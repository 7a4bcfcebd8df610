"""Which (rule, focus) pairs a change can reach, and which of them may come to hold.

Every rule classifies one resource, its *focus* (the subject of its conclusions). A
changed triple can only change the conclusions of the foci it reaches:

- it matches a rule's conclusion in an input graph (an asserted fact now shadows or no
  longer shadows an inferred one): the focus is the triple's subject;
- it was removed and was a premise of a recorded derivation: that derivation's focus
  (``records.Records.users``);
- it matches a triple pattern of the rule, a pattern of a ``FILTER NOT EXISTS`` or of a
  sub-select: the foci the rule's triple patterns reach from the variables it binds,
  unless another pattern of that group, about a resource the change names (whose every
  triple is fetched once, the "neighbourhood"), matches nothing before or after.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyoxigraph as ox

from relmark.reasoning.incremental.neighbourhood import Neighbourhood
from relmark.reasoning.incremental.reads import Focus, Located, Reads
from relmark.reasoning.incremental.rule_index import Reader, RuleIndex, separate
from relmark.reasoning.rules.model import Pattern, Rule, Value, is_variable
from relmark.stores.base import selected
from relmark.vocab import INFERRED_GRAPH

#: A chain reaching more resources than this is not used alone to find what a change touches.
FOCI_LIMIT = 200


class Reach:
    """The foci one round's changes reach; made per round (its answers hold for one round)."""

    def __init__(self, reads: Reads, index: RuleIndex) -> None:
        self.reads = reads
        self.index = index
        #: ``foci``'s answers, by rule, bound values and changed subject.
        self.foci_memo: dict[
            tuple[str, tuple[tuple[str, Value], ...], Value], set[tuple[str, ox.NamedNode]]
        ] = {}
        #: The neighbourhood's answers to ``reach``'s queries, by text.
        self.near_memo: dict[str, list[ox.QuerySolution]] = {}
        #: What the changes name, all of it (made by ``reached``).
        self.near = Neighbourhood(reads, [])

    def reached(self, changed: list[Located], users: set[Focus]) -> tuple[set[Focus], set[Focus]]:
        """The (rule, focus) pairs whose conclusions the changed triples may alter, and
        those of them where the rule may come to hold.

        The others can only lose derivations (a premise removed, a FILTER NOT EXISTS
        matched by a new triple): without recorded ones they need no evaluation.
        """
        pairs: set[Focus] = set(users)
        creating = set(pairs)
        near = self.near = Neighbourhood(self.reads, changed)
        for triple, graph, gone in changed:
            for rule, pattern, group, outer, variables, grows in self.readers(triple):
                binding = _unify(pattern, triple)
                if binding is None:
                    continue
                if group is None:  # a conclusion: an assertion may shadow it or stop doing so
                    if graph != INFERRED_GRAPH and isinstance(triple.subject, ox.NamedNode):
                        pairs.add((rule.name, triple.subject))
                        creating.add((rule.name, triple.subject))
                    continue
                may_create = grows is None or grows == ("removed" if gone else "added")
                for bound in near.widen(binding, group, outer, variables):
                    found = self.foci(rule, bound, triple.subject)
                    pairs |= found
                    if may_create:
                        creating |= found
        return pairs, creating

    def readers(self, triple: ox.Triple) -> list[Reader]:
        """The patterns whose predicate and object are the triple's or variables."""
        found: list[Reader] = []
        for key in (
            (triple.predicate, triple.object),
            (triple.predicate, None),
            (None, triple.object),
            (None, None),
        ):
            found += self.index.by_key.get(key, [])
        return found

    def foci(
        self, rule: Rule, bound: Mapping[str, Value], changed_subject: Value
    ) -> set[tuple[str, ox.NamedNode]]:
        """The resources the rule's triple patterns reach from ``bound`` (a superset).

        The changed triple's subject (a new purchase, say) is first followed alone along
        its chain of patterns to the focus: a query with one constant is one the planner
        starts from it, while with several (the purchase and its firm) it may start from
        the firm and join all of that firm's relationships. The answer may hold
        more foci than the full pattern would (the rule decides each one itself); when it
        holds more than ``FOCI_LIMIT``, all bound values go in together.
        """
        key = (rule.name, tuple(sorted(bound.items())), changed_subject)
        if key not in self.foci_memo:
            self.foci_memo[key] = self.follow(rule, bound, changed_subject)
        return self.foci_memo[key]

    def follow(
        self, rule: Rule, bound: Mapping[str, Value], changed_subject: Value
    ) -> set[tuple[str, ox.NamedNode]]:
        """``foci`` without the round's memory."""
        if rule.focus in bound:
            focus = bound[rule.focus]
            return {(rule.name, focus)} if isinstance(focus, ox.NamedNode) else set()
        if not bound:
            return set()  # only system facts (thresholds) change that way: a full run
        for name in sorted(bound):
            if bound[name] != changed_subject:
                continue
            chain = self.index.reach(rule, frozenset([name]))
            if chain is not None:
                found = self.reach(rule, chain, {name: bound[name]}, FOCI_LIMIT + 1)
                if len(found) <= FOCI_LIMIT:
                    return found
        chain = self.index.reach(rule, frozenset(bound))
        if chain is None:
            solutions = self.reads.query(
                rule.reach_sparql, {ox.Variable(k): v for k, v in bound.items()}
            )
            foci = (s[rule.focus] for s in solutions)
            return {(rule.name, f) for f in foci if isinstance(f, ox.NamedNode)}
        return self.reach(rule, chain, bound, None)

    def reach(
        self,
        rule: Rule,
        chain: tuple[Pattern, ...],
        bound: Mapping[str, Value],
        limit: int | None,
    ) -> set[tuple[str, ox.NamedNode]]:
        """The foci the chain reaches with the bound values written in as constants."""
        body = " ".join(
            " ".join(_term_text(t, bound) for t in (p.subject, p.predicate, p.object)) + " ."
            for p in chain
        )
        sparql = f"SELECT DISTINCT ?{rule.focus} WHERE {{ {body} }}"
        if limit is not None:
            sparql += f" LIMIT {limit}"
        subjects = [
            bound.get(p.subject.value) if is_variable(p.subject) else p.subject for p in chain
        ]
        if all(s is not None and s in self.near.subjects for s in subjects):
            # each pattern is about a resource whose every triple is in the neighbourhood
            if sparql not in self.near_memo:
                self.near_memo[sparql] = list(selected(self.near.store.query(sparql)))
            solutions = self.near_memo[sparql]
        else:
            solutions = self.reads.query(
                sparql, {}, all(separate(p, self.reads.shared) for p in chain)
            )
        return {
            (rule.name, s[rule.focus]) for s in solutions if isinstance(s[rule.focus], ox.NamedNode)
        }


def _unify(pattern: Pattern, triple: ox.Triple) -> dict[str, Value] | None:
    """The variable bindings that make ``pattern`` match ``triple``, or None."""
    binding: dict[str, Value] = {}
    for term, value in (
        (pattern.subject, triple.subject),
        (pattern.predicate, triple.predicate),
        (pattern.object, triple.object),
    ):
        if isinstance(term, ox.Variable):
            if binding.setdefault(term.value, value) != value:
                return None
        elif term != value:
            return None
    return binding


def _term_text(term: Value | ox.Variable, bound: Mapping[str, Value]) -> str:
    """A pattern position as SPARQL: a bound IRI or literal in its own N-Triples form."""
    if isinstance(term, ox.Variable) and isinstance(
        bound.get(term.value), ox.NamedNode | ox.Literal
    ):
        return str(bound[term.value])
    return str(term)
