"""Snapshots of the embedded store: publishing them, reading them, copying them.

A snapshot is a RocksDB checkpoint of the live store in ``<store>.snapshots/<generation>``:
the store at one instant, between two writes, never written again, so other processes may
open it read-only. The process that owns the store publishes them (``SnapshotPublisher``:
after every write with ``--workers N``; ``SnapshotThread``: on request in one process);
serving workers read them (``SnapshotReplica``, writes forwarded to the owner with
``ForwardedWrites``), and command-line readers and what-ifs copy them (``link_copy``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import pyoxigraph as ox

from relmark.stores.base import (
    BulkPart,
    ChangeCheck,
    Checkpoints,
    QueryResult,
    StoreError,
    Subject,
    Term,
    selected,
)
from relmark.stores.embedded import count_quads, graph_node, query_options
from relmark.stores.memory_copy import MemoryCopyCache

#: Snapshot generations kept on disk (older ones are deleted as new ones appear).
KEEP_SNAPSHOTS = 4
#: In the snapshots directory of a one-process server: "ask me for a snapshot".
ON_REQUEST = "on-request"
#: RocksDB never changes these files once written, so a copy may share them (hard links).
_IMMUTABLE_SUFFIXES = (".sst", ".blob")
#: Attempts at copying the newest snapshot (the writer may prune one while it is copied).
COPY_ATTEMPTS = 5


def _log(message: str) -> None:
    print(f"relmark[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def snapshots_of(path: Path | str) -> Path:
    """Where a served store's snapshots are (``SnapshotPublisher``)."""
    path = Path(path).resolve()
    return path.with_name(path.name + ".snapshots")


def newest_snapshot(directory: Path) -> Path | None:
    """The highest complete generation (RocksDB writes a checkpoint as ``<name>.tmp``
    and renames it when done, so a directory named by a number is complete)."""
    try:
        generations = [p for p in directory.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    return max(generations, key=lambda p: int(p.name), default=None)


def link_copy(source: Path, target: Path) -> None:
    """A RocksDB directory copied as a checkpoint is: immutable files linked, others copied."""
    target.mkdir(parents=True)
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir():
            shutil.copytree(entry, destination)
        elif entry.name.endswith(_IMMUTABLE_SUFFIXES):
            try:
                os.link(entry, destination)
            except OSError:  # another file system: copy instead
                shutil.copy2(entry, destination)
        else:
            shutil.copy2(entry, destination)


def copy_snapshot(snapshot: Path, target: Path) -> None:
    """Copy a snapshot; if the writer pruned it meanwhile, copy the newest one."""
    failure: OSError | None = None
    for _attempt in range(COPY_ATTEMPTS):
        try:
            link_copy(snapshot, target)
            return
        except OSError as error:
            failure = error
            shutil.rmtree(target, ignore_errors=True)
            newest = newest_snapshot(snapshot.parent)
            if newest is not None:
                snapshot = newest
    raise StoreError(f"cannot copy the snapshot {snapshot}: {failure}")


# --- publishing (the process that owns the store) ----------------------------------------------
class SnapshotPublisher:
    """Snapshot generations of the live store in ``<store>.snapshots/<generation>``."""

    def __init__(self, store: Checkpoints, generation: Any) -> None:
        self.store = store
        self.directory = snapshots_of(store.path)
        self.generation = generation  # a shared multiprocessing RawValue("q")
        self._kept: deque[int] = deque()

    def start(self) -> None:
        """Remove a crashed run's snapshots, then publish generation 1."""
        if self.directory.exists():
            _log(f"removing stale snapshots in {self.directory}")
            shutil.rmtree(self.directory)
        self.directory.mkdir()
        self.generation.value = 0
        self.publish()

    def publish(self) -> int:
        """Back up the store as the next generation, then announce it; prune old ones."""
        generation = self.generation.value + 1
        self.store.backup(self.directory / str(generation))
        self.generation.value = generation
        self._kept.append(generation)
        while len(self._kept) > KEEP_SNAPSHOTS:
            shutil.rmtree(self.directory / str(self._kept.popleft()), ignore_errors=True)
        return generation

    def after_failure(self) -> None:
        """Nothing to publish: a failed write left the embedded store as it was (one
        transaction, or a journaled bulk load put back)."""

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class SnapshotThread:
    """One-process ``relmark serve``: publishes a snapshot when the command line asks.

    ``relmark query``, ``dump`` and co. read the newest snapshot while the store is served
    (``relmark.stores.read_view``). Here nothing else needs snapshots, and each one flushes
    RocksDB's memtables into new small files (work for compaction, on the CPU the queries
    use), so one is taken only on request: the command drops a ``wanted-*`` file in the
    snapshots directory and waits until it is gone; by then a snapshot holds every write
    answered before the request. (``ON_REQUEST`` there tells commands to ask.)
    """

    #: The file that says "ask for a snapshot"; requests are files named ``wanted-*``.
    ON_REQUEST = ON_REQUEST
    #: Seconds between looks for requests.
    POLL = 0.05
    #: Longest wait for the inferences to catch up with a write in flight.
    SETTLE = 1.0

    def __init__(self, store: Checkpoints) -> None:
        self._publisher = SnapshotPublisher(store, types.SimpleNamespace(value=0))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relmark-snapshots", daemon=True)
        self._published_at = -1  # the store's write count when the last snapshot was taken

    def start(self) -> None:
        self._published_at = self._publisher.store.wait_for_writes(-1, 0)
        self._publisher.start()
        (self._publisher.directory / self.ON_REQUEST).touch()
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and remove the snapshots (before the store is closed)."""
        self._stopping.set()
        self._thread.join(timeout=self.SETTLE + 5)
        self._publisher.remove()

    def _run(self) -> None:
        directory = self._publisher.directory
        while not self._stopping.wait(self.POLL):
            try:
                requests = list(directory.glob("wanted-*"))
                if requests:
                    self._publish_if_written()
                for request in requests:
                    request.unlink(missing_ok=True)
            except Exception as error:  # never end the server for a missed snapshot
                _log(f"cannot publish a snapshot: {error}")

    def _publish_if_written(self) -> None:
        store = self._publisher.store
        if store.wait_for_writes(-1, 0) == self._published_at:
            return  # the newest snapshot is the store as it is
        deadline = time.monotonic() + self.SETTLE
        while store.inferences_stale() and time.monotonic() < deadline:
            if self._stopping.wait(0.01):
                return
        self._published_at = store.wait_for_writes(-1, 0)
        self._publisher.publish()


# --- reading (a serving worker) ------------------------------------------------------------
class WriteForwarder(Protocol):
    """Applies a write in the process that owns the store: ``(result, generation)``.

    ``generation`` is the first snapshot generation that contains the write.
    """

    def __call__(self, method: str, *args: object) -> tuple[object, int]: ...


class ForwardedWrites:
    """The write half of a serving worker's store: each write is sent to the one process
    that applies writes (``relmark.server.supervisor``) and returns once readers here can
    see it.

    Why one writer: it refreshes the inferences after each write from the quads that write
    changed, and two processes doing that at once would race. A replica holds one of these
    beside what it reads from (a snapshot, or the engine) and passes its writes to it;
    ``caught_up(generation)`` is how that replica catches up with a write before it returns.
    """

    def __init__(
        self, writer: WriteForwarder, caught_up: Callable[[int], None] | None = None
    ) -> None:
        self._writer = writer
        self._caught_up = caught_up

    def _forward(self, method: str, *args: object) -> object:
        result, generation = self._writer(method, *args)
        if self._caught_up is not None:
            self._caught_up(generation)
        return result

    def update(self, sparql: str) -> None:
        self._forward("update", sparql)

    def update_validated(
        self, sparql: str, check: ChangeCheck, graphs: Iterable[str] | None = None
    ) -> None:
        """As ``EmbeddedStore.update_validated``; ``check`` must be one the writer can rebuild."""
        self._forward("update_validated", sparql, check, None if graphs is None else list(graphs))

    def add_quads(self, quads: Iterable[ox.Quad]) -> None:
        self._forward("add_quads", list(quads))

    def replace_graph(self, graph: str, triples: Iterable[ox.Triple | ox.Quad]) -> None:
        self._forward("replace_graph", graph, list(triples))

    def bulk_replace_graphs(self, writes: Mapping[str, Iterable[BulkPart]]) -> None:
        self._forward("bulk_replace_graphs", {g: list(parts) for g, parts in writes.items()})

    def drop_graph(self, graph: str) -> bool:
        return bool(self._forward("drop_graph", graph))

    def restore(self, source: bytes | IO[bytes], fmt: ox.RdfFormat) -> None:
        self._forward("restore", source, fmt)


class ForwardingReplica:
    """The write half of a replica's ``Store`` protocol: every write goes to ``_writes``.

    Both replicas (a snapshot's, the remote engine's) read their own way and write the same
    way; they inherit these methods from here (single inheritance, no method-order puzzle).
    """

    _writes: ForwardedWrites

    def update(self, sparql: str, *, system: bool = False) -> None:
        self._writes.update(sparql)

    def update_validated(
        self, sparql: str, check: ChangeCheck, graphs: Iterable[str] | None = None
    ) -> None:
        self._writes.update_validated(sparql, check, graphs)

    def add_quads(self, quads: Iterable[ox.Quad]) -> None:
        self._writes.add_quads(quads)

    def replace_graph(self, graph: str, triples: Iterable[ox.Triple | ox.Quad]) -> None:
        self._writes.replace_graph(graph, triples)

    def bulk_replace_graphs(self, writes: Mapping[str, Iterable[BulkPart]]) -> None:
        self._writes.bulk_replace_graphs(writes)

    def drop_graph(self, graph: str) -> bool:
        return self._writes.drop_graph(graph)

    def restore(self, source: bytes | IO[bytes], fmt: ox.RdfFormat) -> None:
        self._writes.restore(source, fmt)


class SnapshotReplica(ForwardingReplica):
    """The store of a serving worker process: reads a snapshot, forwards writes.

    One process (``server.supervisor``) owns the read-write ``EmbeddedStore``. After each write
    it publishes the store as snapshot generation ``g`` (a backup in ``<snapshots>/<g>``,
    never written again, so a read-only open is safe) and then moves the shared generation
    number. Reads here go to a read-only store on the newest snapshot, reopened
    (milliseconds) when that number moved; a write returns only once its snapshot is open
    here, so the request that wrote reads its write, and so does any later request on any
    worker.
    """

    #: Attempts at opening the newest snapshot (the writer may prune one as it is opened).
    OPEN_ATTEMPTS = 5

    def __init__(
        self,
        path: Path | str,
        snapshots: Path | str,
        generation: Callable[[], int],
        writer: WriteForwarder,
        memory: MemoryCopyCache | None = None,
    ) -> None:
        self.path = Path(path).resolve()  # the live store, as /healthz names it
        self._snapshots = Path(snapshots)
        self._shared_generation = generation
        self._writes = ForwardedWrites(writer, self._advance)
        self._reopen = threading.Lock()
        self._db: ox.Store | None = None
        self._generation = 0
        self._count: tuple[int, int] | None = None  # (generation, quads)
        self._memory = memory
        self._advance(generation())

    @property
    def generation(self) -> int:
        """The snapshot generation reads see now."""
        return self._generation

    def current_snapshot(self) -> Path:
        """The directory of the newest snapshot, which reads here see from now on (a
        what-if copies it; the writer may prune it meanwhile: ``copy_snapshot``)."""
        self._current()
        return self._snapshots / str(self._generation)

    def _current(self) -> ox.Store:
        """The newest snapshot's store (one integer compare when nothing moved)."""
        if self._shared_generation() != self._generation:
            self._advance(0)
        if self._db is None:
            raise StoreError("the store is closed")
        return self._db

    def _advance(self, at_least: int) -> None:
        """Open the newest snapshot, which must be ``at_least`` that generation."""
        with self._reopen:
            failure: OSError | None = None
            for _attempt in range(self.OPEN_ATTEMPTS):
                wanted = max(at_least, self._shared_generation())
                if wanted <= self._generation:
                    return
                try:
                    db = ox.Store.read_only(str(self._snapshots / str(wanted)))
                except OSError as error:  # pruned as we opened it: a newer one exists
                    failure = error
                    continue
                self._db = db  # before the number, so a reader never pairs new number, old db
                self._generation = wanted
                if self._memory is not None:
                    self._memory.want(wanted, db)
                return
            raise StoreError(f"cannot open snapshot {wanted} in {self._snapshots}: {failure}")

    def _reader(self) -> ox.Store:
        """What reads use: the in-memory copy of the current snapshot once it is built."""
        db = self._current()
        copy = None if self._memory is None else self._memory.get(self._generation)
        return db if copy is None else copy

    @property
    def reads_from(self) -> str:
        """Where reads go now: ``memory`` or ``disk`` (for /healthz)."""
        memory = self._memory
        return "memory" if memory is not None and memory.get(self._generation) else "disk"

    def close(self) -> None:
        self._db = None

    # --- reads: the current snapshot ----------------------------------------------------
    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult:
        options = query_options(default_graph, named_graphs, substitutions)
        return self._reader().query(sparql, **options)

    def quads_for_pattern(
        self,
        subject: Subject | None,
        predicate: ox.NamedNode | None,
        obj: Term | None,
        graph_name: ox.NamedNode | ox.DefaultGraph | None = None,
    ) -> list[ox.Quad]:
        """The quads matching a pattern in the current snapshot (validation's view)."""
        return list(self._reader().quads_for_pattern(subject, predicate, obj, graph_name))

    @contextlib.contextmanager
    def pattern_reader(self) -> Iterator[Callable[..., Iterable[ox.Quad]]]:
        """The current snapshot's ``quads_for_pattern``, for many lookups in a row."""
        yield self._reader().quads_for_pattern

    def graph_names(self) -> list[str]:
        db = self._reader()
        return sorted(g.value for g in db.named_graphs() if isinstance(g, ox.NamedNode))

    def has_graph(self, graph: str) -> bool:
        return self._reader().contains_named_graph(ox.NamedNode(graph))

    def triples(self, graph: str | None) -> Iterator[ox.Quad]:
        yield from self._reader().quads_for_pattern(None, None, None, graph_node(graph))

    def graph_size(self, graph: str) -> int:
        result = selected(
            self.query(f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        )
        return int(next(iter(result))["n"].value)

    def count(self) -> int:
        """Number of quads (counted once per generation)."""
        db, generation = self._current(), self._generation
        if self._count is None or self._count[0] != generation:
            self._count = (generation, count_quads(db))
        return self._count[1]

    def dump(self, output: IO[bytes], fmt: ox.RdfFormat) -> None:
        if not fmt.supports_datasets:
            raise StoreError(f"{fmt.name} cannot hold named graphs; dump as N-Quads or TriG")
        self._reader().dump(output, format=fmt)
