"""A shapes graph compiled into the SPARQL queries that find its violations.

pySHACL walks the shapes focus node by focus node in Python over an rdflib graph, which
costs tens of seconds per million triples. Here each shape is compiled once into SPARQL
SELECT queries that return *all* the violations of a constraint over the whole data at
once, which pyoxigraph runs in Rust (``relmark.shacl.run``).

``Shapes`` is the compiled form: the shapes read (``relmark.shacl.shapes``), each of
their constraints turned into checks and queries by its family below, planned by
``relmark.shacl.plan``. Every constraint is compiled, so errors surface even in shapes
nothing reaches.
"""

from __future__ import annotations

import re
from pathlib import Path

import rdflib
from rdflib.namespace import SH
from rdflib.term import Node, URIRef

from relmark.shacl.expressions import Expressions
from relmark.shacl.messages import compact
from relmark.shacl.plan import Check, Plan, Screen, Select
from relmark.shacl.shapes import (
    DESCRIPTIVE,
    PAIR_PARAMETERS,
    SH_,
    SPEC,
    VALUE_PARAMETERS,
    Shape,
    ShapesError,
    ShapesGraph,
    Spec,
    UnsupportedShapeError,
    check_syntax,
    integer,
    is_true,
    messages_of,
    n3_short,
    sparql_term,
)
from relmark.sparql.lexer import tokens, where_brace


class Shapes:
    """A shapes graph compiled into SPARQL SELECTs, once, for any number of validations."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.graph = graph
        read = ShapesGraph(graph)
        plan = Plan()
        _Compiler(read, plan).compile()
        self.prefixes: dict[str, str] = read.prefixes
        self.sparql_prefixes: dict[str, str] = read.sparql_prefixes
        self.checks: list[Check] = plan.checks
        self.class_sets: list[frozenset[str]] = plan.class_sets
        self.selects: list[Select] = plan.selects
        self.screens: list[Screen] = plan.screens

    @classmethod
    def from_file(cls, path: Path | str, rdf_format: str | None = None) -> Shapes:
        """Parse and compile a shapes file (Turtle unless its extension says otherwise)."""
        fmt = rdf_format or rdflib.util.guess_format(str(path)) or "turtle"
        return cls(rdflib.Graph().parse(str(path), format=fmt))

    @classmethod
    def from_graph(cls, graph: rdflib.Graph) -> Shapes:
        """Compile an already parsed shapes graph."""
        return cls(graph)

    @property
    def queries(self) -> list[str]:
        """Every SELECT a validation may run, with class placeholders unrendered (for review)."""
        texts = [select.text for select in self.selects]
        for screen in self.screens:
            texts += [screen.query, *screen.expression_queries]
            texts += [*screen.class_queries, *(query for _, query in screen.max_queries)]
        return texts


class _Compiler:
    """Turns each shape's constraints into checks and plans their queries, by family."""

    def __init__(self, shapes: ShapesGraph, plan: Plan) -> None:
        self.shapes = shapes
        self.graph = shapes.graph
        self.plan = plan
        self.expressions = Expressions(shapes, plan)

    def compile(self) -> None:
        for node in self.shapes.ordered:
            shape = self.shapes.shape_of[node]
            spec = self.shapes.focus_spec(shape)
            self._cardinality(shape, spec)
            for parameter in sorted(VALUE_PARAMETERS):
                for value in sorted(self.graph.objects(node, SH[parameter]), key=str):
                    self._value(shape, spec, parameter, value)
            self._pairs(shape, spec)
            self._unique_lang(shape, spec)
            self._has_value(shape, spec)
            if is_true(self.graph.value(node, SH.closed)):
                self._closed(shape, spec)
            for constraint in self.graph.objects(node, SH.sparql):
                self._sparql(shape, spec, constraint)
        self.plan.finish()

    # -- cardinality -------------------------------------------------------------------------

    def _cardinality(self, shape: Shape, spec: Spec) -> None:
        for parameter in ("minCount", "maxCount"):
            for value in self.graph.objects(shape.node, SH[parameter]):
                if not shape.is_property:
                    raise ShapesError(shape.name, f"sh:{parameter} needs a property shape")
                bound = integer(value, shape.name, parameter)
                params = {parameter: str(bound)}
                check = self.plan.check(shape, parameter, params, report_value=False)
                if spec and parameter == "minCount":
                    self.plan.min_count(check, spec, bound)
                elif spec:
                    self.plan.max_count(check, spec, bound)

    # -- value-level: type, range, string, logical, shape-based ------------------------------

    def _value(self, shape: Shape, spec: Spec, parameter: str, value: Node) -> None:
        prefixes = self.shapes.prefixes
        params = {parameter: n3_short(value, prefixes)}
        if parameter in ("in", "languageIn"):
            members = self.graph.items(value)
            params[parameter] = ", ".join(n3_short(m, prefixes) for m in members)
        node_level = not shape.is_property
        classes = self._class_alternatives(shape, parameter, value)
        if classes is not None:
            index = self.plan.class_set(classes)
            check = self.plan.check(
                shape, parameter, params, class_set=index, node_level=node_level
            )
            if spec:
                self.plan.klass(check, spec)
            return
        v = "?focus" if node_level else "?value"
        expression = self.expressions.of(shape, parameter, value, v)
        check = self.plan.check(shape, parameter, params, node_level=node_level)
        if spec and node_level:
            self.plan.node_expression(check, spec, expression)
        elif spec:
            self.plan.value(check, spec, expression)

    def _class_alternatives(self, shape: Shape, parameter: str, value: Node) -> set[str] | None:
        """The classes of an sh:class, or of an sh:or whose members are each one sh:class.

        Such checks run as one anti-join per predicate (fast) and are the ones re-checked
        against the types already stored when validate() is given ``existing``.
        """
        graph = self.graph
        if parameter == "class":
            if not isinstance(value, URIRef):
                raise ShapesError(
                    shape.name, "sh:class must be an IRI", SPEC + "#ClassConstraintComponent"
                )
            return {str(value)}
        if parameter != "or":
            return None
        classes: set[str] = set()
        for member in graph.items(value):
            constraining = {
                p
                for p in graph.predicates(member, None)
                if str(p).startswith(SH_) and str(p)[len(SH_) :] not in DESCRIPTIVE
            }
            values = list(graph.objects(member, SH["class"]))
            if constraining != {SH["class"]} or len(values) != 1:
                return None
            if not isinstance(values[0], URIRef) or is_true(graph.value(member, SH.deactivated)):
                return None
            classes.add(str(values[0]))
        return classes or None

    # -- property pairs ----------------------------------------------------------------------

    def _pairs(self, shape: Shape, spec: Spec) -> None:
        for parameter in PAIR_PARAMETERS:
            for value in self.graph.objects(shape.node, SH[parameter]):
                if not isinstance(value, URIRef):
                    raise ShapesError(shape.name, f"sh:{parameter} must be an IRI")
                if parameter.startswith("less") and not shape.is_property:
                    raise ShapesError(shape.name, f"sh:{parameter} needs a property shape")
                params = {parameter: compact(str(value), self.shapes.prefixes)}
                check = self.plan.check(shape, parameter, params, node_level=not shape.is_property)
                if spec:
                    self.plan.pair(check, spec, parameter, str(value))

    # -- other constraints -------------------------------------------------------------------

    def _unique_lang(self, shape: Shape, spec: Spec) -> None:
        for value in self.graph.objects(shape.node, SH.uniqueLang):
            if not shape.is_property:
                raise ShapesError(shape.name, "sh:uniqueLang needs a property shape")
            if is_true(value):
                check = self.plan.check(shape, "uniqueLang", {}, report_value=False)
                if spec:
                    self.plan.unique_lang(check, spec)

    def _has_value(self, shape: Shape, spec: Spec) -> None:
        for value in self.graph.objects(shape.node, SH.hasValue):
            term = sparql_term(value, shape.name, "sh:hasValue")
            params = {"hasValue": n3_short(value, self.shapes.prefixes)}
            if shape.is_property:
                check = self.plan.check(shape, "hasValue", params, report_value=False)
                if spec:
                    self.plan.has_value(check, spec, term)
            else:
                check = self.plan.check(shape, "hasValue", params, node_level=True)
                if spec:
                    self.plan.node_expression(check, spec, f"sameTerm(?focus, {term})")

    def _closed(self, shape: Shape, spec: Spec) -> None:
        if shape.is_property:
            raise UnsupportedShapeError(shape.name, "sh:closed on a property shape")
        graph = self.graph
        allowed = {str(graph.value(p, SH.path)) for p in graph.objects(shape.node, SH.property)}
        ignored = graph.value(shape.node, SH.ignoredProperties)
        if ignored is not None:
            allowed |= {str(p) for p in graph.items(ignored)}
        check = self.plan.check(shape, "closed", {})
        if spec:
            self.plan.closed(check, spec, allowed)

    # -- SHACL-SPARQL ------------------------------------------------------------------------

    def _sparql(self, shape: Shape, spec: Spec, constraint: Node) -> None:
        graph, name = self.graph, shape.name
        where = SPEC + "#sparql-constraints"
        if is_true(graph.value(constraint, SH.deactivated)):
            return
        select = graph.value(constraint, SH.select)
        if select is None:
            raise UnsupportedShapeError(name, "an sh:sparql constraint without sh:select", where)
        query = str(select)
        if re.search(r"[?$]shapesGraph\b", query):
            raise UnsupportedShapeError(name, "$shapesGraph in an sh:select query", where)
        if re.search(r"[?$]currentShape\b", query):
            if not isinstance(shape.node, URIRef):
                raise UnsupportedShapeError(name, "$currentShape in a blank-node shape", where)
            query = re.sub(r"[?$]currentShape\b", f"<{shape.node}>", query)
        if shape.is_property:
            query = re.sub(r"\$PATH\b", lambda _: shape.path or "", query)
        elif re.search(r"\$PATH\b", query):
            raise ShapesError(name, "$PATH in the sh:sparql constraint of a node shape", where)
        self.shapes.collect_prefixes(constraint, name)
        opening = _prebinding_brace(query, name)
        check = self.plan.check(shape, "sparql", {"shape": name}, node_level=not shape.is_property)
        check.messages = messages_of(graph, constraint) or shape.messages
        severity = graph.value(constraint, SH.severity)
        if isinstance(severity, URIRef) and graph.value(shape.node, SH.severity) is None:
            check.severity = str(severity)
        focus = f"{{ SELECT DISTINCT ?this WHERE {self.plan.generate(spec, '?this')} }}"
        text = f"{query[: opening + 1]} {focus} {query[opening + 1 :]}"
        check_syntax(text, name, self.shapes.sparql_prefixes)
        if spec:
            self.plan.add_select(text, sparql_check=check)


_NOT_PREBINDABLE = frozenset({"MINUS", "SERVICE", "VALUES"})


def _prebinding_brace(query: str, name: str) -> int:
    """Where the outer WHERE group of an sh:select opens; the focus nodes are joined there.

    Joining the targets at the head of the WHERE group gives $this its value for every focus
    node at once. The constructs for which that would differ from SHACL's pre-binding are
    rejected (https://www.w3.org/TR/shacl/#pre-binding forbids most of them anyway).
    """
    depth = 0
    sub_selects: list[int] = []  # brace depth at which each open sub-SELECT began
    for token in tokens(query):
        kind, text = token.kind, token.text
        if kind == "word" and text.upper() in _NOT_PREBINDABLE:
            raise UnsupportedShapeError(
                name, f"{text.upper()} in an sh:select query", SPEC + "#pre-binding"
            )
        if kind == "word" and text.upper() == "SELECT" and depth > 0:
            sub_selects.append(depth)
        elif kind == "var" and text[1:] == "this" and sub_selects:
            raise UnsupportedShapeError(name, "$this inside a sub-SELECT", SPEC + "#pre-binding")
        elif text == "{":
            depth += 1
        elif text == "}":
            depth -= 1
            while sub_selects and sub_selects[-1] > depth:
                sub_selects.pop()
    try:
        opening = where_brace(query)
    except SyntaxError:
        opening = None
    if opening is None:
        raise ShapesError(
            name, "its sh:select query has no WHERE group", SPEC + "#sparql-constraints"
        )
    return opening
