"""Each serving worker runs under a memory bound (issue 16, item 5).

``SELECT * { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f LIMIT 1`` sorts the square of the
store (demo data: ~10M rows) and grew a worker by ~300 MB/s until the timeout. Under
``RELMARK_WORKER_MEMORY=600M`` it gets a 503 naming the limit, the worker's resident
set (sampled with psutil every 20 ms) never goes much past the bound, ``/healthz`` keeps
answering, and the worker is replaced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from support.bounded_server import HealthProbe, bounded_relmark, wait_for_workers, workers_of
from support.paths import RELMARK
from support.server import RelmarkServer, put_demo_data

from relmark.memory_bound import HARD_FACTOR, default_bound, describe, parse_size
from relmark.server.supervisor import copy_budget
from relmark.settings import Settings

BOUND = 600 * 1024**2
#: What the worker may reach: the hard stop (the watchdog ends the process there) plus
#: what two 50 ms samples can miss at a few hundred MB/s.
MARGIN = int(BOUND * (HARD_FACTOR - 1)) + 64 * 1024**2
SORTED_SQUARE = "SELECT * { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f LIMIT 1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    home = tmp_path_factory.mktemp("memory-bound")
    # a timeout long enough that the bound, not the clock, stops the query
    with bounded_relmark(home, RELMARK_WORKER_MEMORY="600M", RELMARK_QUERY_TIMEOUT="20") as s:
        put_demo_data(s)
        yield s


class PeakSampler:
    """Samples every worker's resident set size in the background; keeps each one's peak."""

    def __init__(self, server: RelmarkServer) -> None:
        self.server = server
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for worker in workers_of(self.server):
                try:
                    rss = worker.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[worker.pid] = max(self.peaks.get(worker.pid, 0), rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_query_over_the_bound_gets_503_and_its_worker_is_replaced(
    server: RelmarkServer,
) -> None:
    before = {p.pid for p in workers_of(server)}
    assert len(before) == 2
    with PeakSampler(server) as sampler, HealthProbe(server, interval=0.1) as probe:
        started = time.monotonic()
        response = requests.get(
            server.sparql,
            params={"query": SORTED_SQUARE},
            headers={"Accept": "application/sparql-results+json"},
            timeout=60,
        )
        took = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers.get("Retry-After")
        body = response.json()
        assert body["error"] == "memory limit exceeded"
        assert "RELMARK_WORKER_MEMORY" in body["detail"] and "600 MiB" in body["detail"]
        assert took < 15  # the bound stopped it, not the 20 s timeout
        assert wait_for_workers(server, 2, 15)
        time.sleep(0.5)
    peak = max(sampler.peaks.values())
    print(
        f"503 after {took:.1f} s; worker peaks (MiB): "
        f"{ {pid: rss >> 20 for pid, rss in sampler.peaks.items()} }; {probe.summary()}"
    )
    assert peak < BOUND + MARGIN, describe(peak)
    assert peak > BOUND * 0.9  # the query did grow the worker up to the bound
    assert not probe.failures, probe.failures
    assert max(probe.latencies) < 1.0, probe.summary()
    after = {p.pid for p in workers_of(server)}
    assert len(after) == 2 and len(after & before) == 1  # the grown one was replaced
    assert "passed the bound of 600 MiB" in server.log.read_text()


def test_the_server_answers_normally_after_the_bound_was_hit(server: RelmarkServer) -> None:
    for _ in range(6):  # new connections: both workers answer
        response = requests.get(
            server.sparql,
            params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"},
            headers={"Accept": "application/sparql-results+json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    for worker in workers_of(server):
        assert worker.memory_info().rss < BOUND


@pytest.mark.parametrize(
    ("text", "size"),
    [("600M", 600 * 1024**2), ("2G", 2 * 1024**3), ("2GiB", 2 * 1024**3), ("1048576", 2**20)],
)
def test_memory_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "2X", "-1G"])
def test_bad_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a memory size"):
        parse_size(text)


def test_the_default_bound_divides_physical_memory_among_workers() -> None:
    total = psutil.virtual_memory().total
    assert abs(default_bound(2) - total * 0.75 / 2) < 2**20
    assert default_bound(10**6) == 256 * 1024**2  # never below the minimum


def test_an_unreadable_bound_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess

    relmark = RELMARK
    result = subprocess.run(
        [str(relmark), "--store", str(tmp_path / "store"), "serve", "--workers", "2"],
        env={"RELMARK_WORKER_MEMORY": "lots", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Error: bad setting: not a memory size: 'lots'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bound_below_what_a_worker_needs_at_rest_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 256 MiB"):
        Settings.from_env({"RELMARK_WORKER_MEMORY": "100M"})
    assert Settings.from_env({"RELMARK_WORKER_MEMORY": "0"}).worker_memory == 0
    assert Settings.from_env({"RELMARK_WORKER_MEMORY": "600M"}).worker_memory == BOUND


def test_the_in_memory_copy_fits_in_half_the_bound() -> None:
    """Two copies exist while one is rebuilt, at up to 600 bytes a quad: a copy that could
    pass the bound would retire every worker as soon as it was built."""
    bounded = Settings(worker_memory=BOUND, memory_copy_quads=5_000_000)
    assert copy_budget(bounded, 2) * 2 * 600 <= BOUND // 2
    assert copy_budget(Settings(worker_memory=0, memory_copy_quads=123), 2) == 123
    assert copy_budget(Settings(worker_memory=64 * 1024**3, memory_copy_quads=123), 2) == 123
