"""The data the shapes run over: the incoming data with the ontology, and, for a write into
a store, the part of the store the write can affect.

SHACL targets and sh:class must see the class hierarchy and the ontology's individuals, so
the incoming data is put in an in-memory store together with the ontology
(``validation_store``).

A write is valid when the store *after* it conforms for every focus node the write can
affect. Copying the store to validate it whole costs seconds per million triples, and most
of it cannot have changed, so the check is made on a small in-memory view of the store as
it would be after the write (``View``): the incoming quads, plus, from the store, every
quad about the affected nodes (minus what the write removes) and the types of the nodes
those quads point to. The compiled shape queries run over that view and only the affected
focus nodes' results count (the view holds other nodes only in part).
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard, cast, runtime_checkable

import pyoxigraph as ox
from rdflib.namespace import RDF, RDFS

from relmark import vocab
from relmark.vocab import (
    CONFIG_GRAPH,
    INFERRED_GRAPH,
    META_GRAPH,
    ONTOLOGY_GRAPH,
    PROVENANCE_GRAPH,
    SHAPES_GRAPH,
)

Term = ox.NamedNode | ox.BlankNode | ox.Literal
#: A node the view reads quads about (a triple term too, as a quad's subject may be one).
Node_ = ox.NamedNode | ox.BlankNode | ox.Triple

_RDF_TYPE = f"<{RDF.type}>"
#: relmark's bookkeeping graphs: never part of what the shapes see (the ontology graph is:
#: what it says about the nodes looked at is read like data).
_NOT_DATA = frozenset({SHAPES_GRAPH, CONFIG_GRAPH, PROVENANCE_GRAPH, META_GRAPH})
_TYPE = ox.NamedNode(str(RDF.type))
_SUBCLASS = ox.NamedNode(str(RDFS.subClassOf))
_CHUNK = 400  # nodes per VALUES block when a store is read through SPARQL


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

    This is the store ``validate`` expects: SHACL targets and sh:class must see the class
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
    and subclass links; parsed once per file version (parsing the Turtle is a large part
    of a small write's validation)."""
    fmt = ox.RdfFormat.from_extension(path.suffix.lstrip(".")) or ox.RdfFormat.TURTLE
    graph = ox.NamedNode(ONTOLOGY_GRAPH)
    quads = tuple(
        ox.Quad(t.subject, t.predicate, t.object, graph)
        for t in ox.parse(path=str(path), format=fmt)
    )
    hierarchy = {_TYPE, _SUBCLASS}
    return quads, tuple(q for q in quads if q.predicate in hierarchy)


class QuadReader(Protocol):
    """What a store offers for the view: ``quads_for_pattern`` as pyoxigraph's Store has."""

    def quads_for_pattern(
        self, subject: Any, predicate: Any, object: Any, graph_name: Any = None
    ) -> Iterable[ox.Quad]: ...


@dataclass
class Change:
    """A write as the shapes see it: quads it adds and removes, graphs it replaces whole.

    ``added`` is an in-memory store built by ``validation_store`` (the incoming quads in
    their graphs, plus the ontology); ``removed`` are quads that leave the store; every quad
    of the ``replaced`` graphs leaves it (a load replaces its graph; PUT replaces one).
    """

    added: ox.Store
    removed: list[ox.Quad] = field(default_factory=list)
    replaced: frozenset[str] = frozenset()


def key(term: Term | ox.Triple) -> str:
    """A hashable identity for a node across stores (blank nodes keep their ids)."""
    return f"_:{term.value}" if isinstance(term, ox.BlankNode) else str(term)


def _is_node(term: object) -> TypeGuard[ox.NamedNode | ox.BlankNode]:
    return isinstance(term, ox.NamedNode | ox.BlankNode)


@runtime_checkable
class _PatternReads(Protocol):
    """A store that answers quad patterns in process (``relmark.stores.base.PatternReads``,
    restated here: ``shacl`` sits beside ``stores`` and does not import it)."""

    def pattern_reader(self) -> contextlib.AbstractContextManager[Any]: ...


@contextlib.contextmanager
def pattern_reader(store: Any) -> Iterator[Any]:
    """The store's quad-pattern reader, or None when only SPARQL reaches it (remote)."""
    if isinstance(store, ox.Store):
        yield store.quads_for_pattern
    elif isinstance(store, _PatternReads):
        with store.pattern_reader() as reader:
            yield reader
    else:
        yield None


class View:
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
            if name == INFERRED_GRAPH and quad.predicate != _TYPE:
                return False  # the inferred classes count, as the shapes use them
        return quad not in self.removed

    def build(self) -> set[str]:
        """Fill the view; the keys (``key``) of the focus nodes the write affects."""
        added = self.change.added
        subjects, objects, typed = _nodes_of_store(added)
        for quad in self.change.removed:
            subjects[key(quad.subject)] = quad.subject
            if _is_node(quad.object):
                objects[key(quad.object)] = quad.object
            if quad.predicate == _TYPE:
                typed[key(quad.subject)] = quad.subject
        for graph in sorted(self.change.replaced):
            for quad in self._graph_quads(graph):
                subjects[key(quad.subject)] = quad.subject
                if _is_node(quad.object):
                    objects[key(quad.object)] = quad.object
                if quad.predicate == _TYPE:
                    typed[key(quad.subject)] = quad.subject
        focus = {**subjects, **objects}
        # a node whose types change changes the sh:class results of the nodes pointing to it
        pointing = self._matching(list(typed.values()), as_object=True)
        for quad in pointing:
            focus.setdefault(key(quad.subject), quad.subject)
        for predicate in map(ox.NamedNode, sorted(self.inverse)):
            # ... and, along an inverse path, the nodes it points to
            for quad in self._matching(list(typed.values()), as_object=False, predicate=predicate):
                if _is_node(quad.object):
                    focus.setdefault(key(quad.object), quad.object)
        # the view: the focus nodes' own quads (and incoming ones the shapes read) ...
        found = self._matching(list(focus.values()), as_object=False)
        for predicate in map(ox.NamedNode, sorted(self.inverse)):
            found += self._matching(list(focus.values()), as_object=True, predicate=predicate)
        # ... and the types of every node those quads link to, in the store or incoming
        linked: dict[str, Node_] = {}
        for quad in found:
            for term in (quad.subject, quad.object):
                if _is_node(term) and key(term) not in focus:
                    linked.setdefault(key(term), term)
        found += self._matching(list(linked.values()), as_object=False, predicate=_TYPE)
        if self.change.removed or self.change.replaced:
            retracted = self._retracted([q for q in found if _is_inferred(q)])
            found = [q for q in found if q not in retracted]
        added.extend(found)
        # subclasses declared in the data rather than the ontology
        added.extend(self._subclass_quads())
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
            if graph.value == INFERRED_GRAPH:
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
    return isinstance(graph, ox.NamedNode) and graph.value == INFERRED_GRAPH


_PROV = "http://www.w3.org/ns/prov#"
#: Each inferred triple's derivations and the facts (with their graphs) each one used.
_DERIVATIONS = f"""SELECT ?n ?np ?c ?d ?s ?p ?o ?g WHERE {{
  VALUES (?n ?np ?c) {{ ⟪values⟫ }}
  GRAPH <{PROVENANCE_GRAPH}> {{
    ?st <{RDF.subject}> ?n ; <{RDF.predicate}> ?np ; <{RDF.object}> ?c .
    ?d <{_PROV}generated> ?st .
    OPTIONAL {{
      ?d <{_PROV}used> ?u . ?u <{RDF.subject}> ?s ; <{RDF.predicate}> ?p ; <{RDF.object}> ?o .
      OPTIONAL {{ ?u <{_PROV}atLocation> ?g }}
    }}
  }}
}}"""


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
            found.append(ox.Quad(row["s"], predicate or row["p"], row["o"], row["g"]))
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
            rows = cast(ox.QuerySolutions, data.query(f"SELECT DISTINCT ?n WHERE {{ {where} }}"))
            for row in rows:
                found[key(row["n"])] = row["n"]
    return subjects, objects, typed
