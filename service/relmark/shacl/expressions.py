"""Constraints on one value node as SPARQL expressions.

The value-level constraints of SHACL Core (sh:datatype, sh:nodeKind, the ranges and
lengths, sh:pattern, sh:languageIn, sh:in, sh:hasValue, and the logical sh:not, sh:and,
sh:or, sh:xone, sh:node over shapes made of those) each test a value node alone, so each
becomes one SPARQL expression, true when the node conforms. The planner puts the
expressions in FILTERs, or several in one screening pass (``relmark.shacl.plan``).

Callers wrap an expression in ``COALESCE(…, false)``: an error means "does not return
true", which SHACL counts as a violation (a string compared with sh:minInclusive 0).

Literal well-formedness is pyoxigraph's (XSD lexical spaces, no whitespace collapsing)
where pyoxigraph can cast to the datatype, and rdflib's (``WELL_FORMED``, a custom
function the runner registers) where it cannot.
"""

from __future__ import annotations

from collections.abc import Callable

import pyoxigraph as ox
from rdflib.namespace import RDF, SH, XSD
from rdflib.term import Literal, Node, URIRef

from relmark.shacl.plan import Plan
from relmark.shacl.shapes import (
    DESCRIPTIVE,
    RANGE_OPERATORS,
    RDF_TYPE,
    SH_,
    SPEC,
    VALUE_PARAMETERS,
    Shape,
    ShapesError,
    ShapesGraph,
    UnsupportedShapeError,
    integer,
    sparql_string,
    sparql_term,
)

#: The custom SPARQL function that checks a literal's lexical form with rdflib.
WELL_FORMED = ox.NamedNode("urn:relmark:validation:wellFormed")

#: Datatypes whose well-formedness pyoxigraph checks itself: casting an ill-typed literal of
#: one of these to its own type is an error in SPARQL, so ``xsd:T(?v)`` tells the two apart.
_CASTABLE = frozenset(
    str(XSD[name])
    for name in (
        "string",
        "boolean",
        "integer",
        "decimal",
        "float",
        "double",
        "dateTime",
        "date",
        "time",
        "duration",
        "yearMonthDuration",
        "dayTimeDuration",
        "gYear",
        "gYearMonth",
        "gMonth",
        "gMonthDay",
        "gDay",
    )
)
#: Datatypes pyoxigraph rewrites when it stores a literal ("7"^^xsd:int becomes
#: "7"^^xsd:integer), so an sh:datatype check on them cannot be made on a pyoxigraph store.
_REWRITTEN = frozenset(
    str(XSD[name])
    for name in (
        "byte",
        "short",
        "int",
        "long",
        "unsignedByte",
        "unsignedShort",
        "unsignedInt",
        "unsignedLong",
        "nonNegativeInteger",
        "positiveInteger",
        "negativeInteger",
        "nonPositiveInteger",
        "dateTimeStamp",
    )
)
_NODE_KINDS = {
    "BlankNode": "isBlank({v})",
    "IRI": "isIRI({v})",
    "Literal": "isLiteral({v})",
    "BlankNodeOrIRI": "(isBlank({v}) || isIRI({v}))",
    "BlankNodeOrLiteral": "(isBlank({v}) || isLiteral({v}))",
    "IRIOrLiteral": "(isIRI({v}) || isLiteral({v}))",
}


class Expressions:
    """Writes the expression of a value-level constraint of a shape of ``shapes``."""

    def __init__(self, shapes: ShapesGraph, plan: Plan) -> None:
        self.shapes = shapes
        self.graph = shapes.graph
        self.plan = plan
        self._in_progress: set[Node] = set()
        self._writers: dict[str, Callable[[Shape, str, Node, str], str]] = {
            "class": self._class,
            "datatype": self._datatype,
            "nodeKind": self._node_kind,
            **dict.fromkeys(RANGE_OPERATORS, self._range),
            "minLength": self._length,
            "maxLength": self._length,
            "pattern": self._pattern,
            "languageIn": self._language_in,
            "in": self._in,
            "hasValue": self._has_value,
            "not": self._not,
            "node": self._node,
            "and": self._combined,
            "or": self._combined,
            "xone": self._combined,
        }

    def of(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        """A SPARQL expression, true when the node in ``v`` satisfies the constraint."""
        writer = self._writers.get(parameter)
        if writer is None:  # pragma: no cover (shapes.py refuses unknown parameters)
            raise UnsupportedShapeError(shape.name, f"sh:{parameter}")
        return writer(shape, parameter, value, v)

    def class_test(self, class_set: int, v: str) -> str:
        """True when the node in ``v`` has a type in the class set."""
        var = self.plan.var("c")
        return f"EXISTS {{ {v} {RDF_TYPE} {var} . VALUES {var} {{ ⟪classes:{class_set}⟫ }} }}"

    # -- value type ------------------------------------------------------------------------

    def _class(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        if not isinstance(value, URIRef):
            raise ShapesError(shape.name, "sh:class must be an IRI")
        return self.class_test(self.plan.class_set({str(value)}), v)

    def _datatype(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        name = shape.name
        if not isinstance(value, URIRef):
            raise ShapesError(
                name, "sh:datatype must be an IRI", SPEC + "#DatatypeConstraintComponent"
            )
        datatype = str(value)
        if datatype in _REWRITTEN:
            raise UnsupportedShapeError(
                name,
                f"sh:datatype <{datatype}> (pyoxigraph stores such literals as xsd:integer or "
                "xsd:dateTime, so their original datatype cannot be checked)",
            )
        if datatype == str(RDF.langString):
            return f'(isLiteral({v}) && lang({v}) != "")'
        test = f"isLiteral({v}) && datatype({v}) = <{datatype}>"
        if datatype == str(XSD.string):
            return f"({test})"
        if datatype in _CASTABLE:
            # Casting an ill-typed literal ("abc"^^xsd:decimal) to its own datatype is an error.
            return f"({test} && isLiteral(<{datatype}>({v})))"
        return f"({test} && <{WELL_FORMED.value}>({v}))"

    def _node_kind(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        local = str(value)[len(SH_) :] if str(value).startswith(SH_) else ""
        if local not in _NODE_KINDS:
            raise ShapesError(shape.name, f"sh:nodeKind {value} is not a node kind")
        return _NODE_KINDS[local].format(v=v)

    # -- value range and string-based ------------------------------------------------------

    def _range(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        if not isinstance(value, Literal):
            raise ShapesError(shape.name, f"sh:{parameter} must be a literal")
        bound = sparql_term(value, shape.name, parameter)
        return f"({v} {RANGE_OPERATORS[parameter]} {bound})"

    def _length(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        operator = ">=" if parameter == "minLength" else "<="
        bound = integer(value, shape.name, parameter)
        return f"(!isBlank({v}) && STRLEN(STR({v})) {operator} {bound})"

    def _pattern(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        flags = self.graph.value(shape.node, SH.flags)
        flag_text = f", {sparql_string(str(flags))}" if flags is not None else ""
        return f"(!isBlank({v}) && REGEX(STR({v}), {sparql_string(str(value))}{flag_text}))"

    def _language_in(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        tags = [sparql_string(str(tag)) for tag in self.graph.items(value)]
        tests = " || ".join(f"langMatches(lang({v}), {tag})" for tag in tags)
        return f"(isLiteral({v}) && ({tests or 'false'}))"

    # -- other values --------------------------------------------------------------------

    def _in(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        members = [sparql_term(m, shape.name, "sh:in") for m in self.graph.items(value)]
        return "(" + (" || ".join(f"sameTerm({v}, {m})" for m in members) or "false") + ")"

    def _has_value(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        return f"sameTerm({v}, {sparql_term(value, shape.name, 'sh:hasValue')})"

    # -- logical and shape-based -----------------------------------------------------------

    def _not(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        return f"!COALESCE({self._conforms(value, v, shape.name)}, false)"

    def _node(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        return self._conforms(value, v, shape.name)

    def _combined(self, shape: Shape, parameter: str, value: Node, v: str) -> str:
        parts = [
            f"COALESCE({self._conforms(member, v, shape.name)}, false)"
            for member in self.graph.items(value)
        ]
        if parameter == "and":
            return "(" + (" && ".join(parts) or "true") + ")"
        if parameter == "or":
            return "(" + (" || ".join(parts) or "false") + ")"
        return "((" + (" + ".join(f"IF({p}, 1, 0)" for p in parts) or "0") + ") = 1)"

    def _conforms(self, node: Node, v: str, used_by: str) -> str:
        """Conformance of the node in ``v`` to a shape made only of value-level constraints."""
        shape = self.shapes.shape_of.get(node)
        if shape is None:
            raise ShapesError(used_by, f"{node} is used as a shape but is not one")
        if shape.deactivated:
            return "true"
        if node in self._in_progress:
            raise UnsupportedShapeError(
                shape.name, "a recursive shape reference", SPEC + "#shapes-recursion"
            )
        if shape.is_property or self.graph.value(node, SH.property) is not None:
            raise UnsupportedShapeError(
                shape.name, f"property constraints in a shape that {used_by} uses as a value check"
            )
        self._in_progress.add(node)
        tests = []
        for predicate, value in sorted(self.graph.predicate_objects(node), key=str):
            local = str(predicate)[len(SH_) :] if str(predicate).startswith(SH_) else None
            if local is None or local in DESCRIPTIVE:
                continue
            if local not in VALUE_PARAMETERS and local != "hasValue":
                raise UnsupportedShapeError(
                    shape.name, f"sh:{local} in a shape that {used_by} uses as a value check"
                )
            tests.append(f"COALESCE({self.of(shape, local, value, v)}, false)")
        self._in_progress.discard(node)
        return "(" + (" && ".join(tests) or "true") + ")"
