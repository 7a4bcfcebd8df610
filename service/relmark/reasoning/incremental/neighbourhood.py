"""What a round's changes name, all of it, in memory: which patterns can match there at all.

A changed triple often matches one pattern of a ``FILTER NOT EXISTS`` or of a sub-select,
whose other patterns bind the variables the rule shares with it (a new purchase's seller
only says which firm; its buyer says which relationship). Everything said about the
resources the changes name is fetched once (``subjects``: those known completely), which
also shows which patterns cannot match at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyoxigraph as ox

from relmark.reasoning.incremental.reads import Located, Reads
from relmark.reasoning.incremental.rule_index import separate
from relmark.reasoning.rules.evaluate import bind_values
from relmark.reasoning.rules.model import VALUES_SLOT, Pattern, Rule, Value, is_variable
from relmark.stores.base import selected

#: More triples than this about the changed resources: they are not all looked at.
_ABOUT_LIMIT = 20_000
_ABOUT = f"SELECT ?s ?p ?o WHERE {{{VALUES_SLOT}?s ?p ?o }} LIMIT {_ABOUT_LIMIT}"


class Neighbourhood:
    """The changed triples and everything now said about the resources they name."""

    def __init__(self, reads: Reads, changed: list[Located]) -> None:
        self.reads = reads
        #: ``widen``'s queries of the neighbourhood, by text and substituted values.
        self.memo: dict[tuple[str, tuple[tuple[ox.Variable, Value], ...]], list[ox.QuerySolution]]
        self.memo = {}
        #: The changed triples and all triples about the resources they name.
        self.store = ox.Store()
        #: The resources whose every triple ``store`` holds.
        self.subjects: set[Value] = set()
        if changed:
            self._fetch(changed)

    def _fetch(self, changed: list[Located]) -> None:
        """Read every triple about the changes' named subjects and objects, in one query
        per batch (a blank subject: one query of its own)."""
        local = self.store
        local.extend(ox.Quad(t.subject, t.predicate, t.object) for t, _, _ in changed)
        subjects = list(dict.fromkeys(t.subject for t, _, _ in changed))
        named = list(dict.fromkeys(t.object for t, _, _ in changed))
        named = [n for n in dict.fromkeys([*subjects, *named]) if isinstance(n, ox.NamedNode)]
        found = self.reads.rows(_ABOUT, "?s", [(n,) for n in named], self.reads.readable)
        for solution in found:
            local.add(ox.Quad(solution["s"], solution["p"], solution["o"]))
        self.subjects = set(named) if len(found) < _ABOUT_LIMIT else set()
        for subject in subjects:
            if not isinstance(subject, ox.NamedNode):
                for solution in selected(
                    self.reads.store.query(
                        "SELECT ?p ?o WHERE { ?s ?p ?o }",
                        default_graph=self.reads.readable,
                        substitutions={"s": subject},
                    )
                ):
                    local.add(ox.Quad(subject, solution["p"], solution["o"]))
                self.subjects.add(subject)

    def cannot_hold(self, rule: Rule, focus: Value) -> bool:
        """Whether a changed resource lacks a fact the rule requires of its focus.

        A new purchase matches ``?relationship a ?stage``, but is no customer relationship:
        everything said about it is in the neighbourhood, so that needs no evaluation
        (when the rule recorded nothing for it either).
        """
        if focus not in self.subjects:
            return False
        binding = {rule.focus: focus}
        return any(
            not _matches_some(p, binding, self.store)
            for p in rule.premises
            if p.subject == ox.Variable(rule.focus)
        )

    def widen(
        self,
        binding: dict[str, Value],
        group: tuple[Pattern, ...],
        outer: frozenset[str],
        variables: frozenset[str],
    ) -> list[dict[str, Value]]:
        """The bindings of the rule's variables that a match of ``group`` implies.

        None (an empty list) when the group cannot match with ``binding``, before or after:
        one of its patterns, about a resource the change named, matches nothing (the
        neighbourhood holds the removed triples too). When every pattern is about such a
        resource the neighbourhood's matches are all the matches there are; otherwise the
        partial binding stands: the rule's own patterns then reach more resources than
        needed, never fewer.
        """
        bound = {k: v for k, v in binding.items() if k in outer}
        known = self.subjects
        neighbourhood = self.store
        anchored = True
        for pattern in group:
            subject: Value | None = (
                binding.get(pattern.subject.value)
                if isinstance(pattern.subject, ox.Variable)
                else pattern.subject
            )
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
        key = (text, tuple(sorted(rest.items(), key=lambda item: item[0].value)))
        if key not in self.memo:
            self.memo[key] = list(selected(neighbourhood.query(text, substitutions=rest)))
        found = self.memo[key]
        return [{**bound, **{m: s[m] for m in missing if s[m] is not None}} for s in found]

    def holds(self, pattern: Pattern, binding: Mapping[str, Value]) -> bool:
        """Whether some stored triple matches ``pattern`` under ``binding`` (a superset: a
        blank node or an odd term counts as a match)."""
        terms = []
        for term in (pattern.subject, pattern.predicate, pattern.object):
            value: Value | ox.Variable | None = (
                binding.get(term.value) if isinstance(term, ox.Variable) else term
            )
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


def _matches_some(pattern: Pattern, binding: Mapping[str, Value], local: ox.Store) -> bool:
    """Whether some triple of ``local`` matches ``pattern`` under ``binding``."""
    terms = [
        binding.get(term.value) if isinstance(term, ox.Variable) else term
        for term in (pattern.subject, pattern.predicate, pattern.object)
    ]
    subject, predicate, obj = terms
    if isinstance(subject, ox.Literal) or isinstance(predicate, ox.Literal | ox.BlankNode):
        return False  # bound where no stored triple can have it: nothing matches
    if isinstance(predicate, ox.Triple):
        return True  # a term pyoxigraph does not take there: leave it to the query
    try:
        return next(iter(local.quads_for_pattern(subject, predicate, obj)), None) is not None
    except TypeError:  # a term pyoxigraph does not take there: leave it to the query
        return True
