"""What if: classify a hypothetical record against the stored data, writing nothing.

A marketer asks "if this customer recommended us once, would she be an Advocate?" before
anything happened. The record is added to a scratch copy of the store (a hard-linked
RocksDB copy: milliseconds, little disk), the rules are brought up to date there with
``refresh_inferences`` exactly as after a real write, the resources are classified on the
copy, and the copy is deleted whatever happens. The live store is only read.

On a serving worker the store reads snapshots published by the writer process
(``ReadsSnapshots``); its current snapshot directory is copied the same way. Served over
HTTP, the work runs in a helper process of its own (see below why), which bounds it:
``RELMARK_WHATIF_TIMEOUT`` (the helper is killed past it), ``RELMARK_WORKER_MEMORY``
(its watchdog), and the caller limits the record to ``RELMARK_WHATIF_MAX_TRIPLES``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
import pickle
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import pyoxigraph as ox

from relmark.memory_bound import (
    MEMORY_EXCEEDED,
    Watchdog,
    describe,
    set_address_space_backstop,
)
from relmark.reasoning import maintain
from relmark.reasoning.explain import classify
from relmark.stores import copy_snapshot, open_store
from relmark.stores.base import Changes, CopyTo, OnDisk, ReadsSnapshots, Store, StoreError
from relmark.stores.system_graphs import sync_system_graphs
from relmark.vocab import ONTOLOGY_GRAPH

#: The graph the hypothetical record goes into on the scratch copy.
WHAT_IF_GRAPH = "urn:relmark:what-if"

#: A replica's what-if without a timeout given still gets this one.
HELPER_DEFAULT_TIMEOUT = 120.0


class WhatIfUnsupported(StoreError):
    """The store cannot be copied for a what-if (e.g. a remote SPARQL back end)."""


def scratch_copy(store: Store, target: Path) -> None:
    """Copy ``store`` into the new directory ``target``, consistently, without writing it."""
    if isinstance(store, CopyTo):  # (a remote store's: its data, read into a local one)
        store.copy_to(target)
        return
    raise WhatIfUnsupported(
        f"what-if needs a local store to copy; {type(store).__name__} cannot be copied"
    )


def _scratch_parent(store: Store) -> Path | None:
    """Where scratch copies go: next to the store, so hard links work (same file system)."""
    return store.path.parent if isinstance(store, OnDisk) else None


def _scratch_prefix(store: Store) -> str:
    """``.<store name>.what-if-``: the name start-up cleaning looks for (stores.embedded)."""
    return f".{store.path.name}.what-if-" if isinstance(store, OnDisk) else ".relmark-what-if-"


@contextmanager
def scratch_store(store: Store) -> Iterator[Store]:
    """A writable copy of ``store`` for the duration of the block, always deleted after."""
    parent = _scratch_parent(store)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=_scratch_prefix(store), dir=parent) as directory:
        path = Path(directory) / "store"
        scratch_copy(store, path)
        scratch = open_store(path)
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


def _refresh(scratch: Store, ontology_dir: Path | None, quads: list[ox.Quad]) -> None:
    """The inferences of the copy brought up to date: incrementally, from the record alone."""
    maintain.refresh_inferences(scratch, ontology_dir, changes=Changes(added=quads, removed=[]))


def what_if(
    store: Store,
    quads: list[ox.Quad],
    iris: list[str] | None = None,
    *,
    ontology_dir: Path | None = None,
    lang: str = "en",
    timeout: float | None = None,
    memory_bound: int = 0,
) -> list[dict]:
    """Classify ``iris`` (default: every subject of the record) as if ``quads`` were stored.

    With a ``timeout`` (and always on a serving worker's replica) the work runs in this
    process's helper, within ``timeout`` seconds and ``memory_bound`` bytes (0: none);
    ``WhatIfRefused`` says why it was not answered. Without one it runs here, unbounded
    (the CLI and library use).

    Returns, per resource, its classes on the copy (as ``explain.classify`` gives them) and
    how they differ from the stored answer: ``gained`` and ``lost`` class IRIs.
    """
    target = ox.NamedNode(WHAT_IF_GRAPH)
    record = [ox.Quad(q.subject, q.predicate, q.object, target) for q in quads]
    wanted = iris if iris is not None else record_subjects(record)
    before = {iri: _class_set(store, iri, lang) for iri in wanted}
    if timeout is not None or isinstance(store, ReadsSnapshots):
        seconds = HELPER_DEFAULT_TIMEOUT if timeout is None else timeout
        after = _in_helper(store, record, wanted, ontology_dir, lang, seconds, memory_bound)
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
    scratch: Store,
    record: list[ox.Quad],
    iris: list[str],
    ontology_dir: Path | None,
    lang: str,
) -> list[list[dict]]:
    """Add the record to the scratch copy, bring its inferences up to date, classify."""
    if not scratch.has_graph(ONTOLOGY_GRAPH):  # a store the CLI loaded but never served
        sync_system_graphs(scratch, ontology_dir)
    scratch.add_quads(record)
    _refresh(scratch, ontology_dir, record)
    return [classify(scratch, iri, lang) for iri in iris]


# --- the helper process ---------------------------------------------------------------------
#
# Workers are forked from the supervisor after it opened RocksDB, and a forked child cannot
# open a RocksDB store for writing (RocksDB's background threads do not survive the fork:
# the open hangs). So the what-if runs in a process started fresh ("spawn"), one per
# serving process, started at the first what-if and reused after. Being a process of its
# own is also what bounds it: pyoxigraph and the rule engine cannot be interrupted, but a
# process can be killed. A what-if that overruns its timeout kills its helper (the next
# what-if starts a new one); a helper that dies (a crash, its memory bound) is replaced
# the same way; both are errors the caller turns into 503, never a broken pool for good.

#: How long a new helper may take to start (imports, before the timeout's clock starts).
HELPER_START_TIMEOUT = 60.0


class WhatIfRefused(Exception):
    """A what-if was not answered; ``reason`` says why (the caller's 503)."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class WhatIfTimeout(WhatIfRefused):
    """The what-if ran past its timeout; its helper was killed."""


class WhatIfBusy(WhatIfRefused):
    """Another what-if held this process's helper for the whole wait."""


class WhatIfFailed(WhatIfRefused):
    """The helper died (a crash, or its memory bound) while answering."""


class Helper:
    """A spawned process that runs what-ifs one at a time, killed and replaced as needed."""

    def __init__(self, memory_bound: int = 0) -> None:
        self.memory_bound = memory_bound
        self._lock = threading.Lock()  # one what-if at a time on the helper
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or not process.is_alive() else process.pid

    def call(self, function: str, args: tuple, timeout: float) -> object:
        """``function(*args)`` in the helper, within ``timeout`` seconds (after it started).

        Waits for the helper at most ``timeout`` too (another what-if may hold it).
        Raises ``WhatIfTimeout``/``WhatIfBusy``/``WhatIfFailed``, or the function's own error.
        """
        if not self._lock.acquire(timeout=timeout):
            raise WhatIfBusy(
                f"another what-if held this worker's helper for {timeout:g} s", timeout
            )
        try:
            connection = self._started()
            try:
                connection.send((function, args))
                answered = connection.poll(timeout)
            except OSError:
                answered = True  # (the helper is gone: recv below says so)
            if not answered:
                self.stop()
                raise WhatIfTimeout(
                    f"the what-if did not finish within {timeout:g} s and was stopped", 1.0
                )
            try:
                kind, value = connection.recv()
            except (EOFError, OSError):
                code = self.stop()
                if code == MEMORY_EXCEEDED:
                    raise WhatIfFailed(
                        "the what-if passed its memory bound of "
                        f"{describe(self.memory_bound)} (RELMARK_WORKER_MEMORY) and was stopped"
                    ) from None
                raise WhatIfFailed(f"the what-if helper process died (exit code {code})") from None
            if kind == "error":
                raise value
            return value
        finally:
            self._lock.release()

    def _started(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection
        self.stop()
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_helper_main,
            args=(theirs, os.getpid(), self.memory_bound),
            name="relmark-what-if",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._connection = process, ours
        if not ours.poll(HELPER_START_TIMEOUT):
            self.stop()
            raise WhatIfFailed(f"the what-if helper did not start in {HELPER_START_TIMEOUT:g} s")
        try:
            ours.recv()  # ("ready", pid)
        except (EOFError, OSError):
            code = self.stop()
            raise WhatIfFailed(f"the what-if helper exited at start-up ({code})") from None
        return ours

    def stop(self) -> int | None:
        """Kill the helper (if any) and return its exit code."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is None:
            return None
        if process.is_alive():
            process.kill()
        process.join(5)
        return process.exitcode


_HELPERS: dict[int, Helper] = {}
_HELPERS_LOCK = threading.Lock()


def helper(memory_bound: int = 0) -> Helper:
    """This process's helper (a forked worker does not inherit its parent's)."""
    with _HELPERS_LOCK:
        found = _HELPERS.get(os.getpid())
        if found is None:
            found = _HELPERS[os.getpid()] = Helper(memory_bound)
        return found


def stop_fresh_process() -> None:
    """Stop this process's what-if helper, if it started one (a worker, before ``os._exit``).

    ``os._exit`` skips every clean-up: the helper would otherwise linger until its parent
    watch notices, and Ctrl-C of ``make run`` would race its own shutdown.
    """
    with _HELPERS_LOCK:
        found = _HELPERS.pop(os.getpid(), None)
    if found is not None:
        found.stop()


def _helper_main(connection: Connection, parent: int, memory_bound: int) -> None:
    """The helper process: answer ``(function, args)`` requests until the pipe closes.

    Ctrl-C reaches the whole process group; the worker stops its helper in order, so the
    helper ignores SIGINT rather than die with a traceback mid-answer.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch_parent() -> None:  # end when the process that started us ends (even killed)
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch_parent, name="relmark-what-if-watch", daemon=True).start()
    if memory_bound > 0:  # no answers to save here: over the bound, just end
        set_address_space_backstop(memory_bound)
        Watchdog(memory_bound, lambda rss: os._exit(MEMORY_EXCEEDED), MEMORY_EXCEEDED).start()
    functions = {"snapshot": classify_snapshot_copy, "copy": classify_copy}
    connection.send(("ready", os.getpid()))
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            os._exit(0)
        try:
            answer: tuple = ("ok", functions[function](*args))
        except Exception as error:
            answer = ("error", _picklable(error))
        connection.send(answer)


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return StoreError(f"{type(error).__name__}: {error}")
    return error


def _in_helper(
    store: Store,
    record: list[ox.Quad],
    iris: list[str],
    ontology_dir: Path | None,
    lang: str,
    timeout: float,
    memory_bound: int,
) -> list[list[dict]]:
    """The record classified in the helper: on a copy of the replica's snapshot, or on a
    scratch copy made here (a local or remote store) and deleted after."""
    payload = ox.serialize(record, format=ox.RdfFormat.N_QUADS)
    runner = helper(memory_bound)
    parent = _scratch_parent(store)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    # made (and deleted) here, not in the helper: a helper killed at its timeout leaves
    # its copy behind, and this block removes it all the same
    with tempfile.TemporaryDirectory(prefix=_scratch_prefix(store), dir=parent) as directory:
        path = Path(directory) / "store"
        if isinstance(store, ReadsSnapshots):
            snapshot = store.current_snapshot()
            args = (str(snapshot), str(path), payload, iris, ontology_dir, lang)
            return runner.call("snapshot", args, timeout)  # type: ignore[return-value]
        scratch_copy(store, path)
        args = (str(path), payload, iris, ontology_dir, lang)
        return runner.call("copy", args, timeout)  # type: ignore[return-value]


def classify_snapshot_copy(
    snapshot: str,
    target: str,
    payload: bytes,
    iris: list[str],
    ontology_dir: Path | None,
    lang: str,
) -> list[list[dict]]:
    """In the helper: copy the snapshot to ``target``, add the record (N-Quads), classify."""
    copy_snapshot(Path(snapshot), Path(target))
    return classify_copy(target, payload, iris, ontology_dir, lang)


def classify_copy(
    path: str, payload: bytes, iris: list[str], ontology_dir: Path | None, lang: str
) -> list[list[dict]]:
    """In the helper: open a scratch copy, add the record (N-Quads), classify."""
    scratch = open_store(Path(path))
    try:
        record = list(ox.parse(payload, format=ox.RdfFormat.N_QUADS))
        return classify_with_record(scratch, record, iris, ontology_dir, lang)
    finally:
        scratch.close()


def _class_set(store: Store, iri: str, lang: str) -> set[str]:
    return {entry["class"] for entry in classify(store, iri, lang)}
