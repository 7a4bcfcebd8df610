"""A crash of any worker never takes ``relmark serve --workers 2`` down (issue 16, item 4).

Workers are killed from outside, repeatedly, with the signals a crashing request or the
kernel would send (SIGSEGV as the parser's stack overflow did, SIGKILL as the OOM
killer does), while a probe polls ``/healthz`` on new connections: the longest stretch
without an answer stays short, the supervisor never backs off (a worker that served and
then died is replaced at once), and two workers serve at the end. Scratch copies a
crashed process left next to the store are removed at start-up.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import requests
from support.bounded_server import HealthProbe, bounded_relmark, wait_for_workers, workers_of

#: Kills, one every KILL_INTERVAL seconds (the issue's "one request a second"); the victim
#: is the older of the two workers, so it started two intervals ago and has long been ready.
KILLS = 12
KILL_INTERVAL = 1.0
#: The longest time /healthz may go unanswered while workers are killed. A killed
#: worker drops the probe it held (nothing can answer for a dead process), and the probe
#: waits 0.1 s between polls, so one lost probe costs well under a second; the old
#: start-up back-off cost 0.5, 1, 2, 4 … s and ended in a full outage.
MAX_GAP = 1.5


def test_workers_killed_one_after_another_are_replaced_without_an_outage(
    tmp_path: Path,
) -> None:
    with bounded_relmark(tmp_path) as server:
        assert wait_for_workers(server, 2)
        supervisor = psutil.Process(server.pid)
        killed: list[int] = []
        answered_at: list[float] = []
        with HealthProbe(server, interval=0.1, timeout=3) as probe:
            start = time.monotonic()
            for n in range(KILLS):
                # the oldest serving worker: one that has answered requests already
                alive = sorted(workers_of(server), key=lambda p: p.create_time())
                assert alive, "no worker left"
                victim = alive[0]
                victim.send_signal(signal.SIGSEGV if n % 2 == 0 else signal.SIGKILL)
                killed.append(victim.pid)
                time.sleep(KILL_INTERVAL)
            assert wait_for_workers(server, 2, 10)
            time.sleep(1.0)
            end = time.monotonic()
        answered_at = probe.answered_at
        assert supervisor.is_running() and supervisor.status() != psutil.STATUS_ZOMBIE
        gaps = [b - a for a, b in zip([start, *answered_at], [*answered_at, end], strict=True)]
        print(
            f"{len(killed)} workers killed; {probe.summary()}; "
            f"{len(probe.failures)} probes dropped; longest gap {max(gaps) * 1000:.0f} ms"
        )
        assert max(gaps) < MAX_GAP, (max(gaps), probe.failures)
        # a dropped probe is one a dying worker held: at most one per kill
        assert len(probe.failures) <= KILLS, probe.failures
        assert not set(killed) & {p.pid for p in workers_of(server)}
        log = server.log.read_text()
        assert "died at start-up" not in log
        assert log.count("replacing it at once") == KILLS
        answer = requests.get(
            server.sparql,
            params={"query": "ASK { ?s ?p ?o }"},
            headers={"Accept": "application/sparql-results+json"},
            timeout=10,
        )
        assert answer.status_code == 200 and answer.json()["boolean"] is True


def test_scratch_copies_left_by_a_crash_are_removed_at_start_up(tmp_path: Path) -> None:
    stale = [tmp_path / ".store.scratch-k1ll3d", tmp_path / ".store.what-if-k1ll3d"]
    for directory in stale:
        (directory / "store").mkdir(parents=True)
        (directory / "store" / "000001.sst").write_bytes(b"left by a crash")
    other = tmp_path / ".other.scratch-keep"  # another store's: not ours to remove
    other.mkdir()
    with bounded_relmark(tmp_path) as server:
        assert not [d for d in stale if d.exists()]
        assert other.exists()
        assert "left by a crash" in server.log.read_text()
