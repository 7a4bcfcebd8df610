"""The app's shared resources and their one accessor each: store, settings, query runner.

Views call ``get_store()``; only ``init_app`` opens the store and only ``close_app``
closes it (flaskr's ``db.py`` pattern), so no view manages a store's lifecycle.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager
from typing import TypeVar

from flask import Flask, current_app

from relmark.reasoning.maintain import ensure_inferences, refresh_inferences
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import ForwardsWrites, HasDeadline, RemoteTimeout, Store
from relmark.web.errors import ApiError

STORE = "relmark.store"
SETTINGS = "relmark.settings"
RUNNER = "relmark.query_runner"
OWNS_STORE = "relmark.owns_store"
SERVING = "relmark.serving_details"

#: At most this many queries evaluate at once per process; more get 503 at once.
QUERY_WORKERS = 8
#: Seconds a refused client is asked to wait before it retries.
RETRY_AFTER_BUSY = 2
#: Niceness of a serving worker's query threads: CPU-bound evaluations yield the cores
#: to the request threads, so /healthz and cheap requests stay fast while slow queries run.
QUERY_NICENESS = 10

T = TypeVar("T")


class QueryTimeout(Exception):
    """A query did not finish within the allowed time."""


def busy_error(slots: int) -> ApiError:
    """503 for a query that found every slot of this process taken."""
    return ApiError(
        503,
        "the server is busy",
        detail=f"all {slots} query slots of this worker are evaluating other queries; "
        f"retry after {RETRY_AFTER_BUSY} s",
        headers={"Retry-After": str(RETRY_AFTER_BUSY)},
    )


def retiring_error() -> ApiError:
    """503 for a query held by a worker on its way out (a new connection reaches another)."""
    return ApiError(
        503,
        "the worker is restarting",
        detail="this worker process is being replaced (after a query overran its timeout, "
        "or on shutdown); the query was not answered here; retry at once",
        headers={"Retry-After": "1"},
    )


class QueryRunner:
    """Runs query work within a timeout, at most ``workers`` at once: on long-lived daemon
    threads (the embedded store), or on the request's own thread (a remote store).

    pyoxigraph releases the GIL while it evaluates, so a slow query runs beside the request
    threads; the waiting request returns at its deadline and frees its waitress thread.
    pyoxigraph cannot interrupt an evaluation, so timed-out work keeps its slot until it
    ends; ``cancelled`` lets work stop at the next row it pulls. The threads are daemons
    (unlike ``ThreadPoolExecutor``'s, which the interpreter joins at exit), so a query
    still running in the background never holds up the server's shutdown. The threads live
    as long as the runner: starting a thread per query cost ~0.9 ms, more than a point
    lookup itself (measured with cProfile on the 100k benchmark data).

    ``on_timeout`` is called when a query overran (not when it only waited for a slot): a
    serving worker process retires then, which is the one way to stop the evaluation.

    A store that can end its own reads at a deadline (the remote store's ``deadline``: an
    HTTP timeout) needs no other thread: its work runs on the request's thread, inside
    ``deadline(timeout)``. The two hand-offs between threads cost ~0.3 ms per question in
    front of an Oxigraph server (1M triples), where every millisecond counts against the
    engine's own. A read cut off by the deadline is a ``QueryTimeout`` as on the threads.
    """

    def __init__(
        self,
        workers: int,
        on_timeout: Callable[[], None] | None = None,
        deadline: Callable[[float], AbstractContextManager[None]] | None = None,
    ) -> None:
        self._workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._running = 0
        self._count_lock = threading.Lock()
        self.on_timeout = on_timeout
        self._deadline = deadline
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        #: what request threads wait on, with the flag that stops each evaluation
        self._waiting: dict[Future, threading.Event] = {}
        self._refusal: ApiError | None = None
        #: the query threads' niceness: raised only where an overrunning query ends with
        #: its process (a serving worker); in a single process a low-priority runaway
        #: would only hold its read lock, and so the writes behind it, for longer
        self.niceness = 0
        for n in range(0 if deadline else workers):
            threading.Thread(target=self._serve, name=f"relmark-query-{n}", daemon=True).start()

    def _serve(self) -> None:
        applied = 0
        while True:
            task = self._tasks.get()
            if self.niceness != applied:  # (set once, by a serving worker)
                applied = self.niceness
                with contextlib.suppress(AttributeError, OSError):  # (per thread: Linux)
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), applied)
            task()

    @property
    def running(self) -> int:
        """How many queries are evaluating now, including timed-out ones still finishing."""
        return self._running

    def refuse(self, error: ApiError, *, waiting: bool = True) -> None:
        """Answer every later query with ``error``, and (``waiting``) every query waiting
        for its result too.

        For a worker on its way out (retiring after a timeout, over its memory bound, or
        stopping): the requests it holds get their 503 instead of a reset connection when
        it exits. The evaluations themselves go on until the process ends.
        """
        with self._count_lock:
            if self._refusal is None:
                self._refusal = error
            held = list(self._waiting.items()) if waiting else []
        for future, cancelled in held:
            cancelled.set()
            with contextlib.suppress(InvalidStateError):
                future.set_exception(_fresh(error))

    def run(self, work: Callable[[threading.Event], T], timeout: float) -> T:
        """``work(cancelled)``'s result, or ``QueryTimeout`` once ``timeout`` seconds pass.

        503 (``ApiError``) at once when every slot is taken or the process is retiring.
        """
        if self._refusal is not None:
            raise _fresh(self._refusal)
        cancelled = threading.Event()
        deadline = time.monotonic() + timeout
        # a free slot at once, or 503: a waiting request would hold its waitress thread,
        # and under a flood the few threads beside the running queries' would all be
        # waiting, /healthz queued behind them (measured: 50 ms waits put /healthz's p95
        # at 300-500 ms under 20 slow clients; no wait: 50-130 ms on a loaded machine)
        if not self._slots.acquire(blocking=False):
            raise busy_error(self._workers)
        if self._deadline is not None:
            return self._run_here(work, cancelled, max(0.0, deadline - time.monotonic()))
        future: Future[T] = Future()

        def target() -> None:
            try:
                if future.done():  # refused before it started: evaluate nothing
                    return
                result = work(cancelled)
            except BaseException as error:  # handed to the waiting request, not swallowed
                _drop_locals(error)
                with contextlib.suppress(InvalidStateError):  # (refused meanwhile)
                    future.set_exception(error)
            else:
                with contextlib.suppress(InvalidStateError):
                    future.set_result(result)
            finally:
                with self._count_lock:
                    self._running -= 1
                self._slots.release()

        with self._count_lock:
            self._running += 1
            self._waiting[future] = cancelled
            refusal = self._refusal
        if refusal is not None:  # refused between the check above and now
            with contextlib.suppress(InvalidStateError):
                future.set_exception(_fresh(refusal))
        self._tasks.put(target)  # a slot is held, so a thread is free to take it at once
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            cancelled.set()
            if self.on_timeout is not None:
                self.on_timeout()
            raise QueryTimeout("the query is still running") from None
        finally:
            with self._count_lock:
                self._waiting.pop(future, None)

    def _run_here(
        self, work: Callable[[threading.Event], T], cancelled: threading.Event, timeout: float
    ) -> T:
        """``work`` on this thread, its store's reads ending at the deadline (slot held)."""
        with self._count_lock:
            self._running += 1
        try:
            with self._deadline(timeout):
                return work(cancelled)
        except RemoteTimeout:
            raise QueryTimeout("the query is still running") from None
        finally:
            with self._count_lock:
                self._running -= 1
            self._slots.release()


def _fresh(error: ApiError) -> ApiError:
    """A new instance of ``error``: one instance raised on many threads would collect
    every raise's frames in its traceback."""
    return ApiError(
        error.status, error.error, error.detail, error.where, error.headers, error.extra
    )


def _drop_locals(error: BaseException | None) -> None:
    """Free the locals of an error's finished frames here, on the worker thread.

    pyoxigraph's query results are thread-bound ("unsendable"): if the traceback carried one
    to the request thread, it would be dropped there and pyoxigraph would complain.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__


def init_app(app: Flask, settings: Settings, store: Store | None) -> None:
    """Attach settings, store and query runner; bring system graphs and inferences up to date."""
    app.extensions[SETTINGS] = settings
    app.extensions[OWNS_STORE] = store is None
    if store is None:
        store = open_store(settings.store)
    app.extensions[STORE] = store
    deadline = store.deadline if isinstance(store, HasDeadline) else None
    app.extensions[RUNNER] = QueryRunner(QUERY_WORKERS, deadline=deadline)
    if not isinstance(store, ForwardsWrites):  # a worker's: its writer did it
        ensure_inferences(store, settings.ontology_dir)


def after_write() -> None:
    """Bring the inferences up to date after a view wrote the store (DESIGN §5).

    Only where this process applies its writes: a serving worker's (``ForwardedWrites``)
    were applied by the supervisor's ``StoreWriter``, which refreshed them before
    answering.
    """
    store = get_store()
    if not isinstance(store, ForwardsWrites):
        refresh_inferences(store, get_settings().ontology_dir)


def close_app(app: Flask) -> None:
    """Close the store if the app opened it (a store passed in belongs to the caller).

    Closing waits for running reads, and a timed-out query cannot be interrupted, so while
    one is still evaluating the store is left to RocksDB's crash-safe shutdown instead
    (every committed write is already in its write-ahead log).
    """
    store = app.extensions.pop(STORE, None)
    if store is None or not app.extensions.get(OWNS_STORE):
        return
    if app.extensions[RUNNER].running:
        print("relmark: a query is still running; not waiting for it", file=sys.stderr)
        return
    store.close()


def get_store() -> Store:
    """The store of the current app: the one accessor views use."""
    return current_app.extensions[STORE]


def get_settings() -> Settings:
    return current_app.extensions[SETTINGS]


def get_query_runner() -> QueryRunner:
    return current_app.extensions[RUNNER]


def set_query_timeout_hook(app: Flask, hook: Callable[[], None]) -> None:
    """Call ``hook`` (on the request's thread) whenever a query of ``app`` overruns."""
    app.extensions[RUNNER].on_timeout = hook


def lower_query_priority(app: Flask) -> None:
    """Run ``app``'s query threads at ``QUERY_NICENESS`` (a serving worker's)."""
    app.extensions[RUNNER].niceness = QUERY_NICENESS


def query_refusal(app: Flask) -> Callable[..., None]:
    """What refuses ``app``'s waiting and later queries with an error (a retiring worker)."""
    return app.extensions[RUNNER].refuse


def set_serving_details(app: Flask, details: Callable[[], dict[str, object]]) -> None:
    """Extra ``/healthz`` fields from the process model (workers, snapshot generation)."""
    app.extensions[SERVING] = details


def serving_details() -> dict[str, object]:
    details = current_app.extensions.get(SERVING)
    return {} if details is None else details()
