"""A serving worker's remote store (``relmark serve --workers N``): reads go to the engine,
writes to the writer process.

The writer counts the writes it applied in shared memory (``generation``, moved before it
answers, and after a write that failed). What this process keeps from the engine (the list
of graphs, the quad count, labels, class checks) is dropped when that number moved, so a
request on any worker reads what every write answered before it wrote.

Made of two parts, each doing one half: a ``RemoteStore`` that reads (told the shared
generation, so it drops what it kept when that moves) and ``ForwardedWrites`` that sends
writes to the writer. A write returns once the writer applied it on the engine, so there
is nothing to catch up with here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import pyoxigraph as ox

from relmark.stores.base import QueryResult, Term
from relmark.stores.remote.lookup_cache import LookupCache
from relmark.stores.remote.store import RemoteStore
from relmark.stores.remote.transport import RemoteConfig
from relmark.stores.snapshots import ForwardedWrites, ForwardingReplica, WriteForwarder


class RemoteReplica(ForwardingReplica):
    """Reads from the engine, writes through the writer process."""

    def __init__(
        self, config: RemoteConfig, generation: Callable[[], int], writer: WriteForwarder
    ) -> None:
        self._shared_generation = generation
        self._reads = RemoteStore(config, generation)
        self._writes = ForwardedWrites(writer)
        self.location = self._reads.location
        self.label_cache: LookupCache[dict[str, str]] = self._reads.label_cache
        self.check_cache: LookupCache[bool] = self._reads.check_cache

    # --- what a replica says about itself -----------------------------------------------
    @property
    def generation(self) -> int:
        """The writes the writer process has applied (for /healthz)."""
        return self._shared_generation()

    @property
    def reads_from(self) -> str:
        return "remote"

    @property
    def backend(self) -> str:
        return self._reads.backend

    def describe(self) -> dict[str, str]:
        return self._reads.describe()

    def ping(self) -> float:
        return self._reads.ping()

    def forget_graphs(self) -> None:
        self._reads.forget_graphs()

    def deadline(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        return self._reads.deadline(seconds)

    def copy_to(self, target: Path) -> None:
        self._reads.copy_to(target)

    def close(self) -> None:
        self._reads.close()

    # --- reads: the engine ----------------------------------------------------------------
    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult:
        return self._reads.query(
            sparql,
            default_graph=default_graph,
            named_graphs=named_graphs,
            substitutions=substitutions,
        )

    def graph_names(self) -> list[str]:
        return self._reads.graph_names()

    def has_graph(self, graph: str) -> bool:
        return self._reads.has_graph(graph)

    def triples(self, graph: str | None) -> Iterator[ox.Quad]:
        return self._reads.triples(graph)

    def graph_size(self, graph: str) -> int:
        return self._reads.graph_size(graph)

    def count(self) -> int:
        return self._reads.count()

    def dump(self, output: IO[bytes], fmt: ox.RdfFormat) -> None:
        self._reads.dump(output, fmt)
