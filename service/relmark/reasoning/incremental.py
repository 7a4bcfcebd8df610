"""Incremental maintenance: after a write, re-derive only what the changed quads can reach.

Every rule classifies one resource, its *focus* (the subject of its conclusions). A
changed triple can only change the conclusions of the foci it reaches:

- it matches a rule's conclusion in an input graph (an asserted fact now shadows or no
  longer shadows an inferred one): the focus is the triple's subject;
- it was removed and was a premise of a recorded derivation: that derivation's focus;
- it matches a triple pattern of the rule, a pattern of a ``FILTER NOT EXISTS`` or of a
  sub-select: the foci the rule's triple patterns reach from the variables it binds,
  unless another pattern of that group, about a resource the change names (whose every
  triple is fetched once, the "neighbourhood"), matches nothing before or after.

For each (rule, focus) reached, the rule is evaluated again with the focus bound (the
same ``rules.evaluate`` as a full run), the old derivations are replaced by the new ones,
and each conclusion either of them names is inferred exactly when some derivation still
supports it and no input graph asserts it. The inferred triples that changed are the
next round's changes, until nothing changes: rules that read other rules' conclusions
are reached that way. Each round is at most one SPARQL update (only the record lines
that differ), so readers never see half of one; the result is the graph a full run would
write (the tests compare them).

Speed (one purchase at 1M triples): a round costs about 10-25 queries. Each distinct
query runs once per round (``_Session.query``), what is asked about many triples is one
query with a VALUES table, rule queries that no unread graph can answer read the union
of all graphs (one index instead of one per graph), and a rule whose sub-select groups
by the focus gets the focus inside the sub-select too (``_focused``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections.abc import Iterable, Mapping

import pyoxigraph as ox

from relmark.reasoning.provenance import (
    DCTERMS_SOURCE,
    PROV,
    PROV_PLAN,
    RDF,
    RDF_TYPE,
    RDFS_COMMENT,
    RDFS_LABEL,
    STATEMENT_IRI_PREFIX,
    Derivation,
    derivation_lines,
    statement_iri,
)
from relmark.reasoning.rules import (
    NOT_RULE_INPUT,
    ONE_RUN_AT_A_TIME,
    SHARED_FACTS,
    VALUES_SLOT,
    Pattern,
    Rule,
    RuleError,
    RunSummary,
    bind_values,
    distinct_workspace,
    evaluate,
    is_variable,
    keep_inferred,
    patterns_read,
    values_table,
)
from relmark.stores.base import CONTENT_HASH, Changes, Store
from relmark.vocab import INFERRED_GRAPH, META_GRAPH, PROVENANCE_GRAPH, SHAPES_GRAPH

#: A rule set whose consequences still change after this many rounds is not stratified.
MAX_ROUNDS = 50
#: A chain reaching more resources than this is not used alone to find what a change touches.
FOCI_LIMIT = 200

#: A changed triple, the graph it changed in, and whether it was removed (else added).
Located = tuple[ox.Triple, str | None, bool]
#: A pattern a rule reads or concludes (group None), its group, the variables the group
#: shares with the rule's WHERE, all the group's variables, and which change of a triple
#: it matches can make the rule hold where it did not: "added" (a premise), "removed" (a
#: FILTER NOT EXISTS), None (either: an aggregate, or a negation nested somewhere).
_Reader = tuple[
    Rule, Pattern, "tuple[Pattern, ...] | None", frozenset[str], frozenset[str], str | None
]


def update_inferences(store: Store, rules: list[Rule], changes: Changes) -> RunSummary:
    """Bring the inferred and provenance graphs up to date with ``changes`` (already written)."""
    with ONE_RUN_AT_A_TIME:
        started = time.perf_counter()
        session = _Session(store, rules)
        changed: list[Located] = [
            (ox.Triple(q.subject, q.predicate, q.object), _graph(q.graph_name), gone)
            for quads, gone in ((changes.added, False), (changes.removed, True))
            for q in quads
        ]
        if changed and session.overlapping(changed):
            session.use_workspace()
        rounds = derivations = added = removed = 0
        by_rule: dict[str, int] = {}
        while changed:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise RuleError(f"inferences still change after {MAX_ROUNDS} rounds")
            result = session.round(changed)
            derivations += result.derivations
            added += len(result.added)
            removed += len(result.removed)
            for name, count in result.by_rule.items():
                by_rule[name] = by_rule.get(name, 0) + count
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
        )


class _Round:
    def __init__(self) -> None:
        self.added: list[ox.Triple] = []
        self.removed: list[ox.Triple] = []
        self.derivations = 0
        self.by_rule: dict[str, int] = {}


class _Rows(list):
    """A query's solutions kept for the rest of a round: a list that still has ``variables``."""

    def __init__(self, solutions: ox.QuerySolutions) -> None:
        super().__init__(solutions)
        self.variables = solutions.variables


class _Session:
    """The rule inputs of one store, and the queries one update needs.

    Most of an update's time goes to query overhead (parsing and planning, ~0.1-0.3 ms
    each at 1M triples), not to the answers, so within a round (the store does not change
    until its write) each distinct query runs once: the guard several ladder rules share
    (no referral between this customer and this firm) is asked once, and the reaching
    chains that the patterns of many rules have in common are followed once. What is asked
    about many triples (where each is stated, what used it) is one query with a VALUES
    table, not one query per triple.
    """

    def __init__(self, store: Store, rules: list[Rule]) -> None:
        self.store = store
        self.rules = rules
        self.by_name = {rule.name: rule for rule in rules}
        self.derived = _derived(rules)
        self.focused = self.derived.focused
        self.inputs: list[str | None] = [None]
        self.inputs += [g for g in store.graph_names() if g not in NOT_RULE_INPUT]
        self.readable = [*self.inputs, INFERRED_GRAPH]
        self.by_key = self.derived.by_key
        self.memo: dict[object, object] = {}
        #: The stored lines (predicate, object) of the derivations ``recorded`` found.
        self.records: dict[ox.NamedNode, set[tuple[object, object]]] = {}
        #: Constant predicates and classes some graph the rules do not read also holds.
        self.shared = _shared_terms(store, self.derived) if _UNREAD_KNOWN else None
        self.union_templates = self.derived.union_templates(self.shared)
        #: The changed triples and all triples about the resources they name.
        self.near = ox.Store()
        self.near_subjects: set[object] = set()
        #: Where the rules are evaluated when input graphs share facts (``use_workspace``).
        self.work: ox.Store | None = None

    # --- facts stated in several graphs -------------------------------------------------
    def overlapping(self, changed: list[Located]) -> bool:
        """Whether some fact is stated in more than one input graph (then the rules' queries
        over the union of the graphs would find one solution per copy of each premise).

        Found by a full run (``rules.SHARED_FACTS``) or, once per store object, counted
        (``_shares_facts``: ~0.2 s at 100k triples); then kept up to date from the writes:
        an added triple stated elsewhere too makes it true; while it is true, a removal has
        it counted again, so it turns false once the copies are gone. (A wrong answer costs
        time, never correctness: either way the rules find the same solutions.)
        """
        known = SHARED_FACTS.get(self.store)
        if known is False:
            added = [t for t, graph, gone in changed if not gone and graph != INFERRED_GRAPH]
            where, _ = self.locate_all(added) if added else ({}, set())
            known = any(len(graphs) > 1 for graphs in where.values())
        elif known is None or any(gone for _, _, gone in changed):
            known = _shares_facts(self.store, self.inputs)  # (adding cannot end a sharing)
        SHARED_FACTS[self.store] = known
        return known

    def use_workspace(self) -> None:
        """Evaluate the rules of this update over an in-memory copy holding each fact once
        (``rules.distinct_workspace``, as a full run does) and the inferences, kept in step
        with every round's write.

        On the store itself a rule of k patterns over facts held in N graphs found N^k
        solutions per conclusion (the demo under 6 graph names: 468 s for one purchase,
        in pyoxigraph's joins, with DISTINCT). Copying the inputs costs what a full run's
        copy does (a fraction of a second at 100k triples); it is paid only while some
        fact is stated twice.
        """
        self.work = distinct_workspace(self.store, with_inferred=True)

    # --- queries ----------------------------------------------------------------------
    def query(
        self, sparql: str, bound: Mapping[ox.Variable, object], union: bool | None = None
    ) -> object:
        """A query over the rule inputs, answered once per round for the same text and values.

        ``union``: whether no graph but the rule inputs can match its patterns, so it may
        read the union of all graphs (one index, where a list of graphs takes one per
        graph: 1.5-3 times faster); by default, whether it is such a query of a rule.
        """
        key = (_canonical(sparql), tuple(sorted(bound.items(), key=lambda item: item[0].value)))
        if key in self.memo:
            return self.memo[key]
        if union is None:
            union = sparql in self.union_templates
        sparql = _fill_focus_slot(sparql, bound)
        sparql, rest = bind_values(sparql, bound)
        if self.work is not None:  # the distinct facts and the inferences (``use_workspace``)
            result = self.work.query(sparql, use_default_graph_as_union=True, substitutions=rest)
        else:
            result = self.store.query(
                sparql,
                default_graph=None if union else self.readable,
                substitutions={v.value: t for v, t in rest.items()},
            )
        if isinstance(result, ox.QuerySolutions):
            result = _Rows(result)
        elif isinstance(result, ox.QueryBoolean):
            result = bool(result)
        else:
            return result  # triples: read once, by the caller
        self.memo[key] = result
        return result

    def rows(
        self,
        sparql: str,
        names: str,
        table: list[tuple[object, ...]],
        graphs: list[str | None] | None,
    ) -> list[ox.QuerySolution]:
        """``sparql`` with ``VALUES (names) { table }`` at its slot (IRIs and literals only).

        ``graphs`` None: the union default graph (and GRAPH ?g over every named graph).
        """
        found: list[ox.QuerySolution] = []
        for start in range(0, len(table), _TABLE_ROWS):
            values = "\n" + values_table(names, table[start : start + _TABLE_ROWS]) + "\n"
            found += self.store.query(sparql.replace(VALUES_SLOT, values, 1), default_graph=graphs)
        return found

    def locate_all(
        self, triples: Iterable[ox.Triple]
    ) -> tuple[dict[ox.Triple, list[str | None]], set[ox.Triple]]:
        """For each triple the input graphs holding it ([] if only inferred, or nowhere), and
        those the inferred graph holds: one query for all."""
        triples = list(dict.fromkeys(triples))
        table = [t for t in triples if _inline(t)]
        where: dict[ox.Triple, list[str | None]] = {t: [] for t in triples}
        inferred: set[ox.Triple] = set()
        rows = [(ox.Literal(i), t.subject, t.predicate, t.object) for i, t in enumerate(table)]
        inputs = set(self.inputs[1:])
        named: dict[ox.Triple, set[str]] = {}
        for s in self.rows(_HELD, "?i ?s ?p ?o", rows, [None]):
            triple = table[int(s["i"].value)]
            graph = s["g"]
            if graph is None:
                where[triple].append(None)
            elif graph.value == INFERRED_GRAPH:
                inferred.add(triple)
            elif graph.value in inputs:
                named.setdefault(triple, set()).add(graph.value)
        for triple, graphs in named.items():
            where[triple] += sorted(graphs)
        for triple in triples:
            if not _inline(triple):  # a blank node: VALUES cannot hold it
                where[triple] = self.locate(triple)
                terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
                ask = "ASK { ?s ?p ?o }"
                if self.store.query(ask, default_graph=[INFERRED_GRAPH], substitutions=terms):
                    inferred.add(triple)
        return where, inferred

    def locate(self, triple: ox.Triple) -> list[str | None]:
        """The input graphs holding ``triple``; [] if only inferred (or nowhere)."""
        terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
        found: list[str | None] = []
        if self.store.query("ASK { ?s ?p ?o }", default_graph=[None], substitutions=terms):
            found.append(None)
        holding = self.store.query(
            "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }", substitutions=terms
        )
        named = {s["g"].value for s in holding} & set(self.inputs[1:])
        return found + sorted(named)

    # --- one round ----------------------------------------------------------------------
    def round(self, changed: list[Located]) -> _Round:
        result = _Round()
        self.memo = {}  # the last round's write changed the store
        foci, creating = self.reached(changed)
        if not foci:
            return result
        old = self.recorded(foci)
        new: dict[tuple[str, ox.NamedNode], list[Derivation]] = {}
        for name, focus in sorted(foci, key=str):
            rule = self.by_name[name]
            if not old[(name, focus)] and (
                (name, focus) not in creating or self.cannot_hold(rule, focus)
            ):
                new[(name, focus)] = []
                continue
            found = evaluate(self.query, self.focused[name], focus)
            if self.focused[name] is not rule:
                found = [Derivation(rule, d.bindings, d.premises, d.conclusions) for d in found]
            new[(name, focus)] = found
        concluded = {c for ds in new.values() for d in ds for c in d.conclusions}
        touched = {c for records in old.values() for _, c in records} | concluded
        premises = {p for ds in new.values() for d in ds for p in d.premises}
        where, inferred = self.locate_all([*sorted(touched, key=str), *sorted(premises, key=str)])
        unasserted = {c for c in touched if not where[c]}
        others = self.supported_elsewhere(unasserted - concluded, foci)
        inferred_after = (unasserted & concluded) | others
        inferred_before = inferred & touched
        result.added = sorted(inferred_after - inferred_before, key=str)
        result.removed = sorted(inferred_before - inferred_after, key=str)
        kept = keep_inferred([d for ds in new.values() for d in ds], inferred_after)
        for derivation in kept:
            result.by_rule[derivation.rule.name] = result.by_rule.get(derivation.rule.name, 0) + 1
        result.derivations = len(kept)
        old_iris = {d for records in old.values() for d, _ in records}
        self.write(old_iris, kept, result, where)
        if self.work is not None:  # the next round reads this round's inferences
            node = ox.NamedNode(INFERRED_GRAPH)
            for triple in result.removed:
                self.work.remove(ox.Quad(triple.subject, triple.predicate, triple.object, node))
            self.work.extend(ox.Quad(t.subject, t.predicate, t.object, node) for t in result.added)
        return result

    def reached(
        self, changed: list[Located]
    ) -> tuple[set[tuple[str, ox.NamedNode]], set[tuple[str, ox.NamedNode]]]:
        """The (rule, focus) pairs whose conclusions the changed triples may alter, and
        those of them where the rule may come to hold.

        The others can only lose derivations (a premise removed, a FILTER NOT EXISTS
        matched by a new triple): without recorded ones they need no evaluation.
        """
        pairs: set[tuple[str, ox.NamedNode]] = self.recorded_users(changed)
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

    def readers(self, triple: ox.Triple) -> list[_Reader]:
        """The patterns whose predicate and object are the triple's or variables."""
        found: list[_Reader] = []
        for key in (
            (triple.predicate, triple.object),
            (triple.predicate, None),
            (None, triple.object),
            (None, None),
        ):
            found += self.by_key.get(key, [])
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
        found = self.rows(_ABOUT, "?s", [(n,) for n in named], self.readable)
        for solution in found:
            local.add(ox.Quad(solution["s"], solution["p"], solution["o"]))
        self.near_subjects = set(named) if len(found) < _ABOUT_LIMIT else set()
        for subject in subjects:
            if not isinstance(subject, ox.NamedNode):
                for solution in self.store.query(
                    "SELECT ?p ?o WHERE { ?s ?p ?o }",
                    default_graph=self.readable,
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
        union = _separate(pattern, self.shared)
        return bool(list(self.query(sparql, {}, union)))

    def foci(
        self, rule: Rule, bound: Mapping[str, object], changed_subject: object
    ) -> set[tuple[str, ox.NamedNode]]:
        """The resources the rule's triple patterns reach from ``bound`` (a superset).

        The changed triple's subject (a new purchase, say) is first followed alone along
        its chain of patterns to the focus: a query with one constant is one the planner
        starts from it, while with several (the purchase and its firm) it may start from
        the firm and join its 20,000 relationships at 1M triples. The answer may hold
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
            chain = self.derived.reach(rule, frozenset([name]))
            if chain is not None:
                found = self.reach(rule, chain, {name: bound[name]}, FOCI_LIMIT + 1)
                if len(found) <= FOCI_LIMIT:
                    return found
        chain = self.derived.reach(rule, frozenset(bound))
        if chain is None:
            solutions = self.query(rule.reach_sparql, {ox.Variable(k): v for k, v in bound.items()})
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
            solutions = self.query(sparql, {}, all(_separate(p, self.shared) for p in chain))
        return {
            (rule.name, s[rule.focus]) for s in solutions if isinstance(s[rule.focus], ox.NamedNode)
        }

    def recorded_users(self, changed: list[Located]) -> set[tuple[str, object]]:
        """The (rule, focus) of every recorded derivation that used a removed triple.

        An added triple (or one added to another graph) was used by no derivation yet:
        the derivations it now supports, or that now record it in one more graph, are
        the ones its patterns reach.
        """
        statements = sorted({statement_iri(t, g) for t, g, gone in changed if gone}, key=str)
        found = set()
        for solution in self.rows(
            _USERS, "?statement", [(s,) for s in statements], [PROVENANCE_GRAPH]
        ):
            name = solution["rule"].value.rsplit(":", 1)[-1]
            if name in self.by_name:
                found.add((name, solution["focus"]))
        return found

    def recorded(
        self, foci: set[tuple[str, object]]
    ) -> dict[tuple[str, object], list[tuple[ox.NamedNode, ox.Triple]]]:
        """The recorded derivations of each (rule, focus), each with a conclusion; their
        stored lines are kept for ``write`` (``self.records``).

        Where a rule's conclusions are fixed by its focus (``?relationship a rm:Client``)
        their statement nodes are looked up directly: the statements about a resource
        are many and scattered (their IRIs are digests), a cold read of them all took
        2.3 ms where these took 0.3 ms at 1M triples.
        """
        found: dict[tuple[str, object], set[tuple[ox.NamedNode, ox.Triple]]] = {
            pair: set() for pair in foci
        }
        iris = {ox.NamedNode(self.by_name[name].iri): name for name, _ in foci}
        fixed: dict[tuple[ox.NamedNode, ox.NamedNode], tuple[tuple[str, object], ox.Triple]]
        fixed = {}
        rest = []
        for name, focus in foci:
            rule = self.by_name[name]
            if _inline(focus) and all(
                _inline(p.predicate) and _inline(p.object) for p in rule.conclusions
            ):
                for pattern in rule.conclusions:
                    triple = ox.Triple(focus, pattern.predicate, pattern.object)
                    key = (statement_iri(triple, INFERRED_GRAPH), ox.NamedNode(rule.iri))
                    fixed[key] = ((name, focus), triple)
            elif _inline(focus):
                rest.append((ox.NamedNode(rule.iri), focus))
        self.records = {}
        by_statement = sorted(fixed, key=str)
        by_focus = sorted(rest, key=str)
        for start in range(0, max(len(by_statement), len(by_focus)), _TABLE_ROWS):
            sparql = _RECORDED_WITH_LINES.replace(
                "#statements", values_table("?c ?rule", by_statement[start : start + _TABLE_ROWS])
            ).replace("#foci", values_table("?rule ?focus", by_focus[start : start + _TABLE_ROWS]))
            for s in self.store.query(sparql, default_graph=[PROVENANCE_GRAPH]):
                d = s["d"]
                if s["focus"] is None:
                    pair, triple = fixed[(s["c"], s["rule"])]
                else:
                    pair = (iris[s["rule"]], s["focus"])
                    triple = ox.Triple(s["focus"], s["p"], s["o"])
                found[pair].add((d, triple))
                self.records.setdefault(d, set()).add((s["lp"], s["lo"]))
        for name, focus in foci:
            if not _inline(focus):  # a blank node: one query of its own
                bound = {
                    ox.Variable("rule"): ox.NamedNode(self.by_name[name].iri),
                    ox.Variable("focus"): focus,
                }
                sparql, rest = bind_values(_RECORDED, bound)
                for s in self.store.query(
                    sparql,
                    default_graph=[PROVENANCE_GRAPH],
                    substitutions={v.value: t for v, t in rest.items()},
                ):
                    found[(name, focus)].add((s["d"], ox.Triple(focus, s["p"], s["o"])))
        return {pair: sorted(records, key=str) for pair, records in found.items()}

    def supported_elsewhere(
        self, triples: set[ox.Triple], foci: set[tuple[str, object]]
    ) -> set[ox.Triple]:
        """Those of ``triples`` a recorded derivation of a (rule, focus) not re-evaluated
        in this round still concludes."""
        by_statement = {statement_iri(t, INFERRED_GRAPH): t for t in triples}
        table = sorted(((s,) for s in by_statement), key=str)
        found = set()
        for solution in self.rows(_GENERATED_BY, "?statement", table, [PROVENANCE_GRAPH]):
            triple = by_statement[solution["statement"]]
            name = solution["rule"].value.rsplit(":", 1)[-1]
            if (name, triple.subject) not in foci:
                found.add(triple)
        return found

    def write(
        self,
        old: set[ox.NamedNode],
        new: list[Derivation],
        result: _Round,
        locations: Mapping[ox.Triple, list[str | None]],
    ) -> None:
        """One update: what changed in the derivations' records, the inferred delta, and the
        statement nodes nothing points to any more; none when nothing changed.

        A round mostly derives again what it had (the last round of an update only checks
        that a new class changes nothing more): only the lines that differ are written.
        """
        lines: set[str] = set()
        for derivation in new:
            lines.update(derivation_lines(derivation, locations))
        stored, used = self.stored_records(old)
        still = _statements(new, locations)  # used again by a new derivation: they stay
        candidates = " ".join(str(s) for s in sorted(used - still, key=str))
        parts = []
        if stored is None:  # a blank node in a record: DELETE DATA cannot name it
            derivations = " ".join(str(d) for d in sorted(old, key=str))
            parts.append(
                f"DELETE {{ GRAPH <{PROVENANCE_GRAPH}> {{ ?d ?p ?o }} }} WHERE {{"
                f" GRAPH <{PROVENANCE_GRAPH}> {{ VALUES ?d {{ {derivations} }} ?d ?p ?o }} }}"
            )
            written = lines
        else:
            gone = stored - lines
            if gone:
                body = "\n".join(sorted(gone))
                parts.append(f"DELETE DATA {{ GRAPH <{PROVENANCE_GRAPH}> {{ {body} }} }}")
            known = {str(s) for s in used}  # their records are stored (an old derivation's)
            written = {line for line in lines - stored if line.split(" ", 1)[0] not in known}
        if result.removed:
            parts.append(f"DELETE DATA {{ GRAPH <{INFERRED_GRAPH}> {{ {_nt(result.removed)} }} }}")
        if result.added:
            parts.append(f"INSERT DATA {{ GRAPH <{INFERRED_GRAPH}> {{ {_nt(result.added)} }} }}")
        if written:
            body = "\n".join(sorted(written))
            parts.append(f"INSERT DATA {{ GRAPH <{PROVENANCE_GRAPH}> {{ {body} }} }}")
        if candidates:
            # the old derivations' statement nodes that nothing points to any more
            parts.append(
                f"DELETE {{ GRAPH <{PROVENANCE_GRAPH}> {{ ?st ?p ?o }} }} WHERE {{"
                f" GRAPH <{PROVENANCE_GRAPH}> {{ VALUES ?st {{ {candidates} }} ?st ?p ?o"
                f" FILTER NOT EXISTS {{ ?any ?used ?st }} }} }}"
            )
        if parts:
            self.store.update(" ;\n".join(parts), system=True)

    def stored_records(self, derivations: set[ox.NamedNode]) -> tuple[set[str] | None, set]:
        """The derivations' stored lines (None if one holds a blank node) and the statement
        nodes they point to."""
        missing = [(d,) for d in sorted(derivations, key=str) if d not in self.records]
        for s in self.rows(_RECORDS, "?d", missing, [PROVENANCE_GRAPH]):
            self.records.setdefault(s["d"], set()).add((s["p"], s["o"]))
        lines: set[str] = set()
        used = set()
        blank = False
        for d in derivations:
            for p, o in self.records.get(d, ()):
                blank = blank or isinstance(o, ox.BlankNode)
                lines.add(f"{d} {p} {o} .")
                if isinstance(o, ox.NamedNode) and o.value.startswith(STATEMENT_IRI_PREFIX):
                    used.add(o)
        return (None if blank else lines), used


_PROV = f"PREFIX prov: <{PROV}>\nPREFIX rdf: <{RDF}>\n"


def _shares_facts(store: Store, inputs: list[str | None]) -> bool:
    """Whether two of the input graphs state a fact in common: whether counting the facts
    of every input graph finds more than counting each fact once.

    Counted by the store, in one query (0.16 s at 100k triples, where the SPARQL join of
    every graph with every other took 3.1 s and reading the graphs out 1 s).
    """
    solutions = store.query(
        _COUNT_FACTS, default_graph=[None], named_graphs=inputs[1:] or ["urn:relmark:none"]
    )
    row = next(iter(solutions), None)
    if row is None or row["all"] is None:
        return False
    return int(row["all"].value) > int(row["distinct"].value)


#: Every input fact counted once per graph stating it (?all) and once (?distinct).
_COUNT_FACTS = (
    "SELECT (COUNT(*) AS ?distinct) (SUM(?copies) AS ?all) {"
    " SELECT ?s ?p ?o (COUNT(*) AS ?copies) {"
    " { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } } GROUP BY ?s ?p ?o }"
)
#: Rows per VALUES table (one query each).
_TABLE_ROWS = 500
_RECORDS = f"SELECT ?d ?p ?o WHERE {{{VALUES_SLOT}?d ?p ?o }}"
#: Run with the default graph alone as default: ?g unbound there, else the named graph.
_HELD = f"SELECT ?i ?g WHERE {{{VALUES_SLOT}{{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }} }}"
#: More triples than this about the changed resources: they are not all looked at.
_ABOUT_LIMIT = 20_000
_ABOUT = f"SELECT ?s ?p ?o WHERE {{{VALUES_SLOT}?s ?p ?o }} LIMIT {_ABOUT_LIMIT}"
_USERS = _PROV + (
    f"SELECT ?rule ?focus ?statement WHERE {{ {VALUES_SLOT}"
    " ?d prov:used ?statement ; prov:used ?rule ; prov:generated ?c . ?rule a prov:Plan ."
    " ?c rdf:subject ?focus . }"
)
_RECORDED = _PROV + (
    f"SELECT ?d ?p ?o ?rule ?focus WHERE {{ {VALUES_SLOT}"
    " ?c rdf:subject ?focus ; rdf:predicate ?p ; rdf:object ?o ."
    " ?d prov:generated ?c ; prov:used ?rule . }"
)
#: A rule's derivations of a focus, found from their conclusions' statements (?c ?rule)
#: or from the focus (?rule ?focus), with every line of their records (?lp ?lo).
_RECORDED_WITH_LINES = _PROV + (
    "SELECT ?d ?c ?rule ?focus ?p ?o ?lp ?lo WHERE {"
    " { #statements ?d prov:generated ?c ; prov:used ?rule . }"
    " UNION { #foci ?c rdf:subject ?focus ; rdf:predicate ?p ; rdf:object ?o ."
    " ?d prov:generated ?c ; prov:used ?rule . }"
    " ?d ?lp ?lo . }"
)
_GENERATED_BY = _PROV + (
    f"SELECT ?rule ?statement WHERE {{ {VALUES_SLOT}"
    " ?d prov:generated ?statement ; prov:used ?rule . ?rule a prov:Plan . }"
)
#: Where a focused rule's sub-select takes the focus as a VALUES row (``_focused``).
FOCUS_SLOT = "\n#relmark:focus-values\n"


def _graph(name: ox.NamedNode | ox.DefaultGraph) -> str | None:
    return name.value if isinstance(name, ox.NamedNode) else None


def _nt(triples: Iterable[ox.Triple]) -> str:
    return ox.serialize(sorted(triples, key=str), format=ox.RdfFormat.N_TRIPLES).decode("utf-8")


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


def _reach(rule: Rule, bound: frozenset[str]) -> tuple[Pattern, ...] | None:
    """The patterns on the shortest chains from the bound variables to the rule's focus.

    pyoxigraph plans a rule's whole WHERE poorly from a few bound values (20-100 ms where
    the chain with constants takes well under 1 ms). The chain may reach more foci than
    the full pattern would, never fewer; the rule itself then decides for each one.
    """
    chosen: list[Pattern] = []
    for start in sorted(bound):
        path = _chain(rule.premises, start, rule.focus)
        if path is None:
            return None
        chosen += [p for p in path if p not in chosen]
    return tuple(chosen)


def _term_text(term: object, bound: Mapping[str, object]) -> str:
    """A pattern position as SPARQL: a bound IRI or literal in its own N-Triples form."""
    if isinstance(term, ox.Variable) and isinstance(
        bound.get(term.value), ox.NamedNode | ox.Literal
    ):
        return str(bound[term.value])
    return str(term)


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


def _groups(rule: Rule) -> list[tuple[tuple[Pattern, ...], frozenset[str], str | None]]:
    """The rule's pattern groups, each with the variables it shares with the rule's WHERE
    and the change that can make the rule hold through it (``_Reader``).

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
    """Whether a query's text (its comment lines aside) says EXISTS."""
    code = "\n".join(line for line in sparql.splitlines() if not line.lstrip().startswith("#"))
    return re.search(r"\bEXISTS\b", code, re.IGNORECASE) is not None


class _Derived:
    """What the updates of one rule set share, worked out once (hashing 48 rules per use
    of a cache took a millisecond per update)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.focused = {rule.name: _focused(rule) for rule in rules}
        #: Every pattern a rule reads or concludes, by its predicate and object (None: a
        #: variable there), so that a changed triple is tried on the patterns it may match.
        self.by_key: dict[tuple[object, object], list[_Reader]] = {}
        none = frozenset()
        for rule in rules:
            entries: list[_Reader] = [(rule, p, None, none, none, None) for p in rule.conclusions]
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
                key = tuple(
                    None if isinstance(t, ox.Variable) else t
                    for t in (pattern.predicate, pattern.object)
                )
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


_DERIVED: dict[int, _Derived] = {}


def _derived(rules: list[Rule]) -> _Derived:
    """The rule set's ``_Derived`` (by identity: ``maintain.rules_for`` parses it once)."""
    found = _DERIVED.get(id(rules))
    if found is None or found.rules is not rules:
        if len(_DERIVED) > 8:
            _DERIVED.clear()
        found = _DERIVED[id(rules)] = _Derived(rules)
    return found


def _focused(rule: Rule) -> Rule:
    """The rule with its focus bound inside each sub-select grouped by it, too.

    pyoxigraph computes a sub-select's aggregate over the whole store before joining it
    with the focus (``account-global`` with one account bound: 250 ms at 1M triples; with
    the account bound inside the sub-select: 1 ms). Restricting a sub-select to the focus
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


def _fill_focus_slot(sparql: str, bound: Mapping[ox.Variable, object]) -> str:
    """A focused rule's sub-select slots filled with the focus's value (``_focused``)."""
    if "#relmark:focus-values" not in sparql:
        return sparql

    def values(match: re.Match) -> str:
        value = bound.get(ox.Variable(match.group(1)))
        if isinstance(value, ox.NamedNode | ox.Literal):
            return f"\nVALUES ?{match.group(1)} {{ {value} }}\n"
        return "\n"

    return _FOCUS_MARK.sub(values, sparql)


@functools.lru_cache(maxsize=4096)
def _canonical(sparql: str) -> str:
    """A query's text without comment lines and, where that is safe, runs of white space.

    Two rules' copies of one guard differ only there (and in their headers): the same key
    lets a round ask it once.
    """
    if '"""' in sparql or "'''" in sparql:
        return sparql
    lines = [line for line in sparql.splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    if '"' in text or "'" in text or "#" in re.sub(r"<[^<>\s]*>", "", text):
        return text  # a literal, or a comment after a pattern: white space may matter
    return " ".join(text.split())


def _inline(item: object) -> bool:
    """Whether a term (or each term of a triple) can be written into a VALUES table."""
    if isinstance(item, ox.Triple):
        return all(_inline(t) for t in (item.subject, item.predicate, item.object))
    return isinstance(item, ox.NamedNode | ox.Literal)


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


def _statements(
    derivations: list[Derivation], locations: Mapping[ox.Triple, list[str | None]]
) -> set[ox.NamedNode]:
    """The statement nodes the derivations' records point to (``derivation_lines``)."""
    found = set()
    for derivation in derivations:
        found |= {statement_iri(c, INFERRED_GRAPH) for c in derivation.conclusions}
        for premise in derivation.premises:
            for graph in locations.get(premise) or [INFERRED_GRAPH]:
                found.add(statement_iri(premise, graph))
    return found


#: Whether the graphs rules do not read are the provenance, shapes and meta graphs alone.
_UNREAD_KNOWN = {INFERRED_GRAPH, PROVENANCE_GRAPH, SHAPES_GRAPH, META_GRAPH} == NOT_RULE_INPUT
#: The predicates and classes of the provenance record (``provenance.py``).
_PROVENANCE_TERMS = frozenset(
    [RDFS_LABEL, RDFS_COMMENT, DCTERMS_SOURCE, PROV_PLAN]
    + [ox.NamedNode(RDF + name) for name in ("subject", "predicate", "object")]
    + [ox.NamedNode(PROV + name) for name in ("used", "generated", "atLocation")]
)


def _shared_terms(store: Store, derived: _Derived) -> frozenset[object] | None:
    """The constant predicates (and classes, for ``a``) of the rules' patterns that a graph
    the rules do not read holds too; None when that is not known.

    The provenance graph's vocabulary is its own (``provenance.py``), the meta graph's
    too; only the shapes graph could use a rule's terms, so the answer is kept as long
    as its content hash is the same.
    """
    key_triple = f"<{SHAPES_GRAPH}> <{CONTENT_HASH.value}> ?h"
    found = list(store.query(f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ {key_triple} }} }}"))
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
        graphs = [SHAPES_GRAPH, META_GRAPH]
        shared = {s["term"] for s in store.query(sparql, default_graph=graphs)}
        shared |= _PROVENANCE_TERMS  # the provenance record uses these alone
        derived.shared[key] = frozenset(shared)
    return derived.shared[key]


def _separate(pattern: Pattern, shared: frozenset[object] | None) -> bool:
    """Whether no triple of a graph the rules do not read can match ``pattern``."""
    if shared is None or not isinstance(pattern.predicate, ox.NamedNode):
        return False
    if pattern.predicate == RDF_TYPE:
        return isinstance(pattern.object, ox.NamedNode) and pattern.object not in shared
    return pattern.predicate not in shared


def _union_templates(
    rules: list[Rule], focused: Mapping[str, Rule], shared: frozenset[object] | None
) -> frozenset[str]:
    """The rules' query texts that may read the union of all graphs (``_separate``).

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
            if all(_separate(p, shared) for p in patterns):
                texts.add(text)
    return frozenset(texts)
