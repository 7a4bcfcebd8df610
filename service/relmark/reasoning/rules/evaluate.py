"""Evaluating one rule: its solutions, its guards checked in batches, one derivation per
conclusion.

The same ``evaluate`` serves a full run, the incremental engine (with the focus bound) and
the remote engine: only the ``Query`` function differs, so all three record the same
derivations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import pyoxigraph as ox

from relmark.reasoning.rules.model import VALUES_SLOT, Guard, Rule, SubSelect, Value
from relmark.reasoning.rules.provenance import Derivation


class Solutions(Protocol):
    """A SELECT's answer as the evaluator reads it: pyoxigraph's, or a list kept for a round
    (``incremental.reads``) that still names its variables."""

    @property
    def variables(self) -> list[ox.Variable]: ...

    def __iter__(self) -> Iterator[ox.QuerySolution]: ...


#: Runs a SELECT over the rule inputs with some variables bound.
Query = Callable[[str, Mapping[ox.Variable, Value]], Solutions]


def bind_values(
    sparql: str, bound: Mapping[ox.Variable, Value]
) -> tuple[str, dict[ox.Variable, Value]]:
    """Bind IRIs and literals through a VALUES row at ``VALUES_SLOT``; the rest stay
    substitutions.

    pyoxigraph's query planner does not see substituted variables as bound, so a pattern
    joined on one can scan a whole predicate, where a VALUES row is joined first. The
    terms are written in their own N-Triples form by pyoxigraph, never built from text,
    so a value cannot change the query; blank nodes and triple terms,
    which VALUES cannot hold, stay substitutions.
    """
    if not bound or VALUES_SLOT not in sparql:
        return sparql, dict(bound)
    inline = {v: t for v, t in bound.items() if isinstance(t, ox.NamedNode | ox.Literal)}
    if not inline:
        return sparql, dict(bound)
    names = " ".join(str(v) for v in inline)
    values = "\n" + values_table(names, [tuple(inline.values())]) + "\n"
    rest = {v: t for v, t in bound.items() if v not in inline}
    return sparql.replace(VALUES_SLOT, values, 1), rest


def values_table(names: str, rows: Iterable[Iterable[object]]) -> str:
    """``VALUES (names) { (row) … }`` with each term in its own N-Triples form (``str`` of a
    pyoxigraph term; a Python int for a row number): values are never pasted from text."""
    body = " ".join("(" + " ".join(str(t) for t in row) + ")" for row in rows)
    return f"VALUES ({names}) {{ {body} }}"


def evaluate(query: Query, rule: Rule, focus: Value | None = None) -> list[Derivation]:
    """The rule's derivations, one per distinct conclusion: the least bindings win.

    One derivation is enough to explain a conclusion, and choosing the least bindings
    makes a full run and an incremental update record the same one. ``focus`` restricts
    the rule to one resource (the subject of its conclusions).
    """
    bound = {} if focus is None else {ox.Variable(rule.focus): focus}
    solutions = query(rule.match_sparql, bound)
    names = [v.value for v in solutions.variables]
    rows: list[tuple[tuple[ox.Triple, ...], dict[str, Value]]] = []
    for solution in solutions:
        row = {n: value for n, value in zip(names, solution, strict=True) if value is not None}
        if focus is not None:
            row[rule.focus] = focus
        conclusions = tuple(
            dict.fromkeys(c for c in (p.instantiate(row) for p in rule.conclusions) if c)
        )
        if conclusions:
            rows.append((conclusions, row))
    blocked = _blocked(query, rule, [row for _, row in rows])
    # conclusions -> [its least bindings as text, or None while only one row concluded it;
    # that row] (most conclusions have one row: the text is made only when a second comes)
    best: dict[tuple[ox.Triple, ...], list] = {}
    for number, (conclusions, row) in enumerate(rows):
        if number in blocked:
            continue
        entry = best.get(conclusions)
        if entry is None:
            best[conclusions] = [None, row]
            continue
        if entry[0] is None:
            entry[0] = _order(entry[1])
        order = _order(row)
        if order < entry[0]:
            best[conclusions] = [order, row]
    derivations = []
    for conclusions, (_, row) in best.items():
        premises = [p.instantiate(row) for p in rule.premises]
        for subselect in rule.subselects:
            premises += _subselect_premises(query, subselect, row)
        premise_set = tuple(dict.fromkeys(p for p in premises if p is not None))
        kept = tuple(c for c in conclusions if c not in premise_set)
        if kept:
            bindings = tuple(sorted(row.items()))
            derivations.append(Derivation(rule, bindings, premise_set, kept))
    return derivations


def _order(row: Mapping[str, Value]) -> str:
    return "\n".join(f"{name}={row[name]}" for name in sorted(row))


#: Solutions checked against a guard per query (the VALUES block of one query).
GUARD_BATCH = 1000


#: The variable numbering those solutions (no rule may use it).
ROW_VARIABLE = "relmark_guard_row"


def _blocked(query: Query, rule: Rule, rows: list[dict[str, Value]]) -> set[int]:
    """The rows (by position) for which one of the rule's FILTER NOT EXISTS finds a match.

    Each guard is asked once per batch of distinct values it reads, not once per solution:
    a query's fixed cost (parsing, planning) would otherwise be paid per solution.
    """
    blocked: set[int] = set()
    for guard in rule.guards:
        # rows grouped by which of the guard's variables they bind, then by their values
        groups: dict[tuple[str, ...], dict[tuple[Value, ...], list[int]]] = {}
        for number, row in enumerate(rows):
            if number not in blocked:
                names = tuple(v for v in guard.variables if v in row)
                values = tuple(row[v] for v in names)
                groups.setdefault(names, {}).setdefault(values, []).append(number)
        for names, by_values in groups.items():
            for values in _guard_matches(query, guard, names, list(by_values)):
                blocked.update(by_values[values])
    return blocked


def _guard_matches(
    query: Query, guard: Guard, names: tuple[str, ...], candidates: list[tuple[Value, ...]]
) -> set[tuple[Value, ...]]:
    """The candidate value tuples (of ``names``) for which ``guard`` finds a match."""
    if not names:
        return set(candidates) if next(iter(query(guard.ask_sparql, {})), None) else set()
    inline = [v for v in candidates if all(isinstance(t, ox.NamedNode | ox.Literal) for t in v)]
    found: set[tuple[Value, ...]] = set()
    for start in range(0, len(inline), GUARD_BATCH):
        batch = inline[start : start + GUARD_BATCH]
        for solution in query(guard_query(guard, names, batch), {}):
            found.add(batch[int(solution[ROW_VARIABLE].value)])
    if len(inline) < len(candidates):  # blank nodes cannot be written in VALUES: one by one
        for values in set(candidates).difference(inline):
            bound = {ox.Variable(name): value for name, value in zip(names, values, strict=True)}
            if next(iter(query(guard.ask_sparql, bound)), None) is not None:
                found.add(values)
    return found


def guard_query(guard: Guard, names: tuple[str, ...], rows: Sequence[tuple[Value, ...]]) -> str:
    """A query for the positions of the rows (values of ``names``) ``guard`` matches.

    The values go in as a VALUES block written by pyoxigraph (``str`` of a term is
    its N-Triples form), each row with its position, so the guard is checked for many
    solutions in one query and each answer names its row exactly.

    A language-tagged value goes in as its text and its tag, compared in a FILTER:
    Virtuoso 7.2 loses the tag of such a literal in a VALUES block of several rows (so
    the guard would never match it). Other values stay bound directly (the fast join).
    """
    tagged = [i for i in range(len(names)) if any(_language(row[i]) for row in rows)]
    table_names, checks = [ROW_VARIABLE, *names], []
    for i in tagged:
        text, tag = f"{ROW_VARIABLE}_text_{names[i]}", f"{ROW_VARIABLE}_lang_{names[i]}"
        table_names += [text, tag]
        checks.append(
            f"(!BOUND(?{text}) || (isLiteral(?{names[i]}) && STR(?{names[i]}) = ?{text}"
            f" && LCASE(LANG(?{names[i]})) = ?{tag}))"
        )
    table = values_table(
        " ".join(f"?{name}" for name in table_names),
        (_row_terms(number, row, tagged) for number, row in enumerate(rows)),
    )
    condition = f"\nFILTER({' && '.join(checks)})\n" if checks else ""
    return (
        f"{guard.prologue}\nSELECT DISTINCT ?{ROW_VARIABLE} WHERE {{ {table}\n{guard.body}"
        f"{condition}}}"
    )


def _language(term: Value) -> str | None:
    return term.language if isinstance(term, ox.Literal) else None


def _row_terms(number: int, row: tuple[Value, ...], tagged: list[int]) -> list[object]:
    """A guard batch's row: a language-tagged value as UNDEF, then its text and its tag."""
    terms: list[object] = [number, *row]
    for i in tagged:
        term = row[i]
        if isinstance(term, ox.Literal) and term.language:
            terms[1 + i] = "UNDEF"
            terms += [ox.Literal(term.value), ox.Literal(term.language.lower())]
        else:
            terms += ["UNDEF", "UNDEF"]
    return terms


def _subselect_premises(
    query: Query, subselect: SubSelect, row: Mapping[str, Value]
) -> list[ox.Triple | None]:
    """The facts a sub-select aggregated for this solution's group."""
    keys = {ox.Variable(key): row[key] for key in subselect.keys if key in row}
    solutions = query(subselect.select_sparql, keys)
    names = [v.value for v in solutions.variables]
    premises: list[ox.Triple | None] = []
    for solution in solutions:
        inner = {name: solution[name] for name in names if solution[name] is not None}
        premises += [p.instantiate(inner) for p in subselect.patterns]
    return premises
