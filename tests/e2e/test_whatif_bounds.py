"""What-if is bounded in time and size, and its helper is replaced (issue 16, item 7).

A record over ``RELMARK_WHATIF_MAX_TRIPLES`` is refused with 413 before any work; one
whose what-if runs past ``RELMARK_WHATIF_TIMEOUT`` gets 503 with ``Retry-After`` and its
helper process is killed; the next what-if starts a new helper and answers; a helper that
dies (killed here from outside) is replaced too: never a bare 500, never a broken pool.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from support.bounded_server import bounded_relmark, workers_of
from support.server import RelmarkServer, put_demo_data
from test_whatif import A_REFERRAL

from relmark.vocab import DEMO, demo_paths

#: Generous for a one-referral record (0.3-1 s in all, helper included), far too short
#: for the big record below (~10 s in the helper; measured: 3 copies 3-4 s, 10 copies 22 s).
WHATIF_TIMEOUT = 1.5
MAX_TRIPLES = 12_000


def demo_copies(copies: int) -> bytes:
    """The demo files, ``copies`` times over with their resources renamed: new resources,
    so the rules have everything to derive (1,889 triples a copy)."""
    return b"\n".join(
        path.read_bytes().replace(DEMO.encode(), f"{DEMO}copy{n}-".encode())
        for n in range(copies)
        for path in demo_paths()
    )


BIG_RECORD = demo_copies(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    home = tmp_path_factory.mktemp("whatif-bounds")
    with bounded_relmark(
        home,
        RELMARK_WHATIF_TIMEOUT=str(WHATIF_TIMEOUT),
        RELMARK_WHATIF_MAX_TRIPLES=str(MAX_TRIPLES),
        RELMARK_WORKER_MEMORY="1G",
    ) as s:
        put_demo_data(s)
        yield s


def what_if(server: RelmarkServer, body: bytes | str) -> requests.Response:
    return requests.post(
        server.url + "/api/classify",
        data=body.encode() if isinstance(body, str) else body,
        headers={"Content-Type": "text/turtle"},
        timeout=90,
    )


def quad_count(server: RelmarkServer) -> int:
    return requests.get(server.url + "/healthz", timeout=10).json()["triples"]


def helpers_of(server: RelmarkServer) -> list[psutil.Process]:
    """The what-if helper processes (spawned children of the workers; not their
    multiprocessing resource trackers)."""
    found = []
    for worker in workers_of(server):
        for child in worker.children():
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                pass
    return found


def scratch_left(server: RelmarkServer) -> list[str]:
    return [p.name for p in server.store.parent.glob(f".{server.store.name}.what-if-*")]


def answer_on_both_workers(server: RelmarkServer) -> None:
    """A small what-if answers 200 on a few new connections (so on both workers)."""
    for _ in range(4):
        response = what_if(server, A_REFERRAL)
        assert response.status_code == 200, response.text


def test_a_record_over_the_size_limit_is_413(server: RelmarkServer) -> None:
    before = quad_count(server)
    big = "@prefix ex: <http://example.org/> .\n" + "".join(
        f"ex:s{n} ex:p {n} .\n" for n in range(MAX_TRIPLES + 1)
    )
    started = time.monotonic()
    response = what_if(server, big)
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error"] == "the record is too large"
    assert "RELMARK_WHATIF_MAX_TRIPLES" in body["detail"] and f"{MAX_TRIPLES:,}" in body["detail"]
    assert time.monotonic() - started < 5
    assert quad_count(server) == before


def test_a_what_if_over_its_timeout_is_503_and_the_next_one_works(
    server: RelmarkServer,
) -> None:
    answer_on_both_workers(server)  # helpers started
    before = quad_count(server)
    started = time.monotonic()
    response = what_if(server, BIG_RECORD)
    took = time.monotonic() - started
    print(f"what-if of {len(BIG_RECORD)} bytes: {response.status_code} after {took:.1f} s")
    assert response.status_code == 503, response.text
    assert response.headers.get("Retry-After")
    body = response.json()
    assert body["error"] == "what-if timeout"
    assert "RELMARK_WHATIF_TIMEOUT" in body["detail"]
    answer_on_both_workers(server)
    assert quad_count(server) == before
    assert not scratch_left(server)


def test_a_killed_helper_is_replaced(server: RelmarkServer) -> None:
    answer_on_both_workers(server)
    helpers = helpers_of(server)
    assert helpers
    for helper in helpers:
        helper.send_signal(signal.SIGKILL)
    psutil.wait_procs(helpers, timeout=5)
    answer_on_both_workers(server)
    assert not {h.pid for h in helpers} & {h.pid for h in helpers_of(server)}


def test_a_helper_killed_in_the_middle_answers_503_not_500(server: RelmarkServer) -> None:
    answer_on_both_workers(server)
    responses: list[requests.Response] = []
    thread = threading.Thread(target=lambda: responses.append(what_if(server, BIG_RECORD)))
    thread.start()
    # kill the helpers while the big what-if is being validated or classified
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        for helper in helpers_of(server):
            try:
                if helper.cpu_percent(0.05) > 20:
                    helper.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
    thread.join(60)
    assert responses[0].status_code == 503, responses[0].text
    assert responses[0].json()["error"] in ("what-if unavailable", "what-if timeout")
    answer_on_both_workers(server)
    assert not scratch_left(server)


def test_what_ifs_queued_behind_a_slow_one_get_503_within_their_bound(
    server: RelmarkServer,
) -> None:
    """Four big what-ifs at once on two workers: at least two share a helper, and the one
    waiting for it is refused after one timeout's wait (the issue saw 120 s and a bare 500)."""
    with ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        responses = list(pool.map(lambda _: what_if(server, BIG_RECORD), range(4)))
        took = time.monotonic() - started
    errors = [r.json()["error"] for r in responses]
    print(f"4 concurrent big what-ifs: {errors} in {took:.1f} s")
    assert all(r.status_code == 503 and r.headers.get("Retry-After") for r in responses)
    assert set(errors) <= {"what-if timeout", "what-if unavailable"}
    # validation (here, in the worker) + at most one wait for the helper + one run
    assert took < 30
    answer_on_both_workers(server)
