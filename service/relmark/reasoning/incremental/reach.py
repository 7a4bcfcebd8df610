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

from relmark.reasoning.incremental.reads import Located, Reads
from relmark.reasoning.incremental.rule_index import Reader, RuleIndex, separate
from relmark.reasoning.rules.evaluate import bind_values
from relmark.reasoning.rules.model import VALUES_SLOT, Pattern, Rule, is_variable
from relmark.vocab import INFERRED_GRAPH

#: A chain reaching more resources than this is not used alone to find what a change touches.
FOCI_LIMIT = 200


#: More triples than this about the changed resources: they are not all looked at.
_ABOUT_LIMIT = 20_000


_ABOUT = f"SELECT ?s ?p ?o WHERE {{{VALUES_SLOT}?s ?p ?o }} LIMIT {_ABOUT_LIMIT}"


class Reach:
    """The foci one round's changes reach; made per round (its answers hold for one round)."""

    def __init__(self, reads: Reads, index: RuleIndex) -> None:
        self.reads = reads
        self.index = index
        self.memo: dict[object, object] = {}
        #: The changed triples and all triples about the resources they name.
        self.near = ox.Store()
        self.near_subjects: set[object] = set()

    def reached(
        self, changed: list[Located], users: set[tuple[str, object]]
    ) -> tuple[set[tuple[str, ox.NamedNode]], set[tuple[str, ox.NamedNode]]]:
        """The (rule, focus) pairs whose conclusions the changed triples may alter, and
        those of them where the rule may come to hold.

        The others can only lose derivations (a premise removed, a FILTER NOT EXISTS
        matched by a new triple): without recorded ones they need no evaluation.
        """
        pairs: set[tuple[str, ox.NamedNode]] = set(users)
        creating = set(pairs)
        neighbourhood = self.near = self.neighbourhood(changed)
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
                for bound in self.widen(binding, group, outer, variables, neighbourhood):
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

    def neighbourhood(self, changed: list[Located]) -> ox.Store:
        """The changed triples and everything now said about the resources they name, in memory.

        A changed triple often matches one pattern of a ``FILTER NOT EXISTS`` or of a
        sub-select, whose other patterns bind the variables the rule shares with it (a new
        purchase's seller only says which firm; its buyer says which relationship). What
        is said about these resources is known completely here (``near_subjects``), which
        also shows which patterns cannot match at all.
        """
        local = ox.Store()
        local.extend(ox.Quad(t.subject, t.predicate, t.object) for t, _, _ in changed)
        subjects = list(dict.fromkeys(t.subject for t, _, _ in changed))
        named = list(dict.fromkeys(t.object for t, _, _ in changed))
        named = [n for n in dict.fromkeys([*subjects, *named]) if isinstance(n, ox.NamedNode)]
        found = self.reads.rows(_ABOUT, "?s", [(n,) for n in named], self.reads.readable)
        for solution in found:
            local.add(ox.Quad(solution["s"], solution["p"], solution["o"]))
        self.near_subjects = set(named) if len(found) < _ABOUT_LIMIT else set()
        for subject in subjects:
            if not isinstance(subject, ox.NamedNode):
                for solution in self.reads.store.query(
                    "SELECT ?p ?o WHERE { ?s ?p ?o }",
                    default_graph=self.reads.readable,
                    substitutions={"s": subject},
                ):
                    local.add(ox.Quad(subject, solution["p"], solution["o"]))
                self.near_subjects.add(subject)
        return local

    def cannot_hold(self, rule: Rule, focus: object) -> bool:
        """Whether a changed resource lacks a fact the rule requires of its focus.

        A new purchase matches ``?relationship a ?stage``, but is no customer relationship:
        everything said about it is in the neighbourhood, so that needs no evaluation
        (when the rule recorded nothing for it either).
        """
        if focus not in self.near_subjects:
            return False
        binding = {rule.focus: focus}
        return any(
            not _matches_some(p, binding, self.near)
            for p in rule.premises
            if p.subject == ox.Variable(rule.focus)
        )

    def widen(
        self,
        binding: dict[str, object],
        group: tuple[Pattern, ...],
        outer: frozenset[str],
        variables: frozenset[str],
        neighbourhood: ox.Store,
    ) -> list[dict[str, object]]:
        """The bindings of the rule's variables that a match of ``group`` implies.

        None (an empty list) when the group cannot match with ``binding``, before or after:
        one of its patterns, about a resource the change named, matches nothing (the
        neighbourhood holds the removed triples too). When every pattern is about such a
        resource the neighbourhood's matches are all the matches there are; otherwise the
        partial binding stands: the rule's own patterns then reach more resources than
        needed, never fewer.
        """
        bound = {k: v for k, v in binding.items() if k in outer}
        known = self.near_subjects
        anchored = True
        for pattern in group:
            subject = pattern.subject
            if isinstance(subject, ox.Variable):
                subject = binding.get(subject.value)
            if subject is None or subject not in known:
                anchored = False
                if not (subject is not None and is_variable(pattern.subject)):
                    continue  # free, or a constant of the rule (a threshold, a class)
                if _matches_some(pattern, binding, neighbourhood) or self.holds(pattern, binding):
                    continue
                return []
            elif not _matches_some(pattern, binding, neighbourhood):
                return []
        missing = sorted((variables & outer) - bound.keys())
        if not missing or not anchored:
            return [bound]
        sparql = (
            f"SELECT DISTINCT {' '.join('?' + m for m in missing)} WHERE {{{VALUES_SLOT}"
            + " ".join(f"{p.subject} {p.predicate} {p.object} ." for p in group)
            + " }"
        )
        text, rest = bind_values(sparql, {ox.Variable(k): v for k, v in binding.items()})
        key = ("widen", text, tuple(sorted(rest.items(), key=lambda item: item[0].value)))
        if key not in self.memo:
            self.memo[key] = list(neighbourhood.query(text, substitutions=rest))
        found = self.memo[key]
        return [{**bound, **{m: s[m] for m in missing if s[m] is not None}} for s in found]

    def holds(self, pattern: Pattern, binding: Mapping[str, object]) -> bool:
        """Whether some stored triple matches ``pattern`` under ``binding`` (a superset: a
        blank node or an odd term counts as a match)."""
        terms = []
        for term in (pattern.subject, pattern.predicate, pattern.object):
            value = binding.get(term.value) if isinstance(term, ox.Variable) else term
            if value is None:
                value = term
            elif not isinstance(value, ox.NamedNode | ox.Literal):
                return True
            terms.append(str(value))
        if isinstance(pattern.subject, ox.Variable) and pattern.subject.value not in binding:
            return True
        sparql = f"SELECT * WHERE {{ {' '.join(terms)} }} LIMIT 1"
        union = separate(pattern, self.reads.shared)
        return bool(list(self.reads.query(sparql, {}, union)))

    def foci(
        self, rule: Rule, bound: Mapping[str, object], changed_subject: object
    ) -> set[tuple[str, ox.NamedNode]]:
        """The resources the rule's triple patterns reach from ``bound`` (a superset).

        The changed triple's subject (a new purchase, say) is first followed alone along
        its chain of patterns to the focus: a query with one constant is one the planner
        starts from it, while with several (the purchase and its firm) it may start from
        the firm and join all of that firm's relationships. The answer may hold
        more foci than the full pattern would (the rule decides each one itself); when it
        holds more than ``FOCI_LIMIT``, all bound values go in together.
        """
        key = ("foci", rule.name, tuple(sorted(bound.items())), changed_subject)
        if key not in self.memo:
            self.memo[key] = self.follow(rule, bound, changed_subject)
        return self.memo[key]

    def follow(
        self, rule: Rule, bound: Mapping[str, object], changed_subject: object
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
        bound: Mapping[str, object],
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
        if all(s is not None and s in self.near_subjects for s in subjects):
            # each pattern is about a resource whose every triple is in the neighbourhood
            key = ("near", sparql)
            if key not in self.memo:
                self.memo[key] = list(self.near.query(sparql))
            solutions = self.memo[key]
        else:
            solutions = self.reads.query(
                sparql, {}, all(separate(p, self.reads.shared) for p in chain)
            )
        return {
            (rule.name, s[rule.focus]) for s in solutions if isinstance(s[rule.focus], ox.NamedNode)
        }


def _unify(pattern: Pattern, triple: ox.Triple) -> dict[str, object] | None:
    """The variable bindings that make ``pattern`` match ``triple``, or None."""
    binding: dict[str, object] = {}
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


def _term_text(term: object, bound: Mapping[str, object]) -> str:
    """A pattern position as SPARQL: a bound IRI or literal in its own N-Triples form."""
    if isinstance(term, ox.Variable) and isinstance(
        bound.get(term.value), ox.NamedNode | ox.Literal
    ):
        return str(bound[term.value])
    return str(term)


def _matches_some(pattern: Pattern, binding: Mapping[str, object], local: ox.Store) -> bool:
    """Whether some triple of ``local`` matches ``pattern`` under ``binding``."""
    terms = []
    for term in (pattern.subject, pattern.predicate, pattern.object):
        if isinstance(term, ox.Variable):
            term = binding.get(term.value)
        terms.append(term)
    subject, predicate, obj = terms
    if isinstance(subject, ox.Literal) or isinstance(predicate, ox.Literal | ox.BlankNode):
        return False  # bound where no stored triple can have it: nothing matches
    try:
        return next(iter(local.quads_for_pattern(subject, predicate, obj)), None) is not None
    except TypeError:  # a term pyoxigraph does not take there: leave it to the query
        return True
