"""Reading a store from the command line while ``relmark serve`` holds it open.

RocksDB lets one process open a store for writing, and pyoxigraph 0.5 has no secondary
instance (``Store.read_only`` on a store another process writes is undefined behaviour).
What the server does offer: every ``relmark serve`` publishes read-only snapshots of the
store in ``<store>.snapshots/<generation>`` (RocksDB checkpoints: each one the store at
one instant, between two writes, never written again). ``--workers N`` publishes one
after each write, before the write is answered; one process publishes one when a command
asks for it (``relmark.stores.snapshots.SnapshotThread``). Either way the snapshot a command reads
holds every write the server answered before the command started.

So ``relmark query | classify | explain | dump`` open the store itself when they can, and
otherwise a private copy of the newest snapshot: immutable files hard-linked, the rest
copied (milliseconds). The links keep the files alive, so the server may prune that
snapshot while the command reads; a snapshot pruned *during* the copy is detected (the
copy does not open) and the newest one is copied instead. The copy is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from relmark.stores import open_store
from relmark.stores.base import Store, StoreError, StoreLocked
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.snapshots import (
    KEEP_SNAPSHOTS,
    ON_REQUEST,
    link_copy,
    newest_snapshot,
    snapshots_of,
)

#: Attempts at copying the newest snapshot (the server may prune one while it is copied).
COPY_ATTEMPTS = 5
#: A command's private copy of a snapshot: ``<store's parent>/.relmark-read-<pid>-…``.
READ_PREFIX = ".relmark-read-"
#: Longest wait for a one-process server to take the snapshot asked for.
REQUEST_WAIT = 10.0


@dataclass(frozen=True)
class ReadView:
    """The store a command reads, and a note saying which view that is (None: the store)."""

    store: Store
    note: str | None


def _ask_for_snapshot(directory: Path) -> None:
    """Have a one-process server take a snapshot now, if it publishes them on request.

    (``--workers N`` publishes after every write anyway.) The request is a file the server
    removes once the newest snapshot holds every write it answered before.
    """
    if not (directory / ON_REQUEST).exists():
        return
    request = directory / f"wanted-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        request.touch()
    except OSError:  # the server stopped meanwhile: nothing to ask
        return
    deadline = time.monotonic() + REQUEST_WAIT
    while request.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    request.unlink(missing_ok=True)  # not answered in time: read the newest there is


@contextlib.contextmanager
def open_for_reading(location: str | Path, settings: object | None = None) -> Iterator[ReadView]:
    """The store at ``location``, or the newest snapshot of it when another process serves it.

    Raises ``StoreLocked`` when the store is served but publishes no snapshot (a server
    from before snapshots, or one that is still starting).
    """
    try:
        store = open_store(location, settings)
    except StoreLocked as locked:
        directory = snapshots_of(location)
        _ask_for_snapshot(directory)
        if newest_snapshot(directory) is None:
            raise StoreLocked(
                f"{locked}; it has published no snapshot in {directory} to read instead"
            ) from locked
        with _snapshot_copy(directory) as (copy, generation, taken):
            note = (
                f"{Path(location).resolve()} is served by another process: read its "
                f"snapshot {generation}, taken {taken:%H:%M:%S} (the store as of its last "
                "write then)"
            )
            yield ReadView(copy, note)
        return
    try:
        yield ReadView(store, None)
    finally:
        store.close()


@contextlib.contextmanager
def _snapshot_copy(directory: Path) -> Iterator[tuple[EmbeddedStore, int, datetime.datetime]]:
    """A private, writable copy of the newest snapshot (deleted on the way out)."""
    _remove_orphans(directory.parent)
    # next to the snapshots: hard links need the same file system
    prefix = f"{READ_PREFIX}{os.getpid()}-"
    scratch = tempfile.mkdtemp(prefix=prefix, dir=directory.parent)
    try:
        failure: Exception | None = None
        for attempt in range(COPY_ATTEMPTS):
            snapshot = newest_snapshot(directory)
            if snapshot is None:
                break
            target = Path(scratch) / str(attempt)
            try:
                taken = datetime.datetime.fromtimestamp(snapshot.stat().st_mtime)
                link_copy(snapshot, target)
                if not _complete(directory, int(snapshot.name), target):
                    raise StoreError(f"snapshot {snapshot.name} was pruned while copied")
                copy = EmbeddedStore(target)
            except (OSError, RuntimeError, StoreError) as error:  # RuntimeError: RocksDB's
                failure = error
                shutil.rmtree(target, ignore_errors=True)
                continue
            try:
                yield copy, int(snapshot.name), taken
            finally:
                copy.close()
            return
        raise StoreError(f"cannot copy a snapshot of {directory}: {failure}")
    finally:
        _remove_copy(Path(scratch))


def _remove_copy(path: Path) -> None:
    """Delete a command's copy once RocksDB let go of it.

    A query's result still referenced keeps RocksDB open past ``close()``, and its
    background threads may add a file while the tree is removed ("Directory not empty"):
    collect such leftovers first and try again. What still stays is an orphan the next
    command removes.
    """
    for _attempt in range(5):
        gc.collect()
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.1)


def _remove_orphans(parent: Path) -> None:
    """Remove the copies of commands that were killed before they could (their hard links
    would keep pruned snapshots' files on disk for good)."""
    for path in parent.glob(READ_PREFIX + "*"):
        pid = path.name[len(READ_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _complete(directory: Path, generation: int, copy: Path) -> bool:
    """Whether the copy of ``generation`` holds all its files, none pruned before we linked.

    The server prunes generation g only after it published g + KEEP_SNAPSHOTS; if that one
    does not exist yet once the copy is done, pruning had not begun. (A copy missing an
    .sst file would not open; one missing its write-ahead log would open without its last
    writes, silently: hence this check, rather than trusting the open.)
    """
    newest = newest_snapshot(directory)
    if newest is None or int(newest.name) >= generation + KEEP_SNAPSHOTS:
        return False
    return (copy / "CURRENT").is_file()
