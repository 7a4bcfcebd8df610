"""SHACL validation of incoming data: shapes compiled to SPARQL, run by pyoxigraph.

Every load is checked against ``ontology/shapes.ttl`` before anything is written (DESIGN §3).
pySHACL walks the shapes focus node by focus node in Python over an rdflib graph, which costs
tens of seconds per million triples. Here each shape is compiled once into SPARQL SELECT
queries that return *all* the violations of a constraint over the whole data at once;
pyoxigraph runs them in Rust, on several threads, over an in-memory store that holds the
incoming data plus the ontology (so ``sh:targetClass`` reaches subclass instances and
``sh:class`` sees the ontology's individuals, as SHACL's own rules require).

The semantics are those of SHACL Core and SHACL-SPARQL constraints
(https://www.w3.org/TR/shacl/), plus SHACL-AF SPARQL targets (``sh:target`` with an
``sh:SPARQLTarget``, as pySHACL reads them with ``advanced=True``). Any construct the compiler
does not handle raises :class:`UnsupportedShapeError` naming the shape when the shapes are
compiled, never later and never silently. Literal well-formedness is pyoxigraph's (XSD lexical
spaces, no whitespace collapsing), stricter than rdflib's: ``"1e3"^^xsd:decimal`` is
ill-typed here, not in pySHACL.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pyoxigraph as ox
import rdflib
from rdflib.namespace import RDF, RDFS, SH, XSD
from rdflib.term import BNode, Literal, Node, URIRef

from relmark import vocab

ONTOLOGY_GRAPH = "urn:relmark:ontology"
SPEC = "https://www.w3.org/TR/shacl/"

Term = ox.NamedNode | ox.BlankNode | ox.Literal

_SH = str(SH)
_VIOLATION = _SH + "Violation"
_WARNING = _SH + "Warning"
_INFO = _SH + "Info"
_SEVERITY_RANK = {_VIOLATION: 0, _WARNING: 2, _INFO: 3}
_RDF_TYPE = f"<{RDF.type}>"
_WELL_FORMED = ox.NamedNode("urn:relmark:validation:wellFormed")

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
_RANGE_OPERATORS = {
    "minInclusive": ">=",
    "minExclusive": ">",
    "maxInclusive": "<=",
    "maxExclusive": "<",
}
_TARGETS = ("targetClass", "targetNode", "targetSubjectsOf", "targetObjectsOf")
#: sh: predicates of a shape that constrain nothing themselves (or are read with another).
_DESCRIPTIVE = frozenset(
    {
        *_TARGETS,
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
#: Constraints on each value node alone: they compile to one SPARQL expression.
_VALUE_PARAMETERS = frozenset(
    {
        *_RANGE_OPERATORS,
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
_PAIR_PARAMETERS = ("equals", "disjoint", "lessThan", "lessThanOrEquals")
_OTHER_PARAMETERS = ("minCount", "maxCount", "uniqueLang", "hasValue", "closed", "sparql")
_SUPPORTED = _DESCRIPTIVE | _VALUE_PARAMETERS | {*_PAIR_PARAMETERS, *_OTHER_PARAMETERS}
_AF = "https://www.w3.org/TR/shacl-af/"
_COMPONENT = {
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
#: English fallbacks for shapes without sh:message; {…} are filled from the result.
_DEFAULT_MESSAGES = {
    "class": "The value {value} must be typed as {class} (or one of its subclasses).",
    "datatype": "The value {value} must be a well-formed {datatype} literal.",
    "nodeKind": "The value {value} must be of node kind {nodeKind}.",
    "minCount": "{path} needs at least {minCount} value(s).",
    "maxCount": "{path} can have at most {maxCount} value(s).",
    "minInclusive": "The value {value} must be at least {minInclusive}.",
    "minExclusive": "The value {value} must be greater than {minExclusive}.",
    "maxInclusive": "The value {value} must be at most {maxInclusive}.",
    "maxExclusive": "The value {value} must be less than {maxExclusive}.",
    "minLength": "The value {value} must be at least {minLength} characters long.",
    "maxLength": "The value {value} must be at most {maxLength} characters long.",
    "pattern": "The value {value} does not match the pattern {pattern}.",
    "languageIn": "The value {value} must be in one of the languages {languageIn}.",
    "uniqueLang": "{path} has more than one value in the same language.",
    "equals": "The values of {path} must be the same as those of {equals}.",
    "disjoint": "The value {value} of {path} must not also be a value of {disjoint}.",
    "lessThan": "The value {value} of {path} must be less than every value of {lessThan}.",
    "lessThanOrEquals": "The value {value} of {path} must not be greater than {lessThanOrEquals}.",
    "not": "The value {value} must not match the shape {not}.",
    "and": "The value {value} must match all the shapes in the list.",
    "or": "The value {value} matches none of the allowed alternatives.",
    "xone": "The value {value} must match exactly one of the alternatives.",
    "node": "The value {value} does not match the shape {node}.",
    "hasValue": "{path} must include the value {hasValue}.",
    "in": "The value {value} is not one of the allowed values.",
    "closed": "{path} is not one of the properties allowed here.",
    "sparql": "The value {value} breaks the rule {shape}.",
}


class SparqlSource(Protocol):
    """What ``existing`` may be besides a pyoxigraph Store: relmark's ``store.Store``, whose
    ``query`` reads the union of all graphs when no graph is named."""

    def query(self, sparql: str) -> Any: ...


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


class ValidationFailure(RuntimeError):
    """A SHACL-SPARQL constraint bound ?failure: the data could not be validated at all."""


# ---------------------------------------------------------------------------------------------
# Reports


@dataclass(frozen=True)
class ValidationResult:
    """One sh:ValidationResult: which node broke which constraint, and what to tell the user."""

    focus_node: Term
    path: str | None
    value: Term | None
    message: str
    severity: str
    source_shape: str
    constraint_component: str
    path_name: str | None = None
    source_shape_name: str = ""

    @property
    def is_violation(self) -> bool:
        """Warnings and infos are reported but do not reject a load."""
        return self.severity not in (_WARNING, _INFO)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate`, as data for machines and as text for people."""

    conforms: bool
    results: list[ValidationResult]
    prefixes: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def violations(self) -> list[ValidationResult]:
        """The results that reject a load."""
        return [result for result in self.results if result.is_violation]

    @property
    def text(self) -> str:
        """A readable report, one block per result, like pySHACL's but for a marketer."""
        counts = _severity_counts(self.results)
        summary = ", ".join(
            f"{n} {label if n > 1 else label[:-1]}" for label, n in counts.items() if n
        )
        lines = [f"Conforms: {'yes' if self.conforms else 'no'} ({summary or 'no problems'})"]
        total = len(self.results)
        for number, result in enumerate(self.results, 1):
            severity = _local_name(result.severity)
            path = _compact(result.path, self.prefixes) if result.path else None
            if path and result.path_name:
                path = f"{path} ({result.path_name})"
            lines.append("")
            shape = result.source_shape_name or _compact(result.source_shape, self.prefixes)
            lines.append(f"{severity} {number} of {total}: {shape}")
            lines.append(f"  Focus node: {_show(result.focus_node, self.prefixes)}")
            if path:
                lines.append(f"  Path: {path}")
            if result.value is not None:
                lines.append(f"  Value: {_show(result.value, self.prefixes)}")
            lines.append(f"  Message: {result.message}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for ``--report json`` and HTTP 422 bodies.

        ``focus_node`` is the IRI (``_:id`` for a blank node); ``value`` is a term object in
        the SPARQL 1.1 JSON results format, so a literal keeps its datatype or language.
        """
        counts = _severity_counts(self.results)
        return {
            "conforms": self.conforms,
            "violations": counts["violations"],
            "warnings": counts["warnings"],
            "infos": counts["infos"],
            "results": [
                {
                    "focus_node": _plain(result.focus_node),
                    "path": result.path,
                    "path_name": result.path_name,
                    "value": _term_json(result.value) if result.value is not None else None,
                    "message": result.message,
                    "severity": result.severity,
                    "source_shape": result.source_shape,
                    "source_shape_name": result.source_shape_name,
                    "constraint_component": result.constraint_component,
                }
                for result in self.results
            ],
        }


def _severity_counts(results: Iterable[ValidationResult]) -> dict[str, int]:
    counts = {"violations": 0, "warnings": 0, "infos": 0}
    for result in results:
        key = {_WARNING: "warnings", _INFO: "infos"}.get(result.severity, "violations")
        counts[key] += 1
    return counts


def _local_name(iri: str) -> str:
    return re.split(r"[#/]", iri)[-1]


def _compact(iri: str, prefixes: Mapping[str, str]) -> str:
    """rm:trustLevel for an IRI in a known namespace; IRIs inside SPARQL paths likewise."""
    if iri.startswith("_:"):
        return iri
    if iri[:1] in "(^<":
        return re.sub(r"<([^<>\s]*)>", lambda m: _compact(m.group(1), prefixes), iri)
    best: str | None = None
    for prefix, namespace in prefixes.items():
        local = iri[len(namespace) :]
        longer = best is None or len(namespace) > len(prefixes[best])
        if iri.startswith(namespace) and re.fullmatch(r"[A-Za-z_][\w-]*", local) and longer:
            best = prefix
    return f"{best}:{iri[len(prefixes[best]) :]}" if best is not None else f"<{iri}>"


def _show(term: Term, prefixes: Mapping[str, str]) -> str:
    if isinstance(term, ox.NamedNode):
        return _compact(term.value, prefixes)
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if term.language:
        return f'"{term.value}"@{term.language}'
    if term.datatype.value == str(XSD.string):
        return f'"{term.value}"'
    return f'"{term.value}" ({_compact(term.datatype.value, prefixes)})'


def _plain(term: Term) -> str:
    return f"_:{term.value}" if isinstance(term, ox.BlankNode) else term.value


def _term_json(term: Term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    encoded = {"type": "literal", "value": term.value}
    if term.language:
        encoded["xml:lang"] = term.language
    elif term.datatype.value != str(XSD.string):
        encoded["datatype"] = term.datatype.value
    return encoded


# ---------------------------------------------------------------------------------------------
# The store validate() reads


def validation_store(
    data: bytes | str | Path | Iterable[ox.Quad | ox.Triple],
    rdf_format: ox.RdfFormat | None = None,
    ontology_paths: Iterable[Path] | None = None,
    *,
    base_iri: str | None = None,
    hierarchy_only: bool = False,
) -> ox.Store:
    """An in-memory store of ``data`` plus the ontology (in ``urn:relmark:ontology``).

    ``hierarchy_only``: only the ontology's ``rdf:type`` and ``rdfs:subClassOf`` triples,
    all that a view of the store needs from the files (validate_change reads the rest of
    the ontology about the nodes it looks at from the store's ontology graph).

    This is the store :func:`validate` expects: SHACL targets and sh:class must see the class
    hierarchy and the ontology's individuals. ``data`` is RDF text (``bytes``/``str``, with
    ``rdf_format``), a file ``Path`` (format from its extension unless given) or quads;
    triples go to the default graph, quads keep their graphs. Syntax errors raise
    ``SyntaxError`` from pyoxigraph's parser.
    """
    store = ox.Store()
    if isinstance(data, Path):
        fmt = rdf_format or ox.RdfFormat.from_extension(data.suffix.lstrip("."))
        if fmt is None:
            raise ValueError(f"cannot tell the RDF format of {data} from its extension")
        store.bulk_load(path=str(data), format=fmt, base_iri=base_iri)
    elif isinstance(data, bytes | str):
        if rdf_format is None:
            raise ValueError("rdf_format is required when data is given as text")
        store.bulk_load(input=data, format=rdf_format, base_iri=base_iri)
    else:
        store.bulk_extend(
            ox.Quad(q.subject, q.predicate, q.object) if isinstance(q, ox.Triple) else q
            for q in data
        )
    paths = vocab.ontology_paths() if ontology_paths is None else ontology_paths
    for path in paths:
        quads = _ontology_quads(Path(path), Path(path).stat().st_mtime_ns)
        store.bulk_extend(quads[1] if hierarchy_only else quads[0])
    return store


@functools.lru_cache(maxsize=16)
def _ontology_quads(path: Path, _version: int) -> tuple[tuple[ox.Quad, ...], tuple[ox.Quad, ...]]:
    """An ontology file's quads in ``urn:relmark:ontology``, all of them and only its types
    and subclass links; parsed once per file version (parsing the Turtle took a third of a
    small write's validation)."""
    fmt = ox.RdfFormat.from_extension(path.suffix.lstrip(".")) or ox.RdfFormat.TURTLE
    graph = ox.NamedNode(ONTOLOGY_GRAPH)
    quads = tuple(
        ox.Quad(t.subject, t.predicate, t.object, graph)
        for t in ox.parse(path=str(path), format=fmt)
    )
    hierarchy = {RDF.type, RDFS.subClassOf}
    return quads, tuple(q for q in quads if URIRef(q.predicate.value) in hierarchy)


# ---------------------------------------------------------------------------------------------
# Compiling shapes


@dataclass(frozen=True)
class _Target:
    kind: str  # one of _TARGETS, or "target" for a SHACL-AF sh:SPARQLTarget
    term: str  # class or predicate IRI; targetNode: the node in SPARQL; target: its SELECT


_Spec = frozenset[_Target]


@dataclass
class _Shape:
    node: Node
    id_: str
    name: str
    is_property: bool
    path: str | None = None  # SPARQL property path
    simple_path: str | None = None  # the predicate IRI when the path is one forward IRI
    result_path: str | None = None
    severity: str = _VIOLATION
    deactivated: bool = False
    messages: dict[str, str] = field(default_factory=dict)
    path_names: dict[str, str] = field(default_factory=dict)
    targets: set[_Target] = field(default_factory=set)


@dataclass
class _Check:
    """One (shape, constraint) pair: what a result produced by it says."""

    id_: int
    shape: _Shape
    parameter: str
    params: dict[str, str]
    messages: dict[str, str]
    severity: str
    class_set: int | None = None  # sh:class-like checks, re-checked against `existing`
    report_value: bool = True
    node_level: bool = False  # the value node is the focus node itself

    @property
    def component(self) -> str:
        return _SH + _COMPONENT[self.parameter]


@dataclass
class _Select:
    """A SELECT whose rows are results: ?focus, maybe ?value and ?path, ?failed check ids."""

    text: str
    sparql_check: _Check | None = None


@dataclass
class _Screen:
    """One pass counting a predicate's triples and bad values; decides the detailed queries."""

    predicate: str
    expressions: list[tuple[str, list[tuple[_Check, _Spec]]]] = field(default_factory=list)
    class_checks: dict[int, list[tuple[_Check, _Spec]]] = field(default_factory=dict)
    max_checks: dict[int, list[tuple[_Check, _Spec]]] = field(default_factory=dict)
    query: str = ""
    expression_queries: list[str] = field(default_factory=list)
    class_queries: list[str] = field(default_factory=list)
    max_queries: list[tuple[int, str]] = field(default_factory=list)

    def follow_ups(self, counts: Mapping[str, int]) -> list[_Select]:
        """Nothing when the predicate is unused; otherwise only what the counts call for."""
        if not counts.get("n"):
            return []
        texts = [q for i, q in enumerate(self.expression_queries) if counts.get(f"x{i}")]
        texts += self.class_queries
        # n == s: no focus node has two values, which settles every sh:maxCount but 0.
        several = counts.get("n") != counts.get("s")
        texts += [query for bound, query in self.max_queries if several or bound == 0]
        return [_Select(text) for text in texts]


class Shapes:
    """A shapes graph compiled into SPARQL SELECTs, once, for any number of validations."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.graph = graph
        self.prefixes: dict[str, str] = {p: str(ns) for p, ns in graph.namespaces() if p}
        self.prefixes.setdefault("rm", vocab.RM)
        self.prefixes.setdefault("demo", vocab.DEMO)
        self.checks: list[_Check] = []
        self.class_sets: list[frozenset[str]] = []
        self.selects: list[_Select] = []
        self.sparql_prefixes: dict[str, str] = {}
        self.screens: list[_Screen] = []
        _Compiler(self).compile()

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
    """Turns a shapes graph into checks and the queries that find their violations."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes
        self.graph = shapes.graph
        self.shape_of: dict[Node, _Shape] = {}
        self.parents: dict[Node, list[Node]] = defaultdict(list)
        self.in_progress: set[Node] = set()
        self.class_set_index: dict[frozenset[str], int] = {}
        self.screens: dict[str, _Screen] = {}
        self.min_count_groups: dict[_Spec, list[_Check]] = defaultdict(list)
        self.counter = count()
        self.custom_parameters = self._custom_component_parameters()

    def var(self, stem: str) -> str:
        """A fresh hidden variable, so nested patterns never join by accident."""
        return f"?_{stem}{next(self.counter)}"

    def class_set(self, classes: Iterable[str]) -> int:
        key = frozenset(classes)
        if key not in self.class_set_index:
            self.class_set_index[key] = len(self.shapes.class_sets)
            self.shapes.class_sets.append(key)
        return self.class_set_index[key]

    def _custom_component_parameters(self) -> set[Node]:
        graph = self.graph
        parameters: set[Node] = set()
        for component in graph.subjects(RDF.type, SH.ConstraintComponent):
            for parameter in graph.objects(component, SH.parameter):
                path = graph.value(parameter, SH.path)
                if path is not None:
                    parameters.add(path)
        return parameters

    # -- discovery -------------------------------------------------------------------------

    def compile(self) -> None:
        graph = self.graph
        nodes: set[Node] = set()
        for kind in (SH.NodeShape, SH.PropertyShape):
            nodes.update(graph.subjects(RDF.type, kind))
        for target in (*_TARGETS, "target", "path"):
            nodes.update(graph.subjects(SH[target], None))
        for parameter in ("property", "node", "not", "qualifiedValueShape"):
            nodes.update(graph.objects(None, SH[parameter]))
        for parameter in ("or", "and", "xone"):
            for members in graph.objects(None, SH[parameter]):
                nodes.update(graph.items(members))
        for parent in nodes:
            for child in graph.objects(parent, SH.property):
                self.parents[child].append(parent)
        ordered = sorted(nodes, key=lambda n: (isinstance(n, BNode), str(n)))
        for node in ordered:
            self.shape_of[node] = self._read_shape(node)
        for node in ordered:
            self._compile_shape(self.shape_of[node])
        self._finish()

    def _name(self, node: Node) -> str:
        """How errors and reports refer to a shape; blank nodes by their place."""
        if isinstance(node, URIRef):
            return _compact(str(node), self.shapes.prefixes)
        holders = self.parents.get(node) or [
            s for s in self.graph.subjects(None, node) if s != node
        ]
        where = f" in {self._name(holders[0])}" if holders else ""
        path = self.graph.value(node, SH.path)
        if isinstance(path, URIRef):
            return f"[property shape on {_compact(str(path), self.shapes.prefixes)}{where}]"
        if path is not None:
            return f"[property shape on a complex path{where}]"
        return f"[blank-node shape{where}]"

    def _read_shape(self, node: Node) -> _Shape:
        graph = self.graph
        name = self._name(node)
        id_ = str(node) if isinstance(node, URIRef) else f"_:{node}"
        path_node = graph.value(node, SH.path)
        shape = _Shape(node=node, id_=id_, name=name, is_property=path_node is not None)
        for predicate in set(graph.predicates(node, None)):
            if predicate in self.custom_parameters:
                raise UnsupportedShapeError(
                    name,
                    f"the parameter <{predicate}> of a custom constraint component",
                    SPEC + "#constraint-components",
                )
            local = str(predicate)[len(_SH) :] if str(predicate).startswith(_SH) else None
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
        shape.deactivated = _is_true(graph.value(node, SH.deactivated))
        shape.messages = _messages(graph, node)
        for target in _TARGETS:
            for value in graph.objects(node, SH[target]):
                shape.targets.add(self._target(target, value, name))
        for value in graph.objects(node, SH.target):
            shape.targets.add(self._sparql_target(value, name))
        class_types = {RDFS.Class, *graph.transitive_subjects(RDFS.subClassOf, RDFS.Class)}
        if any((node, RDF.type, klass) in graph for klass in class_types):
            if not isinstance(node, URIRef):
                raise ShapesError(name, "an implicit class target must be an IRI")
            shape.targets.add(_Target("targetClass", str(node)))
        return shape

    def _target(self, kind: str, value: Node, name: str) -> _Target:
        if kind == "targetNode":
            return _Target(kind, _sparql_term(value, name, "sh:targetNode"))
        if not isinstance(value, URIRef):
            raise ShapesError(name, f"sh:{kind} must be an IRI", SPEC + "#targets")
        return _Target(kind, str(value))

    def _sparql_target(self, node: Node, name: str) -> _Target:
        """A SHACL-AF SPARQL-based target: the focus nodes are the ?this its SELECT returns."""
        graph, where = self.graph, _AF + "#SPARQLTarget"
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
        self._collect_prefixes(node, name)
        _check_syntax(query, name, self.shapes.sparql_prefixes)
        return _Target("target", query)

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

    def _focus_spec(self, shape: _Shape) -> _Spec:
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

    # -- constraints -----------------------------------------------------------------------

    def _check(self, shape: _Shape, parameter: str, params: dict[str, str], **kw: Any) -> _Check:
        check = _Check(
            id_=len(self.shapes.checks),
            shape=shape,
            parameter=parameter,
            params=params,
            messages=shape.messages,
            severity=shape.severity,
            **kw,
        )
        self.shapes.checks.append(check)
        return check

    def _compile_shape(self, shape: _Shape) -> None:
        """Every constraint is compiled, so errors surface even in shapes nothing reaches."""
        graph, node, name = self.graph, shape.node, shape.name
        spec = self._focus_spec(shape)
        prefixes = self.shapes.prefixes
        for parameter in ("minCount", "maxCount"):
            for value in graph.objects(node, SH[parameter]):
                if not shape.is_property:
                    raise ShapesError(name, f"sh:{parameter} needs a property shape")
                bound = _integer(value, name, parameter)
                check = self._check(shape, parameter, {parameter: str(bound)}, report_value=False)
                if spec and parameter == "minCount":
                    self._plan_min_count(check, spec, bound)
                elif spec:
                    self._plan_max_count(check, spec, bound)
        for parameter in sorted(_VALUE_PARAMETERS):
            for value in sorted(graph.objects(node, SH[parameter]), key=str):
                self._compile_value_constraint(shape, spec, parameter, value)
        for parameter in _PAIR_PARAMETERS:
            for value in graph.objects(node, SH[parameter]):
                if not isinstance(value, URIRef):
                    raise ShapesError(name, f"sh:{parameter} must be an IRI")
                if parameter.startswith("less") and not shape.is_property:
                    raise ShapesError(name, f"sh:{parameter} needs a property shape")
                params = {parameter: _compact(str(value), prefixes)}
                check = self._check(shape, parameter, params, node_level=not shape.is_property)
                if spec:
                    self._plan_pair(check, spec, parameter, str(value))
        for value in graph.objects(node, SH.uniqueLang):
            if not shape.is_property:
                raise ShapesError(name, "sh:uniqueLang needs a property shape")
            if _is_true(value):
                check = self._check(shape, "uniqueLang", {}, report_value=False)
                if spec:
                    self._plan_unique_lang(check, spec)
        for value in graph.objects(node, SH.hasValue):
            term = _sparql_term(value, name, "sh:hasValue")
            params = {"hasValue": _n3_short(value, prefixes)}
            if shape.is_property:
                check = self._check(shape, "hasValue", params, report_value=False)
                if spec:
                    self._plan_has_value(check, spec, term)
            else:
                check = self._check(shape, "hasValue", params, node_level=True)
                if spec:
                    self._plan_node_expression(check, spec, f"sameTerm(?focus, {term})")
        if _is_true(graph.value(node, SH.closed)):
            if shape.is_property:
                raise UnsupportedShapeError(name, "sh:closed on a property shape")
            self._compile_closed(shape, spec)
        for constraint in graph.objects(node, SH.sparql):
            self._compile_sparql(shape, spec, constraint)

    def _compile_value_constraint(
        self, shape: _Shape, spec: _Spec, parameter: str, value: Node
    ) -> None:
        prefixes = self.shapes.prefixes
        params = {parameter: _n3_short(value, prefixes)}
        if parameter in ("in", "languageIn"):
            members = self.graph.items(value)
            params[parameter] = ", ".join(_n3_short(m, prefixes) for m in members)
        node_level = not shape.is_property
        classes = self._class_alternatives(shape, parameter, value)
        if classes is not None:
            index = self.class_set(classes)
            check = self._check(shape, parameter, params, class_set=index, node_level=node_level)
            if spec:
                self._plan_class(check, spec)
            return
        expression = self._expression(shape, parameter, value, "?focus" if node_level else "?value")
        check = self._check(shape, parameter, params, node_level=node_level)
        if spec and node_level:
            self._plan_node_expression(check, spec, expression)
        elif spec:
            self._plan_value(check, spec, expression)

    def _class_alternatives(self, shape: _Shape, parameter: str, value: Node) -> set[str] | None:
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
                if str(p).startswith(_SH) and str(p)[len(_SH) :] not in _DESCRIPTIVE
            }
            values = list(graph.objects(member, SH["class"]))
            if constraining != {SH["class"]} or len(values) != 1:
                return None
            if not isinstance(values[0], URIRef) or _is_true(graph.value(member, SH.deactivated)):
                return None
            classes.add(str(values[0]))
        return classes or None

    def _expression(self, shape: _Shape, parameter: str, value: Node, v: str) -> str:
        """A SPARQL expression, true when the node in ``v`` satisfies the constraint.

        Callers wrap it in COALESCE(…, false): an error means "does not return true", which
        SHACL counts as a violation (e.g. a string compared with sh:minInclusive 0).
        """
        graph, name = self.graph, shape.name
        if parameter == "class":
            if not isinstance(value, URIRef):
                raise ShapesError(name, "sh:class must be an IRI")
            return self._class_test(self.class_set({str(value)}), v)
        if parameter == "datatype":
            return _datatype_test(value, v, name)
        if parameter == "nodeKind":
            local = str(value)[len(_SH) :] if str(value).startswith(_SH) else ""
            if local not in _NODE_KINDS:
                raise ShapesError(name, f"sh:nodeKind {value} is not a node kind")
            return _NODE_KINDS[local].format(v=v)
        if parameter in _RANGE_OPERATORS:
            if not isinstance(value, Literal):
                raise ShapesError(name, f"sh:{parameter} must be a literal")
            bound = _sparql_term(value, name, parameter)
            return f"({v} {_RANGE_OPERATORS[parameter]} {bound})"
        if parameter in ("minLength", "maxLength"):
            operator = ">=" if parameter == "minLength" else "<="
            bound = _integer(value, name, parameter)
            return f"(!isBlank({v}) && STRLEN(STR({v})) {operator} {bound})"
        if parameter == "pattern":
            flags = graph.value(shape.node, SH.flags)
            flag_text = f", {_sparql_string(str(flags))}" if flags is not None else ""
            return f"(!isBlank({v}) && REGEX(STR({v}), {_sparql_string(str(value))}{flag_text}))"
        if parameter == "languageIn":
            tags = [_sparql_string(str(tag)) for tag in graph.items(value)]
            tests = " || ".join(f"langMatches(lang({v}), {tag})" for tag in tags)
            return f"(isLiteral({v}) && ({tests or 'false'}))"
        if parameter == "in":
            members = [_sparql_term(m, name, "sh:in") for m in graph.items(value)]
            return "(" + (" || ".join(f"sameTerm({v}, {m})" for m in members) or "false") + ")"
        if parameter == "hasValue":
            return f"sameTerm({v}, {_sparql_term(value, name, 'sh:hasValue')})"
        if parameter == "not":
            return f"!COALESCE({self._shape_expression(value, v, name)}, false)"
        if parameter == "node":
            return self._shape_expression(value, v, name)
        parts = [
            f"COALESCE({self._shape_expression(member, v, name)}, false)"
            for member in graph.items(value)
        ]
        if parameter == "and":
            return "(" + (" && ".join(parts) or "true") + ")"
        if parameter == "or":
            return "(" + (" || ".join(parts) or "false") + ")"
        if parameter == "xone":
            return "((" + (" + ".join(f"IF({p}, 1, 0)" for p in parts) or "0") + ") = 1)"
        raise UnsupportedShapeError(name, f"sh:{parameter}")  # pragma: no cover

    def _shape_expression(self, node: Node, v: str, used_by: str) -> str:
        """Conformance of the node in ``v`` to a shape made only of value-level constraints."""
        shape = self.shape_of.get(node)
        if shape is None:
            raise ShapesError(used_by, f"{node} is used as a shape but is not one")
        if shape.deactivated:
            return "true"
        if node in self.in_progress:
            raise UnsupportedShapeError(
                shape.name, "a recursive shape reference", SPEC + "#shapes-recursion"
            )
        if shape.is_property or self.graph.value(node, SH.property) is not None:
            raise UnsupportedShapeError(
                shape.name, f"property constraints in a shape that {used_by} uses as a value check"
            )
        self.in_progress.add(node)
        tests = []
        for predicate, value in sorted(self.graph.predicate_objects(node), key=str):
            local = str(predicate)[len(_SH) :] if str(predicate).startswith(_SH) else None
            if local is None or local in _DESCRIPTIVE:
                continue
            if local not in _VALUE_PARAMETERS and local != "hasValue":
                raise UnsupportedShapeError(
                    shape.name, f"sh:{local} in a shape that {used_by} uses as a value check"
                )
            tests.append(f"COALESCE({self._expression(shape, local, value, v)}, false)")
        self.in_progress.discard(node)
        return "(" + (" && ".join(tests) or "true") + ")"

    def _class_test(self, class_set: int, v: str) -> str:
        var = self.var("c")
        return f"EXISTS {{ {v} {_RDF_TYPE} {var} . VALUES {var} {{ ⟪classes:{class_set}⟫ }} }}"

    def _compile_closed(self, shape: _Shape, spec: _Spec) -> None:
        graph = self.graph
        allowed = {str(graph.value(p, SH.path)) for p in graph.objects(shape.node, SH.property)}
        ignored = graph.value(shape.node, SH.ignoredProperties)
        if ignored is not None:
            allowed |= {str(p) for p in graph.items(ignored)}
        check = self._check(shape, "closed", {})
        if not spec:
            return
        names = ", ".join(f"<{p}>" for p in sorted(allowed) if not p.startswith("_:"))
        condition = f"FILTER(?path NOT IN ({names}))" if names else ""
        self._select(
            f"SELECT ?focus ?path ?value ?failed WHERE {{ {self._generate(spec)} "
            f'?focus ?path ?value . {condition} BIND(" {check.id_}" AS ?failed) }}'
        )

    # -- SHACL-SPARQL ----------------------------------------------------------------------

    def _compile_sparql(self, shape: _Shape, spec: _Spec, constraint: Node) -> None:
        graph, name = self.graph, shape.name
        where = SPEC + "#sparql-constraints"
        if _is_true(graph.value(constraint, SH.deactivated)):
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
        self._collect_prefixes(constraint, name)
        opening = _where_brace(query, name)
        check = self._check(shape, "sparql", {"shape": name}, node_level=not shape.is_property)
        check.messages = _messages(graph, constraint) or shape.messages
        severity = graph.value(constraint, SH.severity)
        if isinstance(severity, URIRef) and graph.value(shape.node, SH.severity) is None:
            check.severity = str(severity)
        focus = f"{{ SELECT DISTINCT ?this WHERE {self._generate(spec or frozenset(), '?this')} }}"
        text = f"{query[: opening + 1]} {focus} {query[opening + 1 :]}"
        _check_syntax(text, name, self.shapes.sparql_prefixes)
        if spec:
            self.shapes.selects.append(_Select(text, sparql_check=check))

    def _collect_prefixes(self, node: Node, name: str) -> None:
        """Add the sh:declare prefixes of sh:prefixes; every query is run with all of them."""
        graph, known = self.graph, self.shapes.sparql_prefixes
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

    # -- planning: the queries that find the violations ------------------------------------

    def _membership(self, spec: _Spec, v: str = "?focus") -> str:
        """True when the node in ``v`` is a focus node of the targets in ``spec``."""
        tests = []
        classes = sorted(t.term for t in spec if t.kind == "targetClass")
        if classes:
            var, index = self.var("m"), self.class_set(classes)
            tests.append(
                f"EXISTS {{ {v} {_RDF_TYPE} {var} . VALUES {var} {{ ⟪classes:{index}⟫ }} }}"
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

    def _generate(self, spec: _Spec, v: str = "?focus") -> str:
        """A group binding ``v`` to every focus node of ``spec`` (possibly more than once)."""
        branches = []
        classes = sorted(t.term for t in spec if t.kind == "targetClass")
        if classes:
            var, index = self.var("g"), self.class_set(classes)
            branches.append(f"VALUES {var} {{ ⟪classes:{index}⟫ }} {v} {_RDF_TYPE} {var} .")
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

    def _flags(self, members: list[tuple[_Check, _Spec]]) -> str:
        """Bind ?failed to the ids of the checks whose focus nodes include ?focus."""
        parts = [f'IF({self._membership(spec)}, " {check.id_}", "")' for check, spec in members]
        joined = parts[0] if len(parts) == 1 else f"CONCAT({', '.join(parts)})"
        return f'BIND({joined} AS ?failed) FILTER(?failed != "")'

    def _select(self, text: str) -> None:
        self.shapes.selects.append(_Select(text))

    def _screen(self, predicate: str) -> _Screen:
        if predicate not in self.screens:
            self.screens[predicate] = _Screen(predicate)
        return self.screens[predicate]

    @staticmethod
    def _candidate_first(shape: _Shape, spec: _Spec) -> bool:
        """Find bad values first, then test their focus nodes: right for one-IRI paths whose
        targets are cheap to test; other paths and SPARQL targets start from the targets."""
        cheap = all(target.kind != "target" for target in spec)
        return cheap and (bool(shape.simple_path) or not shape.is_property)

    def _plan_value(self, check: _Check, spec: _Spec, expression: str) -> None:
        shape = check.shape
        if shape.simple_path and self._candidate_first(shape, spec):
            screen = self._screen(shape.simple_path)
            for known, members in screen.expressions:
                if known == expression:
                    members.append((check, spec))
                    return
            screen.expressions.append((expression, [(check, spec)]))
            return
        self._select(
            f"SELECT ?focus ?value ?failed WHERE {{ {self._generate(spec)} "
            f"?focus {shape.path} ?value . FILTER(!COALESCE({expression}, false)) "
            f'BIND(" {check.id_}" AS ?failed) }}'
        )

    def _lacks_type(self, class_set: int, v: str) -> str:
        var = self.var("t")
        return f"MINUS {{ {v} {_RDF_TYPE} {var} . VALUES {var} {{ ⟪classes:{class_set}⟫ }} }}"

    def _plan_class(self, check: _Check, spec: _Spec) -> None:
        shape, class_set = check.shape, check.class_set or 0
        if not shape.is_property:
            self._select(
                f"SELECT ?focus ?failed WHERE {{ {self._generate(spec)} "
                f'{self._lacks_type(class_set, "?focus")} BIND(" {check.id_}" AS ?failed) }}'
            )
        elif shape.simple_path and self._candidate_first(shape, spec):
            members = self._screen(shape.simple_path).class_checks.setdefault(class_set, [])
            members.append((check, spec))
        else:
            self._select(
                f"SELECT ?focus ?value ?failed WHERE {{ {self._generate(spec)} "
                f"?focus {shape.path} ?value . {self._lacks_type(class_set, '?value')} "
                f'BIND(" {check.id_}" AS ?failed) }}'
            )

    def _plan_node_expression(self, check: _Check, spec: _Spec, expression: str) -> None:
        self._select(
            f"SELECT ?focus ?failed WHERE {{ {self._generate(spec)} "
            f'FILTER(!COALESCE({expression}, false)) BIND(" {check.id_}" AS ?failed) }}'
        )

    def _plan_min_count(self, check: _Check, spec: _Spec, bound: int) -> None:
        if bound < 1:
            return
        if bound == 1:
            self.min_count_groups[spec].append(check)
            return
        var = self.var("v")
        self._select(
            f'SELECT ?focus (" {check.id_}" AS ?failed) WHERE {{ {self._generate(spec)} '
            f"OPTIONAL {{ ?focus {check.shape.path} {var} }} }} GROUP BY ?focus "
            f"HAVING (COUNT(DISTINCT {var}) < {bound})"
        )

    def _plan_max_count(self, check: _Check, spec: _Spec, bound: int) -> None:
        shape = check.shape
        if shape.simple_path and self._candidate_first(shape, spec):
            self._screen(shape.simple_path).max_checks.setdefault(bound, []).append((check, spec))
            return
        self._select(
            f'SELECT ?focus (" {check.id_}" AS ?failed) WHERE {{ {self._generate(spec)} '
            f"?focus {shape.path} ?value }} GROUP BY ?focus "
            f"HAVING (COUNT(DISTINCT ?value) > {bound})"
        )

    def _plan_pair(self, check: _Check, spec: _Spec, parameter: str, other: str) -> None:
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
                f"{{ {self._generate(spec)} FILTER NOT EXISTS {{ ?focus <{other}> ?focus }} "
                "BIND(?focus AS ?value) }"
            )
        else:
            operator = "<" if parameter == "lessThan" else "<="
            var = self.var("o")
            inner = (
                f"?focus {path} ?value . ?focus <{other}> {var} . "
                f"FILTER(!COALESCE(?value {operator} {var}, false))"
            )
        self._select(self._candidates(check, spec, inner, "?value"))

    def _plan_unique_lang(self, check: _Check, spec: _Spec) -> None:
        path, var = check.shape.path, self.var("o")
        inner = (
            f"?focus {path} ?value . ?focus {path} {var} . FILTER(!sameTerm(?value, {var}) "
            f'&& lang(?value) != "" && LCASE(lang(?value)) = LCASE(lang({var})))'
        )
        self._select(self._candidates(check, spec, inner, ""))

    def _plan_has_value(self, check: _Check, spec: _Spec, term: str) -> None:
        var = self.var("v")
        self._select(
            f"SELECT ?focus ?failed WHERE {{ {self._generate(spec)} FILTER NOT EXISTS "
            f"{{ ?focus {check.shape.path} {var} . FILTER(sameTerm({var}, {term})) }} "
            f'BIND(" {check.id_}" AS ?failed) }}'
        )

    def _candidates(self, check: _Check, spec: _Spec, inner: str, value: str) -> str:
        """Candidate rows first, ignoring targets; then keep those whose ?focus is a focus node.

        With a single-IRI path the candidates are few and cheap to find, so testing their
        focus nodes beats enumerating every focus node; other paths start from the targets.
        """
        if self._candidate_first(check.shape, spec):
            return (
                f"SELECT DISTINCT ?focus {value} ?failed WHERE {{ "
                f"{{ SELECT ?focus {value} WHERE {{ {inner} }} }} {self._flags([(check, spec)])} }}"
            )
        return (
            f"SELECT DISTINCT ?focus {value} ?failed WHERE {{ {self._generate(spec)} {inner} "
            f'BIND(" {check.id_}" AS ?failed) }}'
        )

    def _finish(self) -> None:
        """Group minCount 1 checks by focus nodes and write each predicate's screen queries."""
        for spec, checks in self.min_count_groups.items():
            tests = [
                f'IF(EXISTS {{ ?focus {c.shape.path} {self.var("v")} }}, "", " {c.id_}")'
                for c in checks
            ]
            joined = tests[0] if len(tests) == 1 else f"CONCAT({', '.join(tests)})"
            self._select(
                f"SELECT ?focus ?failed WHERE {{ {self._generate(spec)} "
                f'BIND({joined} AS ?failed) FILTER(?failed != "") }}'
            )
        for predicate in sorted(self.screens):
            self.shapes.screens.append(self._finish_screen(self.screens[predicate]))

    def _finish_screen(self, screen: _Screen) -> _Screen:
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


# ---------------------------------------------------------------------------------------------
# Helpers for compiling


def _is_true(node: Node | None) -> bool:
    return isinstance(node, Literal) and node.toPython() is True


def _integer(value: Node, name: str, parameter: str) -> int:
    python = value.toPython() if isinstance(value, Literal) else None
    if isinstance(python, int) and not isinstance(python, bool):
        return python
    raise ShapesError(name, f"sh:{parameter} must be an integer, not {value}")


def _messages(graph: rdflib.Graph, node: Node) -> dict[str, str]:
    """sh:message in every language given, keyed by lower-case tag ('' for none)."""
    messages: dict[str, str] = {}
    for message in sorted(graph.objects(node, SH.message), key=str):
        if isinstance(message, Literal):
            messages.setdefault((message.language or "").lower(), str(message))
    return messages


def _datatype_test(value: Node, v: str, name: str) -> str:
    if not isinstance(value, URIRef):
        raise ShapesError(name, "sh:datatype must be an IRI", SPEC + "#DatatypeConstraintComponent")
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
    return f"({test} && <{_WELL_FORMED.value}>({v}))"


def _sparql_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def _sparql_term(node: Node, name: str, where: str) -> str:
    if isinstance(node, URIRef):
        return f"<{node}>"
    if isinstance(node, Literal):
        if node.language:
            return f"{_sparql_string(str(node))}@{node.language}"
        return f"{_sparql_string(str(node))}^^<{node.datatype or XSD.string}>"
    raise UnsupportedShapeError(name, f"a blank node as the value of {where}")


def _n3_short(node: Node, prefixes: Mapping[str, str]) -> str:
    return _compact(str(node), prefixes) if isinstance(node, URIRef) else str(node)


_TOKEN = re.compile(
    r"""(?P<comment>\#[^\n]*)
      | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
                   |'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
      | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
      | (?P<var>[?$][A-Za-z_]\w*)
      | (?P<pname>[A-Za-z_][\w.-]*:[\w.%-]*|:[\w.%-]*)
      | (?P<word>[A-Za-z_]\w*)
      | (?P<punct>[{}()])""",
    re.VERBOSE,
)
_NOT_PREBINDABLE = frozenset({"MINUS", "SERVICE", "VALUES"})


def _where_brace(query: str, name: str) -> int:
    """Where the outer WHERE group of an sh:select opens; the focus nodes are joined there.

    Joining the targets at the head of the WHERE group gives $this its value for every focus
    node at once. The constructs for which that would differ from SHACL's pre-binding are
    rejected (https://www.w3.org/TR/shacl/#pre-binding forbids most of them anyway).
    """
    depth = paren = 0
    opening: int | None = None
    sub_selects: list[int] = []  # brace depth at which each open sub-SELECT began
    for match in _TOKEN.finditer(query):
        kind, text = match.lastgroup, match.group()
        if kind == "word" and text.upper() in _NOT_PREBINDABLE:
            raise UnsupportedShapeError(
                name, f"{text.upper()} in an sh:select query", SPEC + "#pre-binding"
            )
        if kind == "word" and text.upper() == "SELECT" and depth > 0:
            sub_selects.append(depth)
        elif kind == "var" and text[1:] == "this" and sub_selects:
            raise UnsupportedShapeError(name, "$this inside a sub-SELECT", SPEC + "#pre-binding")
        elif text == "(" and kind == "punct":
            paren += 1
        elif text == ")" and kind == "punct":
            paren -= 1
        elif text == "{" and kind == "punct":
            if depth == 0 and paren == 0 and opening is None:
                opening = match.start()
            depth += 1
        elif text == "}" and kind == "punct":
            depth -= 1
            while sub_selects and sub_selects[-1] > depth:
                sub_selects.pop()
    if opening is None:
        raise ShapesError(
            name, "its sh:select query has no WHERE group", SPEC + "#sparql-constraints"
        )
    return opening


def _check_syntax(text: str, name: str, prefixes: Mapping[str, str]) -> None:
    """Parse a user-written query now, so a typo fails at compile time."""
    try:
        ox.Store().query(re.sub(r"⟪classes:\d+⟫", "", text), prefixes=dict(prefixes))
    except SyntaxError as error:
        raise ShapesError(name, f"its sh:select query does not parse: {error}") from error


# ---------------------------------------------------------------------------------------------
# Running


def _well_formed(term: Term) -> ox.Literal:
    """SPARQL function for datatypes pyoxigraph cannot cast: rdflib's lexical check."""
    if not isinstance(term, ox.Literal):
        return ox.Literal(False)
    return ox.Literal(not Literal(term.value, datatype=URIRef(term.datatype.value)).ill_typed)


_FUNCTIONS = {_WELL_FORMED: _well_formed}


@dataclass(frozen=True)
class _Hit:
    check: _Check
    focus: Term
    value: Term | None
    path: str | None
    bindings: Mapping[str, Term] | None = None


class _Run:
    """One validation: the data store, the class closures it implies, the queries run."""

    def __init__(self, store: ox.Store, shapes: Shapes) -> None:
        self.store = store
        self.shapes = shapes
        self.closures = self._closures()

    def _closures(self) -> list[frozenset[str]]:
        """Each class set with all its subclasses, read from the data (ontology included)."""
        classes = sorted({c for members in self.shapes.class_sets for c in members})
        below: dict[str, set[str]] = {c: {c} for c in classes}
        if classes:
            values = " ".join(f"<{c}>" for c in classes)
            query = (
                f"SELECT ?super ?sub WHERE {{ VALUES ?super {{ {values} }} "
                f"?sub <{RDFS.subClassOf}>* ?super }}"
            )
            for row in self.store.query(query, use_default_graph_as_union=True):
                if isinstance(row["sub"], ox.NamedNode):
                    below[row["super"].value].add(row["sub"].value)
        return [
            frozenset(c for m in members for c in below[m]) for members in self.shapes.class_sets
        ]

    def render(self, text: str) -> str:
        def closure(match: re.Match[str]) -> str:
            return " ".join(f"<{c}>" for c in sorted(self.closures[int(match.group(1))]))

        return re.sub(r"⟪classes:(\d+)⟫", closure, text)

    def select(self, text: str) -> ox.QuerySolutions:
        rendered = self.render(text)
        return self.store.query(
            rendered,
            use_default_graph_as_union=True,
            custom_functions=_FUNCTIONS,
            prefixes=self.shapes.sparql_prefixes,
        )

    def execute(self, workers: int, predicates: set[str] | None = None) -> list[_Hit]:
        """Run every query, screens first deciding their follow-ups, on ``workers`` threads.

        ``predicates``, when known, are all the predicates the data uses: a screen of any
        other predicate would count nothing, so it is not run (a small write's view uses a
        few dozen of the shapes' predicates).
        """
        screens = [
            s for s in self.shapes.screens if predicates is None or s.predicate in predicates
        ]
        jobs: list[_Select | _Screen] = [*self.shapes.selects, *screens]
        hits: list[_Hit] = []
        if workers <= 1:
            while jobs:
                found, more = self._run(jobs.pop())
                hits += found
                jobs += more
            return hits
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: set[Future[tuple[list[_Hit], list[_Select]]]] = {
                pool.submit(self._run, job) for job in jobs
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    found, more = future.result()
                    hits += found
                    pending |= {pool.submit(self._run, job) for job in more}
        return hits

    def _run(self, job: _Select | _Screen) -> tuple[list[_Hit], list[_Select]]:
        if isinstance(job, _Screen):
            solutions = self.select(job.query)
            names = [variable.value for variable in solutions.variables]
            row = next(iter(solutions))
            counts = {name: int(row[name].value) for name in names if row[name] is not None}
            return [], job.follow_ups(counts)
        solutions = self.select(job.text)
        if job.sparql_check is not None:
            return self._sparql_hits(job.sparql_check, solutions), []
        return self._hits(solutions), []

    def _hits(self, solutions: ox.QuerySolutions) -> list[_Hit]:
        names = {variable.value for variable in solutions.variables}
        checks = self.shapes.checks
        found = []
        for row in solutions:
            focus = row["focus"]
            value = row["value"] if "value" in names else None
            path_term = row["path"] if "path" in names else None
            for id_ in row["failed"].value.split():
                check = checks[int(id_)]
                path = path_term.value if path_term is not None else check.shape.result_path
                shown = focus if check.node_level and value is None else value
                found.append(_Hit(check, focus, shown if check.report_value else None, path))
        return found

    def _sparql_hits(self, check: _Check, solutions: ox.QuerySolutions) -> list[_Hit]:
        names = [variable.value for variable in solutions.variables]
        shape = check.shape
        found = []
        for row in solutions:
            bindings = {name: row[name] for name in names if row[name] is not None}
            failure = bindings.get("failure")
            if isinstance(failure, ox.Literal) and failure.value == "true":
                raise ValidationFailure(f"the SPARQL constraint of {shape.name} reported ?failure")
            focus = bindings["this"]
            value = bindings.get("value", None if shape.is_property else focus)
            path = shape.result_path
            if not shape.is_property and isinstance(bindings.get("path"), ox.NamedNode):
                path = bindings["path"].value
            found.append(_Hit(check, focus, value, path, bindings))
        return found


def _typed_elsewhere(hits: list[_Hit], run: _Run, existing: ox.Store | SparqlSource) -> list[_Hit]:
    """Drop sh:class results whose value is typed as required in the already stored data."""
    candidates = sorted(
        {
            h.value.value
            for h in hits
            if h.check.class_set is not None and isinstance(h.value, ox.NamedNode)
        }
    )
    if not candidates:
        return hits
    types: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(candidates), 500):
        values = " ".join(f"<{iri}>" for iri in candidates[start : start + 500])
        query = f"SELECT ?v ?t WHERE {{ VALUES ?v {{ {values} }} ?v <{RDF.type}> ?t }}"
        if isinstance(existing, ox.Store):
            rows = existing.query(query, use_default_graph_as_union=True)
        else:
            rows = existing.query(query)
        for row in rows:
            if isinstance(row["t"], ox.NamedNode):
                types[row["v"].value].add(row["t"].value)

    def satisfied(hit: _Hit) -> bool:
        if hit.check.class_set is None or not isinstance(hit.value, ox.NamedNode):
            return False
        return bool(types.get(hit.value.value, set()) & run.closures[hit.check.class_set])

    return [hit for hit in hits if not satisfied(hit)]


def _pick(texts: Mapping[str, str], lang: str) -> str | None:
    """The text in ``lang``, else its primary language, else untagged, else English."""
    if not texts:
        return None
    lang = lang.lower()
    primary = lang.split("-")[0]
    for key in (lang, primary):
        if key in texts:
            return texts[key]
    for key, text in sorted(texts.items()):
        if key.split("-")[0] == primary:
            return text
    for key in ("", "en"):
        if key in texts:
            return texts[key]
    return texts[min(texts)]


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Substitute {?var}, {$var} (SHACL message templates) and {name} from ``values``."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return re.sub(r"\{[?$]?(\w+)\}", replace, template)


def _words(term: Term, prefixes: Mapping[str, str]) -> str:
    if isinstance(term, ox.Literal):
        return term.value
    return _show(term, prefixes)


def _result(hit: _Hit, lang: str, prefixes: Mapping[str, str]) -> ValidationResult:
    check = hit.check
    values = {key: value for key, value in check.params.items()}
    values["this"] = values["focusNode"] = _words(hit.focus, prefixes)
    values["path"] = _compact(hit.path, prefixes) if hit.path else "the node"
    values["value"] = _words(hit.value, prefixes) if hit.value is not None else ""
    for name, term in (hit.bindings or {}).items():
        values[name] = _words(term, prefixes)
    template = _pick(check.messages, lang)
    if template is None:
        default = _fill(_DEFAULT_MESSAGES[check.parameter], values)
        message = default[:1].upper() + default[1:]
    else:
        message = _fill(template, values)
    return ValidationResult(
        focus_node=hit.focus,
        path=hit.path,
        value=hit.value,
        message=message,
        severity=check.severity,
        source_shape=check.shape.id_,
        constraint_component=check.component,
        path_name=_pick(check.shape.path_names, lang),
        source_shape_name=check.shape.name,
    )


def _sort_key(result: ValidationResult) -> tuple[Any, ...]:
    return (
        _SEVERITY_RANK.get(result.severity, 1),
        str(result.focus_node),
        result.path or "",
        result.source_shape,
        result.constraint_component,
        str(result.value) if result.value is not None else "",
        result.message,
    )


def validate(
    data: ox.Store,
    shapes: Shapes,
    *,
    existing: ox.Store | SparqlSource | None = None,
    lang: str = "en",
    workers: int | None = None,
) -> ValidationReport:
    """Validate ``data`` (built by :func:`validation_store`) against compiled ``shapes``.

    ``existing`` is the store the data will join (a pyoxigraph Store, all graphs read, or a
    relmark ``store.Store``): a value that an sh:class constraint (or an sh:or of classes)
    finds untyped in ``data`` is accepted when ``existing`` types it as required. Messages are in
    ``lang`` where the shapes give one. Queries run on ``workers`` threads (default: the
    machine's cores, at most 4); pyoxigraph releases the GIL while it evaluates them.
    """
    run = _Run(data, shapes)
    hits = run.execute(workers if workers is not None else min(4, os.cpu_count() or 1))
    if existing is not None:
        hits = _typed_elsewhere(hits, run, existing)
    results = sorted({_result(hit, lang, shapes.prefixes) for hit in hits}, key=_sort_key)
    return ValidationReport(
        conforms=not any(result.is_violation for result in results),
        results=results,
        prefixes=shapes.prefixes,
    )


# ---------------------------------------------------------------------------------------------
# Validation in the context of the store a write joins
#
# A write is valid when the store *after* it conforms for every focus node the write can
# affect. Copying the store to validate it whole costs seconds per million triples, and most
# of it cannot have changed, so the check is made on a small in-memory view of the store as
# it would be after the write: the incoming quads, plus, from the store, every quad about the
# affected nodes (minus what the write removes) and the types of the nodes those quads point
# to. The compiled shape queries run over that view and only the affected focus nodes'
# results count (the view holds other nodes only in part).

_INFERRED_GRAPH = "urn:relmark:inferred"
#: relmark's bookkeeping graphs: never part of what the shapes see (the ontology graph is:
#: what it says about the nodes looked at is read like data).
_NOT_DATA = frozenset(
    {
        "urn:relmark:shapes",
        "urn:relmark:config",
        "urn:relmark:provenance",
        "urn:relmark:meta",
    }
)
_TYPE = ox.NamedNode(str(RDF.type))
_SUBCLASS = ox.NamedNode(str(RDFS.subClassOf))
_CHUNK = 400  # nodes per VALUES block when a store is read through SPARQL

Node_ = ox.NamedNode | ox.BlankNode


class QuadReader(Protocol):
    """What a store offers for the view: ``quads_for_pattern`` as pyoxigraph's Store has."""

    def quads_for_pattern(
        self, subject: Any, predicate: Any, object: Any, graph_name: Any = None
    ) -> Iterable[ox.Quad]: ...


@dataclass
class Change:
    """A write as the shapes see it: quads it adds and removes, graphs it replaces whole.

    ``added`` is an in-memory store built by :func:`validation_store` (the incoming quads in
    their graphs, plus the ontology); ``removed`` are quads that leave the store; every quad
    of the ``replaced`` graphs leaves it (a load replaces its graph; PUT replaces one).
    """

    added: ox.Store
    removed: list[ox.Quad] = field(default_factory=list)
    replaced: frozenset[str] = frozenset()


#: Below this many affected nodes the shape queries run on the calling thread.
_SMALL_VIEW = 2_000


@functools.lru_cache(maxsize=8)
def _reaches_in(shapes: Shapes) -> frozenset[str]:
    return inverse_predicates(shapes)


@functools.lru_cache(maxsize=8)
def _local(shapes: Shapes) -> bool:
    return local_paths(shapes)


def inverse_predicates(shapes: Shapes) -> frozenset[str]:
    """The predicates some shape reads *into* a node (an inverse path, sh:targetObjectsOf):
    a node's incoming quads with these predicates belong to its part of the view."""
    found = set()
    for check in shapes.checks:
        found.update(re.findall(r"\^<([^>]*)>", check.shape.path or ""))
        found.update(t.term for t in check.shape.targets if t.kind == "targetObjectsOf")
    return frozenset(found)


def local_paths(shapes: Shapes) -> bool:
    """Whether every path is one IRI, forward or inverse: the view then holds all a focus
    node's results depend on. Longer paths need nodes further away (see validate_change)."""
    return all(
        check.shape.path is None or re.fullmatch(r"\(?\^?<[^>]*>\)?", check.shape.path)
        for check in shapes.checks
    )


def validate_change(
    change: Change,
    shapes: Shapes,
    store: ox.Store | QuadReader | SparqlSource | None,
    *,
    lang: str = "en",
    workers: int | None = None,
) -> ValidationReport:
    """Validate a write against the store it joins, as the store would be after it.

    Without ``store`` the incoming data is checked alone (today's ``relmark validate`` with
    no store). Otherwise the affected focus nodes are: the subjects and objects of the quads
    added or removed (the replaced graphs' included), and the nodes that point to a node
    whose types change (their sh:class checks read those types). Their results are computed
    over the view described above and returned; a write that removes a required value is
    rejected like one that adds a wrong one.
    """
    if store is None:
        return validate(change.added, shapes, lang=lang, workers=workers)
    if not _local(shapes):
        raise UnsupportedShapeError(
            "(shapes graph)",
            "a path longer than one IRI in validation against a store (the view holds each "
            "affected node's own quads and its neighbours' types only)",
        )
    with _pattern_reader(store) as reader:
        focus = _View(store, reader, change, inverse=_reaches_in(shapes)).build()
    run = _Run(change.added, shapes)
    predicates = None
    if workers is None and len(focus) < _SMALL_VIEW:
        workers = 1  # a small view's queries take less time than handing them to threads
        rows = change.added.query(
            "SELECT DISTINCT ?p WHERE { ?s ?p ?o }", use_default_graph_as_union=True
        )
        predicates = {row["p"].value for row in rows}
    hits = [h for h in run.execute(_workers(workers), predicates) if _key(h.focus) in focus]
    results = sorted({_result(hit, lang, shapes.prefixes) for hit in hits}, key=_sort_key)
    return ValidationReport(
        conforms=not any(result.is_violation for result in results),
        results=results,
        prefixes=shapes.prefixes,
    )


def _workers(workers: int | None) -> int:
    return workers if workers is not None else min(4, os.cpu_count() or 1)


def _key(term: Term) -> str:
    """A hashable identity for a node across stores (blank nodes keep their ids)."""
    return f"_:{term.value}" if isinstance(term, ox.BlankNode) else str(term)


def _is_node(term: object) -> bool:
    return isinstance(term, ox.NamedNode | ox.BlankNode)


class _View:
    """Fills ``change.added`` with the store's quads about the affected nodes (the view)."""

    def __init__(self, store: Any, reader: Any, change: Change, *, inverse: frozenset[str]) -> None:
        self.store = store
        self.change = change
        self.inverse = inverse
        self.removed = set(change.removed)
        self.reader = reader

    # -- which quads of the store are in the after-write view
    def keep(self, quad: ox.Quad) -> bool:
        graph = quad.graph_name
        if isinstance(graph, ox.NamedNode):
            name = graph.value
            if name in _NOT_DATA or name in self.change.replaced:
                return False
            if name == _INFERRED_GRAPH and quad.predicate != _TYPE:
                return False  # the inferred classes count, as the shapes use them
        return quad not in self.removed

    def build(self) -> set[str]:
        added = self.change.added
        subjects, objects, typed = _nodes_of_store(added)
        for quad in self.change.removed:
            subjects[_key(quad.subject)] = quad.subject
            if _is_node(quad.object):
                objects[_key(quad.object)] = quad.object
            if quad.predicate == _TYPE:
                typed[_key(quad.subject)] = quad.subject
        for graph in sorted(self.change.replaced):
            for quad in self._graph_quads(graph):
                subjects[_key(quad.subject)] = quad.subject
                if _is_node(quad.object):
                    objects[_key(quad.object)] = quad.object
                if quad.predicate == _TYPE:
                    typed[_key(quad.subject)] = quad.subject
        focus = {**subjects, **objects}
        # a node whose types change changes the sh:class results of the nodes pointing to it
        pointing = self._matching(list(typed.values()), as_object=True)
        for quad in pointing:
            focus.setdefault(_key(quad.subject), quad.subject)
        for predicate in map(ox.NamedNode, sorted(self.inverse)):
            # ... and, along an inverse path, the nodes it points to
            for quad in self._matching(list(typed.values()), as_object=False, predicate=predicate):
                if _is_node(quad.object):
                    focus.setdefault(_key(quad.object), quad.object)
        # the view: the focus nodes' own quads (and incoming ones the shapes read) ...
        found = self._matching(list(focus.values()), as_object=False)
        for predicate in map(ox.NamedNode, sorted(self.inverse)):
            found += self._matching(list(focus.values()), as_object=True, predicate=predicate)
        # ... and the types of every node those quads link to, in the store or incoming
        linked: dict[str, Node_] = {}
        for quad in found:
            for term in (quad.subject, quad.object):
                if _is_node(term) and _key(term) not in focus:
                    linked.setdefault(_key(term), term)
        found += self._matching(list(linked.values()), as_object=False, predicate=_TYPE)
        if self.change.removed or self.change.replaced:
            retracted = self._retracted([q for q in found if _is_inferred(q)])
            found = [q for q in found if q not in retracted]
        added.extend(_as_data(found))
        # subclasses declared in the data rather than the ontology
        added.extend(_as_data(self._subclass_quads()))
        return set(focus)

    # -- reading the store
    def _matching(
        self, nodes: list[Node_], *, as_object: bool, predicate: ox.NamedNode | None = None
    ) -> list[ox.Quad]:
        if not nodes:
            return []
        found: list[ox.Quad] = []
        if self.reader is not None:
            for node in nodes:
                pattern = (None, predicate, node) if as_object else (node, predicate, None)
                found += [q for q in self.reader(*pattern, None) if self.keep(q)]
            return found
        return [
            q for q in _sparql_matching(self.store, nodes, as_object, predicate) if self.keep(q)
        ]

    def _graph_quads(self, graph: str) -> Iterable[ox.Quad]:
        node = ox.NamedNode(graph)
        if self.reader is not None:
            return self.reader(None, None, None, node)
        rows = self.store.query(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        return [ox.Quad(r["s"], r["p"], r["o"], node) for r in rows]

    def _retracted(self, inferred: list[ox.Quad]) -> set[ox.Quad]:
        """The inferred classes in ``inferred`` that no longer follow after the write.

        An inferred class holds while one of its derivations (``urn:relmark:provenance``:
        the facts each rule application used) has all its facts left: a write that removes
        the facts a class was inferred from takes the class away too, as the refresh after
        the write will. (Classes the write would newly infer are not seen before it.)
        """
        candidates = {q.triple: q for q in inferred if isinstance(q.subject, ox.NamedNode)}
        if not candidates:
            return set()
        derivations: dict[ox.Triple, dict[str, list[ox.Quad]]] = defaultdict(dict)
        # a derivation may rest on inferred facts of other kinds (``inInternalMarketOf``
        # for ``Employee``): their derivations are read too, until none is left unread
        asked: set[ox.Triple] = set()
        pending = list(candidates)
        while pending:
            asked.update(pending)
            self._read_derivations(pending, derivations)
            pending = list(
                dict.fromkeys(
                    q.triple
                    for ways in derivations.values()
                    for used in ways.values()
                    for q in used
                    if _is_inferred(q) and q.triple not in asked and _valued(q.triple)
                )
            )
        retracted: set[ox.Triple] = set()
        changed = True
        while changed:  # premises may be inferred facts that go too
            changed = False
            for conclusion, ways in derivations.items():
                if conclusion in retracted:
                    continue
                if not any(all(self._holds(q, retracted) for q in used) for used in ways.values()):
                    retracted.add(conclusion)
                    changed = True
        return {candidates[t] for t in retracted if t in candidates}

    def _read_derivations(
        self, triples: list[ox.Triple], derivations: dict[ox.Triple, dict[str, list[ox.Quad]]]
    ) -> None:
        """Add each inferred triple's derivations and the facts each one used."""
        for start in range(0, len(triples), _CHUNK):
            values = " ".join(
                f"({t.subject} {t.predicate} {t.object})" for t in triples[start : start + _CHUNK]
            )
            for row in self.store.query(_DERIVATIONS.replace("⟪values⟫", values)):
                conclusion = ox.Triple(row["n"], row["np"], row["c"])
                premises = derivations[conclusion].setdefault(row["d"].value, [])
                if row["s"] is not None:
                    graph = row["g"] if row["g"] is not None else ox.DefaultGraph()
                    premises.append(ox.Quad(row["s"], row["p"], row["o"], graph))

    def _holds(self, quad: ox.Quad, retracted: set[ox.Triple]) -> bool:
        graph = quad.graph_name
        if isinstance(graph, ox.NamedNode):
            if graph.value == _INFERRED_GRAPH:
                return quad.triple not in retracted
            if graph.value in self.change.replaced:
                return False
        return quad not in self.removed

    def _subclass_quads(self) -> list[ox.Quad]:
        if self.reader is not None:
            return [q for q in self.reader(None, _SUBCLASS, None, None) if self.keep(q)]
        rows = self.store.query(
            f"SELECT ?s ?o ?g WHERE {{ GRAPH ?g {{ ?s <{RDFS.subClassOf}> ?o }} }}"
        )
        return [
            q for q in (ox.Quad(r["s"], _SUBCLASS, r["o"], r["g"]) for r in rows) if self.keep(q)
        ]


def _valued(triple: ox.Triple) -> bool:
    """Whether a triple can be named in a VALUES block (no blank nodes)."""
    return not isinstance(triple.subject, ox.BlankNode) and not isinstance(
        triple.object, ox.BlankNode
    )


def _is_inferred(quad: ox.Quad) -> bool:
    graph = quad.graph_name
    return isinstance(graph, ox.NamedNode) and graph.value == _INFERRED_GRAPH


_PROV = "http://www.w3.org/ns/prov#"
#: Each inferred triple's derivations and the facts (with their graphs) each one used.
_DERIVATIONS = f"""SELECT ?n ?np ?c ?d ?s ?p ?o ?g WHERE {{
  VALUES (?n ?np ?c) {{ ⟪values⟫ }}
  GRAPH <urn:relmark:provenance> {{
    ?st <{RDF.subject}> ?n ; <{RDF.predicate}> ?np ; <{RDF.object}> ?c .
    ?d <{_PROV}generated> ?st .
    OPTIONAL {{
      ?d <{_PROV}used> ?u . ?u <{RDF.subject}> ?s ; <{RDF.predicate}> ?p ; <{RDF.object}> ?o .
      OPTIONAL {{ ?u <{_PROV}atLocation> ?g }}
    }}
  }}
}}"""


@runtime_checkable
class _PatternReads(Protocol):
    """A store that answers quad patterns in process (``relmark.stores.base.PatternReads``,
    restated here: ``shacl`` sits beside ``stores`` and does not import it)."""

    def pattern_reader(self) -> contextlib.AbstractContextManager[Any]: ...


@contextlib.contextmanager
def _pattern_reader(store: Any) -> Iterator[Any]:
    """The store's quad-pattern reader, or None when only SPARQL reaches it (remote)."""
    if isinstance(store, ox.Store):
        yield store.quads_for_pattern
    elif isinstance(store, _PatternReads):
        with store.pattern_reader() as reader:
            yield reader
    else:
        yield None


def _sparql_matching(
    store: Any, nodes: list[Node_], as_object: bool, predicate: ox.NamedNode | None
) -> list[ox.Quad]:
    """The quads about ``nodes`` through SPARQL (a remote store: IRIs only, no blank nodes)."""
    iris = [n for n in nodes if isinstance(n, ox.NamedNode)]
    p = f"<{predicate.value}>" if predicate is not None else "?p"
    found: list[ox.Quad] = []
    for start in range(0, len(iris), _CHUNK):
        values = " ".join(f"<{n.value}>" for n in iris[start : start + _CHUNK])
        var = "?o" if as_object else "?s"
        query = (
            f"SELECT ?s ?p ?o ?g WHERE {{ VALUES {var} {{ {values} }} GRAPH ?g {{ ?s {p} ?o }} }}"
        )
        for row in store.query(query, named_graphs=None):
            found.append(ox.Quad(row["s"], row["p"] or predicate, row["o"], row["g"]))
    return found


def _nodes_of_store(
    data: ox.Store,
) -> tuple[dict[str, Node_], dict[str, Node_], dict[str, Node_]]:
    """Subjects, node objects and typed subjects of the incoming quads (ontology left out)."""
    subjects: dict[str, Node_] = {}
    objects: dict[str, Node_] = {}
    typed: dict[str, Node_] = {}
    ontology = ox.NamedNode(ONTOLOGY_GRAPH)
    for graph in [ox.DefaultGraph(), *data.named_graphs()]:
        if graph == ontology:
            continue

        def within(pattern: str, graph: Any = graph) -> str:
            return pattern if isinstance(graph, ox.DefaultGraph) else f"GRAPH {graph} {pattern}"

        wanted = (
            (subjects, within("{ ?n ?p ?o }")),
            (objects, within("{ ?s ?p ?n FILTER(!isLiteral(?n)) }")),
            (typed, within(f"{{ ?n {_RDF_TYPE} ?t }}")),
        )
        for found, where in wanted:
            for row in data.query(f"SELECT DISTINCT ?n WHERE {{ {where} }}"):
                found[_key(row["n"])] = row["n"]
    return subjects, objects, typed


def _as_data(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """Store quads as the view holds them (the store's default graph stays the default)."""
    return list(quads)
