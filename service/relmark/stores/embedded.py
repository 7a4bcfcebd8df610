"""The store: named-graph layout, the `Store` protocol and its embedded pyoxigraph back end.

Nothing outside this module talks to pyoxigraph's ``Store`` directly. The protocol is kept
small enough that a remote SPARQL 1.1 back end (query + update + Graph Store Protocol) can
implement it later.

Atomicity, the one promise every write keeps: a rejected or crashed write leaves the store
as it was. Small writes use pyoxigraph's transactions (``extend``, ``update``). Bulk loads
use pyoxigraph's fast non-transactional ``bulk_load``, so they are *journaled*: a
hard-linked backup of the store is taken first (milliseconds), a journal file names it,
and if the process dies before the journal is removed, the next open puts the backup back.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import pyoxigraph as ox

from relmark.stores.base import (
    CHANGE_LIMIT,
    CONTENT_HASH,
    BulkPart,
    ChangeRecord,
    Changes,
    QueryResult,
    StoreError,
    StoreLocked,
    Term,
    is_system_graph,
    is_system_graph_quad,
)
from relmark.stores.data_update import data_change, data_operations
from relmark.vocab import (
    META_GRAPH,
    SYSTEM_GRAPHS,
)

if TYPE_CHECKING:
    from relmark.stores.memory_copy import MemoryCopy


def _node(graph: str | None) -> ox.NamedNode | ox.DefaultGraph:
    return ox.DefaultGraph() if graph is None else ox.NamedNode(graph)


def count_quads(db: ox.Store) -> int:
    result = db.query("SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    named = int(next(iter(result))["n"].value)
    result = db.query("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")
    return named + int(next(iter(result))["n"].value)


def _query_options(
    default_graph: list[str | None] | None,
    named_graphs: list[str] | None,
    substitutions: Mapping[str, Term | ox.Triple] | None,
) -> dict:
    """pyoxigraph's query options: the union of all graphs as default unless graphs are named."""
    options: dict = {}
    if default_graph is not None:
        options["default_graph"] = [_node(g) for g in default_graph]
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
        self._db = self._open_recovered()
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
        if self._journal.exists() or self._backup_dir.exists():
            db = None  # closes RocksDB before its directory is swapped
            self._recover()
            db = self._open()
        return db

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
            if self._db is not None:
                self._db.flush()
                self._db = None

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
        options = _query_options(default_graph, named_graphs, substitutions)
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
            yield from self._db.quads_for_pattern(None, None, None, _node(graph))

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
            self._db.dump(output, format=ox.RdfFormat.N_TRIPLES, from_graph=_node(graph))
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
        subject: Term | None,
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
        body = ox.serialize(plain, format=ox.RdfFormat.N_TRIPLES).decode("utf-8")
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
                for fmt, source, label in parts:
                    try:
                        if fmt == "quads":
                            self._db.bulk_extend(source)
                        else:
                            # relmark's own graphs come from its own writers or files its
                            # tests check: IRIs need no second validation (20% faster)
                            lenient = graph in SYSTEM_GRAPHS
                            self._db.bulk_load(source, format=fmt, to_graph=target, lenient=lenient)
                    except SyntaxError as error:
                        error.filename = label
                        raise
                if graph not in SYSTEM_GRAPHS:
                    self._record.replaced(graph, old, self._content(graph))

    def graph_size(self, graph: str) -> int:
        """Number of triples in one named graph."""
        result = self.query(f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
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
                self._db = None  # close RocksDB before its directory is swapped
                self._recover()
                self._db = self._open()
                raise
            finally:
                self._written()
            self._journal.unlink()
            shutil.rmtree(self._backup_dir, ignore_errors=True)

    # --- the ontology, shapes and config graphs --------------------------------------
    def sync_file_graph(self, graph: str, paths: list[Path]) -> bool:
        """(Re)load a system graph from Turtle files when their content changed.

        Returns True when the graph was (re)loaded. The content hash lives in the meta
        graph, so the check survives restarts and never duplicates triples.
        """
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        wanted = ox.Literal(digest.hexdigest())
        with self._lock.read():
            stored = list(
                self._db.quads_for_pattern(
                    ox.NamedNode(graph), CONTENT_HASH, None, ox.NamedNode(META_GRAPH)
                )
            )
        if [q.object for q in stored] == [wanted]:
            return False
        triples: list[ox.Triple] = []
        for path in paths:
            triples.extend(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
        self.replace_graph(graph, triples)
        hash_iri = CONTENT_HASH.value
        self.update(
            f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> ?h }} }} ;"
            f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> {wanted} }} }}",
            system=True,
        )
        return True


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
        text = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES).decode("utf-8")
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
    db.dump(output, format=ox.RdfFormat.N_TRIPLES, from_graph=_node(graph))
    return set(output.getvalue().splitlines())


def _parsed(lines: set[bytes], graph: str | None) -> list[ox.Quad]:
    if not lines:
        return []
    target = _node(graph)
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


class WriteForwarder(Protocol):
    """Applies a write in the process that owns the store: ``(result, generation)``.

    ``generation`` is the first snapshot generation that contains the write.
    """

    def __call__(self, method: str, *args: object) -> tuple[object, int]: ...


class ForwardedWrites:
    """A serving worker's store writes: each one is sent to the one process that applies
    writes (``relmark.server.supervisor``), and returns once readers here can see it.

    Why one writer: it refreshes the inferences after each write from the quads that write
    changed, and two processes doing that at once would race. The class that mixes this
    in reads from its own copy (``SnapshotReplica``) or from the engine
    (``RemoteReplica``) and says, in ``_forward``, how it catches up with a write.
    """

    #: The writes are applied (and the inferences refreshed) elsewhere: not after a view.
    forwards_writes = True

    def _forward(self, method: str, *args: object) -> object:
        raise NotImplementedError

    def update(self, sparql: str, *, system: bool = False) -> None:
        self._forward("update", sparql)

    def update_validated(
        self,
        sparql: str,
        check: Callable[[list[ox.Quad], list[ox.Quad]], None],
        graphs: Iterable[str] | None = None,
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

    def sync_file_graph(self, graph: str, paths: list[Path]) -> bool:
        return bool(self._forward("sync_file_graph", graph, paths))


class SnapshotReplica(ForwardedWrites):
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
        memory: MemoryCopy | None = None,
    ) -> None:
        self.path = Path(path).resolve()  # the live store, as /healthz names it
        self._snapshots = Path(snapshots)
        self._shared_generation = generation
        self._writer = writer
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
        options = _query_options(default_graph, named_graphs, substitutions)
        return self._reader().query(sparql, **options)

    def quads_for_pattern(
        self,
        subject: Term | None,
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
        yield from self._reader().quads_for_pattern(None, None, None, _node(graph))

    def graph_size(self, graph: str) -> int:
        result = self.query(f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
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

    # --- writes: forwarded to the writer process (ForwardedWrites) ----------------------
    def _forward(self, method: str, *args: object) -> object:
        result, generation = self._writer(method, *args)
        self._advance(generation)
        return result


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
