"""``relmark serve --workers N``: one writer process, N HTTP worker processes (pre-fork).

Why: one Python process serving HTTP is bound by the GIL, and pyoxigraph cannot cancel a
query, so the only way to stop a runaway one is to end the process evaluating it.

How (gunicorn's pre-fork model, with a single writer):

- The **supervisor** opens the embedded store read-write (the only process that ever
  writes it), syncs the system graphs, publishes snapshot generation 1, binds the
  listening socket and forks the workers. It answers writes over a Unix socket
  (``multiprocessing.connection``, random authkey, one thread per worker connection),
  applies them one at a time, and after each publishes a new **snapshot**: a backup of the
  store (hard links, milliseconds) in ``<store>.snapshots/<generation>``, then the new
  generation number in shared memory. It keeps the last few snapshots, and replaces any
  worker that exits: at once for one that had become ready (retired, crashed, killed),
  with a back-off only for one that died before it ever served.
- Each **worker** runs waitress on the inherited socket around ``create_app`` with a
  ``SnapshotReplica``: reads go to a read-only store opened on the newest snapshot (safe:
  a backup is never written), writes go to the supervisor and return once the worker has
  opened the snapshot holding them (read-your-writes).
- A query that **times out** makes its worker retire: the supervisor starts its
  replacement, the queries the worker holds are answered 503 with ``Retry-After``, it
  stops accepting connections once another worker serves, lets its other requests finish
  (a few seconds at most) and exits with ``os._exit``, which also ends the evaluation.
- Each worker runs under a **memory bound** (``RELMARK_WORKER_MEMORY``,
  ``relmark.memory_bound``): past it, the worker retires the same way, its queries
  answered 503 naming the bound.

SIGTERM or SIGINT to the supervisor stops the workers, closes the store and removes the
snapshots; stale snapshots left by a crash are removed at start-up.

On a remote store (``sparql+http://…``) the engine holds the data, so there are no
snapshots: the supervisor still applies every write (and refreshes the inferences after
it, which two processes doing at once would race), then moves the shared generation
number (``WriteCounter``); each worker reads the engine directly through a
``RemoteReplica``, which drops what it keeps from the engine when that number moves. A
timed-out query does not retire its worker there: the request to the engine has the same
timeout, so nothing is left evaluating in the worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import pickle
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pyoxigraph as ox
from waitress.server import create_server

from relmark import loading
from relmark.execution import QUERY_WORKERS
from relmark.history.record import Cause, ensure_and_record, refresh_and_record
from relmark.memory_bound import (
    MEMORY_EXCEEDED,
    Watchdog,
    default_bound,
    describe,
    set_address_space_backstop,
)
from relmark.reasoning.whatif import stop_fresh_process
from relmark.settings import Settings
from relmark.sparql import guard as sparql_guard
from relmark.stores import SnapshotPublisher, open_replica, open_store
from relmark.stores.base import Checkpoints, HasDeadline, Optimizable, Store, StoreError
from relmark.vocab import SHAPES_FILE
from relmark.web import create_app
from relmark.web.errors import ApiError, retiring_error
from relmark.web.extensions import (
    lower_query_priority,
    query_refusal,
    set_query_timeout_hook,
    set_serving_details,
)

#: Exit code of a worker that retired after a query timeout.
RETIRED = 3
#: Seconds a retiring worker gives the requests it is still answering.
RETIRE_GRACE = 5.0
#: Queries a retiring worker is evaluating may finish for this long; then they get 503
#: (new ones get it at once): enough for ordinary queries, short for a runaway's
#: neighbours, which would only wait for the grace to end.
ANSWER_WITHIN = 1.0
#: The grace of a worker over its memory bound (its runaway query keeps allocating;
#: its queries get 503 at once).
MEMORY_GRACE = 1.0
#: How long a retiring worker waits for the request of a connection it just accepted.
NEW_CONNECTION_WAIT = 1.0
#: What an in-memory copy may cost per quad (relmark.memory_copy: 400-600 bytes).
COPY_BYTES_PER_QUAD = 600
#: Waitress threads beyond the query slots, for /healthz and quick refusals under load.
RESERVED_THREADS = 4
#: A worker that dies before it ever served is restarted after a back-off up to this long.
MAX_BACKOFF = 30.0
LISTEN_BACKLOG = 1024

#: The store methods a worker may ask the supervisor to run, each as the writer calls it.
WRITES: dict[str, Callable[..., object]] = {
    "update": lambda store, sparql: store.update(sparql),
    "update_validated": lambda store, *args: store.update_validated(*args),
    "add_quads": lambda store, quads: store.add_quads(quads),
    "replace_graph": lambda store, graph, triples: store.replace_graph(graph, triples),
    "bulk_replace_graphs": lambda store, writes: store.bulk_replace_graphs(writes),
    "drop_graph": lambda store, graph: store.drop_graph(graph),
    "restore": lambda store, source, fmt: store.restore(source, fmt),
}
#: Writes that return False when they changed nothing (no new snapshot then).
MAYBE_UNCHANGED = frozenset({"drop_graph"})


def log(message: str) -> None:
    print(f"relmark[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


# --- the wire: writes and errors as picklable values ----------------------------------------
def _nquads(quads: Iterable[ox.Quad]) -> bytes:
    data = ox.serialize(quads, format=ox.RdfFormat.N_QUADS)
    assert data is not None, "serialize returns the bytes when given no output"
    return data


def _quads(data: bytes) -> list[ox.Quad]:
    return list(ox.parse(data, format=ox.RdfFormat.N_QUADS))


def _bytes_of(source: bytes | Any) -> bytes:
    return source if isinstance(source, bytes) else source.read()


def encode_write(method: str, args: tuple) -> tuple:
    """A store call's arguments as plain values (terms as N-Quads, formats as media types)."""
    if method == "update_validated":
        sparql, check, graphs = args
        if not isinstance(check, loading.ShapesCheck):
            raise StoreError("only loading.ShapesCheck can check an update in the writer process")
        ontology_dir = None if check.ontology_dir is None else str(check.ontology_dir)
        return sparql, ontology_dir, graphs
    if method == "add_quads":
        return (_nquads(args[0]),)
    if method == "replace_graph":
        graph, triples = args
        return graph, _nquads(ox.Quad(t.subject, t.predicate, t.object) for t in triples)
    if method == "bulk_replace_graphs":
        return (
            {
                graph: [
                    ("quads", _nquads(source), label)
                    if fmt == "quads"
                    else (fmt.media_type, _bytes_of(source), label)
                    for fmt, source, label in parts
                ]
                for graph, parts in args[0].items()
            },
        )
    if method == "restore":
        source, fmt = args
        return _bytes_of(source), fmt.media_type
    return args


def decode_write(store: Store, method: str, args: tuple) -> tuple:
    """``encode_write``'s inverse, in the writer process (the check rebuilt on its store)."""
    if method == "update_validated":
        sparql, ontology_dir, graphs = args
        check = loading.ShapesCheck(store, None if ontology_dir is None else Path(ontology_dir))
        return sparql, check, graphs
    if method == "add_quads":
        return (_quads(args[0]),)
    if method == "replace_graph":
        return args[0], _quads(args[1])
    if method == "bulk_replace_graphs":
        return (
            {
                graph: [
                    ("quads", _quads(data), label)
                    if kind == "quads"
                    else (ox.RdfFormat.from_media_type(kind), data, label)
                    for kind, data, label in parts
                ]
                for graph, parts in args[0].items()
            },
        )
    if method == "restore":
        return args[0], ox.RdfFormat.from_media_type(args[1])
    return args


def encode_error(error: Exception) -> tuple:
    """An error as a value the worker turns back into the same exception (same HTTP status)."""
    if isinstance(error, loading.ValidationFailed):
        return ("validation", error.report)
    if isinstance(error, loading.LoadError):
        return ("load", error.message, error.where)
    if isinstance(error, SyntaxError):
        where = (error.filename, error.lineno, error.offset, error.end_lineno, error.end_offset)
        return ("syntax", error.msg, where)
    try:
        data = pickle.dumps(error)
        pickle.loads(data)
    except Exception:  # an exception that does not survive pickling: keep its text
        return ("store", f"{type(error).__name__}: {error}")
    return ("pickled", data)


def decode_error(encoded: tuple) -> Exception:
    kind = encoded[0]
    if kind == "validation":
        return loading.ValidationFailed(encoded[1])
    if kind == "load":
        return loading.LoadError(encoded[1], encoded[2])
    if kind == "syntax":
        error = SyntaxError(encoded[1])
        (error.filename, error.lineno, error.offset, error.end_lineno, error.end_offset) = encoded[
            2
        ]
        return error
    if kind == "pickled":
        return pickle.loads(encoded[1])
    return StoreError(encoded[1])


#: Errors a write may raise for a reason the client caused; others are logged as well.
EXPECTED_ERRORS = (
    StoreError,
    SyntaxError,
    OSError,
    loading.ValidationFailed,
    loading.LoadError,
)


def reply_value(reply: tuple) -> tuple[object, int]:
    """``(result, generation)`` from the writer's reply, or its error raised here."""
    if reply[0] == "error":
        raise decode_error(reply[1])
    return reply[1], reply[2]


# --- the worker's side of the write channel -------------------------------------------------
class WriteClient:
    """A worker's connection to the supervisor: the ``WriteForwarder`` of its replica."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self._address = address
        self._authkey = authkey
        self._connection = multiprocessing.connection.Client(
            address, family="AF_UNIX", authkey=authkey
        )
        self._lock = threading.Lock()  # one call at a time on the connection

    def __call__(self, method: str, *args: object) -> tuple[object, int]:
        request = ("write", method, encode_write(method, args))
        with self._lock:
            try:
                self._connection.send(request)
                reply = self._connection.recv()
            except (EOFError, OSError) as error:
                raise StoreError(
                    f"the writer process is unreachable ({error!r}); the write may be lost"
                ) from error
        return reply_value(reply)

    def announce_retiring(self) -> None:
        """Tell the supervisor to start a replacement now (own connection: never queued)."""
        with multiprocessing.connection.Client(
            self._address, family="AF_UNIX", authkey=self._authkey
        ) as connection:
            connection.send(("retiring", os.getpid()))
            connection.recv()


# --- the supervisor --------------------------------------------------------------------------
class WriteCounter:
    """``SnapshotPublisher`` for a remote store: the engine holds the data, so publishing
    a write is moving the shared generation number."""

    def __init__(self, generation: Any) -> None:
        self.generation = generation  # a shared multiprocessing RawValue("q")

    def start(self) -> None:
        self.generation.value = 1

    def publish(self) -> int:
        self.generation.value += 1  # (only the writer's lock holder moves it)
        return self.generation.value

    def after_failure(self) -> None:
        """A failed write may have changed the engine in part (Virtuoso commits each
        operation of an update on its own): workers drop what they kept."""
        self.publish()

    def remove(self) -> None:
        """Nothing to remove: there are no snapshots."""


class StoreWriter:
    """The one writer: applies forwarded writes in turn, each followed by its snapshot."""

    def __init__(
        self,
        store: Store,
        publisher: SnapshotPublisher | WriteCounter,
        ontology_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.ontology_dir = ontology_dir
        self._lock = threading.Lock()  # one write (and its snapshot) at a time
        self._closed = False

    def apply(self, method: str, args: tuple) -> tuple:
        """Run one encoded write; the reply is ``("ok", result, generation)`` or an error."""
        try:
            if method not in WRITES:
                raise StoreError(f"{method!r} is not a store write")
            if method in ("update", "update_validated"):  # no input may crash this process
                sparql_guard.check_parse_safety(args[0])
            with self._lock:
                if self._closed:
                    raise StoreError("the server is shutting down; nothing was written")
                try:
                    result = WRITES[method](self.store, *decode_write(self.store, method, args))
                    if method in MAYBE_UNCHANGED and not result:
                        return ("ok", result, self.publisher.generation.value)
                    # inferences before the snapshot: readers never see data without them
                    refresh_and_record(self.store, self.ontology_dir, cause=Cause(method))
                except Exception:
                    self.publisher.after_failure()
                    raise
                return ("ok", result, self.publisher.publish())
        except EXPECTED_ERRORS as error:
            return ("error", encode_error(error))
        except Exception as error:  # a bug: log it here, and still answer the worker
            traceback.print_exc()
            return ("error", encode_error(error))

    def close(self) -> None:
        """Wait for the write in progress, refuse later ones, close the store."""
        with self._lock:
            self._closed = True
            self.store.close()


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    started: float
    ready: Any  # a shared RawValue("b"): 1 once the worker serves (set by the worker)
    retiring: bool = False


@dataclass(frozen=True)
class WorkerPlan:
    """What a forked worker needs (inherited, never pickled)."""

    settings: Settings
    listener: socket.socket
    threads: int
    workers: int
    store_path: Path | None  # None: a remote store (settings.store)
    snapshots: Path | None
    generation: Any
    writer_address: str
    authkey: bytes
    supervisor_pid: int
    serving: Any  # a shared RawValue("i"): ready workers not retiring (set by the supervisor)


class Supervisor:
    """Owns the store, the listening socket, the write channel and the worker processes."""

    def __init__(
        self, settings: Settings, host: str, port: int, threads: int, workers: int
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.threads = threads
        self.workers = workers
        self._context = multiprocessing.get_context("fork")
        self._children: list[Worker] = []
        self._children_lock = threading.Lock()
        self._stopping = threading.Event()
        self._failures = 0  # start-up deaths in a row
        self._next_spawn = 0.0
        self._serving = self._context.RawValue("i", 0)
        # written to when a worker announces it retires: the loop starts its replacement
        # at once instead of at its next 0.1 s tick
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT; raises ``StoreError`` if the store cannot be opened."""
        store: Store = open_store(self.settings.store, self.settings)
        generation = self._context.RawValue("q", 0)
        # snapshots to publish: not on a remote store, where the engine holds the data
        local = store if isinstance(store, Checkpoints) else None
        if local is not None:  # (the open removed them: RocksDB's lock says none is in use)
            for stale in local.removed_scratch:
                log(f"removed {stale}, left by a crash")
        publisher: SnapshotPublisher | WriteCounter = (
            SnapshotPublisher(local, generation) if local is not None else WriteCounter(generation)
        )
        self._writer = StoreWriter(store, publisher, self.settings.ontology_dir)
        address, private = _writer_address()
        self._listener: multiprocessing.connection.Listener | None = None
        http: socket.socket | None = None
        try:
            ensure_and_record(store, self.settings.ontology_dir)
            if isinstance(store, Optimizable):
                store.optimize()
            # compiled once here, inherited by every forked worker
            loading.compiled_shapes(self.settings.ontology_dir / SHAPES_FILE)
            publisher.start()
            authkey = os.urandom(32)
            self._listener = multiprocessing.connection.Listener(
                address, family="AF_UNIX", authkey=authkey
            )
            threading.Thread(target=self._accept_writers, name="relmark-rpc", daemon=True).start()
            http = _listening_socket(self.host, self.port)
            self._plan = WorkerPlan(
                settings=self.settings,
                listener=http,
                threads=self.threads,
                workers=self.workers,
                store_path=local.path if local is not None else None,
                snapshots=publisher.directory if isinstance(publisher, SnapshotPublisher) else None,
                generation=generation,
                writer_address=address,
                authkey=authkey,
                supervisor_pid=os.getpid(),
                serving=self._serving,
            )
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._stop)
            log(
                f"serving {self.settings.store} on http://{self.host}:{self.port}/sparql "
                f"with {self.workers} worker processes"
            )
            self._supervise()
        finally:
            self._stop_workers()
            self._writer.close()
            publisher.remove()
            if self._listener is not None:
                self._listener.close()
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)
            if http is not None:
                http.close()
            log("stopped")

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping.set()

    # --- workers ----------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._reap()
            self._replenish()
            self._count_serving()
            with self._children_lock:
                sentinels = [w.process.sentinel for w in self._children]
            ready = multiprocessing.connection.wait([*sentinels, self._wake_read], timeout=0.1)
            if self._wake_read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 512)

    def _count_serving(self) -> None:
        """Publish how many workers serve (ready, not retiring): a retiring worker keeps
        accepting connections until another one does, so the socket is never unattended."""
        with self._children_lock:
            self._serving.value = sum(1 for w in self._children if w.ready.value and not w.retiring)

    def _reap(self) -> None:
        """Forget exited workers; only a death before serving postpones the next spawn.

        Whether a worker had become ready, not how long ago it started, tells the two
        deaths apart: a worker that served and then crashed (a request that made it
        segfault, the kernel's OOM killer, a ``kill -9``) is replaced at once, however young
        it was, so requests that crash workers one a second cannot starve the service of
        them; only a worker that cannot even start (a broken store, a bad setting) backs
        off, so a permanent failure does not fork in a tight loop.
        """
        now = time.monotonic()
        with self._children_lock:
            alive = {id(w): w.process.is_alive() for w in self._children}
            exited = [w for w in self._children if not alive[id(w)]]
            self._children = [w for w in self._children if alive[id(w)]]
            if any(w.ready.value for w in self._children):
                self._failures = 0  # workers start fine again
        for worker in exited:
            worker.process.join()
            code = worker.process.exitcode
            if worker.retiring or code == RETIRED:
                log(f"worker {worker.process.pid} retired")
            elif code == MEMORY_EXCEEDED:
                self._next_spawn = 0.0
                log(f"worker {worker.process.pid} passed its memory bound; replacing it")
            elif worker.ready.value:
                self._next_spawn = 0.0
                log(f"worker {worker.process.pid} exited ({code}); replacing it at once")
            else:
                self._failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** (self._failures - 1))
                self._next_spawn = now + delay
                log(f"worker {worker.process.pid} died at start-up ({code}); retry in {delay:g} s")

    def _replenish(self) -> None:
        """Start workers until ``workers`` of them are serving (retiring ones do not count)."""
        with self._children_lock:
            missing = self.workers - sum(not w.retiring for w in self._children)
        if missing <= 0 or time.monotonic() < self._next_spawn:
            return
        for _ in range(missing):
            ready = self._context.RawValue("b", 0)
            process = self._context.Process(
                target=_run_worker, args=(self._plan, ready), name="relmark-worker"
            )
            process.start()
            with self._children_lock:
                self._children.append(Worker(process, time.monotonic(), ready))

    def _retiring(self, pid: int) -> None:
        with self._children_lock:
            for worker in self._children:
                if worker.process.pid == pid:
                    worker.retiring = True
        self._count_serving()  # before the answer: the worker reads it next
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"w")

    def _stop_workers(self) -> None:
        with self._children_lock:
            children = list(self._children)
        for worker in children:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: the worker finishes its requests
        deadline = time.monotonic() + RETIRE_GRACE + 2
        for worker in children:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)

    # --- the write channel ------------------------------------------------------------
    def _accept_writers(self) -> None:
        listener = self._listener
        assert listener is not None, "run() opens the listener before this thread starts"
        while True:
            try:
                connection = listener.accept()
            except multiprocessing.AuthenticationError:
                continue
            except OSError:  # the listener was closed
                return
            threading.Thread(
                target=self._serve_writer, args=(connection,), name="relmark-rpc", daemon=True
            ).start()

    def _serve_writer(self, connection: multiprocessing.connection.Connection) -> None:
        with connection:
            while True:
                try:
                    request = connection.recv()
                except (EOFError, OSError):  # the worker exited
                    return
                answer = self._answer(request)
                try:
                    connection.send(answer)
                except OSError:  # the worker died while its write was applied
                    return

    def _answer(self, request: tuple) -> tuple:
        if request[0] == "retiring":
            self._retiring(request[1])
            return ("ok", None, self._writer.publisher.generation.value)
        _, method, args = request
        return self._writer.apply(method, args)


def _writer_address() -> tuple[str, Path | None]:
    """The write channel's Unix socket, and the directory to remove afterwards.

    On Linux the socket is abstract (no file), so even a killed supervisor leaves nothing
    behind; the random name and the authkey keep other processes out.
    """
    if sys.platform == "linux":
        return f"\0relmark-writer-{secrets.token_hex(8)}", None
    private = Path(tempfile.mkdtemp(prefix="relmark-writer-"))
    return str(private / "writer.sock"), private


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)


# --- the worker -------------------------------------------------------------------------------
class Retirement:
    """A worker's way out: stop accepting, answer what it holds, then ``os._exit``.

    The requests a retiring worker holds are answered, never dropped: the query runner
    refuses every query waiting for its result and every later one with a 503 and
    ``Retry-After`` (``QueryRunner.refuse``), other requests finish as usual, and the
    process exits once its connections are closed (or after ``RETIRE_GRACE``).
    """

    def __init__(
        self,
        server: Any,
        writer: WriteClient,
        supervisor_pid: int,
        refuse: Callable[..., None] | None = None,
        serving: Any = None,
    ) -> None:
        self._server = server  # waitress's TcpWSGIServer
        self._writer = writer
        self._supervisor_pid = supervisor_pid
        self._refuse = refuse
        self._serving = serving  # the supervisor's count of serving workers (or None)
        self._lock = threading.Lock()
        self._started = False

    def after_timeout(self) -> None:
        """The QueryRunner hook: a query overran, so end this process (and the query).

        Runs on the request's thread before its 503 is sent. If another worker serves,
        it returns once this one has stopped accepting, so a client that reconnects after
        the 503 reaches that one, never this one on its way out.
        """
        self._begin("a query timed out; retiring", RETIRED, error=retiring_error())

    def after_memory(self, bound: int, resident: int) -> None:
        """The memory watchdog's hook: answer what we hold with 503 naming the bound, exit.

        Which query grew the process cannot be told, so every query in flight is refused;
        the grace is short (``MEMORY_GRACE``) as the evaluation keeps allocating.
        """
        self._begin(
            f"resident memory {describe(resident)} passed the bound of {describe(bound)} "
            "(RELMARK_WORKER_MEMORY); retiring",
            MEMORY_EXCEEDED,
            error=memory_error(bound, resident),
            grace=MEMORY_GRACE,
            answer_within=0,
        )

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._begin(
            "stopping",
            0,
            error=retiring_error(),
            announce=False,
            answer_within=RETIRE_GRACE - 1.0,
        )

    def watch_supervisor(self) -> None:
        """Exit when the supervisor is gone (no writes possible, nobody to stop us)."""
        while os.getppid() == self._supervisor_pid:
            time.sleep(1.0)
        os._exit(1)

    def _others_serve(self) -> bool:
        return self._serving is None or self._serving.value > 0

    def _stop_accepting_now(self) -> None:
        stopped = threading.Event()

        def stop_accepting() -> None:
            self._stop_accepting()
            stopped.set()

        self._server.trigger.pull_trigger(stop_accepting)
        stopped.wait(timeout=1.0)

    def _begin(
        self,
        reason: str,
        code: int,
        *,
        error: ApiError,
        grace: float = RETIRE_GRACE,
        announce: bool = True,
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        """Retire: the supervisor starts a replacement, new queries get ``error`` (503) at
        once and the ones in flight after ``answer_within`` seconds if they have not
        finished, the socket is left to the other workers once one of them serves, exit."""
        with self._lock:
            if self._started:
                return
            self._started = True
        log(reason)
        if announce:  # (on failure the supervisor still replaces us once we exit)
            with contextlib.suppress(OSError, EOFError):
                self._writer.announce_retiring()
        if self._refuse is not None:
            self._refuse(error, waiting=answer_within <= 0)
        if self._others_serve():
            self._stop_accepting_now()
        threading.Thread(
            target=self._retire,
            args=(code, grace, error, answer_within),
            name="relmark-retire",
            daemon=True,
        ).start()

    def _retire(self, code: int, grace: float, error: ApiError, answer_within: float) -> None:
        started = time.monotonic()
        deadline = started + grace
        refused = answer_within <= 0
        # while no other worker serves (its replacement is starting), keep accepting:
        # what arrives is answered (queries with 503), not left in the listen queue
        while not self._others_serve() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._server.trigger.pull_trigger(self._stop_accepting)
        while self._server.active_channels and time.monotonic() < deadline:
            if not refused and time.monotonic() > started + answer_within:
                refused = True  # queries still evaluating will not finish here: 503 now
                if self._refuse is not None:
                    self._refuse(error, waiting=True)
            self._server.trigger.pull_trigger(self._close_idle_connections)
            time.sleep(0.02)
        stop_fresh_process()  # os._exit skips every clean-up, the what-if helper's too
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _stop_accepting(self) -> None:
        """(waitress's loop thread) Stop polling the shared socket: the others accept."""
        self._server.accepting = False

    def _close_idle_connections(self) -> None:
        """(waitress's loop thread) Close keep-alive connections between requests.

        A connection accepted a moment ago whose request has not arrived yet is not idle:
        closing it would drop that request (the client sees a reset). It is closed only
        once it answered something, or stayed silent for ``NEW_CONNECTION_WAIT``.
        """
        now = time.time()
        for channel in list(self._server.active_channels.values()):
            if channel.requests or channel.request is not None or channel.total_outbufs_len:
                continue
            answered = channel.last_activity > channel.creation_time
            if answered or now - channel.creation_time > NEW_CONNECTION_WAIT:
                channel.will_close = True


def memory_error(bound: int, resident: int) -> ApiError:
    """503 for the queries of a worker that passed ``RELMARK_WORKER_MEMORY``."""
    return ApiError(
        503,
        "memory limit exceeded",
        detail=f"the worker answering this query grew to {describe(resident)}, over its "
        f"memory bound of {describe(bound)} (RELMARK_WORKER_MEMORY); the query was stopped "
        "and the worker is being replaced. Narrow the query (fewer rows to sort or group) "
        "or add a LIMIT to a query without ORDER BY",
        headers={"Retry-After": "1"},
    )


def worker_memory_bound(settings: Settings, workers: int) -> int:
    """Bytes each worker (and what-if helper) may hold: the setting, else the default."""
    if settings.worker_memory is not None:
        return settings.worker_memory
    return default_bound(workers)


def copy_budget(settings: Settings, workers: int) -> int:
    """The in-memory copy's budget in quads, within half the worker's memory bound.

    A copy costs up to ~600 bytes per quad and two exist while a new one is built; a copy
    that could pass the bound would make every worker retire as soon as it is built.
    """
    bound = worker_memory_bound(settings, workers)
    if bound <= 0:
        return settings.memory_copy_quads
    return min(settings.memory_copy_quads, bound // (2 * 2 * COPY_BYTES_PER_QUAD))


def _run_worker(plan: WorkerPlan, ready: Any = None) -> None:
    """A worker process: waitress on the inherited socket, reads from snapshots."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    writer = WriteClient(plan.writer_address, plan.authkey)

    def generation() -> int:
        return plan.generation.value

    replica = open_replica(
        plan.store_path or plan.settings.store,
        generation,
        writer,
        settings=plan.settings,
        snapshots=plan.snapshots,
        memory_quads=copy_budget(plan.settings, plan.workers),
        log=log,
    )
    bound = worker_memory_bound(plan.settings, plan.workers)
    # (resolved, so the what-if helper gets the same bound)
    app = create_app(dataclasses.replace(plan.settings, worker_memory=bound), store=replica)
    # more threads than query slots: requests waiting for a query's answer can hold at
    # most QUERY_WORKERS of them, so /healthz and refusals always find a free thread
    threads = max(plan.threads, QUERY_WORKERS + RESERVED_THREADS)
    server = create_server(app, sockets=[plan.listener], threads=threads, ident="relmark")
    retirement = Retirement(server, writer, plan.supervisor_pid, query_refusal(app), plan.serving)
    if not isinstance(replica, HasDeadline):  # (a remote engine ends a query at its timeout)
        set_query_timeout_hook(app, retirement.after_timeout)
        lower_query_priority(app)
    set_serving_details(
        app,
        lambda: {
            "workers": plan.workers,
            "generation": replica.generation,
            "reads": replica.reads_from,
        },
    )
    signal.signal(signal.SIGTERM, retirement.on_sigterm)
    threading.Thread(target=retirement.watch_supervisor, name="relmark-watch", daemon=True).start()
    if bound > 0:
        set_address_space_backstop(bound)
        Watchdog(
            bound, lambda rss: retirement.after_memory(bound, rss), MEMORY_EXCEEDED, log
        ).start()
    if ready is not None:
        ready.value = 1  # from now on a death is a crash, replaced at once
    server.run()
    stop_fresh_process()
    os._exit(0)


def serve_workers(settings: Settings, host: str, port: int, threads: int, workers: int) -> None:
    """Serve with one writer and ``workers`` HTTP processes until SIGTERM/SIGINT."""
    Supervisor(settings, host, port, threads, workers).run()
