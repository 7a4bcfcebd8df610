"""``relmark serve --workers N``: one writer process, N HTTP worker processes (pre-fork).

Why: one Python process serving HTTP is bound by the GIL, and pyoxigraph cannot cancel a
query, so the only way to stop a runaway one is to end the process evaluating it.

How (gunicorn's pre-fork model, with a single writer):

- The **supervisor** opens the ``EmbeddedStore`` read-write (the only process that ever
  writes it), syncs the system graphs, publishes snapshot generation 1, binds the
  listening socket and forks the workers. It answers writes over a Unix socket
  (``multiprocessing.connection``, random authkey, one thread per worker connection),
  applies them one at a time, and after each publishes a new **snapshot**: a backup of the
  store (hard links, milliseconds) in ``<store>.snapshots/<generation>``, then the new
  generation number in shared memory. It keeps the last few snapshots, and replaces any
  worker that exits (at once for a worker that retires, with a back-off for one that dies
  at start-up).
- Each **worker** runs waitress on the inherited socket around ``create_app`` with a
  ``SnapshotReplica``: reads go to a read-only store opened on the newest snapshot (safe:
  a backup is never written), writes go to the supervisor and return once the worker has
  opened the snapshot holding them (read-your-writes).
- A query that **times out** makes its worker retire: it stops accepting connections,
  lets its other requests finish (a few seconds at most) and exits with ``os._exit``,
  which also ends the evaluation; the supervisor has started its replacement meanwhile.

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
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pyoxigraph as ox
import waitress

from relmark import loading, sparql_guard
from relmark.memory_copy import MemoryCopy
from relmark.reasoning.maintain import refresh_inferences
from relmark.remote_store import RemoteReplica, remote_config
from relmark.settings import Settings
from relmark.store import EmbeddedStore, SnapshotReplica, Store, StoreError, open_store
from relmark.vocab import SHAPES_FILE
from relmark.web import create_app
from relmark.web.extensions import (
    set_query_timeout_hook,
    set_serving_details,
    sync_system_graphs,
)

#: Snapshot generations kept on disk (older ones are deleted as new ones appear).
KEEP_SNAPSHOTS = 4
#: Exit code of a worker that retired after a query timeout.
RETIRED = 3
#: Seconds a retiring worker gives the requests it is still answering.
RETIRE_GRACE = 5.0
#: A worker that dies sooner than this after starting is restarted after a back-off.
STARTUP_GRACE = 5.0
MAX_BACKOFF = 30.0
LISTEN_BACKLOG = 1024

#: The store methods a worker may ask the supervisor to run.
WRITES = frozenset(
    {
        "update",
        "update_validated",
        "add_quads",
        "replace_graph",
        "bulk_replace_graphs",
        "drop_graph",
        "sync_file_graph",
        "restore",
    }
)
#: Writes that return False when they changed nothing (no new snapshot then).
MAYBE_UNCHANGED = frozenset({"drop_graph", "sync_file_graph"})


def log(message: str) -> None:
    print(f"relmark[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


# --- the wire: writes and errors as picklable values ----------------------------------------
def _nquads(quads: object) -> bytes:
    return ox.serialize(quads, format=ox.RdfFormat.N_QUADS)


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
    if method == "sync_file_graph":
        graph, paths = args
        return graph, [str(p) for p in paths]
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
    if method == "sync_file_graph":
        return args[0], [Path(p) for p in args[1]]
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
class SnapshotPublisher:
    """Snapshot generations of the live store in ``<store>.snapshots/<generation>``."""

    def __init__(self, store: EmbeddedStore, generation: Any) -> None:
        self.store = store
        self.directory = store.path.with_name(store.path.name + ".snapshots")
        self.generation = generation  # a shared multiprocessing RawValue("q")
        self._kept: deque[int] = deque()

    def start(self) -> None:
        """Remove a crashed run's snapshots, then publish generation 1."""
        if self.directory.exists():
            log(f"removing stale snapshots in {self.directory}")
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
                    result = getattr(self.store, method)(*decode_write(self.store, method, args))
                    if method in MAYBE_UNCHANGED and not result:
                        return ("ok", result, self.publisher.generation.value)
                    # inferences before the snapshot: readers never see data without them
                    refresh_inferences(self.store, self.ontology_dir)
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

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT; raises ``StoreError`` if the store cannot be opened."""
        store: Store = open_store(self.settings.store, self.settings)
        generation = self._context.RawValue("q", 0)
        local = isinstance(store, EmbeddedStore)
        publisher = SnapshotPublisher(store, generation) if local else WriteCounter(generation)
        self._writer = StoreWriter(store, publisher, self.settings.ontology_dir)
        address, private = _writer_address()
        self._listener: multiprocessing.connection.Listener | None = None
        http: socket.socket | None = None
        try:
            sync_system_graphs(store, self.settings)
            if local:
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
                store_path=store.path if local else None,
                snapshots=publisher.directory if local else None,
                generation=generation,
                writer_address=address,
                authkey=authkey,
                supervisor_pid=os.getpid(),
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
            with self._children_lock:
                sentinels = [w.process.sentinel for w in self._children]
            multiprocessing.connection.wait(sentinels, timeout=0.1)

    def _reap(self) -> None:
        """Forget exited workers; a start-up death postpones the next spawn (back-off)."""
        now = time.monotonic()
        with self._children_lock:
            alive = {id(w): w.process.is_alive() for w in self._children}
            exited = [w for w in self._children if not alive[id(w)]]
            self._children = [w for w in self._children if alive[id(w)]]
            if any(now - w.started > STARTUP_GRACE for w in self._children):
                self._failures = 0  # workers start fine again
        for worker in exited:
            worker.process.join()
            code = worker.process.exitcode
            if worker.retiring or code == RETIRED:
                log(f"worker {worker.process.pid} retired")
            elif now - worker.started < STARTUP_GRACE:
                self._failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** (self._failures - 1))
                self._next_spawn = now + delay
                log(f"worker {worker.process.pid} died at start-up ({code}); retry in {delay:g} s")
            else:
                log(f"worker {worker.process.pid} exited ({code}); replacing it")

    def _replenish(self) -> None:
        """Start workers until ``workers`` of them are serving (retiring ones do not count)."""
        with self._children_lock:
            missing = self.workers - sum(not w.retiring for w in self._children)
        if missing <= 0 or time.monotonic() < self._next_spawn:
            return
        for _ in range(missing):
            process = self._context.Process(
                target=_run_worker, args=(self._plan,), name="relmark-worker"
            )
            process.start()
            with self._children_lock:
                self._children.append(Worker(process, time.monotonic()))

    def _retiring(self, pid: int) -> None:
        with self._children_lock:
            for worker in self._children:
                if worker.process.pid == pid:
                    worker.retiring = True

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
        while True:
            try:
                connection = self._listener.accept()
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
    """A worker's way out: stop accepting, let in-flight requests finish, ``os._exit``."""

    def __init__(self, server: Any, writer: WriteClient, supervisor_pid: int) -> None:
        self._server = server  # waitress's TcpWSGIServer
        self._writer = writer
        self._supervisor_pid = supervisor_pid
        self._lock = threading.Lock()
        self._started = False

    def after_timeout(self) -> None:
        """The QueryRunner hook: a query overran, so end this process (and the query).

        Runs on the request's thread before its 503 is sent, and returns only once the
        loop has stopped accepting: a client that reconnects after the 503 reaches
        another worker, never this one on its way out.
        """
        stopped = threading.Event()

        def stop_accepting() -> None:
            self._stop_accepting()
            stopped.set()

        self._server.trigger.pull_trigger(stop_accepting)
        stopped.wait(timeout=1.0)
        self._begin("a query timed out; retiring", RETIRED, announce=True)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._begin("stopping", 0, announce=False)

    def watch_supervisor(self) -> None:
        """Exit when the supervisor is gone (no writes possible, nobody to stop us)."""
        while os.getppid() == self._supervisor_pid:
            time.sleep(1.0)
        os._exit(1)

    def _begin(self, reason: str, code: int, *, announce: bool) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        log(reason)
        threading.Thread(
            target=self._retire, args=(code, announce), name="relmark-retire", daemon=True
        ).start()

    def _retire(self, code: int, announce: bool) -> None:
        if announce:  # on failure the supervisor still replaces us once we exit
            with contextlib.suppress(OSError, EOFError):
                self._writer.announce_retiring()
        self._server.trigger.pull_trigger(self._stop_accepting)
        deadline = time.monotonic() + RETIRE_GRACE
        while self._server.active_channels and time.monotonic() < deadline:
            self._server.trigger.pull_trigger(self._close_idle_connections)
            time.sleep(0.05)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _stop_accepting(self) -> None:
        """(waitress's loop thread) Stop polling the shared socket: the others accept."""
        self._server.accepting = False

    def _close_idle_connections(self) -> None:
        """(waitress's loop thread) Close keep-alive connections between requests."""
        for channel in list(self._server.active_channels.values()):
            if not channel.requests and channel.request is None and not channel.total_outbufs_len:
                channel.will_close = True


def _run_worker(plan: WorkerPlan) -> None:
    """A worker process: waitress on the inherited socket, reads from snapshots."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    writer = WriteClient(plan.writer_address, plan.authkey)

    def generation() -> int:
        return plan.generation.value

    replica: SnapshotReplica | RemoteReplica
    if plan.store_path is None or plan.snapshots is None:
        config = remote_config(str(plan.settings.store), plan.settings)
        replica = RemoteReplica(config, generation, writer)
    else:
        memory = MemoryCopy(plan.settings.memory_copy_quads, log)
        replica = SnapshotReplica(plan.store_path, plan.snapshots, generation, writer, memory)
    app = create_app(plan.settings, store=replica)
    server = waitress.create_server(
        app, sockets=[plan.listener], threads=plan.threads, ident="relmark"
    )
    retirement = Retirement(server, writer, plan.supervisor_pid)
    if isinstance(replica, SnapshotReplica):  # (the engine ends a remote query at its timeout)
        set_query_timeout_hook(app, retirement.after_timeout)
    set_serving_details(
        app,
        lambda: {
            "workers": plan.workers,
            "generation": replica.generation,
            "reads": getattr(replica, "reads_from", "remote"),
        },
    )
    signal.signal(signal.SIGTERM, retirement.on_sigterm)
    threading.Thread(target=retirement.watch_supervisor, name="relmark-watch", daemon=True).start()
    server.run()
    os._exit(0)


def serve_workers(settings: Settings, host: str, port: int, threads: int, workers: int) -> None:
    """Serve with one writer and ``workers`` HTTP processes until SIGTERM/SIGINT."""
    Supervisor(settings, host, port, threads, workers).run()
