"""What if: classify a hypothetical record against the stored data, writing nothing.

A marketer asks "if this customer recommended us once, would she be an Advocate?" before
anything happened. The record is added to a scratch copy of the store (a hard-linked
RocksDB copy: milliseconds, little disk), the rules are brought up to date there with
``refresh_inferences`` exactly as after a real write, the resources are classified on the
copy, and the copy is deleted whatever happens. The live store is only read.

On a serving worker the store is a ``SnapshotReplica`` (read-only snapshots published by
the writer process); its current snapshot directory is copied the same way, in a process
of its own (see below why).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyoxigraph as ox

from relmark.reasoning import maintain
from relmark.reasoning.explain import classify
from relmark.store import (
    ONTOLOGY_GRAPH,
    Changes,
    EmbeddedStore,
    SnapshotReplica,
    Store,
    StoreError,
)

#: The graph the hypothetical record goes into on the scratch copy.
WHAT_IF_GRAPH = "urn:relmark:what-if"

#: RocksDB never changes these files once written, so a copy may share them (hard links).
_IMMUTABLE_SUFFIXES = (".sst", ".blob")
_COPY_ATTEMPTS = 5


class WhatIfUnsupported(StoreError):
    """The store cannot be copied for a what-if (e.g. a remote SPARQL back end)."""


def _link_copy(source: Path, target: Path) -> None:
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


def scratch_copy(store: Store, target: Path) -> None:
    """Copy ``store`` into the new directory ``target``, consistently, without writing it."""
    if isinstance(store, EmbeddedStore):
        store.backup(target)
        return
    copy_to = getattr(store, "copy_to", None)
    if copy_to is not None:  # a remote store: its data, read into a local one
        copy_to(target)
        return
    raise WhatIfUnsupported(
        f"what-if needs a local store to copy; {type(store).__name__} cannot be copied"
    )


def copy_snapshot(snapshot: Path, target: Path) -> None:
    """Copy a replica's snapshot; if the writer pruned it meanwhile, copy the newest one."""
    failure: OSError | None = None
    for _attempt in range(_COPY_ATTEMPTS):
        try:
            _link_copy(snapshot, target)
            return
        except OSError as error:
            failure = error
            shutil.rmtree(target, ignore_errors=True)
            generations = [p for p in snapshot.parent.iterdir() if p.name.isdigit()]
            if generations:
                snapshot = max(generations, key=lambda p: int(p.name))
    raise StoreError(f"cannot copy the snapshot {snapshot} for a what-if: {failure}")


def _scratch_parent(store: Store) -> Path | None:
    """Where scratch copies go: next to the store, so hard links work (same file system)."""
    path = getattr(store, "path", None)
    return Path(path).parent if path is not None else None


@contextmanager
def scratch_store(store: Store) -> Iterator[EmbeddedStore]:
    """A writable copy of ``store`` for the duration of the block, always deleted after."""
    parent = _scratch_parent(store)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".relmark-what-if-", dir=parent) as directory:
        path = Path(directory) / "store"
        scratch_copy(store, path)
        scratch = EmbeddedStore(path)
        try:
            yield scratch
        finally:
            scratch.close()


def record_subjects(quads: list[ox.Quad]) -> list[str]:
    """The IRIs the record says something about, in order of first mention."""
    seen: dict[str, None] = {}
    for quad in quads:
        if isinstance(quad.subject, ox.NamedNode):
            seen.setdefault(quad.subject.value, None)
    return list(seen)


def _refresh(scratch: EmbeddedStore, ontology_dir: Path | None, quads: list[ox.Quad]) -> None:
    """The inferences of the copy brought up to date: incrementally, from the record alone."""
    maintain.refresh_inferences(scratch, ontology_dir, changes=Changes(added=quads, removed=[]))


def what_if(
    store: Store,
    quads: list[ox.Quad],
    iris: list[str] | None = None,
    *,
    ontology_dir: Path | None = None,
    lang: str = "en",
) -> list[dict]:
    """Classify ``iris`` (default: every subject of the record) as if ``quads`` were stored.

    Returns, per resource, its classes on the copy (as ``explain.classify`` gives them) and
    how they differ from the stored answer: ``gained`` and ``lost`` class IRIs.
    """
    target = ox.NamedNode(WHAT_IF_GRAPH)
    record = [ox.Quad(q.subject, q.predicate, q.object, target) for q in quads]
    wanted = iris if iris is not None else record_subjects(record)
    before = {iri: _class_set(store, iri, lang) for iri in wanted}
    if isinstance(store, SnapshotReplica):
        after = _in_fresh_process(store, record, wanted, ontology_dir, lang)
    else:
        with scratch_store(store) as scratch:
            after = classify_with_record(scratch, record, wanted, ontology_dir, lang)
    results = []
    for iri, entries in zip(wanted, after, strict=True):
        classes = {entry["class"] for entry in entries}
        results.append(
            {
                "iri": iri,
                "classes": entries,
                "gained": sorted(classes - before[iri]),
                "lost": sorted(before[iri] - classes),
            }
        )
    return results


def classify_with_record(
    scratch: EmbeddedStore,
    record: list[ox.Quad],
    iris: list[str],
    ontology_dir: Path | None,
    lang: str,
) -> list[list[dict]]:
    """Add the record to the scratch copy, bring its inferences up to date, classify."""
    if not scratch.has_graph(ONTOLOGY_GRAPH):  # a store the CLI loaded but never served
        maintain.sync_system_graphs(scratch, ontology_dir)
    scratch.add_quads(record)
    _refresh(scratch, ontology_dir, record)
    return [classify(scratch, iri, lang) for iri in iris]


# --- on a serving worker -----------------------------------------------------------------
#
# Workers are forked from the supervisor after it opened RocksDB, and a forked child cannot
# open a RocksDB store for writing (RocksDB's background threads do not survive the fork:
# the open hangs). So on a worker the what-if runs in a process started fresh ("spawn"),
# one per worker, started at the first what-if and reused after.

_FRESH: dict[int, ProcessPoolExecutor] = {}
_FRESH_LOCK = threading.Lock()
#: How long a worker waits for the fresh process's answer.
FRESH_TIMEOUT = 120.0


def _fresh_process() -> ProcessPoolExecutor:
    with _FRESH_LOCK:
        executor = _FRESH.get(os.getpid())
        if executor is None:
            context = multiprocessing.get_context("spawn")
            executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
            _FRESH[os.getpid()] = executor
        return executor


def stop_fresh_process() -> None:
    """Shut this process's what-if process down, if it started one (a worker, before exit).

    Workers end with ``os._exit``, which skips the executor's own clean-up: its queues'
    semaphores then stay registered with multiprocessing's resource tracker, which warns
    "leaked semaphore objects" when the worker is gone (on every Ctrl-C of ``make run``
    after a what-if). Shutting down and collecting the executor unregisters them.
    """
    with _FRESH_LOCK:
        executor = _FRESH.pop(os.getpid(), None)
    if executor is None:
        return
    executor.shutdown(wait=True, cancel_futures=True)
    del executor
    gc.collect()  # the queues' finalizers unlink their semaphores and tell the tracker


def _exit_with_parent(parent: int) -> None:
    """In the fresh process: end when the worker that started it ends (even if killed).

    Ctrl-C reaches the whole process group; the worker's ``stop_fresh_process`` ends this
    process in order, so it ignores SIGINT rather than die with a traceback mid-shutdown.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="relmark-what-if-watch", daemon=True).start()


def _in_fresh_process(
    store: SnapshotReplica,
    record: list[ox.Quad],
    iris: list[str],
    ontology_dir: Path | None,
    lang: str,
) -> list[list[dict]]:
    store.query("ASK {}")  # moves the replica to the newest generation first
    snapshot = store._snapshots / str(store.generation)  # no public path (store.py)
    payload = ox.serialize(record, format=ox.RdfFormat.N_QUADS)
    future = _fresh_process().submit(
        classify_snapshot_copy, str(snapshot), payload, iris, ontology_dir, lang
    )
    return future.result(timeout=FRESH_TIMEOUT)


def classify_snapshot_copy(
    snapshot: str, payload: bytes, iris: list[str], ontology_dir: Path | None, lang: str
) -> list[list[dict]]:
    """In the fresh process: copy the snapshot, add the record (N-Quads), classify."""
    source = Path(snapshot)
    with tempfile.TemporaryDirectory(
        prefix=".relmark-what-if-", dir=source.parent.parent
    ) as directory:
        path = Path(directory) / "store"
        copy_snapshot(source, path)
        scratch = EmbeddedStore(path)
        try:
            record = list(ox.parse(payload, format=ox.RdfFormat.N_QUADS))
            return classify_with_record(scratch, record, iris, ontology_dir, lang)
        finally:
            scratch.close()


def _class_set(store: Store, iri: str, lang: str) -> set[str]:
    return {entry["class"] for entry in classify(store, iri, lang)}
