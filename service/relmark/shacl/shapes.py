"""Reading SHACL shapes from a shapes graph: what each shape targets, its path, its wording.

This is the part of SHACL (https://www.w3.org/TR/shacl/) that is about the shapes graph
itself, before any constraint becomes a query: which nodes are shapes, how a blank-node
shape is named in an error, which targets reach a shape (its own and, for a property
shape, its parents'), its SHACL path as a SPARQL property path, its severity and
messages. Any construct relmark does not handle is refused here, naming the shape
(``UnsupportedShapeError``), so a shapes file fails when it is read, never later and
never silently; a malformed one raises ``ShapesError``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyoxigraph as ox
import rdflib
from rdflib.namespace import RDF, RDFS, SH, XSD
from rdflib.term import BNode, Literal, Node, URIRef

from relmark import vocab
from relmark.shacl.messages import compact

SPEC = "https://www.w3.org/TR/shacl/"
AF = "https://www.w3.org/TR/shacl-af/"

SH_ = str(SH)
VIOLATION = SH_ + "Violation"
WARNING = SH_ + "Warning"
INFO = SH_ + "Info"
RDF_TYPE = f"<{RDF.type}>"

TARGETS = ("targetClass", "targetNode", "targetSubjectsOf", "targetObjectsOf")
#: sh: predicates of a shape that constrain nothing themselves (or are read with another).
DESCRIPTIVE = frozenset(
    {
        *TARGETS,
        "target",
        "path",
        "property",
        "severity",
        "message",
        "deactivated",
        "name",
        "description",
        "order",
        "group",
        "defaultValue",
        "flags",
        "ignoredProperties",
    }
)
RANGE_OPERATORS = {
    "minInclusive": ">=",
    "minExclusive": ">",
    "maxInclusive": "<=",
    "maxExclusive": "<",
}
#: Constraints on each value node alone: they compile to one SPARQL expression.
VALUE_PARAMETERS = frozenset(
    {
        *RANGE_OPERATORS,
        "class",
        "datatype",
        "nodeKind",
        "minLength",
        "maxLength",
        "pattern",
        "languageIn",
        "in",
        "not",
        "and",
        "or",
        "xone",
        "node",
    }
)
PAIR_PARAMETERS = ("equals", "disjoint", "lessThan", "lessThanOrEquals")
_OTHER_PARAMETERS = ("minCount", "maxCount", "uniqueLang", "hasValue", "closed", "sparql")
_SUPPORTED = DESCRIPTIVE | VALUE_PARAMETERS | {*PAIR_PARAMETERS, *_OTHER_PARAMETERS}
#: The constraint component each parameter belongs to (a result's sh:sourceConstraintComponent).
COMPONENT = {
    "class": "ClassConstraintComponent",
    "datatype": "DatatypeConstraintComponent",
    "nodeKind": "NodeKindConstraintComponent",
    "minCount": "MinCountConstraintComponent",
    "maxCount": "MaxCountConstraintComponent",
    "minInclusive": "MinInclusiveConstraintComponent",
    "minExclusive": "MinExclusiveConstraintComponent",
    "maxInclusive": "MaxInclusiveConstraintComponent",
    "maxExclusive": "MaxExclusiveConstraintComponent",
    "minLength": "MinLengthConstraintComponent",
    "maxLength": "MaxLengthConstraintComponent",
    "pattern": "PatternConstraintComponent",
    "languageIn": "LanguageInConstraintComponent",
    "uniqueLang": "UniqueLangConstraintComponent",
    "equals": "EqualsConstraintComponent",
    "disjoint": "DisjointConstraintComponent",
    "lessThan": "LessThanConstraintComponent",
    "lessThanOrEquals": "LessThanOrEqualsConstraintComponent",
    "not": "NotConstraintComponent",
    "and": "AndConstraintComponent",
    "or": "OrConstraintComponent",
    "xone": "XoneConstraintComponent",
    "node": "NodeConstraintComponent",
    "hasValue": "HasValueConstraintComponent",
    "in": "InConstraintComponent",
    "closed": "ClosedConstraintComponent",
    "sparql": "SPARQLConstraintComponent",
}


class ShapesError(ValueError):
    """The shapes graph is malformed; names the shape and the part of SHACL it breaks."""

    def __init__(self, shape: str, problem: str, spec: str = SPEC) -> None:
        self.shape = shape
        self.problem = problem
        self.spec = spec
        super().__init__(f"shape {shape}: {problem} (see {spec})")


class UnsupportedShapeError(NotImplementedError):
    """A SHACL construct the compiler does not handle: raised at compile time, never skipped."""

    def __init__(self, shape: str, construct: str, spec: str = SPEC) -> None:
        self.shape = shape
        self.construct = construct
        self.spec = spec
        super().__init__(
            f"shape {shape} uses {construct}, which relmark's SHACL compiler does not support "
            f"(see {spec})"
        )


@dataclass(frozen=True)
class Target:
    """One way a shape reaches focus nodes."""

    kind: str  # one of TARGETS, or "target" for a SHACL-AF sh:SPARQLTarget
    term: str  # class or predicate IRI; targetNode: the node in SPARQL; target: its SELECT


#: Every target through which a shape's constraints are reached.
Spec = frozenset[Target]


@dataclass
class Shape:
    """A shape as read from the graph, before any of its constraints is compiled."""

    node: Node
    id_: str
    name: str
    is_property: bool
    path: str | None = None  # SPARQL property path
    simple_path: str | None = None  # the predicate IRI when the path is one forward IRI
    result_path: str | None = None
    severity: str = VIOLATION
    deactivated: bool = False
    messages: dict[str, str] = field(default_factory=dict)
    path_names: dict[str, str] = field(default_factory=dict)
    targets: set[Target] = field(default_factory=set)


class ShapesGraph:
    """A shapes graph read: every shape (``shape_of``), in a stable order (``ordered``),
    the prefixes reports use and those sh:select queries are run with."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.graph = graph
        self.prefixes: dict[str, str] = {p: str(ns) for p, ns in graph.namespaces() if p}
        self.prefixes.setdefault("rm", vocab.RM)
        self.prefixes.setdefault("demo", vocab.DEMO)
        self.sparql_prefixes: dict[str, str] = {}
        self.shape_of: dict[Node, Shape] = {}
        self.parents: dict[Node, list[Node]] = defaultdict(list)
        self.custom_parameters = self._custom_component_parameters()
        self.ordered = self._discover()
        for node in self.ordered:
            self.shape_of[node] = self._read_shape(node)

    def _custom_component_parameters(self) -> set[Node]:
        graph = self.graph
        parameters: set[Node] = set()
        for component in graph.subjects(RDF.type, SH.ConstraintComponent):
            for parameter in graph.objects(component, SH.parameter):
                path = graph.value(parameter, SH.path)
                if path is not None:
                    parameters.add(path)
        return parameters

    def _discover(self) -> list[Node]:
        """Every node SHACL makes a shape: typed as one, targeting, or used as one."""
        graph = self.graph
        nodes: set[Node] = set()
        for kind in (SH.NodeShape, SH.PropertyShape):
            nodes.update(graph.subjects(RDF.type, kind))
        for target in (*TARGETS, "target", "path"):
            nodes.update(graph.subjects(SH[target], None))
        for parameter in ("property", "node", "not", "qualifiedValueShape"):
            nodes.update(graph.objects(None, SH[parameter]))
        for parameter in ("or", "and", "xone"):
            for members in graph.objects(None, SH[parameter]):
                nodes.update(graph.items(members))
        for parent in nodes:
            for child in graph.objects(parent, SH.property):
                self.parents[child].append(parent)
        return sorted(nodes, key=lambda n: (isinstance(n, BNode), str(n)))

    def name(self, node: Node) -> str:
        """How errors and reports refer to a shape; blank nodes by their place."""
        if isinstance(node, URIRef):
            return compact(str(node), self.prefixes)
        holders = self.parents.get(node) or [
            s for s in self.graph.subjects(None, node) if s != node
        ]
        where = f" in {self.name(holders[0])}" if holders else ""
        path = self.graph.value(node, SH.path)
        if isinstance(path, URIRef):
            return f"[property shape on {compact(str(path), self.prefixes)}{where}]"
        if path is not None:
            return f"[property shape on a complex path{where}]"
        return f"[blank-node shape{where}]"

    def _read_shape(self, node: Node) -> Shape:
        graph = self.graph
        name = self.name(node)
        id_ = str(node) if isinstance(node, URIRef) else f"_:{node}"
        path_node = graph.value(node, SH.path)
        shape = Shape(node=node, id_=id_, name=name, is_property=path_node is not None)
        for predicate in set(graph.predicates(node, None)):
            if predicate in self.custom_parameters:
                raise UnsupportedShapeError(
                    name,
                    f"the parameter <{predicate}> of a custom constraint component",
                    SPEC + "#constraint-components",
                )
            local = str(predicate)[len(SH_) :] if str(predicate).startswith(SH_) else None
            if local is not None and local not in _SUPPORTED:
                raise UnsupportedShapeError(name, f"sh:{local}")
        if path_node is not None:
            shape.path, simple = self._path(path_node, name)
            shape.simple_path = str(path_node) if simple else None
            shape.result_path = str(path_node) if simple else shape.path
            for label in graph.objects(node, SH.name):
                if isinstance(label, Literal):
                    shape.path_names.setdefault((label.language or "").lower(), str(label))
        severity = graph.value(node, SH.severity)
        if severity is not None:
            if not isinstance(severity, URIRef):
                raise ShapesError(name, "sh:severity must be an IRI", SPEC + "#severity")
            shape.severity = str(severity)
        shape.deactivated = is_true(graph.value(node, SH.deactivated))
        shape.messages = messages_of(graph, node)
        for target in TARGETS:
            for value in graph.objects(node, SH[target]):
                shape.targets.add(self._target(target, value, name))
        for value in graph.objects(node, SH.target):
            shape.targets.add(self._sparql_target(value, name))
        class_types = {RDFS.Class, *graph.transitive_subjects(RDFS.subClassOf, RDFS.Class)}
        if any((node, RDF.type, klass) in graph for klass in class_types):
            if not isinstance(node, URIRef):
                raise ShapesError(name, "an implicit class target must be an IRI")
            shape.targets.add(Target("targetClass", str(node)))
        return shape

    def _target(self, kind: str, value: Node, name: str) -> Target:
        if kind == "targetNode":
            return Target(kind, sparql_term(value, name, "sh:targetNode"))
        if not isinstance(value, URIRef):
            raise ShapesError(name, f"sh:{kind} must be an IRI", SPEC + "#targets")
        return Target(kind, str(value))

    def _sparql_target(self, node: Node, name: str) -> Target:
        """A SHACL-AF SPARQL-based target: the focus nodes are the ?this its SELECT returns."""
        graph, where = self.graph, AF + "#SPARQLTarget"
        select = graph.value(node, SH.select)
        if select is None or set(graph.objects(node, RDF.type)) - {SH.SPARQLTarget}:
            raise UnsupportedShapeError(
                name, "an sh:target other than an sh:SPARQLTarget with sh:select", where
            )
        query = str(select)
        if re.match(r"\s*(#[^\n]*\s*)*(PREFIX|BASE)\b", query, re.IGNORECASE):
            raise UnsupportedShapeError(
                name,
                "PREFIX or BASE in a target's sh:select (declare them with sh:prefixes)",
                where,
            )
        if re.search(r"[?$](currentShape|shapesGraph)\b", query):
            raise UnsupportedShapeError(name, "$currentShape or $shapesGraph in a target", where)
        if not re.search(r"[?$]this\b", query):
            raise ShapesError(name, "the sh:select of an sh:SPARQLTarget must return ?this", where)
        self.collect_prefixes(node, name)
        check_syntax(query, name, self.sparql_prefixes)
        return Target("target", query)

    def _path(self, node: Node, name: str) -> tuple[str, bool]:
        """The SPARQL property path for a SHACL path, and whether it is one forward IRI."""
        graph = self.graph
        where = SPEC + "#property-paths"
        if isinstance(node, URIRef):
            return f"<{node}>", True
        if not isinstance(node, BNode):
            raise ShapesError(name, "sh:path must be an IRI or a path node", where)
        if graph.value(node, RDF.first) is not None:
            members = [self._path(member, name)[0] for member in graph.items(node)]
            if len(members) < 2:
                raise ShapesError(name, "a sequence path needs at least two members", where)
            return "(" + " / ".join(members) + ")", False
        forms = {
            "inversePath": "^{}",
            "zeroOrMorePath": "{}*",
            "oneOrMorePath": "{}+",
            "zeroOrOnePath": "{}?",
        }
        for local, form in forms.items():
            inner = graph.value(node, SH[local])
            if inner is not None:
                return "(" + form.format(self._path(inner, name)[0]) + ")", False
        alternatives = graph.value(node, SH.alternativePath)
        if alternatives is not None:
            members = [self._path(member, name)[0] for member in graph.items(alternatives)]
            if len(members) < 2:
                raise ShapesError(name, "an alternative path needs at least two members", where)
            return "(" + " | ".join(members) + ")", False
        raise ShapesError(name, "sh:path is not a well-formed SHACL path", where)

    def focus_spec(self, shape: Shape) -> Spec:
        """Every target through which the shape's constraints are reached."""
        if shape.deactivated:
            return frozenset()
        targets = set(shape.targets)
        for parent_node in self.parents.get(shape.node, []):
            parent = self.shape_of[parent_node]
            if parent.is_property:
                raise UnsupportedShapeError(
                    shape.name, f"a property shape nested in the property shape {parent.name}"
                )
            if not parent.deactivated:
                targets |= parent.targets
        return frozenset(targets)

    def collect_prefixes(self, node: Node, name: str) -> None:
        """Add the sh:declare prefixes of sh:prefixes; every query is run with all of them."""
        graph, known = self.graph, self.sparql_prefixes
        for source in graph.objects(node, SH.prefixes):
            for declaration in graph.objects(source, SH.declare):
                prefix = graph.value(declaration, SH.prefix)
                namespace = graph.value(declaration, SH.namespace)
                if prefix is None or namespace is None:
                    raise ShapesError(name, "an sh:declare needs sh:prefix and sh:namespace")
                if known.setdefault(str(prefix), str(namespace)) != str(namespace):
                    raise UnsupportedShapeError(
                        name, f"the prefix {prefix}: declared with two different namespaces"
                    )


# --- reading values of the shapes graph ------------------------------------------------------


def is_true(node: Node | None) -> bool:
    """Whether a shape's boolean parameter (sh:deactivated, sh:closed …) is true."""
    return isinstance(node, Literal) and node.toPython() is True


def integer(value: Node, name: str, parameter: str) -> int:
    """An integer parameter (sh:minCount, sh:maxLength …), or ShapesError."""
    python = value.toPython() if isinstance(value, Literal) else None
    if isinstance(python, int) and not isinstance(python, bool):
        return python
    raise ShapesError(name, f"sh:{parameter} must be an integer, not {value}")


def messages_of(graph: rdflib.Graph, node: Node) -> dict[str, str]:
    """sh:message in every language given, keyed by lower-case tag ('' for none)."""
    messages: dict[str, str] = {}
    for message in sorted(graph.objects(node, SH.message), key=str):
        if isinstance(message, Literal):
            messages.setdefault((message.language or "").lower(), str(message))
    return messages


def sparql_string(text: str) -> str:
    """A Python string as a SPARQL string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def sparql_term(node: Node, name: str, where: str) -> str:
    """A shapes graph's IRI or literal in SPARQL syntax (a blank node has none)."""
    if isinstance(node, URIRef):
        return f"<{node}>"
    if isinstance(node, Literal):
        if node.language:
            return f"{sparql_string(str(node))}@{node.language}"
        return f"{sparql_string(str(node))}^^<{node.datatype or XSD.string}>"
    raise UnsupportedShapeError(name, f"a blank node as the value of {where}")


def n3_short(node: Node, prefixes: Mapping[str, str]) -> str:
    """A parameter's value as a message shows it (an IRI compacted)."""
    return compact(str(node), prefixes) if isinstance(node, URIRef) else str(node)


def check_syntax(text: str, name: str, prefixes: Mapping[str, str]) -> None:
    """Parse a user-written query now, so a typo fails when the shapes are read."""
    try:
        ox.Store().query(re.sub(r"⟪classes:\d+⟫", "", text), prefixes=dict(prefixes))
    except SyntaxError as error:
        raise ShapesError(name, f"its sh:select query does not parse: {error}") from error
