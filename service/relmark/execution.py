"""Running queries within a timeout and a bound on how many run at once (``QueryRunner``).

A concurrency tool with no HTTP in it: the web maps its errors (``Busy``, ``QueryTimeout``,
a refusal) to statuses, and a serving worker's supervisor decides what a timeout costs.
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager
from typing import TypeVar

from relmark.errors import Busy, QueryTimeout

#: At most this many queries evaluate at once per process; more are refused at once.
QUERY_WORKERS = 8
#: Seconds a refused client is asked to wait before it retries.
RETRY_AFTER_BUSY = 2
#: Niceness of a serving worker's query threads: CPU-bound evaluations yield the cores
#: to the request threads, so /healthz and cheap requests stay fast while slow queries run.
QUERY_NICENESS = 10

T = TypeVar("T")


def busy(slots: int) -> Busy:
    """The refusal of a query that found every slot of this process taken."""
    return Busy(
        f"all {slots} query slots of this worker are evaluating other queries; "
        f"retry after {RETRY_AFTER_BUSY} s",
        RETRY_AFTER_BUSY,
    )


class QueryRunner:
    """Runs query work within a timeout, at most ``workers`` at once: on long-lived daemon
    threads (the embedded store), or on the request's own thread (a remote store).

    pyoxigraph releases the GIL while it evaluates, so a slow query runs beside the request
    threads; the waiting request returns at its deadline and frees its server thread.
    pyoxigraph cannot interrupt an evaluation, so timed-out work keeps its slot until it
    ends; ``cancelled`` lets work stop at the next row it pulls. The threads are daemons
    (unlike ``ThreadPoolExecutor``'s, which the interpreter joins at exit), so a query
    still running in the background never holds up the server's shutdown. The threads live
    as long as the runner because starting one per query costs more than a point lookup
    (benchmarks/README.md).

    ``on_timeout`` is called when a query overran (not when it only waited for a slot): a
    serving worker process retires then, which is the one way to stop the evaluation.

    A store that can end its own reads at a deadline (the remote store's ``deadline``: an
    HTTP timeout) needs no other thread: its work runs on the request's thread, inside
    ``deadline(timeout)``, which saves two hand-offs between threads per question in front
    of a SPARQL server. A read cut off by the deadline is a ``QueryTimeout`` as on the
    threads.
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
        self._refusal: BaseException | None = None
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

    def refuse(self, error: BaseException, *, waiting: bool = True) -> None:
        """Answer every later query with ``error``, and (``waiting``) every query waiting
        for its result too.

        For a worker on its way out (retiring after a timeout, over its memory bound, or
        stopping): the requests it holds get an answer instead of a reset connection when
        it exits. The evaluations themselves go on until the process ends. ``error`` is
        copied for each raise, so its type must copy (``__reduce__``) to an equal error.
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

        ``Busy`` at once when every slot is taken; the ``refuse`` error once the process
        is retiring.
        """
        if self._refusal is not None:
            raise _fresh(self._refusal)
        cancelled = threading.Event()
        deadline = time.monotonic() + timeout
        # a free slot at once, or Busy: a waiting request would hold its server thread,
        # and under a flood the few threads beside the running queries' would all be
        # waiting, with /healthz queued behind them (benchmarks/README.md)
        if not self._slots.acquire(blocking=False):
            raise busy(self._workers)
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
        deadline = self._deadline
        assert deadline is not None, "run() sends work here only with a deadline"
        with self._count_lock:
            self._running += 1
        try:
            with deadline(timeout):
                return work(cancelled)
        except QueryTimeout:
            raise QueryTimeout("the query is still running") from None
        finally:
            with self._count_lock:
                self._running -= 1
            self._slots.release()


def _fresh(error: BaseException) -> BaseException:
    """A new instance of ``error``: one instance raised on many threads would collect
    every raise's frames in its traceback."""
    return copy.copy(error)


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
