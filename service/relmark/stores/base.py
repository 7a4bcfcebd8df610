"""The store seam: what every back end answers, what only some can do, and what writes report.

Every back end (the embedded pyoxigraph store, a remote SPARQL 1.1 server, and the
replicas serving workers read through) answers ``Store``; the rest of relmark is written
against it and never imports a concrete store (``relmark.stores.open_store`` picks one).
What only some back ends can do is a named capability below, a ``Protocol`` asked for with
``isinstance(store, Capability)``: the type says what a caller relies on, and a checker
sees it, where probing for a method by name would not.

The errors a back end's server raises (``RemoteError`` and its kinds) are here too, as kinds
of ``relmark.errors``' categories, which the HTTP layer maps to statuses without knowing
which back end raised them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Protocol, runtime_checkable

import pyoxigraph as ox

from relmark.errors import BackendFailed, BackendUnavailable, QueryTimeout
from relmark.vocab import DATA_GRAPH_PREFIX, SYSTEM_GRAPHS

if TYPE_CHECKING:
    from relmark.stores.remote.lookup_cache import LookupCache

#: Where the content hash of each file-backed graph is kept (what a re-sync compares).
CONTENT_HASH = ox.NamedNode("urn:relmark:meta:contentHash")

Term = ox.NamedNode | ox.BlankNode | ox.Literal
#: What a quad pattern may have as its subject.
Subject = ox.NamedNode | ox.BlankNode
QueryResult = ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples
#: One part of a bulk write: ``(RdfFormat, bytes or binary file, label)`` or
#: ``("quads", quads, label)``; ``isinstance(part[0], ox.RdfFormat)`` tells which.
BulkPart = tuple[ox.RdfFormat, bytes | IO[bytes], str] | tuple[Literal["quads"], list[ox.Quad], str]


#: Graphs a store stages writes in (a remote load, a remote rule run); no store lists them.
STAGING_PREFIX = "urn:relmark:staging:"

#: Above this many changed quads a write reports its changes as unknown: recomputing every
#: inference is then cheaper than diffing the graphs.
CHANGE_LIMIT = 20_000


@dataclass
class Changes:
    """The quads a series of writes added and removed (what incremental inference needs)."""

    added: list[ox.Quad] = field(default_factory=list)
    removed: list[ox.Quad] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.removed)


class ChangeRecord:
    """What a store's data writes changed since the inference refresh last took it.

    ``changes`` is None once they are unknown (a raw SPARQL update, a restore, or more than
    ``CHANGE_LIMIT`` quads): the next refresh then recomputes everything. Writes to
    relmark's own graphs are not counted: the inference engine recomputes from those itself.
    """

    def __init__(self) -> None:
        self.changes: Changes | None = Changes()

    def take(self) -> Changes | None:
        changes, self.changes = self.changes, Changes()
        return changes

    def unknown(self) -> None:
        self.changes = None

    def note(self, added: Iterable[ox.Quad], removed: Iterable[ox.Quad]) -> None:
        if self.changes is None:
            return
        self.changes.added += [q for q in added if not is_system_graph(q.graph_name)]
        self.changes.removed += [q for q in removed if not is_system_graph(q.graph_name)]
        if len(self.changes) > CHANGE_LIMIT:
            self.changes = None

    def replaced(self, graph: str, old: list[ox.Quad] | None, new: list[ox.Quad] | None) -> None:
        """A graph's content was replaced (None: too big to have been read)."""
        if graph in SYSTEM_GRAPHS:
            return
        if old is None or new is None:
            self.changes = None
            return
        before, after = set(old), set(new)
        self.note(after - before, before - after)


class StoreError(Exception):
    """A store operation failed for a reason the caller can report."""


class StoreLocked(StoreError):
    """Another process (usually a running ``relmark serve``) holds the store open."""


class RemoteError(StoreError, BackendFailed):
    """The server behind the store refused or failed a request; ``backend`` names it."""

    backend: str  # always named here (a category above ``stores`` may not know it)

    def __init__(self, message: str, backend: str) -> None:
        super().__init__(message)
        self.backend = backend

    def __reduce__(self) -> tuple:  # pickled from a serving worker's writer: same error there
        return type(self), (str(self), self.backend)


class RemoteUnavailable(RemoteError, BackendUnavailable):
    """The server behind the store cannot be reached (down, refusing, or too slow)."""


class RemoteTimeout(RemoteUnavailable, QueryTimeout):
    """A read the server did not answer within RELMARK_QUERY_TIMEOUT: our query timeout."""

    def __init__(self, message: str, backend: str, seconds: float) -> None:
        super().__init__(message, backend)
        self.seconds = seconds

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.backend, self.seconds)


def data_graph(name: str) -> str:
    """The graph IRI for a load source: a bare name goes under ``urn:relmark:data:``."""
    if not name:
        raise StoreError("a graph name cannot be empty")
    if ":" in name:
        if name in SYSTEM_GRAPHS:
            raise StoreError(f"<{name}> is written by relmark itself; load data elsewhere")
        return name
    return DATA_GRAPH_PREFIX + name


def is_system_graph_quad(quad: ox.Quad) -> bool:
    """A quad in one of relmark's own graphs (a validated update never writes there)."""
    return is_system_graph(quad.graph_name)


def is_system_graph(graph: ox.NamedNode | ox.BlankNode | ox.DefaultGraph) -> bool:
    """One of relmark's own graphs: a write there is bookkeeping, not a data write."""
    return isinstance(graph, ox.NamedNode) and graph.value in SYSTEM_GRAPHS


#: Accepts or refuses a write's change: ``check(added, removed)`` raises to refuse.
ChangeCheck = Callable[[list[ox.Quad], list[ox.Quad]], None]
#: ``quads_for_pattern(subject, predicate, object, graph)``, None matching anything.
PatternLookup = Callable[..., Iterable[ox.Quad]]


class Store(Protocol):
    """What every back end answers; what only some do is a capability below."""

    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult: ...

    def update(self, sparql: str, *, system: bool = False) -> None: ...

    def update_validated(
        self, sparql: str, check: ChangeCheck, graphs: Iterable[str] | None = None
    ) -> None: ...

    def add_quads(self, quads: Iterable[ox.Quad]) -> None: ...

    def replace_graph(self, graph: str, triples: Iterable[ox.Triple | ox.Quad]) -> None: ...

    def bulk_replace_graphs(self, writes: Mapping[str, Iterable[BulkPart]]) -> None: ...

    def graph_size(self, graph: str) -> int: ...

    def drop_graph(self, graph: str) -> bool: ...

    def graph_names(self) -> list[str]: ...

    def has_graph(self, graph: str) -> bool: ...

    def triples(self, graph: str | None) -> Iterator[ox.Quad]: ...

    def count(self) -> int: ...

    def dump(self, output: IO[bytes], fmt: ox.RdfFormat) -> None: ...

    def restore(self, source: bytes | IO[bytes], fmt: ox.RdfFormat) -> None: ...

    def close(self) -> None: ...


# --- capabilities: what only some back ends can do ---------------------------------------------

#: ``isinstance`` answers, per capability and class of store (see ``_Capability``).
_ANSWERS: dict[tuple[type, type], bool] = {}


class _Capability(type(Protocol)):  # type: ignore[misc]
    """The metaclass of the capabilities: ``isinstance(store, Capability)`` is worked out
    once per class of store, then looked up.

    A back end's capabilities are its class's (each of its instances sets the same
    attributes in ``__init__``), while typing's own check, on Python 3.11, collects the
    protocol's members again on every call and asks the instance for each, costing more
    than the work it decides on paths that run per request (``queries.answer``).
    """

    def __instancecheck__(cls, instance: object) -> bool:
        key = (cls, type(instance))
        answer = _ANSWERS.get(key)
        if answer is None:
            answer = _ANSWERS[key] = super().__instancecheck__(instance)
        return answer


@runtime_checkable
class TracksChanges(Protocol, metaclass=_Capability):
    """Records what its data writes changed, so inferences follow them incrementally, and
    whether a data write still awaits its inference refresh (repaired at start-up).

    The stores that apply writes (embedded, remote) do; a serving worker's replica does not:
    its writes are applied, and the inferences refreshed, by the writer process.
    """

    def take_changes(self) -> Changes | None: ...

    def data_writes(self) -> int: ...

    def inferences_current(self, as_of: int) -> None: ...

    def inferences_stale(self) -> bool: ...


@runtime_checkable
class Optimizable(Protocol, metaclass=_Capability):
    """Can compact its files after bulk rewrites (RocksDB: one sorted run per index)."""

    def optimize(self) -> None: ...


@runtime_checkable
class GraphBytes(Protocol, metaclass=_Capability):
    """Serialises one graph as N-Triples itself (in Rust), without a Python object per quad."""

    def graph_bytes(self, graph: str | None) -> bytes: ...


@runtime_checkable
class PatternReads(Protocol, metaclass=_Capability):
    """Answers quad patterns directly, in process (what validation's view reads)."""

    def quads_for_pattern(
        self,
        subject: Subject | None,
        predicate: ox.NamedNode | None,
        obj: Term | None,
        graph_name: ox.NamedNode | ox.DefaultGraph | None = None,
    ) -> list[ox.Quad]: ...

    def pattern_reader(self) -> AbstractContextManager[PatternLookup]: ...


@runtime_checkable
class OnDisk(Protocol, metaclass=_Capability):
    """Lives in a directory: scratch copies go beside it (hard links need one file system)."""

    path: Path


@runtime_checkable
class CopyTo(Protocol, metaclass=_Capability):
    """Can write a private, writable embedded copy of itself into a new directory."""

    def copy_to(self, target: Path) -> None: ...


@runtime_checkable
class Checkpoints(Protocol, metaclass=_Capability):
    """Takes consistent on-disk copies of itself that are never written again (the
    snapshots serving workers and command-line readers open), and counts its writes."""

    path: Path
    #: Scratch copies a crashed process left beside the store, removed when it was opened.
    removed_scratch: list[Path]

    def backup(self, target: Path | str) -> None: ...

    def wait_for_writes(self, seen: int, timeout: float) -> int: ...

    def inferences_stale(self) -> bool: ...


@runtime_checkable
class ForwardsWrites(Protocol, metaclass=_Capability):
    """A serving worker's store: writes go to the one writer process, which applies them
    and refreshes the inferences; a write returns once this process can read it."""

    @property
    def generation(self) -> int: ...

    @property
    def reads_from(self) -> str: ...


@runtime_checkable
class ReadsSnapshots(Protocol, metaclass=_Capability):
    """Reads a published snapshot of the embedded store (a directory never written again)."""

    def current_snapshot(self) -> Path: ...


@runtime_checkable
class HasDeadline(Protocol, metaclass=_Capability):
    """Can end its own reads at a per-thread deadline (a remote store: an HTTP timeout), so
    a request's query timeout needs no other thread."""

    def deadline(self, seconds: float) -> AbstractContextManager[None]: ...


@runtime_checkable
class Remote(Protocol, metaclass=_Capability):
    """A store on a SPARQL server: each query is a round trip, so look-ups are kept
    (``label_cache``, ``check_cache``) and work that can overlap is overlapped."""

    location: str
    label_cache: LookupCache[dict[str, str]]
    check_cache: LookupCache[bool]

    @property
    def backend(self) -> str: ...

    def describe(self) -> dict[str, str]: ...

    def ping(self) -> float: ...

    def forget_graphs(self) -> None: ...


@runtime_checkable
class EvaluatesRemotely(Store, Protocol, metaclass=_Capability):
    """A remote store the rule engine runs on as the server's own queries and updates:
    staging graphs it posts N-Triples to and drops, and where the engine keeps relmark's
    default graph."""

    def forget_graphs(self) -> None: ...

    def engine_graph(self, graph: str | None) -> str | None: ...

    def post_lines(self, graph: str, lines: Iterable[str]) -> None: ...

    def drop_staging(self, graphs: Iterable[str]) -> None: ...


class Replica(Store, ForwardsWrites, Protocol):
    """What a serving worker reads through and writes through (``stores.open_replica``)."""


# --- one form of query result: what a caller that wrote the query knows it gets ----------------
# ``Store.query`` answers all three forms; a caller that wrote a SELECT, an ASK or a
# CONSTRUCT takes its form with ``selected``, ``asked`` or ``constructed``: the type
# checker then follows it, and a query of the wrong form fails here, by name, instead of
# later as an odd iteration.


def selected(result: QueryResult) -> ox.QuerySolutions:
    """The solutions of a SELECT."""
    if isinstance(result, ox.QuerySolutions):
        return result
    raise TypeError(f"expected the solutions of a SELECT, got {type(result).__name__}")


def asked(result: QueryResult) -> bool:
    """The answer of an ASK."""
    if isinstance(result, ox.QueryBoolean):
        return bool(result)
    raise TypeError(f"expected the answer of an ASK, got {type(result).__name__}")


def constructed(result: QueryResult) -> ox.QueryTriples:
    """The triples of a CONSTRUCT or DESCRIBE."""
    if isinstance(result, ox.QueryTriples):
        return result
    raise TypeError(f"expected the triples of a CONSTRUCT, got {type(result).__name__}")


def serialized(items: Iterable[ox.Triple] | Iterable[ox.Quad], fmt: ox.RdfFormat) -> bytes:
    """``items`` in ``fmt`` as bytes (pyoxigraph's ``serialize`` given no output)."""
    data = ox.serialize(items, format=fmt)
    assert data is not None, "serialize returns the bytes when given no output"
    return data
