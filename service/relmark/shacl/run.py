"""Running compiled shapes: over incoming data alone, or over a write in its store's context.

pyoxigraph runs the compiled queries (``relmark.shacl.compile``) in Rust, on several
threads (it releases the GIL while it evaluates), over an in-memory store that holds the
data plus the ontology (``relmark.shacl.view``). The screens run first and decide which
detailed queries follow (``relmark.shacl.plan``).

``validate`` checks data alone (a file before a load, ``relmark validate``);
``validate_change`` checks a write against the store it joins, on the view of the store
as it would be after the write.
"""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, cast

import pyoxigraph as ox
from rdflib.namespace import RDF, RDFS
from rdflib.term import Literal, URIRef

from relmark.shacl.compile import Shapes
from relmark.shacl.expressions import WELL_FORMED
from relmark.shacl.messages import Term
from relmark.shacl.plan import Check, Screen, Select
from relmark.shacl.report import Hit, ValidationReport, report
from relmark.shacl.shapes import UnsupportedShapeError
from relmark.shacl.view import Change, QuadReader, View, key, pattern_reader


class SparqlSource(Protocol):
    """What ``existing`` may be besides a pyoxigraph Store: relmark's ``Store``, whose
    ``query`` reads the union of all graphs when no graph is named."""

    def query(self, sparql: str) -> Any: ...


class ValidationFailure(RuntimeError):
    """A SHACL-SPARQL constraint bound ?failure: the data could not be validated at all."""


def _well_formed(term: Term) -> ox.Literal:
    """SPARQL function for datatypes pyoxigraph cannot cast: rdflib's lexical check."""
    if not isinstance(term, ox.Literal):
        return ox.Literal(False)
    return ox.Literal(not Literal(term.value, datatype=URIRef(term.datatype.value)).ill_typed)


_FUNCTIONS: dict[ox.NamedNode, Callable[..., Any]] = {WELL_FORMED: _well_formed}
_CLASSES = re.compile(r"⟪classes:(\d+)⟫")


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
            rows = self.store.query(query, use_default_graph_as_union=True)
            for row in cast(ox.QuerySolutions, rows):
                if isinstance(row["sub"], ox.NamedNode):
                    below[row["super"].value].add(row["sub"].value)
        return [
            frozenset(c for m in members for c in below[m]) for members in self.shapes.class_sets
        ]

    def render(self, text: str) -> str:
        def closure(match: re.Match[str]) -> str:
            return " ".join(f"<{c}>" for c in sorted(self.closures[int(match.group(1))]))

        return _CLASSES.sub(closure, text)

    def select(self, text: str) -> ox.QuerySolutions:
        rendered = self.render(text)
        solutions = self.store.query(
            rendered,
            use_default_graph_as_union=True,
            custom_functions=_FUNCTIONS,
            prefixes=self.shapes.sparql_prefixes,
        )
        return cast(ox.QuerySolutions, solutions)  # every compiled query is a SELECT

    def execute(self, workers: int, predicates: set[str] | None = None) -> list[Hit]:
        """Run every query, screens first deciding their follow-ups, on ``workers`` threads.

        ``predicates``, when known, are all the predicates the data uses: a screen of any
        other predicate would count nothing, so it is not run (a small write's view uses a
        few dozen of the shapes' predicates).
        """
        screens = [
            s for s in self.shapes.screens if predicates is None or s.predicate in predicates
        ]
        jobs: list[Select | Screen] = [*self.shapes.selects, *screens]
        hits: list[Hit] = []
        if workers <= 1:
            while jobs:
                found, more = self._run(jobs.pop())
                hits += found
                jobs += more
            return hits
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: set[Future[tuple[list[Hit], list[Select]]]] = {
                pool.submit(self._run, job) for job in jobs
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    found, more = future.result()
                    hits += found
                    pending |= {pool.submit(self._run, job) for job in more}
        return hits

    def _run(self, job: Select | Screen) -> tuple[list[Hit], list[Select]]:
        if isinstance(job, Screen):
            solutions = self.select(job.query)
            names = [variable.value for variable in solutions.variables]
            row = next(iter(solutions))
            counts = {name: int(row[name].value) for name in names if row[name] is not None}
            return [], job.follow_ups(counts)
        solutions = self.select(job.text)
        if job.sparql_check is not None:
            return self._sparql_hits(job.sparql_check, solutions), []
        return self._hits(solutions), []

    def _hits(self, solutions: ox.QuerySolutions) -> list[Hit]:
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
                found.append(Hit(check, focus, shown if check.report_value else None, path))
        return found

    def _sparql_hits(self, check: Check, solutions: ox.QuerySolutions) -> list[Hit]:
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
            found.append(Hit(check, focus, value, path, bindings))
        return found


def _typed_elsewhere(hits: list[Hit], run: _Run, existing: ox.Store | SparqlSource) -> list[Hit]:
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
        for row in cast(ox.QuerySolutions, rows):
            if isinstance(row["t"], ox.NamedNode):
                types[row["v"].value].add(row["t"].value)

    def satisfied(hit: Hit) -> bool:
        if hit.check.class_set is None or not isinstance(hit.value, ox.NamedNode):
            return False
        return bool(types.get(hit.value.value, set()) & run.closures[hit.check.class_set])

    return [hit for hit in hits if not satisfied(hit)]


def _workers(workers: int | None) -> int:
    """Threads for the queries: as asked, else the machine's cores, at most 4."""
    return workers if workers is not None else min(4, os.cpu_count() or 1)


def validate(
    data: ox.Store,
    shapes: Shapes,
    *,
    existing: ox.Store | SparqlSource | None = None,
    lang: str = "en",
    workers: int | None = None,
) -> ValidationReport:
    """Validate ``data`` (built by ``validation_store``) against compiled ``shapes``.

    ``existing`` is the store the data will join (a pyoxigraph Store, all graphs read, or a
    relmark ``Store``): a value that an sh:class constraint (or an sh:or of classes) finds
    untyped in ``data`` is accepted when ``existing`` types it as required. Messages are in
    ``lang`` where the shapes give one. Queries run on ``workers`` threads (default: the
    machine's cores, at most 4); pyoxigraph releases the GIL while it evaluates them.
    """
    run = _Run(data, shapes)
    hits = run.execute(_workers(workers))
    if existing is not None:
        hits = _typed_elsewhere(hits, run, existing)
    return report(hits, lang, shapes.prefixes)


# --- validation in the context of the store a write joins -------------------------------------

#: Below this many affected nodes the shape queries run on the calling thread.
_SMALL_VIEW = 2_000


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


@functools.lru_cache(maxsize=8)
def _reaches_in(shapes: Shapes) -> frozenset[str]:
    return inverse_predicates(shapes)


@functools.lru_cache(maxsize=8)
def _local(shapes: Shapes) -> bool:
    return local_paths(shapes)


def validate_change(
    change: Change,
    shapes: Shapes,
    store: ox.Store | QuadReader | SparqlSource | None,
    *,
    lang: str = "en",
    workers: int | None = None,
) -> ValidationReport:
    """Validate a write against the store it joins, as the store would be after it.

    Without ``store`` the incoming data is checked alone (``relmark validate`` with no
    store). Otherwise the affected focus nodes are: the subjects and objects of the quads
    added or removed (the replaced graphs' included), and the nodes that point to a node
    whose types change (their sh:class checks read those types). Their results are computed
    over the view of the store after the write (``relmark.shacl.view``) and returned; a
    write that removes a required value is rejected like one that adds a wrong one.
    """
    if store is None:
        return validate(change.added, shapes, lang=lang, workers=workers)
    if not _local(shapes):
        raise UnsupportedShapeError(
            "(shapes graph)",
            "a path longer than one IRI in validation against a store (the view holds each "
            "affected node's own quads and its neighbours' types only)",
        )
    with pattern_reader(store) as reader:
        focus = View(store, reader, change, inverse=_reaches_in(shapes)).build()
    run = _Run(change.added, shapes)
    predicates = None
    if workers is None and len(focus) < _SMALL_VIEW:
        workers = 1  # a small view's queries take less time than handing them to threads
        rows = change.added.query(
            "SELECT DISTINCT ?p WHERE { ?s ?p ?o }", use_default_graph_as_union=True
        )
        predicates = {row["p"].value for row in cast(ox.QuerySolutions, rows)}
    hits = [h for h in run.execute(_workers(workers), predicates) if key(h.focus) in focus]
    return report(hits, lang, shapes.prefixes)
