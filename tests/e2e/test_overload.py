"""A flood of slow queries is refused, not dropped, and never slows ``/healthz`` (item 6).

Twenty clients send queries that would run for hours, each on a new connection, for
``FLOOD_SECONDS`` against two workers with a 2 s query timeout: every query holding a
slot runs until the timeout and retires its worker, the others find every slot taken.
Every answer must be a 200 or a 503 with ``Retry-After`` (no connection reset, no other
status), ``/healthz`` and a cheap ASK keep answering fast throughout, and the service
serves normally afterwards.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from support.bounded_server import HealthProbe, bounded_relmark, wait_for_workers
from support.server import RelmarkServer, put_demo_data

CLIENTS = 20
FLOOD_SECONDS = 15.0
#: A cross product of every triple with itself three times: runs for hours, no row.
SLOW_QUERY = """SELECT (COUNT(*) AS ?n) WHERE {
  ?a ?b ?c . ?d ?e ?f . ?g ?h ?i
  FILTER(CONTAINS(CONCAT(STR(?c), STR(?f), STR(?i)), "no such text"))
}"""
CHEAP_ASK = "ASK { ?s ?p ?o }"
#: /healthz must answer within these under the flood. The goal is 100 ms; the 2-core
#: test machine also runs the flood's 20 clients, which re-send the moment they are
#: refused (~350 requests/s), and other work, so a sample may wait for a core. Measured
#: there (load average ~9): median 8-13 ms, p95 48-105 ms, max 93-385 ms; before this
#: change 7 of 13 checks took over 5 s.
HEALTHZ_MAX = 0.5
HEALTHZ_P95 = 0.2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    home = tmp_path_factory.mktemp("overload")
    with bounded_relmark(home, RELMARK_QUERY_TIMEOUT="2", RELMARK_WORKER_MEMORY="1G") as s:
        put_demo_data(s)
        yield s


class Flood:
    """``CLIENTS`` threads sending ``SLOW_QUERY`` in a loop; every outcome is counted."""

    def __init__(self, server: RelmarkServer) -> None:
        self.server = server
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.odd: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                response = requests.get(
                    self.server.sparql,
                    params={"query": SLOW_QUERY},
                    headers={"Accept": "application/sparql-results+json"},
                    timeout=30,
                )
            except requests.ConnectionError as error:
                self._count("reset", repr(error))
                continue
            except requests.Timeout as error:
                self._count("client timeout", repr(error))
                continue
            if response.status_code == 503 and response.headers.get("Retry-After"):
                self._count(f"503 {response.json()['error']}")
            else:
                self._count(f"{response.status_code}", response.text[:200])

    def _count(self, outcome: str, detail: str | None = None) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            if detail is not None:
                self.odd.append(f"{outcome}: {detail}")

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)


def cheap_ask(server: RelmarkServer) -> tuple[int, float]:
    started = time.perf_counter()
    response = requests.get(
        server.sparql,
        params={"query": CHEAP_ASK},
        headers={"Accept": "application/sparql-results+json"},
        timeout=10,
    )
    return response.status_code, time.perf_counter() - started


def test_a_flood_of_slow_queries_is_answered_503_and_healthz_stays_fast(
    server: RelmarkServer,
) -> None:
    asks: list[tuple[int, float]] = []
    with HealthProbe(server, interval=0.1, timeout=5) as probe, Flood(server) as flood:
        deadline = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline:
            asks.append(cheap_ask(server))
            time.sleep(0.5)
    latencies = sorted(probe.latencies)
    ask_times = sorted(t for _, t in asks)
    print(
        f"\nflood outcomes: {dict(flood.outcomes)}\n{probe.summary()}\n"
        f"cheap ASK: {len(asks)} sent, statuses {collections.Counter(s for s, _ in asks)}, "
        f"median {ask_times[len(ask_times) // 2] * 1000:.1f} ms, max {ask_times[-1] * 1000:.1f} ms"
    )
    assert flood.outcomes["reset"] == 0, flood.odd[:5]
    refusals = {"503 the server is busy", "503 query timeout", "503 the worker is restarting"}
    assert set(flood.outcomes) <= refusals, flood.odd[:5]
    assert flood.outcomes["503 query timeout"] > 0  # the flood did reach the evaluations
    assert flood.outcomes["503 the server is busy"] > 0  # and filled every slot
    assert not probe.failures, probe.failures[:5]
    assert latencies[-1] < HEALTHZ_MAX, probe.summary()
    assert latencies[int(len(latencies) * 0.95)] < HEALTHZ_P95, probe.summary()
    # a cheap query is never held behind the flood: answered, or (every slot taken by the
    # flood) refused at once with 503 + Retry-After
    assert all(status in (200, 503) for status, _ in asks), asks
    assert ask_times[-1] < 1.0, asks


def test_the_service_serves_normally_after_the_flood(server: RelmarkServer) -> None:
    assert wait_for_workers(server, 2, 15)
    time.sleep(1)
    for _ in range(6):
        status, seconds = cheap_ask(server)
        assert status == 200 and seconds < 1.0
