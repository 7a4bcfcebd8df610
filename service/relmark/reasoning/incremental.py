"""Incremental maintenance: after a write, re-derive only what the changed quads can reach.

Every rule classifies one resource, its *focus* (the subject of its conclusions). A
changed triple can only change the conclusions of the foci it reaches:

- it matches a rule's conclusion (an asserted fact now shadows or no longer shadows an
  inferred one): the focus is the triple's subject;
- it was a premise of a recorded derivation: that derivation's focus;
- it matches a triple pattern of the rule, a pattern of a ``FILTER NOT EXISTS`` or of a
  sub-select: the foci the rule's triple patterns reach from the variables it binds.

For each (rule, focus) reached, the rule is evaluated again with the focus bound (the
same ``rules.evaluate`` as a full run), the old derivations are replaced by the new ones,
and each conclusion either of them names is inferred exactly when some derivation still
supports it and no input graph asserts it. The inferred triples that changed are the
next round's changes, until nothing changes: rules that read other rules' conclusions
are reached that way. Each round is one SPARQL update, so readers never see half of one;
the result is the graph a full run would write (a test compares them).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping

import pyoxigraph as ox

from relmark.reasoning.provenance import (
    PROV,
    RDF,
    STATEMENT_IRI_PREFIX,
    Derivation,
    derivation_lines,
    statement_iri,
)
from relmark.reasoning.rules import (
    NOT_RULE_INPUT,
    ONE_RUN_AT_A_TIME,
    VALUES_SLOT,
    Pattern,
    Rule,
    RuleError,
    RunSummary,
    bind_values,
    evaluate,
    keep_inferred,
)
from relmark.store import INFERRED_GRAPH, PROVENANCE_GRAPH, Changes, Store

#: A rule set whose consequences still change after this many rounds is not stratified.
MAX_ROUNDS = 50
#: A chain reaching more resources than this is not used alone to find what a change touches.
FOCI_LIMIT = 200

Located = tuple[ox.Triple, str | None]
#: A pattern a rule reads or concludes (group None), its group and the variables it shares.
_Reader = tuple[Rule, Pattern, "tuple[Pattern, ...] | None", frozenset[str]]


def update_inferences(store: Store, rules: list[Rule], changes: Changes) -> RunSummary:
    """Bring the inferred and provenance graphs up to date with ``changes`` (already written)."""
    with ONE_RUN_AT_A_TIME:
        started = time.perf_counter()
        session = _Session(store, rules)
        changed: list[Located] = [
            (ox.Triple(q.subject, q.predicate, q.object), _graph(q.graph_name))
            for q in [*changes.added, *changes.removed]
        ]
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
            changed = [(t, INFERRED_GRAPH) for t in [*result.added, *result.removed]]
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


class _Session:
    """The rule inputs of one store, and the queries one update needs."""

    def __init__(self, store: Store, rules: list[Rule]) -> None:
        self.store = store
        self.rules = rules
        self.by_name = {rule.name: rule for rule in rules}
        self.inputs: list[str | None] = [None]
        self.inputs += [g for g in store.graph_names() if g not in NOT_RULE_INPUT]
        self.readable = [*self.inputs, INFERRED_GRAPH]
        self.by_predicate: dict[object, list[_Reader]] = {}
        for rule in rules:
            entries: list[_Reader] = [(rule, p, None, frozenset()) for p in rule.conclusions]
            for group, outer in _groups(rule):
                entries += [(rule, p, group, outer) for p in group]
            for entry in entries:
                predicate = entry[1].predicate
                key = None if isinstance(predicate, ox.Variable) else predicate
                self.by_predicate.setdefault(key, []).append(entry)

    # --- queries ----------------------------------------------------------------------
    def query(self, sparql: str, bound: Mapping[ox.Variable, object]) -> object:
        sparql, rest = bind_values(sparql, bound)
        return self.store.query(
            sparql,
            default_graph=self.readable,
            substitutions={v.value: t for v, t in rest.items()},
        )

    def provenance(self, sparql: str, bound: Mapping[ox.Variable, object]) -> object:
        sparql, rest = bind_values(sparql, bound)
        return self.store.query(
            sparql,
            default_graph=[PROVENANCE_GRAPH],
            substitutions={v.value: t for v, t in rest.items()},
        )

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
        foci = self.reached(changed)
        if not foci:
            return result
        old = {pair: self.recorded(*pair) for pair in foci}
        new: dict[tuple[str, ox.NamedNode], list[Derivation]] = {}
        for name, focus in foci:
            new[(name, focus)] = evaluate(self.query, self.by_name[name], focus)
        touched = {c for records in old.values() for _, c in records}
        touched |= {c for ds in new.values() for d in ds for c in d.conclusions}
        inferred_after = {c for c in touched if self.supported(c, foci, new)}
        inferred_before = {c for c in touched if self.is_inferred(c)}
        result.added = sorted(inferred_after - inferred_before, key=str)
        result.removed = sorted(inferred_before - inferred_after, key=str)
        kept = keep_inferred([d for ds in new.values() for d in ds], inferred_after)
        for derivation in kept:
            result.by_rule[derivation.rule.name] = result.by_rule.get(derivation.rule.name, 0) + 1
        result.derivations = len(kept)
        old_iris = {d for records in old.values() for d, _ in records}
        self.write(old_iris, kept, result)
        return result

    def reached(self, changed: list[Located]) -> set[tuple[str, ox.NamedNode]]:
        """The (rule, focus) pairs whose conclusions the changed triples may alter."""
        pairs: set[tuple[str, ox.NamedNode]] = set()
        neighbourhood = self.neighbourhood(changed)
        for triple, graph in changed:
            pairs |= self.recorded_users(triple, graph)
            for rule, pattern, group, outer in self.readers(triple.predicate):
                binding = _unify(pattern, triple)
                if binding is None:
                    continue
                if group is None:  # a conclusion: an assertion may shadow it or stop doing so
                    if isinstance(triple.subject, ox.NamedNode):
                        pairs.add((rule.name, triple.subject))
                    continue
                for bound in self.widen(binding, group, outer, neighbourhood):
                    pairs |= self.foci(rule, bound, triple.subject)
        return pairs

    def readers(self, predicate: object) -> list[_Reader]:
        """The patterns (conclusions first) whose predicate is ``predicate`` or a variable."""
        return self.by_predicate.get(predicate, []) + self.by_predicate.get(None, [])

    def neighbourhood(self, changed: list[Located]) -> ox.Store:
        """The changed triples and everything now said about their subjects, in memory.

        A changed triple often matches one pattern of a ``FILTER NOT EXISTS`` or of a
        sub-select, whose other patterns bind the variables the rule shares with it (a new
        purchase's seller only says which firm; its buyer says which relationship).
        """
        local = ox.Store()
        local.extend(ox.Quad(t.subject, t.predicate, t.object) for t, _ in changed)
        for subject in {t.subject for t, _ in changed}:
            for solution in self.query("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", {_S: subject}):
                local.add(ox.Quad(subject, solution["p"], solution["o"]))
        return local

    def widen(
        self,
        binding: dict[str, object],
        group: tuple[Pattern, ...],
        outer: frozenset[str],
        neighbourhood: ox.Store,
    ) -> list[dict[str, object]]:
        """The bindings of the rule's variables that a match of ``group`` implies.

        Where the neighbourhood cannot tell, the partial binding stands: the rule's own
        patterns then reach more resources than needed, never fewer.
        """
        bound = {k: v for k, v in binding.items() if k in outer}
        variables = {
            t.value for p in group for t in (p.subject, p.predicate, p.object) if _is_var(t)
        }
        missing = sorted((variables & outer) - bound.keys())
        if not missing:
            return [bound]
        sparql = (
            f"SELECT DISTINCT {' '.join('?' + m for m in missing)} WHERE {{{VALUES_SLOT}"
            + " ".join(f"{p.subject} {p.predicate} {p.object} ." for p in group)
            + " }"
        )
        text, rest = bind_values(sparql, {ox.Variable(k): v for k, v in binding.items()})
        found = list(neighbourhood.query(text, substitutions=rest))
        widened = [{**bound, **{m: s[m] for m in missing if s[m] is not None}} for s in found]
        return widened or [bound]

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
        if rule.focus in bound:
            focus = bound[rule.focus]
            return {(rule.name, focus)} if isinstance(focus, ox.NamedNode) else set()
        if not bound:
            return set()  # only system facts (thresholds) change that way: a full run
        for name in sorted(bound):
            if bound[name] != changed_subject:
                continue
            chain = _reach(rule, frozenset([name]))
            if chain is not None:
                found = self.reach(rule, chain, {name: bound[name]}, FOCI_LIMIT + 1)
                if len(found) <= FOCI_LIMIT:
                    return found
        chain = _reach(rule, frozenset(bound))
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
        return {
            (rule.name, s[rule.focus])
            for s in self.query(sparql, {})
            if isinstance(s[rule.focus], ox.NamedNode)
        }

    def recorded_users(self, triple: ox.Triple, graph: str | None) -> set[tuple[str, object]]:
        """The (rule, focus) of every recorded derivation that used ``triple`` from ``graph``."""
        sparql = _PROV + (
            "SELECT ?rule ?focus ?statement WHERE {" + VALUES_SLOT + "?d prov:used ?statement ;"
            " prov:used ?rule ; prov:generated ?c . ?rule a prov:Plan ."
            " ?c rdf:subject ?focus . }"
        )
        found = set()
        for solution in self.provenance(
            sparql, {ox.Variable("statement"): statement_iri(triple, graph)}
        ):
            name = solution["rule"].value.rsplit(":", 1)[-1]
            if name in self.by_name:
                found.add((name, solution["focus"]))
        return found

    def recorded(self, name: str, focus: ox.NamedNode) -> list[tuple[ox.NamedNode, ox.Triple]]:
        """The recorded derivations of a rule for one focus, each with a conclusion."""
        sparql = _PROV + (
            "SELECT ?d ?p ?o ?rule ?focus WHERE {" + VALUES_SLOT + "?c rdf:subject ?focus ;"
            " rdf:predicate ?p ; rdf:object ?o . ?d prov:generated ?c ; prov:used ?rule . }"
        )
        bound = {
            ox.Variable("rule"): ox.NamedNode(self.by_name[name].iri),
            ox.Variable("focus"): focus,
        }
        return [(s["d"], ox.Triple(focus, s["p"], s["o"])) for s in self.provenance(sparql, bound)]

    def supported(
        self,
        triple: ox.Triple,
        foci: set[tuple[str, ox.NamedNode]],
        new: Mapping[tuple[str, ox.NamedNode], list[Derivation]],
    ) -> bool:
        """Inferred after this round: some derivation concludes it and no input asserts it."""
        if self.locate(triple):
            return False
        if any(triple in d.conclusions for ds in new.values() for d in ds):
            return True
        sparql = _PROV + (
            "SELECT ?rule ?statement WHERE {" + VALUES_SLOT + "?d prov:generated ?statement ;"
            " prov:used ?rule . ?rule a prov:Plan . }"
        )
        statement = statement_iri(triple, INFERRED_GRAPH)
        for solution in self.provenance(sparql, {ox.Variable("statement"): statement}):
            name = solution["rule"].value.rsplit(":", 1)[-1]
            if (name, triple.subject) not in foci:
                return True
        return False

    def is_inferred(self, triple: ox.Triple) -> bool:
        terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
        return bool(
            self.store.query(
                "ASK { ?s ?p ?o }", default_graph=[INFERRED_GRAPH], substitutions=terms
            )
        )

    def write(self, old: set[ox.NamedNode], new: list[Derivation], result: _Round) -> None:
        """One update: old derivations out, new ones in, the inferred delta, unused statements
        collected."""
        locations = {p: self.locate(p) for d in new for p in d.premises}
        lines: set[str] = set()
        for derivation in new:
            lines.update(derivation_lines(derivation, locations))
        derivations = " ".join(str(d) for d in sorted(old, key=str))
        candidates = ""
        parts = []
        if old:
            used = self.store.query(
                f"SELECT DISTINCT ?st WHERE {{ VALUES ?d {{ {derivations} }} ?d ?p ?st"
                f' FILTER (isIRI(?st) && STRSTARTS(STR(?st), "{STATEMENT_IRI_PREFIX}")) }}',
                default_graph=[PROVENANCE_GRAPH],
            )
            candidates = " ".join(str(s["st"]) for s in used)
            parts.append(
                f"DELETE {{ GRAPH <{PROVENANCE_GRAPH}> {{ ?d ?p ?o }} }} WHERE {{"
                f" GRAPH <{PROVENANCE_GRAPH}> {{ VALUES ?d {{ {derivations} }} ?d ?p ?o }} }}"
            )
        if result.removed:
            parts.append(f"DELETE DATA {{ GRAPH <{INFERRED_GRAPH}> {{ {_nt(result.removed)} }} }}")
        if result.added:
            parts.append(f"INSERT DATA {{ GRAPH <{INFERRED_GRAPH}> {{ {_nt(result.added)} }} }}")
        if lines:
            body = "\n".join(sorted(lines))
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


_S = ox.Variable("s")
_PROV = f"PREFIX prov: <{PROV}>\nPREFIX rdf: <{RDF}>\n"


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


@functools.lru_cache(maxsize=1024)
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


def _is_var(term: object) -> bool:
    return isinstance(term, ox.Variable)


def _groups(rule: Rule) -> list[tuple[tuple[Pattern, ...], frozenset[str]]]:
    """The rule's pattern groups, each with the variables it shares with the rule's WHERE."""
    outer = frozenset(
        t.value for p in rule.premises for t in (p.subject, p.predicate, p.object) if _is_var(t)
    )
    groups = [(rule.premises, outer)]
    groups += [(guard.patterns, outer) for guard in rule.guards]
    groups += [(sub.patterns, frozenset(sub.keys) & outer) for sub in rule.subselects]
    return groups
