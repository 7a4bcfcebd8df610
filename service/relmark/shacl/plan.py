"""The queries that find a shapes graph's violations, and the checks their rows name.

Every constraint becomes a ``Check`` (what a result produced by it says) and is planned
into SELECT queries whose rows are results: ``?focus``, maybe ``?value`` and ``?path``,
and ``?failed``, the ids of the checks the row breaks. Each query finds *all* the
violations of its constraints over the whole data at once, so a validation runs a few
dozen queries whatever the data's size.

Two ways to find them, chosen per constraint (``candidate_first``):

- from the targets: enumerate the focus nodes (``generate``), then test their values;
- from the values: for a one-IRI path, find the bad values first and keep those whose
  subject is a focus node (``membership``), which is cheaper when targets are easy to test.
  Such constraints on the same predicate share one *screen*: a single pass counting the
  predicate's triples and its bad values per constraint, after which only the detailed
  queries the counts call for are run (``Screen.follow_ups``). Most screens of a clean
  load count no bad value and so cost one pass.

Class sets (``⟪classes:N⟫``) are placeholders the runner fills with each class and its
subclasses as the data declares them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from relmark.shacl.shapes import COMPONENT, RDF_TYPE, SH_, Shape, Spec


@dataclass
class Check:
    """One (shape, constraint) pair: what a result produced by it says."""

    id_: int
    shape: Shape
    parameter: str
    params: dict[str, str]
    messages: dict[str, str]
    severity: str
    class_set: int | None = None  # sh:class-like checks, re-checked against `existing`
    report_value: bool = True
    node_level: bool = False  # the value node is the focus node itself

    @property
    def component(self) -> str:
        return SH_ + COMPONENT[self.parameter]


@dataclass
class Select:
    """A SELECT whose rows are results: ?focus, maybe ?value and ?path, ?failed check ids."""

    text: str
    sparql_check: Check | None = None


@dataclass
class Screen:
    """One pass counting a predicate's triples and bad values; decides the detailed queries."""

    predicate: str
    expressions: list[tuple[str, list[tuple[Check, Spec]]]] = field(default_factory=list)
    class_checks: dict[int, list[tuple[Check, Spec]]] = field(default_factory=dict)
    max_checks: dict[int, list[tuple[Check, Spec]]] = field(default_factory=dict)
    query: str = ""
    expression_queries: list[str] = field(default_factory=list)
    class_queries: list[str] = field(default_factory=list)
    max_queries: list[tuple[int, str]] = field(default_factory=list)

    def follow_ups(self, counts: Mapping[str, int]) -> list[Select]:
        """Nothing when the predicate is unused; otherwise only what the counts call for."""
        if not counts.get("n"):
            return []
        texts = [q for i, q in enumerate(self.expression_queries) if counts.get(f"x{i}")]
        texts += self.class_queries
        # n == s: no focus node has two values, which settles every sh:maxCount but 0.
        several = counts.get("n") != counts.get("s")
        texts += [query for bound, query in self.max_queries if several or bound == 0]
        return [Select(text) for text in texts]


class Plan:
    """The checks of a shapes graph and the queries that find their violations."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.class_sets: list[frozenset[str]] = []
        self.selects: list[Select] = []
        self.screens: list[Screen] = []
        self._class_set_index: dict[frozenset[str], int] = {}
        self._screens: dict[str, Screen] = {}
        self._min_count_groups: dict[Spec, list[Check]] = defaultdict(list)
        self._counter = count()

    # -- what the queries refer to ---------------------------------------------------------

    def var(self, stem: str) -> str:
        """A fresh hidden variable, so nested patterns never join by accident."""
        return f"?_{stem}{next(self._counter)}"

    def class_set(self, classes: Iterable[str]) -> int:
        """The number of a set of classes (its ``⟪classes:N⟫`` placeholder)."""
        key = frozenset(classes)
        if key not in self._class_set_index:
            self._class_set_index[key] = len(self.class_sets)
            self.class_sets.append(key)
        return self._class_set_index[key]

    def check(self, shape: Shape, parameter: str, params: dict[str, str], **kw: Any) -> Check:
        """A new check of ``shape``'s ``parameter``; its id is what ``?failed`` names."""
        check = Check(
            id_=len(self.checks),
            shape=shape,
            parameter=parameter,
            params=params,
            messages=shape.messages,
            severity=shape.severity,
            **kw,
        )
        self.checks.append(check)
        return check

    def add_select(self, text: str, sparql_check: Check | None = None) -> None:
        self.selects.append(Select(text, sparql_check))

    # -- focus nodes -----------------------------------------------------------------------

    def membership(self, spec: Spec, v: str = "?focus") -> str:
        """True when the node in ``v`` is a focus node of the targets in ``spec``."""
        tests = []
        classes = sorted(t.term for t in spec if t.kind == "targetClass")
        if classes:
            var, index = self.var("m"), self.class_set(classes)
            tests.append(
                f"EXISTS {{ {v} {RDF_TYPE} {var} . VALUES {var} {{ ⟪classes:{index}⟫ }} }}"
            )
        for target in sorted(spec, key=lambda t: (t.kind, t.term)):
            if target.kind == "targetNode":
                tests.append(f"sameTerm({v}, {target.term})")
            elif target.kind == "targetSubjectsOf":
                tests.append(f"EXISTS {{ {v} <{target.term}> {self.var('m')} }}")
            elif target.kind == "targetObjectsOf":
                tests.append(f"EXISTS {{ {self.var('m')} <{target.term}> {v} }}")
            elif target.kind == "target":
                var = self.var("m")
                tests.append(
                    f"EXISTS {{ {{ SELECT DISTINCT (?this AS {var}) "
                    f"WHERE {{ {{ {target.term} }} }} }} FILTER(sameTerm({var}, {v})) }}"
                )
        return "(" + (" || ".join(tests) or "false") + ")"

    def generate(self, spec: Spec, v: str = "?focus") -> str:
        """A group binding ``v`` to every focus node of ``spec`` (possibly more than once)."""
        branches = []
        classes = sorted(t.term for t in spec if t.kind == "targetClass")
        if classes:
            var, index = self.var("g"), self.class_set(classes)
            branches.append(f"VALUES {var} {{ ⟪classes:{index}⟫ }} {v} {RDF_TYPE} {var} .")
        nodes = sorted(t.term for t in spec if t.kind == "targetNode")
        if nodes:
            branches.append(f"VALUES {v} {{ {' '.join(nodes)} }}")
        for target in sorted(spec, key=lambda t: (t.kind, t.term)):
            other = self.var("g")
            if target.kind == "targetSubjectsOf":
                branches.append(f"SELECT DISTINCT {v} WHERE {{ {v} <{target.term}> {other} }}")
            elif target.kind == "targetObjectsOf":
                branches.append(f"SELECT DISTINCT {v} WHERE {{ {other} <{target.term}> {v} }}")
            elif target.kind == "target":
                this = v if v == "?this" else f"(?this AS {v})"
                branches.append(f"SELECT DISTINCT {this} WHERE {{ {{ {target.term} }} }}")
        if not branches:
            return "{ FILTER(false) }"
        return "{ " + " UNION ".join(f"{{ {branch} }}" for branch in branches) + " }"

    def _flags(self, members: list[tuple[Check, Spec]]) -> str:
        """Bind ?failed to the ids of the checks whose focus nodes include ?focus."""
        parts = [f'IF({self.membership(spec)}, " {check.id_}", "")' for check, spec in members]
        joined = parts[0] if len(parts) == 1 else f"CONCAT({', '.join(parts)})"
        return f'BIND({joined} AS ?failed) FILTER(?failed != "")'

    def _screen(self, predicate: str) -> Screen:
        if predicate not in self._screens:
            self._screens[predicate] = Screen(predicate)
        return self._screens[predicate]

    @staticmethod
    def candidate_first(shape: Shape, spec: Spec) -> bool:
        """Find bad values first, then test their focus nodes: right for one-IRI paths whose
        targets are cheap to test; other paths and SPARQL targets start from the targets."""
        cheap = all(target.kind != "target" for target in spec)
        return cheap and (bool(shape.simple_path) or not shape.is_property)

    def _lacks_type(self, class_set: int, v: str) -> str:
        var = self.var("t")
        return f"MINUS {{ {v} {RDF_TYPE} {var} . VALUES {var} {{ ⟪classes:{class_set}⟫ }} }}"

    # -- one family of constraints each ----------------------------------------------------

    def value(self, check: Check, spec: Spec, expression: str) -> None:
        """A test of each value node (``expression`` true when it conforms)."""
        shape = check.shape
        if shape.simple_path and self.candidate_first(shape, spec):
            screen = self._screen(shape.simple_path)
            for known, members in screen.expressions:
                if known == expression:
                    members.append((check, spec))
                    return
            screen.expressions.append((expression, [(check, spec)]))
            return
        self.add_select(
            f"SELECT ?focus ?value ?failed WHERE {{ {self.generate(spec)} "
            f"?focus {shape.path} ?value . FILTER(!COALESCE({expression}, false)) "
            f'BIND(" {check.id_}" AS ?failed) }}'
        )

    def node_expression(self, check: Check, spec: Spec, expression: str) -> None:
        """A test of the focus node itself (a node shape's value constraint)."""
        self.add_select(
            f"SELECT ?focus ?failed WHERE {{ {self.generate(spec)} "
            f'FILTER(!COALESCE({expression}, false)) BIND(" {check.id_}" AS ?failed) }}'
        )

    def klass(self, check: Check, spec: Spec) -> None:
        """sh:class (or an sh:or of classes): an anti-join against the class set's types."""
        shape, class_set = check.shape, check.class_set or 0
        if not shape.is_property:
            self.add_select(
                f"SELECT ?focus ?failed WHERE {{ {self.generate(spec)} "
                f'{self._lacks_type(class_set, "?focus")} BIND(" {check.id_}" AS ?failed) }}'
            )
        elif shape.simple_path and self.candidate_first(shape, spec):
            members = self._screen(shape.simple_path).class_checks.setdefault(class_set, [])
            members.append((check, spec))
        else:
            self.add_select(
                f"SELECT ?focus ?value ?failed WHERE {{ {self.generate(spec)} "
                f"?focus {shape.path} ?value . {self._lacks_type(class_set, '?value')} "
                f'BIND(" {check.id_}" AS ?failed) }}'
            )

    def min_count(self, check: Check, spec: Spec, bound: int) -> None:
        if bound < 1:
            return
        if bound == 1:
            self._min_count_groups[spec].append(check)
            return
        var = self.var("v")
        self.add_select(
            f'SELECT ?focus (" {check.id_}" AS ?failed) WHERE {{ {self.generate(spec)} '
            f"OPTIONAL {{ ?focus {check.shape.path} {var} }} }} GROUP BY ?focus "
            f"HAVING (COUNT(DISTINCT {var}) < {bound})"
        )

    def max_count(self, check: Check, spec: Spec, bound: int) -> None:
        shape = check.shape
        if shape.simple_path and self.candidate_first(shape, spec):
            self._screen(shape.simple_path).max_checks.setdefault(bound, []).append((check, spec))
            return
        self.add_select(
            f'SELECT ?focus (" {check.id_}" AS ?failed) WHERE {{ {self.generate(spec)} '
            f"?focus {shape.path} ?value }} GROUP BY ?focus "
            f"HAVING (COUNT(DISTINCT ?value) > {bound})"
        )

    def pair(self, check: Check, spec: Spec, parameter: str, other: str) -> None:
        """sh:equals, sh:disjoint, sh:lessThan, sh:lessThanOrEquals against ``other``."""
        path = check.shape.path if check.shape.is_property else None
        if parameter == "disjoint" and path:
            inner = f"?focus {path} ?value . ?focus <{other}> ?value ."
        elif parameter == "disjoint":
            inner = f"?focus <{other}> ?focus . BIND(?focus AS ?value)"
        elif parameter == "equals" and path:
            inner = (
                f"{{ ?focus {path} ?value . FILTER NOT EXISTS {{ ?focus <{other}> ?value }} }} "
                f"UNION {{ ?focus <{other}> ?value . "
                f"FILTER NOT EXISTS {{ ?focus {path} ?value }} }}"
            )
        elif parameter == "equals":
            # A node shape's only value node is the focus node itself.
            inner = (
                f"{{ ?focus <{other}> ?value . FILTER(!sameTerm(?value, ?focus)) }} UNION "
                f"{{ {self.generate(spec)} FILTER NOT EXISTS {{ ?focus <{other}> ?focus }} "
                "BIND(?focus AS ?value) }"
            )
        else:
            operator = "<" if parameter == "lessThan" else "<="
            var = self.var("o")
            inner = (
                f"?focus {path} ?value . ?focus <{other}> {var} . "
                f"FILTER(!COALESCE(?value {operator} {var}, false))"
            )
        self.add_select(self._candidates(check, spec, inner, "?value"))

    def unique_lang(self, check: Check, spec: Spec) -> None:
        path, var = check.shape.path, self.var("o")
        inner = (
            f"?focus {path} ?value . ?focus {path} {var} . FILTER(!sameTerm(?value, {var}) "
            f'&& lang(?value) != "" && LCASE(lang(?value)) = LCASE(lang({var})))'
        )
        self.add_select(self._candidates(check, spec, inner, ""))

    def has_value(self, check: Check, spec: Spec, term: str) -> None:
        var = self.var("v")
        self.add_select(
            f"SELECT ?focus ?failed WHERE {{ {self.generate(spec)} FILTER NOT EXISTS "
            f"{{ ?focus {check.shape.path} {var} . FILTER(sameTerm({var}, {term})) }} "
            f'BIND(" {check.id_}" AS ?failed) }}'
        )

    def closed(self, check: Check, spec: Spec, allowed: set[str]) -> None:
        """sh:closed: every predicate of a focus node not in ``allowed`` is a result."""
        names = ", ".join(f"<{p}>" for p in sorted(allowed) if not p.startswith("_:"))
        condition = f"FILTER(?path NOT IN ({names}))" if names else ""
        self.add_select(
            f"SELECT ?focus ?path ?value ?failed WHERE {{ {self.generate(spec)} "
            f'?focus ?path ?value . {condition} BIND(" {check.id_}" AS ?failed) }}'
        )

    def _candidates(self, check: Check, spec: Spec, inner: str, value: str) -> str:
        """Candidate rows first, ignoring targets; then keep those whose ?focus is a focus node.

        With a single-IRI path the candidates are few and cheap to find, so testing their
        focus nodes beats enumerating every focus node; other paths start from the targets.
        """
        if self.candidate_first(check.shape, spec):
            return (
                f"SELECT DISTINCT ?focus {value} ?failed WHERE {{ "
                f"{{ SELECT ?focus {value} WHERE {{ {inner} }} }} {self._flags([(check, spec)])} }}"
            )
        return (
            f"SELECT DISTINCT ?focus {value} ?failed WHERE {{ {self.generate(spec)} {inner} "
            f'BIND(" {check.id_}" AS ?failed) }}'
        )

    # -- the queries shared by several checks ------------------------------------------------

    def finish(self) -> None:
        """Group minCount 1 checks by focus nodes and write each predicate's screen queries."""
        for spec, checks in self._min_count_groups.items():
            tests = [
                f'IF(EXISTS {{ ?focus {c.shape.path} {self.var("v")} }}, "", " {c.id_}")'
                for c in checks
            ]
            joined = tests[0] if len(tests) == 1 else f"CONCAT({', '.join(tests)})"
            self.add_select(
                f"SELECT ?focus ?failed WHERE {{ {self.generate(spec)} "
                f'BIND({joined} AS ?failed) FILTER(?failed != "") }}'
            )
        for predicate in sorted(self._screens):
            self.screens.append(self._finish_screen(self._screens[predicate]))

    def _finish_screen(self, screen: Screen) -> Screen:
        iri = f"<{screen.predicate}>"
        columns = ["(COUNT(*) AS ?n)"]
        if screen.max_checks:
            columns.append("(COUNT(DISTINCT ?focus) AS ?s)")
        for number, (expression, _) in enumerate(screen.expressions):
            columns.append(f"(SUM(IF(COALESCE({expression}, false), 0, 1)) AS ?x{number})")
        screen.query = f"SELECT {' '.join(columns)} WHERE {{ ?focus {iri} ?value }}"
        for expression, members in screen.expressions:
            screen.expression_queries.append(
                f"SELECT ?focus ?value ?failed WHERE {{ {{ SELECT ?focus ?value WHERE {{ "
                f"?focus {iri} ?value . FILTER(!COALESCE({expression}, false)) }} }} "
                f"{self._flags(members)} }}"
            )
        for class_set, members in sorted(screen.class_checks.items()):
            screen.class_queries.append(
                f"SELECT ?focus ?value ?failed WHERE {{ {{ SELECT ?focus ?value WHERE {{ "
                f"?focus {iri} ?value . {self._lacks_type(class_set, '?value')} }} }} "
                f"{self._flags(members)} }}"
            )
        for bound, members in sorted(screen.max_checks.items()):
            query = (
                f"SELECT ?focus ?failed WHERE {{ {{ SELECT ?focus WHERE {{ ?focus {iri} ?value }} "
                f"GROUP BY ?focus HAVING (COUNT(DISTINCT ?value) > {bound}) }} "
                f"{self._flags(members)} }}"
            )
            screen.max_queries.append((bound, query))
        return screen
