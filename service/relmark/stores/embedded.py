"""The embedded back end: pyoxigraph on RocksDB in one directory.

Outside ``relmark.stores`` nothing talks to pyoxigraph's ``Store`` on disk directly; the
rest of relmark reaches this one through the ``Store`` protocol and its capabilities
(``relmark.stores.base``).

Atomicity, the one promise every write keeps: a rejected or crashed write leaves the store
as it was. Small writes use pyoxigraph's transactions (``extend``, ``update``). Bulk loads
use pyoxigraph's fast non-transactional ``bulk_load``, so they are *journaled*: a
hard-linked backup of the store is taken first (milliseconds), a journal file names it,
and if the process dies before the journal is removed, the next open puts the backup back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyoxigraph as ox

from relmark.stores.base import (
    CHANGE_LIMIT,
    BulkPart,
    ChangeRecord,
    Changes,
    QueryResult,
    StoreError,
    StoreLocked,
    Subject,
    Term,
    is_system_graph,
    is_system_graph_quad,
    selected,
    serialized,
)
from relmark.stores.data_update import data_change, data_operations
from relmark.vocab import (
    SYSTEM_GRAPHS,
)


def graph_node(graph: str | None) -> ox.NamedNode | ox.DefaultGraph:
    """The graph named ``graph`` (None: the default graph)."""
    return ox.DefaultGraph() if graph is None else ox.NamedNode(graph)


def count_quads(db: ox.Store) -> int:
    result = selected(db.query("SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }"))
    named = int(next(iter(result))["n"].value)
    result = selected(db.query("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"))
    return named + int(next(iter(result))["n"].value)


def query_options(
    default_graph: list[str | None] | None,
    named_graphs: list[str] | None,
    substitutions: Mapping[str, Term | ox.Triple] | None,
) -> dict:
    """pyoxigraph's query options: the union of all graphs as default unless graphs are named."""
    options: dict = {}
    if default_graph is not None:
        options["default_graph"] = [graph_node(g) for g in default_graph]
    elif named_graphs is None:
        options["use_default_graph_as_union"] = True
    if named_graphs is not None:
        options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
    if substitutions:
        options["substitutions"] = {ox.Variable(k): v for k, v in substitutions.items()}
    return options


class EmbeddedStore:
    """pyoxigraph on RocksDB in one directory, with journaled bulk writes.

    Thread-safe: pyoxigraph queries run in parallel (they release the GIL); writes that
    must swap the database directory take the exclusive side of a reader/writer lock.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._journal = self.path.with_name(self.path.name + ".journal")
        self._backup_dir = self.path.with_name(self.path.name + ".pre-write")
        self._lock = _ReadWriteLock()
        self._count: int | None = None
        self._record = ChangeRecord()
        self._stale = self.path.with_name(self.path.name + ".inferences-stale")
        self._data_writes = 0
        self._writes = 0  # every write, relmark's own too (``wait_for_writes``)
        self._writes_changed = threading.Condition()
        self._open_db: ox.Store | None = self._open_recovered()
        # open, so RocksDB's lock says no other process serves this store: no scratch copy
        # of its name can still be in use (the supervisor logs what went)
        self.removed_scratch = remove_stale_scratch(self.path)

    # --- lifecycle ----------------------------------------------------------------------
    def _open_recovered(self) -> ox.Store:
        """Open RocksDB, then finish or undo a journaled write that a crash interrupted.

        RocksDB's lock is taken first: while another process serves the store, the
        journal of the write it is doing looks just like a crashed one, and "recovering"
        that would put the backup over the live store (a ``relmark query`` during a bulk
        load through the server used to do that).
        """
        try:
            db: ox.Store | None = self._open()
        except StoreLocked:
            raise
        except StoreError:
            if not self._journal.exists():
                raise
            db = None  # a crash mid-write may leave the store unopenable: the backup is sound
        if db is None or self._journal.exists() or self._backup_dir.exists():
            db = None  # closes RocksDB before its directory is swapped
            self._recover()
            db = self._open()
        return db

    @property
    def _db(self) -> ox.Store:
        """RocksDB, open until ``close``."""
        if self._open_db is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._open_db

    def _open(self) -> ox.Store:
        try:
            return ox.Store(str(self.path))
        except OSError as error:
            if "lock" in str(error).lower():
                raise StoreLocked(
                    f"the store {self.path} is open in another process "
                    "(a running `relmark serve`?); stop it or write through its HTTP API"
                ) from error
            raise StoreError(f"cannot open the store {self.path}: {error}") from error

    def _recover(self) -> None:
        """Finish or undo a journaled write that a crash interrupted."""
        if self._journal.exists():
            if not self._backup_dir.is_dir():
                raise StoreError(f"{self._journal} names a backup that is missing; inspect it")
            shutil.rmtree(self.path, ignore_errors=True)
            os.replace(self._backup_dir, self.path)
            self._journal.unlink()
        elif self._backup_dir.exists():
            shutil.rmtree(self._backup_dir)

    def close(self) -> None:
        with self._lock.write():
            if self._open_db is not None:
                self._open_db.flush()
                self._open_db = None

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads --------------------------------------------------------------------------
    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult:
        """Run a SPARQL query; the default graph is the union of all graphs unless named."""
        options = query_options(default_graph, named_graphs, substitutions)
        with self._lock.read():
            return self._db.query(sparql, **options)

    def graph_names(self) -> list[str]:
        with self._lock.read():
            return sorted(g.value for g in self._db.named_graphs() if isinstance(g, ox.NamedNode))

    def has_graph(self, graph: str) -> bool:
        with self._lock.read():
            return self._db.contains_named_graph(ox.NamedNode(graph))

    def triples(self, graph: str | None) -> Iterator[ox.Quad]:
        """The quads of one graph (``None`` = the store's own default graph)."""
        with self._lock.read():
            yield from self._db.quads_for_pattern(None, None, None, graph_node(graph))

    def count(self) -> int:
        """Number of quads in the store (cached between writes: /healthz calls it often)."""
        if self._count is None:
            with self._lock.read():
                self._count = count_quads(self._db)
        return self._count

    def dump(self, output: IO[bytes], fmt: ox.RdfFormat) -> None:
        """Every quad of every graph, in a dataset format (N-Quads or TriG)."""
        if not fmt.supports_datasets:
            raise StoreError(f"{fmt.name} cannot hold named graphs; dump as N-Quads or TriG")
        with self._lock.read():
            self._db.dump(output, format=fmt)

    def graph_bytes(self, graph: str | None) -> bytes:
        """One graph as N-Triples, serialised in Rust (copying a graph without making a
        Python object per quad: 10× faster for the rule engine's workspace)."""
        output = io.BytesIO()
        with self._lock.read():
            self._db.dump(output, format=ox.RdfFormat.N_TRIPLES, from_graph=graph_node(graph))
        return output.getvalue()

    def optimize(self) -> None:
        """Compact RocksDB's files into one sorted run per index.

        Bulk loads and graph replaces leave many overlapping files behind, and every read
        then looks in each: on the 100k benchmark store with inferences, a join took 15.1 ms
        before and 10.6 ms after (0.8 s to compact), as fast as a freshly bulk-loaded store.
        ``relmark serve`` compacts once at start-up.
        """
        with self._lock.read():
            self._db.optimize()

    def backup(self, target: Path | str) -> None:
        """A consistent copy of the store in ``target`` (a new directory; hard links, ms).

        A backup is never written again, so other processes may open it read-only.
        """
        with self._lock.read():
            self._db.backup(str(target))

    def copy_to(self, target: Path) -> None:
        """A private, writable copy of the store in ``target`` (a what-if's scratch store)."""
        self.backup(target)

    # --- what the writes changed ---------------------------------------------------------
    def _data_write(self) -> None:
        """Before a write to data: mark the inferences stale on disk, so a crash between this
        write and the refresh that follows it is repaired at the next start-up."""
        self._data_writes += 1
        if not self._stale.exists():
            self._stale.write_text("the inferences do not reflect the last data write yet\n")
            _fsync(self._stale)

    def inferences_stale(self) -> bool:
        """Whether data was written since the inferences were last brought up to date."""
        return self._stale.exists()

    def data_writes(self) -> int:
        """Data writes since the store was opened (a refresh notes it before it starts)."""
        return self._data_writes

    def inferences_current(self, as_of: int) -> None:
        """The inferences reflect every data write up to ``as_of`` (a ``data_writes()``)."""
        if self._data_writes == as_of:
            self._stale.unlink(missing_ok=True)

    def take_changes(self) -> Changes | None:
        """The data quads written since the last call (see ``ChangeRecord``)."""
        return self._record.take()

    def _content(self, graph: str) -> list[ox.Quad] | None:
        """A data graph's quads, or None when it is too big to diff (caller holds the lock)."""
        node = ox.NamedNode(graph)
        quads = []
        for quad in self._db.quads_for_pattern(None, None, None, node):
            quads.append(quad)
            if len(quads) > CHANGE_LIMIT:
                return None
        return quads

    # --- writes -------------------------------------------------------------------------
    def _written(self) -> None:
        self._count = None
        with self._writes_changed:
            self._writes += 1
            self._writes_changed.notify_all()

    def wait_for_writes(self, seen: int, timeout: float) -> int:
        """The number of writes so far, once it differs from ``seen`` or after ``timeout``.

        ``relmark serve`` (one process) publishes a read-only snapshot after writes with
        it, for the command line to read while the store is served (``relmark.stores.read_view``).
        """
        with self._writes_changed:
            self._writes_changed.wait_for(lambda: self._writes != seen, timeout)
            return self._writes

    def update(self, sparql: str, *, system: bool = False) -> None:
        """A SPARQL 1.1 Update, applied in one transaction.

        ``system=True`` marks relmark's own bookkeeping (inferences, meta): it leaves the
        record of changed data alone; any other update makes the changes unknown.
        """
        if not system:
            self._data_write()
        with self._lock.read():
            self._db.update(sparql)
            if not system:
                self._record.unknown()
        self._written()

    #: Serialises validated updates: none slips in between another's check and its write.
    _validated_updates = threading.Lock()

    def update_validated(
        self,
        sparql: str,
        check: Callable[[list[ox.Quad], list[ox.Quad]], None],
        graphs: Iterable[str] | None = None,
    ) -> None:
        """Apply an update only if ``check`` accepts the change it makes; evaluate it once.

        The update runs on a scratch copy (a hard-linked backup: milliseconds, little disk)
        and the change it made there, the quads added and removed in the default graph plus
        ``graphs`` (None: every named graph but the system ones), is what ``check`` gets
        (``check(added, removed)``, raising to refuse) and then exactly what is written to
        the live store, in one transaction. The update is never evaluated again: a ``LOAD``
        fetches once, and ``RAND()``, ``NOW()`` or ``UUID()`` store the values checked.
        The scratch copy is always deleted. An update made only of ``INSERT DATA`` and
        ``DELETE DATA`` needs no scratch copy: its change is read from its quads
        (``relmark.stores.data_update``), at a cost that does not grow with the store.
        """
        operations = data_operations(sparql)
        if operations is not None:  # the quads are in the text: no scratch copy, no diff
            with self._validated_updates:
                with self._lock.read():
                    added, removed = data_change(
                        operations, self._db.__contains__, is_system_graph_quad
                    )
                check(added, removed)
                self.apply_change(StoreChange(added=added, removed=removed))
            return
        with self._validated_updates:
            prefix = f".{self.path.name}.scratch-"
            scratch_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))
            try:
                with self._lock.read():
                    self._db.backup(str(scratch_dir / "store"))
                scratch = ox.Store(str(scratch_dir / "store"))
                wanted = None if graphs is None else set(graphs)
                before_graphs = _data_graphs(scratch, wanted)
                diff = _Diff(scratch, before_graphs)
                scratch.update(sparql)
                after_graphs = _data_graphs(scratch, wanted)
                change = diff.after(scratch, after_graphs)
                del scratch  # closes RocksDB before its directory goes
            finally:
                shutil.rmtree(scratch_dir, ignore_errors=True)
            check(change.added, change.removed)
            self.apply_change(change)

    def apply_change(self, change: StoreChange) -> None:
        """Write a computed change in one transaction (one pyoxigraph update) and note it."""
        if not change:
            return
        text, functions = change.update_text()
        self._data_write()
        with self._lock.read():
            self._db.update(text, custom_functions=functions)
            self._record.note(change.added, change.removed)
        self._written()

    def quads_for_pattern(
        self,
        subject: Subject | None,
        predicate: ox.NamedNode | None,
        obj: Term | None,
        graph_name: ox.NamedNode | ox.DefaultGraph | None = None,
    ) -> list[ox.Quad]:
        """The quads matching a pattern (None: any), as pyoxigraph's (validation's view)."""
        with self._lock.read():
            return list(self._db.quads_for_pattern(subject, predicate, obj, graph_name))

    @contextlib.contextmanager
    def pattern_reader(self) -> Iterator[Callable[..., Iterable[ox.Quad]]]:
        """pyoxigraph's ``quads_for_pattern`` under one read lock, for many lookups in a row
        (validation's view makes one per affected node: the lock per call cost 10× the
        lookup)."""
        with self._lock.read():
            yield self._db.quads_for_pattern

    def add_quads(self, quads: Iterable[ox.Quad]) -> None:
        """Add quads in one transaction."""
        quads = list(quads)
        if not all(is_system_graph(q.graph_name) for q in quads):
            self._data_write()
        with self._lock.read():
            new = [q for q in dict.fromkeys(quads) if q not in self._db]
            self._db.extend(quads)
            self._record.note(new, ())
        self._written()

    def replace_graph(self, graph: str, triples: Iterable[ox.Triple | ox.Quad]) -> None:
        """Replace a graph's content in one transaction (drop and insert in one update)."""
        plain = [ox.Triple(t.subject, t.predicate, t.object) for t in triples]
        body = serialized(plain, ox.RdfFormat.N_TRIPLES).decode("utf-8")
        node = ox.NamedNode(graph)
        if graph not in SYSTEM_GRAPHS:
            self._data_write()
        with self._lock.read():
            old = self._content(graph)
            self._db.update(
                f"DROP SILENT GRAPH <{graph}> ;\nINSERT DATA {{ GRAPH <{graph}> {{\n{body}}} }}"
            )
            new = [ox.Quad(t.subject, t.predicate, t.object, node) for t in plain]
            self._record.replaced(graph, old, new if len(new) <= CHANGE_LIMIT else None)
        self._written()

    def bulk_replace_graphs(self, writes: Mapping[str, Iterable[BulkPart]]) -> None:
        """Replace several graphs at bulk-load speed, all or none, crash-safely.

        Each part is ``(format, bytes or binary file, label)`` or ``("quads", quads, label)``;
        a parse error comes back as ``SyntaxError`` whose ``filename`` is the part's label.
        The parts of a graph may still be in the making (a generator): an error raised by
        it undoes the whole write like any other.
        """
        if any(graph not in SYSTEM_GRAPHS for graph in writes):
            self._data_write()
        with self._journaled():
            for graph, parts in writes.items():
                target = ox.NamedNode(graph)
                old = None if graph in SYSTEM_GRAPHS else self._content(graph)
                if self._db.contains_named_graph(target):
                    self._db.remove_graph(target)
                for part in parts:
                    try:
                        if not isinstance(part[0], ox.RdfFormat):
                            self._db.bulk_extend(part[1])
                        else:
                            fmt, source, _ = part
                            # relmark's own graphs come from its own writers or files its
                            # tests check: IRIs need no second validation (20% faster)
                            lenient = graph in SYSTEM_GRAPHS
                            self._db.bulk_load(source, format=fmt, to_graph=target, lenient=lenient)
                    except SyntaxError as error:
                        error.filename = part[2]
                        raise
                if graph not in SYSTEM_GRAPHS:
                    self._record.replaced(graph, old, self._content(graph))

    def graph_size(self, graph: str) -> int:
        """Number of triples in one named graph."""
        result = selected(
            self.query(f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        )
        return int(next(iter(result))["n"].value)

    def drop_graph(self, graph: str) -> bool:
        """Remove a named graph; False when there was none."""
        with self._lock.read():
            if not self._db.contains_named_graph(ox.NamedNode(graph)):
                return False
            old = None if graph in SYSTEM_GRAPHS else self._content(graph)
            if old is not None or graph not in SYSTEM_GRAPHS:
                self._data_write()
            self._db.update(f"DROP GRAPH <{graph}>")
            self._record.replaced(graph, old, [])
        self._written()
        return True

    def restore(self, source: bytes | IO[bytes], fmt: ox.RdfFormat) -> None:
        """Replace the whole store with a dump (N-Quads or TriG), crash-safely."""
        self._data_write()
        with self._journaled():
            self._record.unknown()
            self._db.clear()
            self._db.bulk_load(source, format=fmt)

    @contextlib.contextmanager
    def _journaled(self) -> Iterator[None]:
        """Run a non-transactional write so that failure or a crash restores the store."""
        with self._lock.write():
            self._db.flush()
            self._db.backup(str(self._backup_dir))
            self._journal.write_text(json.dumps({"backup": self._backup_dir.name}))
            _fsync(self._journal)
            try:
                yield
                self._db.flush()
            except BaseException:
                self._record.unknown()  # the notes may describe a write that was undone
                self._open_db = None  # close RocksDB before its directory is swapped
                self._recover()
                self._open_db = self._open()
                raise
            finally:
                self._written()
            self._journal.unlink()
            shutil.rmtree(self._backup_dir, ignore_errors=True)


#: The function a computed change's update reads its terms from (blank nodes included).
_CHANGE_TERM = ox.NamedNode("urn:relmark:change:term")


@dataclass
class StoreChange:
    """What one write changes: quads added and removed, empty graphs created and dropped.

    Computed once (by running an update on a scratch copy) and then written as is, so what
    the shapes checked is exactly what the store gets.
    """

    added: list[ox.Quad] = field(default_factory=list)
    removed: list[ox.Quad] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.created or self.dropped)

    def update_text(self) -> tuple[str, dict]:
        """One SPARQL update doing the change, and the custom function it needs.

        Quads without blank nodes go in ``DELETE DATA`` / ``INSERT DATA``. Blank nodes cannot:
        ``INSERT DATA`` would mint fresh ones and ``DELETE DATA`` forbids them. Those quads
        are bound from a custom function returning the very terms the scratch copy made, so
        the live store gets the same blank nodes (pyoxigraph keeps a blank node's id).
        """
        terms: list[tuple] = []
        operations = [f"CREATE SILENT GRAPH <{g}>" for g in self.created]
        for verb, quads in (("DELETE", self.removed), ("INSERT", self.added)):
            plain = [q for q in quads if not _has_blank(q)]
            if plain:
                operations.append(f"{verb} DATA {{\n{update_block(plain)}}}")
            blank = [q for q in quads if _has_blank(q)]
            for default in (True, False):
                rows = [q for q in blank if isinstance(q.graph_name, ox.DefaultGraph) == default]
                if not rows:
                    continue
                first = len(terms)
                terms += [(q.subject, q.predicate, q.object, q.graph_name) for q in rows]
                values = " ".join(str(i) for i in range(first, len(terms)))
                f = f"<{_CHANGE_TERM.value}>"
                parts = "spo" if default else "spog"
                binds = " ".join(f"BIND({f}(?i, {k}) AS ?{v})" for k, v in enumerate(parts))
                template = "?s ?p ?o" if default else "GRAPH ?g { ?s ?p ?o }"
                operations.append(
                    f"{verb} {{ {template} }} WHERE {{ VALUES ?i {{ {values} }} {binds} }}"
                )
        operations += [f"DROP SILENT GRAPH <{g}>" for g in self.dropped]

        def term(index: ox.Literal, part: ox.Literal) -> object:
            return terms[int(index.value)][int(part.value)]

        return " ;\n".join(operations), {_CHANGE_TERM: term}


def _has_blank(quad: ox.Quad) -> bool:
    return isinstance(quad.subject, ox.BlankNode) or isinstance(quad.object, ox.BlankNode)


def update_block(
    quads: Iterable[ox.Quad | ox.Triple],
    graph_iri: Callable[[str | None], str | None] | None = None,
) -> str:
    """Quads as the body of INSERT DATA / DELETE DATA: GRAPH blocks for named graphs.

    ``graph_iri`` maps a graph's name to the one the engine holds it under (a remote
    store may keep relmark's default graph in a named graph); triples go to the default.
    """
    by_graph: dict[str | None, list[ox.Triple]] = {}
    for q in quads:
        graph = getattr(q, "graph_name", ox.DefaultGraph())
        name = None if isinstance(graph, ox.DefaultGraph) else graph.value
        if graph_iri is not None:
            name = graph_iri(name)
        by_graph.setdefault(name, []).append(ox.Triple(q.subject, q.predicate, q.object))
    parts = []
    for name, triples in by_graph.items():
        text = serialized(triples, ox.RdfFormat.N_TRIPLES).decode("utf-8")
        parts.append(text if name is None else f"GRAPH <{name}> {{\n{text}}}\n")
    return "".join(parts)


def _data_graphs(db: ox.Store, wanted: set[str] | None) -> set[str]:
    """The named graphs a validated update may change: ``wanted`` or every data graph."""
    present = {g.value for g in db.named_graphs() if isinstance(g, ox.NamedNode)}
    return present - SYSTEM_GRAPHS if wanted is None else present & wanted - SYSTEM_GRAPHS


class _Diff:
    """The quads an update changed in some graphs, compared as N-Triples lines.

    Each graph is dumped (in Rust) before and after the update and the two sets of lines
    compared; only the lines that differ are parsed back into quads. Hashing pyoxigraph
    quads into Python sets instead took 2.9 s at 100k quads; lines of bytes hash ~50×
    faster. Blank node ids survive the round trip (``_:id`` parses back to the same id), so
    the change names the scratch copy's very blank nodes.
    """

    def __init__(self, db: ox.Store, graphs: set[str]) -> None:
        self.before_graphs = set(graphs)
        self.before = {graph: _lines(db, graph) for graph in [None, *sorted(graphs)]}

    def after(self, db: ox.Store, graphs: set[str]) -> StoreChange:
        change = StoreChange(
            created=sorted(graphs - self.before_graphs),
            dropped=sorted(self.before_graphs - graphs),
        )
        after = {graph: _lines(db, graph) for graph in [None, *sorted(graphs)]}
        for graph in [None, *sorted(graphs | self.before_graphs)]:
            old, new = self.before.get(graph, set()), after.get(graph, set())
            change.added += _parsed(new - old, graph)
            change.removed += _parsed(old - new, graph)
        return change


def _lines(db: ox.Store, graph: str | None) -> set[bytes]:
    output = io.BytesIO()
    db.dump(output, format=ox.RdfFormat.N_TRIPLES, from_graph=graph_node(graph))
    return set(output.getvalue().splitlines())


def _parsed(lines: set[bytes], graph: str | None) -> list[ox.Quad]:
    if not lines:
        return []
    target = graph_node(graph)
    text = b"\n".join(sorted(lines)) + b"\n"
    return [
        ox.Quad(t.subject, t.predicate, t.object, target)
        for t in ox.parse(text, format=ox.RdfFormat.N_TRIPLES)
    ]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _ReadWriteLock:
    """Many readers or one writer; only journaled writes need the writer side."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


#: Scratch directories made next to a store (a validated update's, a what-if's).
SCRATCH_PATTERNS = (".{name}.scratch-*", ".{name}.what-if-*")


def remove_stale_scratch(path: Path) -> list[Path]:
    """Delete scratch copies a crashed process left next to the store at ``path``.

    ``EmbeddedStore`` calls it once the store is open: RocksDB's lock then says no other
    process serves it, so no scratch copy of its name can still be in use. Returns what
    was removed.
    """
    path = Path(path)
    removed = []
    for pattern in SCRATCH_PATTERNS:
        for stale in path.parent.glob(pattern.format(name=path.name)):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
                removed.append(stale)
    return removed
