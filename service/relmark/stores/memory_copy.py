"""A cache of a serving worker's snapshot in memory, so reads skip RocksDB.

A cache, not a store: it answers no part of the store protocol and holds nothing the disk
does not. ``SnapshotReplica`` asks it for the generation it must read and falls back to the
snapshot on disk whenever it holds another (or none).

Why: pyoxigraph answers the same query several times faster from its in-memory store
than from RocksDB on disk (the figures are in benchmarks/README.md, "Figures behind
choices in the code"). The store on disk stays the one source of truth; the copy is an
accelerator that is used only while it holds exactly the snapshot generation the worker
must read, so a read never sees older data than the disk snapshot would give it
(read-your-writes is kept).

How: after the worker opens a new snapshot generation, one background thread dumps it
(N-Quads, in Rust, to a temporary file) and bulk-loads an in-memory store from it; the
copy is swapped in if its generation is still the current one. Until then, and for a
store larger than the budget (``RELMARK_MEMORY_COPY`` quads, 0 turns copies off),
reads go to the snapshot on disk. A copy costs 400-600 bytes per quad (132 MB for the
335k quads of the 100k data set with its provenance, 1.9 GB for the 3.3M of the 1M set)
and takes seconds to build at 100k, about two minutes at 1M (reading RocksDB's long
provenance IRIs is the slow part); the dump and load release the GIL except for a pause
of about 0.1 s.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable

import pyoxigraph as ox

from relmark.stores.embedded import count_quads


class MemoryCopyCache:
    """The newest in-memory copy of a versioned on-disk store, rebuilt in the background."""

    def __init__(self, max_quads: int, log: Callable[[str], None] | None = None) -> None:
        self.max_quads = max_quads
        self._log = log
        self._lock = threading.Lock()
        self._copy: tuple[int, ox.Store] | None = None
        self._wanted: tuple[int, ox.Store] | None = None
        self._declined = -1  # the last version found larger than the budget
        self._building = False

    def get(self, version: int) -> ox.Store | None:
        """The copy of ``version``, if one is ready."""
        copy = self._copy
        return copy[1] if copy is not None and copy[0] == version else None

    @property
    def version(self) -> int | None:
        """The version the ready copy holds (None: no copy)."""
        copy = self._copy
        return None if copy is None else copy[0]

    @property
    def building(self) -> bool:
        """Whether a copy is being built now."""
        return self._building

    def want(self, version: int, source: ox.Store) -> None:
        """Make ``version`` (read from ``source``) the next copy to build.

        Cheap enough to call on every read: only a new version starts work, at most one
        build runs at a time, and a build that finishes late builds the newest version
        next. A stale copy is dropped at once, so two copies never coexist.
        """
        if self.max_quads <= 0 or self.version == version or self._declined == version:
            return
        with self._lock:
            if self._copy is not None and self._copy[0] != version:
                self._copy = None
            if self._copy is not None or (self._wanted and self._wanted[0] >= version):
                return
            self._wanted = (version, source)
            if self._building:
                return
            self._building = True
        threading.Thread(target=self._build, name="relmark-memory-copy", daemon=True).start()

    def _build(self) -> None:
        """(background thread) Build wanted versions until none is left."""
        while True:
            with self._lock:
                if self._wanted is None:
                    self._building = False
                    return
                version, source = self._wanted
            copy = None
            try:
                if count_quads(source) > self.max_quads:
                    self._declined = version
                else:
                    copy = _copy_of(source)
            except OSError as error:  # the snapshot was pruned under us: a newer one exists
                if self._log is not None:
                    self._log(f"no in-memory copy of generation {version}: {error}")
            with self._lock:
                if self._wanted is not None and self._wanted[0] == version:
                    self._wanted = None
                    if copy is not None:
                        self._copy = (version, copy)


def _copy_of(source: ox.Store) -> ox.Store:
    """Every quad of ``source`` in a new in-memory store (through a file: no Python bytes)."""
    handle, path = tempfile.mkstemp(prefix="relmark-copy-", suffix=".nq")
    os.close(handle)
    try:
        source.dump(path, format=ox.RdfFormat.N_QUADS)
        copy = ox.Store()
        copy.bulk_load(path=path, format=ox.RdfFormat.N_QUADS)
        return copy
    finally:
        os.unlink(path)
