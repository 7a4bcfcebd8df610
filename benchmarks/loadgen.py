"""HTTP load generator: C client processes, each on one keep-alive connection, sending the
same GET /sparql?query=… back to back for D seconds.

    python benchmarks/loadgen.py --url http://127.0.0.1:7878/sparql --query 'ASK {}' \
        --concurrency 1 8 --duration 10          # --quick: 2 s

Each client opens its connection and sends one warm-up request (not counted); when every
client is warm, all start at the same instant and stop D seconds later. A request counts if
it completed inside the client's window with status 200 and a non-empty body; anything else
is an error. A client that has fewer than --min-requests (3) by the end keeps going until it
has them (a slow engine would otherwise score 0), up to a hard limit of D + 90 s; its window
then ends at its last completed request. req/s is the sum over clients of counted requests ÷
window (= completed ÷ D when no window was stretched); p50/p99 are over all counted requests.
Clients use http.client (lighter than requests, so on a 2-core machine the clients steal
less CPU from the server under test). Every loop is bounded in time and in count.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import sys
import time
import urllib.parse
from dataclasses import dataclass

ACCEPT_JSON = "application/sparql-results+json"
MAX_REQUESTS_PER_CLIENT = 2_000_000
MIN_REQUESTS_PER_CLIENT = 3
OVERTIME = 90.0  # how far past D a client may go to reach its minimum
REQUEST_TIMEOUT = 120.0
WARMUP_TIMEOUT = 300.0


@dataclass
class Result:
    concurrency: int
    duration: float
    completed: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    first_error: str = ""
    stretched: int = 0  # clients whose window went past D to reach the minimum

    def line(self) -> str:
        err = f"  errors={self.errors} ({self.first_error})" if self.errors else ""
        if self.stretched:
            err += f"  (slow: {self.stretched} client(s) ran past {self.duration:g} s)"
        return (
            f"c={self.concurrency:<2} {self.rps:9.1f} req/s  p50 {self.p50_ms:8.2f} ms  "
            f"p99 {self.p99_ms:8.2f} ms  n={self.completed}{err}"
        )


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def _client(host, port, target, duration, min_requests, ready, go, start_at, queue) -> None:
    """One client process: one keep-alive connection, requests back to back until the end."""
    headers = {"Accept": ACCEPT_JSON, "Connection": "keep-alive"}
    conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    latencies: list[float] = []
    errors = 0
    first_error = ""

    def one() -> tuple[int, int]:
        conn.request("GET", target, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.will_close:
            conn.close()  # http.client reconnects on the next request
        return resp.status, len(body)

    try:
        one()  # warm-up: opens the connection, not counted
    except (OSError, http.client.HTTPException) as e:
        first_error = f"warm-up: {e!r}"
        conn.close()
    warm = time.monotonic()
    ready.put(1)
    if not go.wait(WARMUP_TIMEOUT + 60):
        queue.put(([], 0, "never started", 0.0, False))
        return
    start = start_at.value
    if start - warm > 2.0:
        conn.close()  # idle while others warmed up: servers drop idle keep-alives (uvicorn: 5 s)
    while time.monotonic() < start:
        time.sleep(min(0.01, max(0.0, start - time.monotonic())))
    end = start + duration
    hard_end = end + OVERTIME
    window_end = end
    sent = 0
    while sent < MAX_REQUESTS_PER_CLIENT:
        t0 = time.monotonic()
        if t0 >= hard_end or (t0 >= end and len(latencies) >= min_requests):
            break
        sent += 1
        try:
            status, size = one()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            errors += 1
            first_error = first_error or repr(e)
            time.sleep(0.01)
            continue
        t1 = time.monotonic()
        if t1 > end and (len(latencies) >= min_requests or t1 > hard_end):
            break  # finished after the bell: not counted
        if status == 200 and size > 0:
            latencies.append(t1 - t0)
            window_end = max(window_end, t1)
        else:
            errors += 1
            first_error = first_error or f"HTTP {status}"
    conn.close()
    queue.put((latencies, errors, first_error, window_end - start, window_end > end))


def run(
    url: str,
    query: str,
    concurrency: int,
    duration: float,
    min_requests: int = MIN_REQUESTS_PER_CLIENT,
) -> Result:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = f"{parts.path or '/sparql'}?{urllib.parse.urlencode({'query': query})}"
    ctx = mp.get_context("fork")
    queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    args = (host, port, target, duration, min_requests, ready, go, start_at, queue)
    procs = [ctx.Process(target=_client, args=args) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    first_error = ""
    rps = 0.0
    stretched = 0
    done = False
    try:
        for p in procs:
            p.start()
        warm_by = time.monotonic() + WARMUP_TIMEOUT
        for _ in procs:  # every client warm (its warm-up request answered or failed)
            ready.get(timeout=max(1.0, warm_by - time.monotonic()))
        start_at.value = time.monotonic() + 0.05
        go.set()
        wait = duration + OVERTIME + REQUEST_TIMEOUT + 30
        for _ in procs:
            lat, err, first, window, late = queue.get(timeout=wait)
            latencies.extend(lat)
            errors += err
            first_error = first_error or first
            rps += len(lat) / window if window > 0 else 0.0
            stretched += late
        done = True
    finally:  # interrupted or done: no client outlives the run
        for p in procs:
            if p.pid is None:
                continue  # never started
            p.join(timeout=10 if done else 0)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    latencies.sort()
    return Result(
        concurrency=concurrency,
        duration=duration,
        completed=len(latencies),
        errors=errors,
        rps=rps,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        first_error=first_error,
        stretched=stretched,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the /sparql URL")
    ap.add_argument("--query", required=True)
    ap.add_argument("--concurrency", "-c", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--duration", "-d", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--quick", action="store_true", help="2 s per run")
    ap.add_argument("--min-requests", type=int, default=MIN_REQUESTS_PER_CLIENT)
    args = ap.parse_args(argv)
    duration = 2.0 if args.quick else args.duration
    ok = True
    for c in args.concurrency:
        result = run(args.url, args.query, c, duration, args.min_requests)
        print(result.line(), flush=True)
        ok = ok and result.errors == 0 and result.completed > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
