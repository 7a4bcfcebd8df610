"""Loading RDF sources: read (plain or gzip, file or stdin), parse, validate, write atomically.

Nothing is written until every source has parsed and, unless validation is switched off,
the data conforms to ``shapes.ttl``. The write itself is one journaled bulk load, so a
failure or a ``kill -9`` halfway leaves the store as it was (see ``store.py``).
"""

from __future__ import annotations

import functools
import gzip
import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pyoxigraph as ox

from relmark import rdf_input, shacl
from relmark.formats import Kind, formats_of
from relmark.history.forget import check_not_erased, erased_digests
from relmark.history.record import Cause, refresh_and_record
from relmark.stores.base import Store, StoreError, data_graph
from relmark.vocab import ONTOLOGY_DIR, SHAPES_FILE, ontology_paths

if TYPE_CHECKING:  # the type of a writable buffer (typeshed's; no runtime name)
    from _typeshed import WriteableBuffer

#: Names accepted by ``--format`` (and file extensions pyoxigraph does not know), mapped to
#: pyoxigraph's formats: the formats table's names, and ``owl`` for RDF/XML ontologies.
FORMATS: dict[str, ox.RdfFormat] = {
    **{
        name: fmt.oxigraph
        for fmt in formats_of(Kind.RDF)
        if isinstance(fmt.oxigraph, ox.RdfFormat)  # (every RDF kind's is)
        for name in fmt.names
    },
    "owl": ox.RdfFormat.RDF_XML,
}


class LoadError(Exception):
    """A source could not be read or parsed; ``where`` says file, line and column."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class ValidationFailed(Exception):
    """The data does not conform to the shapes; nothing was written."""

    def __init__(self, report: shacl.ValidationReport) -> None:
        super().__init__(f"{len(report.results)} SHACL result(s): the data does not conform")
        self.report = report


@dataclass(frozen=True)
class Source:
    """One input document, read into memory and decompressed."""

    name: str
    data: bytes
    fmt: ox.RdfFormat

    @property
    def default_graph_name(self) -> str:
        stem = Path(self.name).name.split(".")[0]
        return stem or "stdin"


def format_for(name: str, explicit: str | None = None) -> ox.RdfFormat:
    """The RDF format from ``--format`` or else from the file extension (``.gz`` ignored)."""
    if explicit:
        try:
            return FORMATS[explicit.lower()]
        except KeyError:
            known = ", ".join(sorted(FORMATS))
            raise LoadError(f"unknown format {explicit!r}; use one of: {known}") from None
    suffixes = [s.lstrip(".").lower() for s in Path(name).suffixes if s.lower() != ".gz"]
    if suffixes:
        fmt = ox.RdfFormat.from_extension(suffixes[-1]) or FORMATS.get(suffixes[-1])
        if fmt is not None:
            return fmt
    raise LoadError(f"cannot tell the RDF format of {name!r}; pass --format", where=name)


def read_source(
    name: str, explicit_format: str | None = None, stdin: IO[bytes] | None = None
) -> Source:
    """Read a file (or ``-`` for stdin), un-gzipping it when it is gzip-compressed."""
    if name == "-":
        if not explicit_format:
            raise LoadError("reading from stdin needs --format", where="-")
        raw = (stdin or sys.stdin.buffer).read()
    else:
        try:
            raw = Path(name).read_bytes()
        except OSError as error:
            raise LoadError(f"cannot read {name}: {error.strerror}", where=name) from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise LoadError(f"{name} is not a valid gzip file: {error}", where=name) from error
    return Source(name=name, data=raw, fmt=format_for(name, explicit_format))


def syntax_error_location(name: str, error: SyntaxError) -> str:
    """``file:line:column`` from a pyoxigraph parse error."""
    line, column = error.lineno, error.offset
    return f"{name}:{line}:{column}" if line else name


def check_safe(source: Source) -> None:
    """Refuse a source no parser should see (``rdf_input``: RDF/XML with a DTD)."""
    try:
        rdf_input.check_rdf_input(source.data, source.fmt)
    except rdf_input.UnsafeRdf as error:
        raise LoadError(f"{source.name}: {error}", where=source.name) from None


def parse_quads(source: Source, graph: str, max_iri_length: int | None = None) -> list[ox.Quad]:
    """Every statement of a source as quads; triples go into ``graph``.

    ``max_iri_length``: refuse (``LoadError``) a statement with a longer IRI.
    """
    check_safe(source)
    target = ox.NamedNode(graph)
    try:
        quads = [
            ox.Quad(q.subject, q.predicate, q.object, target)
            if isinstance(q, ox.Triple) or isinstance(q.graph_name, ox.DefaultGraph)
            else q
            for q in ox.parse(source.data, format=source.fmt)
        ]
    except SyntaxError as error:
        where = syntax_error_location(source.name, error)
        raise LoadError(f"{where}: {error.msg}", where=where) from error
    if max_iri_length is not None:
        try:
            rdf_input.check_iri_lengths(quads, max_iri_length)
        except rdf_input.UnsafeRdf as error:
            raise LoadError(f"{source.name}: {error}", where=source.name) from None
    return quads


@dataclass(frozen=True)
class LoadSummary:
    graphs: list[str]
    triples: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.triples / self.seconds if self.seconds > 0 else float("inf")

    @property
    def text(self) -> str:
        graphs = ", ".join(f"<{g}>" for g in self.graphs)
        return (
            f"loaded {self.triples:,} triples into {graphs} in {self.seconds:.2f} s "
            f"({self.rate:,.0f} triples/s)"
        )


def load_sources(
    store: Store,
    sources: list[Source],
    *,
    graph: str | None = None,
    validate: bool = True,
    ontology_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
    name: str | None = None,
) -> LoadSummary:
    """Parse, validate and write ``sources``: all of them, or (on any error) none.

    Each source replaces its own graph (named after the file) unless ``graph`` names one
    graph for all of them. Re-loading a source therefore replaces it, never duplicates it.
    The inferences are brought up to date afterwards and the memberships that changed are
    recorded in the history (``history.record``), the write named ``name`` if given.
    A source that names an erased IRI is refused (``ErasedResource``) unless ``force``.
    """
    started = time.perf_counter()
    plan: dict[str, list[Source]] = {}
    for source in sources:
        check_safe(source)
        plan.setdefault(data_graph(graph or source.default_graph_name), []).append(source)

    if not force and erased_digests(store):
        check_not_erased(store, (q for s in sources for q in _parsed(s)))
    if validate:
        report = validate_sources(store, plan, ontology_dir=ontology_dir)
        if not report.conforms:
            raise ValidationFailed(report)
    parts = {
        g: [(s.fmt, _counting(s.data, progress), s.name) for s in group]
        for g, group in plan.items()
    }
    try:
        store.bulk_replace_graphs(parts)
    except SyntaxError as error:
        raise _located(error) from error
    label = name or ", ".join(s.name for s in sources)
    refresh_and_record(store, ontology_dir, cause=Cause("load", label))
    triples = sum(store.graph_size(g) for g in plan)
    return LoadSummary(sorted(plan), triples, time.perf_counter() - started)


def _parsed(source: Source) -> Iterator[ox.Quad]:
    try:
        yield from ox.parse(source.data, format=source.fmt)
    except SyntaxError as error:
        error.filename = source.name
        raise _located(error) from error


def validate_sources(
    store: Store | None, plan: dict[str, list[Source]], *, ontology_dir: Path | None = None
) -> shacl.ValidationReport:
    """Check sources against the shapes in the context of ``store``, as it would be after
    the load: each planned graph replaced by its sources (``store`` None: the sources alone).

    The sources are parsed straight into pyoxigraph's memory (not a list of Python quads),
    which keeps a 1M-triple load's peak memory near a bare bulk load's; the write then
    parses the bytes again, in Rust. See ``shacl.validate_change`` for what is read
    from the store.
    """
    directory = ontology_dir or ONTOLOGY_DIR
    data = shacl.validation_store([], None, ontology_paths(directory))
    for graph, group in plan.items():
        for source in group:
            check_safe(source)
            try:
                data.bulk_load(source.data, format=source.fmt, to_graph=ox.NamedNode(graph))
            except SyntaxError as error:
                error.filename = source.name
                raise _located(error) from error
    change = shacl.Change(data, replaced=frozenset(plan) if store is not None else frozenset())
    return shacl.validate_change(change, compiled_shapes(directory / SHAPES_FILE), store)


def _located(error: SyntaxError) -> LoadError:
    where = syntax_error_location(error.filename or "input", error)
    return LoadError(f"{where}: {error.msg}", where=where)


def compiled_shapes(path: Path) -> shacl.Shapes:
    """The shapes compiled to SPARQL once per file version (compiling takes a while)."""
    return _compiled_shapes(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _compiled_shapes(path: Path, _version: int) -> shacl.Shapes:
    return shacl.Shapes.from_file(path)


def validate_quads(
    store: Store | None, quads: list[ox.Quad], *, ontology_dir: Path | None = None
) -> shacl.ValidationReport:
    """Check ``quads`` as an addition to ``store`` (None: the quads alone)."""
    return validate_write(store, quads, ontology_dir=ontology_dir)


def validate_write(
    store: Store | None,
    added: Iterable[ox.Quad],
    removed: Iterable[ox.Quad] = (),
    *,
    replaced: Iterable[str] = (),
    ontology_dir: Path | None = None,
) -> shacl.ValidationReport:
    """Check a write against the shapes, the store as it would be after it.

    ``added`` quads join the store, ``removed`` ones and every quad of the ``replaced``
    graphs leave it. With ``store`` None, ``added`` is checked alone.
    """
    directory = ontology_dir or ONTOLOGY_DIR
    shapes = compiled_shapes(directory / SHAPES_FILE)
    if store is None:
        return shacl.validate(
            shacl.validation_store(added, None, ontology_paths(directory)), shapes
        )
    data = shacl.validation_store(added, None, ontology_paths(directory), hierarchy_only=True)
    change = shacl.Change(data, list(removed), frozenset(replaced))
    return shacl.validate_change(change, shapes, store)


@dataclass(frozen=True)
class ShapesCheck:
    """The check of a validated update: the store after its change must conform to the shapes
    (for every focus node the change can affect; see ``validate_write``).

    Raises ``ValidationFailed`` to refuse. Plain data, so a store that forwards writes to
    another process (``SnapshotReplica``) sends ``ontology_dir`` there, and that process
    builds the same check around its own store.
    """

    store: Store | None
    ontology_dir: Path | None = None

    def __call__(self, added: list[ox.Quad], removed: list[ox.Quad]) -> None:
        report = validate_write(self.store, added, removed, ontology_dir=self.ontology_dir)
        if not report.conforms:
            raise ValidationFailed(report)


class _ProgressReader(io.RawIOBase):
    """A bytes reader that reports how far pyoxigraph's parser has read."""

    def __init__(self, data: bytes, progress: Callable[[int], None]) -> None:
        self._buffer = io.BytesIO(data)
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, target: WriteableBuffer) -> int:
        n = self._buffer.readinto(target)
        if n:
            self._progress(n)
        return n


def _counting(data: bytes, progress: Callable[[int], None] | None) -> bytes | IO[bytes]:
    return data if progress is None else io.BufferedReader(_ProgressReader(data, progress))


__all__ = [
    "FORMATS",
    "LoadError",
    "LoadSummary",
    "ShapesCheck",
    "Source",
    "StoreError",
    "ValidationFailed",
    "format_for",
    "load_sources",
    "read_source",
    "validate_quads",
    "validate_write",
]
