"""A ``relmark serve --workers 2`` with extra settings, for the process-robustness tests.

These tests need small bounds (``RELMARK_WORKER_MEMORY``, a short query or what-if
timeout) so an attack is quick to reach and can never exhaust the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from support.server import RelmarkServer, running_relmark

#: The address space each process of a server under test may reserve: a worker reserves
#: ~1.3 GB at rest (thread stacks, malloc arenas, RocksDB's maps), so this leaves room
#: for the bounds under test while capping a runaway at a few GB.
ADDRESS_SPACE = 6 * 1024**3


@contextlib.contextmanager
def bounded_relmark(
    home: Path,
    workers: int = 2,
    threads: int = 8,
    address_space: int = ADDRESS_SPACE,
    **env: str,
) -> Iterator[RelmarkServer]:
    """A server whose ``RELMARK_*`` settings are conftest's plus ``env``; stopped after.

    Every process of it runs under ``RLIMIT_AS = address_space`` (inherited by the
    workers and helpers): whatever relmark's own bounds do, a test cannot exhaust the
    machine.
    """
    env = {"RELMARK_QUERY_TIMEOUT": "2", **env}
    with running_relmark(
        home, workers, threads=threads, address_space=address_space, **env
    ) as server:
        yield server


def workers_of(server: RelmarkServer) -> list[psutil.Process]:
    """The supervisor's worker processes (not the what-if helpers they started)."""
    return [
        child
        for child in psutil.Process(server.pid).children()
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]


def wait_for_workers(server: RelmarkServer, count: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(workers_of(server)) == count:
            return True
        time.sleep(0.1)
    return False


PROBE_SCRIPT = """
import json, sys, time, requests
url, interval, timeout, stop_file = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
import os
while not os.path.exists(stop_file):
    started = time.perf_counter()
    try:
        r = requests.get(url, timeout=timeout)
        outcome = r.status_code
    except requests.RequestException as error:
        outcome = repr(error)
    print(json.dumps([time.monotonic(), time.perf_counter() - started, outcome]), flush=True)
    time.sleep(interval)
"""


class HealthProbe:
    """Polls ``/healthz`` on new connections from a process of its own; keeps every latency.

    A process of its own, so the latencies are the server's and not the wait for this
    test process's GIL (which a flood's client threads hold often).
    """

    def __init__(self, server: RelmarkServer, interval: float = 0.2, timeout: float = 5) -> None:
        self.url = server.url + "/healthz"
        self.interval = interval
        self.timeout = timeout
        self.latencies: list[float] = []
        self.answered_at: list[float] = []  # time.monotonic() of each 200
        self.failures: list[str] = []
        self._stop_file = server.log.with_name(f"probe-stop-{os.getpid()}-{id(self)}")

    def __enter__(self) -> HealthProbe:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PROBE_SCRIPT,
                self.url,
                str(self.interval),
                str(self.timeout),
                str(self._stop_file),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # (its imports)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_file.touch()
        output, _ = self._process.communicate(timeout=self.timeout + 10)
        self._stop_file.unlink()
        for line in output.splitlines():
            at, seconds, outcome = json.loads(line)
            if outcome == 200:
                self.answered_at.append(at)
                self.latencies.append(seconds)
            else:
                self.failures.append(str(outcome))

    def summary(self) -> str:
        ordered = sorted(self.latencies) or [float("nan")]
        return (
            f"/healthz: {len(self.latencies)} answers, {len(self.failures)} failures, "
            f"median {ordered[len(ordered) // 2] * 1000:.1f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms"
        )
