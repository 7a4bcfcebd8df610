"""The store seam: the protocol every back end implements, and what writes report.

Every back end (the embedded pyoxigraph store, a remote SPARQL 1.1 server) answers this
protocol; the rest of relmark is written against it and never imports a concrete store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import pyoxigraph as ox

from relmark.vocab import DATA_GRAPH_PREFIX, SYSTEM_GRAPHS

#: Where the content hash of each file-backed graph is kept (what a re-sync compares).
CONTENT_HASH = ox.NamedNode("urn:relmark:meta:contentHash")

Term = ox.NamedNode | ox.BlankNode | ox.Literal
QueryResult = ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples
#: One part of a bulk write: ``(RdfFormat or "quads", bytes, file or quads, label)``.
BulkPart = tuple[ox.RdfFormat | str, bytes | IO[bytes] | list[ox.Quad], str]


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


def is_system_graph(graph: ox.NamedNode | ox.DefaultGraph) -> bool:
    """One of relmark's own graphs: a write there is bookkeeping, not a data write."""
    return isinstance(graph, ox.NamedNode) and graph.value in SYSTEM_GRAPHS


class Store(Protocol):
    """What the rest of relmark needs from a store; one implementation per back end."""

    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult: ...

    def update(self, sparql: str, *, system: bool = False) -> None: ...

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

    def sync_file_graph(self, graph: str, paths: list[Path]) -> bool: ...

    def close(self) -> None: ...


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
