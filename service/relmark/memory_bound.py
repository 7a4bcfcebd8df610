"""A memory bound per process (``RELMARK_WORKER_MEMORY``): serving workers, what-if helpers.

Why not only ``RLIMIT_AS``: pyoxigraph is Rust, and Rust aborts the process when an
allocation fails, so a query that hits an address-space limit kills its worker with
SIGABRT and its client sees a dropped connection, not a 503. The address space is also a
poor measure of use: RocksDB maps its files, glibc reserves 64 MB arenas per thread and
every thread its stack: a serving worker at rest on the demo store holds 84 MB resident
in 1,265 MB of address space (measured with psutil), and the ratio moves with the thread
count and RocksDB's files, so an address-space limit cannot be set to what a query may
use.

So the bound is enforced by a **watchdog** thread that samples the resident set size
(``/proc/self/statm``: one read, a few microseconds) every ``SAMPLE_SECONDS``. Over the
bound it calls its ``on_exceeded`` hook once (a worker answers the requests it holds
with 503 naming the limit, then exits and is replaced); if memory keeps growing past
``bound × HARD_FACTOR`` before that is done, it ends the process at once. At ~300 MB/s
(a sorted cross product) a 50 ms sample overshoots by ~15 MB.

``RLIMIT_AS`` stays as a last backstop, set far higher (``HARD_LIMIT_FACTOR`` times the
bound plus the address space the process already reserved), for growth too fast for the
sampler: then the process aborts, and the supervisor replaces it at once. Measured with
``RELMARK_WORKER_MEMORY=600M`` and ``SELECT * { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f``
on the demo store: 503 after 1-4 s, the worker's resident peak 612-637 MiB
(tests/e2e/test_memory_bound.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import sys
import threading
import time
from collections.abc import Callable

#: How often the watchdog samples the resident set size.
SAMPLE_SECONDS = 0.05
#: Past ``bound × HARD_FACTOR`` the watchdog ends the process without waiting for answers.
HARD_FACTOR = 1.25
#: The address-space backstop: reserved at start + this many times the bound.
HARD_LIMIT_FACTOR = 4
#: The default bound: this share of physical memory, divided among the workers.
DEFAULT_SHARE = 0.75
MINIMUM = 256 * 1024**2
#: Exit code of a process that passed its bound (the supervisor logs it as such).
MEMORY_EXCEEDED = 4

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"600M"``, ``"2GiB"``, ``"1073741824"`` → bytes (binary units); ``"0"`` is 0 (off)."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"not a memory size: {text!r} (e.g. 600M, 2G, 2GiB or bytes)")
    return int(float(found[1]) * _UNITS[found[2].lower()])


def describe(size: int) -> str:
    """Bytes as people read them (``600 MiB``)."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_bound(workers: int) -> int:
    """``DEFAULT_SHARE`` of physical memory divided among ``workers`` (at least 256 MiB)."""
    return max(MINIMUM, int(physical_memory() * DEFAULT_SHARE / max(1, workers)))


def resident_bytes() -> int:
    """This process's resident set size, from ``/proc/self/statm`` (Linux)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def virtual_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * _PAGE


def set_address_space_backstop(bound: int) -> None:
    """``RLIMIT_AS`` at what the process reserved already plus ``HARD_LIMIT_FACTOR × bound``.

    Never lowered below what is reserved now (that would make the next thread's stack
    fail); left alone where /proc is missing.
    """
    with contextlib.suppress(OSError, ValueError):
        limit = virtual_bytes() + HARD_LIMIT_FACTOR * bound
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class Watchdog:
    """A daemon thread that keeps this process's resident set under ``bound`` bytes."""

    def __init__(
        self,
        bound: int,
        on_exceeded: Callable[[int], None],
        exit_code: int,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.bound = bound
        self.on_exceeded = on_exceeded
        self.exit_code = exit_code
        self._log = log
        self.peak = 0

    def start(self) -> None:
        if self.bound > 0 and os.path.exists("/proc/self/statm"):
            threading.Thread(target=self._watch, name="relmark-memory", daemon=True).start()

    def _watch(self) -> None:
        exceeded = False
        hard = int(self.bound * HARD_FACTOR)
        while True:
            rss = resident_bytes()
            self.peak = max(self.peak, rss)
            if rss > hard:
                if self._log is not None:
                    self._log(f"resident memory {describe(rss)} is far over the bound; exiting")
                sys.stderr.flush()
                os._exit(self.exit_code)
            if rss > self.bound and not exceeded:
                exceeded = True
                try:
                    self.on_exceeded(rss)
                except Exception:  # the hook failed: the hard exit above is still ahead
                    os._exit(self.exit_code)
            time.sleep(SAMPLE_SECONDS)
