"""Named questions: latency through the API vs the same SPARQL straight to pyoxigraph.

    python benchmarks/bench_queries.py                    # 100k triples
    python benchmarks/bench_queries.py --size 1m          # the issue's data set
    python benchmarks/bench_queries.py --size 100k --budget 1 --only six-markets

For each question of queries/*.rq: the same text (with the API's default page, LIMIT 101),
the same parameters bound as the same typed terms (``relmark.queries.bind_parameters``),
sent (a) in-process to pyoxigraph on the loaded store (rows pulled into Python) and (b) to
``GET /api/queries/<name>`` of a real ``relmark serve`` on that store (JSON with labels:
parameter parsing, class check, label lookup, serialisation and HTTP included). Rounds are
interleaved (direct, HTTP, direct, HTTP, ...) so noise from other processes falls on both.

Target (issue 6): API overhead ≤ 1.2× for questions over 10 ms, ≤ 2 ms absolute otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pyoxigraph as ox

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from references import free_port, fresh_dir, run_step, serving, tool  # noqa: E402

from relmark.queries import bind_parameters, load_catalogue, paged_text  # noqa: E402
from relmark.web.api.queries import DEFAULT_PAGE  # noqa: E402

BENCH = "https://w3id.org/relmark/bench/"
RM = "https://w3id.org/relmark/ontology#"
SIZES = {"10k": "10k", "100k": "100k", "1m": "1M"}
AS_OF = "2026-11-15"
PAGE = DEFAULT_PAGE  # the API's page: both sides evaluate the same LIMIT
SPARQL_JSON = "application/sparql-results+json"


def data_file(size: str) -> Path:
    """benchmarks/out/data-<size>.nt, generated (deterministically) when missing."""
    path = HERE / "out" / f"data-{size}.nt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(HERE / "generate.py"), "--triples", SIZES[size]]
        subprocess.run([*cmd, "--out", str(path)], check=True)
    return path


def pick_parameters(db: ox.Store) -> dict[str, str]:
    """Values from the data: the largest firm and one of its brands."""
    firm = f"{BENCH}firm/1"
    brand = next(
        iter(
            db.query(
                f"SELECT ?b WHERE {{ ?b a <{RM}Brand> }} ORDER BY ?b LIMIT 1",
                use_default_graph_as_union=True,
            )
        )
    )["b"].value
    return {"firm": firm, "brand": brand, "asOf": AS_OF}


def params_for(query, values: dict[str, str]) -> dict[str, str]:
    """Every declared parameter the values cover (required ones must be covered)."""
    return {p.name: values[p.name] for p in query.parameters if p.name in values}


def direct(db: ox.Store, text: str, bindings: dict) -> tuple[float, int]:
    """One in-process run: evaluate, and pull every row's terms into Python."""
    started = time.perf_counter()
    solutions = db.query(
        text,
        use_default_graph_as_union=True,
        substitutions={ox.Variable(k): v for k, v in bindings.items()},
    )
    names = solutions.variables
    rows = [[row[v] for v in names] for row in solutions]
    return time.perf_counter() - started, len(rows)


def over_http(
    conn: http.client.HTTPConnection, path: str, accept: str = "application/json"
) -> tuple[float, int]:
    """One API request; JSON (rows with labels) or SPARQL JSON (no labels)."""
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept": accept})
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
    data = json.loads(body)
    return elapsed, len(data["rows"] if "rows" in data else data["results"]["bindings"])


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def verdict(direct_ms: float, api_ms: float) -> str:
    if direct_ms > 10:
        return "ok" if api_ms <= 1.2 * direct_ms else "MISS"
    return "ok" if api_ms - direct_ms <= 2.0 else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="100k")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per question")
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--max-runs", type=int, default=50)
    parser.add_argument("--only", nargs="*", help="question names")
    parser.add_argument("--workers", type=int, default=1, help="relmark serve --workers")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    nt = data_file(args.size)
    workdir = fresh_dir(HERE / "out" / "work" / f"queries-{os.getpid()}")
    store = workdir / "store"
    exe = tool("relmark")
    seconds = run_step(
        [exe, "--store", str(store), "load", "--no-validate", str(nt)], workdir / "load.log", 3600
    )
    print(f"loaded {nt.name} in {seconds:.1f} s (inferences: at server start)", flush=True)

    questions = [q for q in load_catalogue() if not args.only or q.name in args.only]
    port = free_port()
    cmd = [exe, "--store", str(store), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    results = []
    try:
        with serving("relmark", cmd, port, workdir / "serve.log", 600):
            # The server holds the store; the in-process side opens it read-only beside it.
            db = ox.Store.read_only(str(store))
            values = pick_parameters(db)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            for query in questions:
                params = params_for(query, values)
                bindings = bind_parameters(query, params)
                text = paged_text(query, PAGE, 0)
                path = f"/api/queries/{query.name}?" + urllib.parse.urlencode(params)
                for _ in range(2):  # warm both sides (caches, label lookups)
                    direct(db, text, bindings)
                    over_http(conn, path)
                times_direct, times_api, times_raw = [], [], []
                started = time.perf_counter()
                while len(times_direct) < args.max_runs and (
                    len(times_direct) < args.min_runs or time.perf_counter() - started < args.budget
                ):
                    seconds_direct, rows_direct = direct(db, text, bindings)
                    seconds_api, rows_api = over_http(conn, path)
                    seconds_raw, _ = over_http(conn, path, SPARQL_JSON)
                    times_direct.append(seconds_direct)
                    times_api.append(seconds_api)
                    times_raw.append(seconds_raw)
                rows_direct = min(rows_direct, PAGE)
                row = {
                    "query": query.name,
                    "rows": rows_api,
                    "rows_direct": rows_direct,
                    "runs": len(times_direct),
                    "direct_median_ms": statistics.median(times_direct) * 1000,
                    "direct_p95_ms": p95(times_direct) * 1000,
                    "api_median_ms": statistics.median(times_api) * 1000,
                    "api_p95_ms": p95(times_api) * 1000,
                    "raw_median_ms": statistics.median(times_raw) * 1000,
                }
                row["ratio"] = row["api_median_ms"] / row["direct_median_ms"]
                row["overhead_ms"] = row["api_median_ms"] - row["direct_median_ms"]
                row["verdict"] = verdict(row["direct_median_ms"], row["api_median_ms"])
                row["raw_verdict"] = verdict(row["direct_median_ms"], row["raw_median_ms"])
                results.append(row)
                print(
                    f"  {query.name}: {row['runs']} runs, {rows_api} rows, "
                    f"direct {row['direct_median_ms']:.2f} ms, api {row['api_median_ms']:.2f} ms",
                    flush=True,
                )
            conn.close()
            del db
    finally:
        shutil.rmtree(store, ignore_errors=True)
    print_table(args.size, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_table(size: str, results: list[dict]) -> None:
    print(f"\nnamed questions on {size} triples, ms (median of runs; api = GET /api/queries/<name>")
    print("as JSON with labels; sparql-json = the same request without labels)")
    header = (
        f"{'question':33} {'rows':>4} {'runs':>4} {'direct p50':>10} {'p95':>7} "
        f"{'api p50':>8} {'p95':>7} {'ratio':>6} {'+ms':>6} {'target':>6}  "
        f"{'sparql-json':>11} {'ratio':>6} {'target':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        raw_ratio = r["raw_median_ms"] / r["direct_median_ms"]
        print(
            f"{r['query']:33} {r['rows']:>4} {r['runs']:>4} {r['direct_median_ms']:>10.2f} "
            f"{r['direct_p95_ms']:>7.2f} {r['api_median_ms']:>8.2f} {r['api_p95_ms']:>7.2f} "
            f"{r['ratio']:>5.2f}x {r['overhead_ms']:>6.2f} {r['verdict']:>6}  "
            f"{r['raw_median_ms']:>11.2f} {raw_ratio:>5.2f}x {r['raw_verdict']:>6}"
        )
    for key, what in (("verdict", "JSON with labels"), ("raw_verdict", "SPARQL JSON")):
        misses = [r["query"] for r in results if r[key] != "ok"]
        print(f"{what}: " + (f"MISS {', '.join(misses)}" if misses else "all ok"))
    print("target: api ≤ 1.2× direct when direct > 10 ms, else ≤ 2 ms more")


if __name__ == "__main__":
    main()
