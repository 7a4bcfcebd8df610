"""relmark in front of an Oxigraph server vs the same queries sent straight to that server.

    python benchmarks/bench_remote.py                      # 100k triples, 2 s per query
    python benchmarks/bench_remote.py --size 1m --budget 3 # the issue's data set

In one run, on one ``oxigraph serve`` loaded by ``relmark load`` (SHACL check included):

- materialisation: the 48 rules to a fixpoint with provenance, on the remote store
  (``remote_rules.materialise``: INSERT … WHERE per rule on the server) vs the embedded
  store on the same data (``rules.materialise``), each timed once, cold;
- queries: the three HTTP shapes of bench_http.py (POST /sparql) and every named question
  (GET /api/queries/<name>, JSON with labels), through ``relmark serve --store
  sparql+http://…`` vs the same SPARQL (same LIMIT, same parameters bound as a VALUES block,
  union default graph) POSTed straight to the server. Rounds alternate (direct, relmark,
  …) so noise from other processes falls on both sides.

Target (issue 8): relmark's overhead ≤ 1.2× on queries over 10 ms.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_http  # noqa: E402
import bench_queries  # noqa: E402
import pyoxigraph as ox  # noqa: E402
from references import free_port, fresh_dir, run_step, serving, tool  # noqa: E402

from relmark.queries import bind_parameters, load_catalogue, paged_text  # noqa: E402
from relmark.reasoning.maintain import refresh_inferences, sync_system_graphs  # noqa: E402
from relmark.remote_store import RemoteConfig, RemoteStore, bind_values  # noqa: E402
from relmark.store import EmbeddedStore  # noqa: E402
from relmark.web.queries_api import DEFAULT_PAGE  # noqa: E402

SPARQL_JSON = "application/sparql-results+json"


def post(conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn.request(
        "POST",
        path,
        body=urllib.parse.urlencode(body),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": SPARQL_JSON},
    )
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:300]!r}")
    return time.perf_counter() - started, data


def get(conn: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:300]!r}")
    return time.perf_counter() - started, data


def timed_pair(direct, through, budget: float, min_runs: int = 5, max_runs: int = 60) -> dict:
    for _ in range(2):  # warm both sides
        direct()
        through()
    a, b = [], []
    started = time.perf_counter()
    while len(a) < max_runs and (len(a) < min_runs or time.perf_counter() - started < budget):
        a.append(direct())
        b.append(through())
    d, r = statistics.median(a) * 1000, statistics.median(b) * 1000
    verdict = ("ok" if r <= 1.2 * d else "MISS") if d > 10 else "(<10 ms)"
    return {"runs": len(a), "direct_ms": d, "relmark_ms": r, "ratio": r / d, "verdict": verdict}


def materialise_embedded(nt: Path, workdir: Path) -> float:
    store = EmbeddedStore(workdir / "embedded")
    try:
        store.bulk_replace_graphs(
            {"urn:relmark:data:bench": [(ox.RdfFormat.N_TRIPLES, nt.read_bytes(), "nt")]}
        )
        sync_system_graphs(store)
        started = time.perf_counter()
        summary = refresh_inferences(store)
        seconds = time.perf_counter() - started
        print(f"  embedded: {summary.text.splitlines()[0]}", flush=True)
        return seconds
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(bench_queries.SIZES), default="100k")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per query")
    args = parser.parse_args()

    nt = bench_queries.data_file(args.size)
    workdir = fresh_dir(HERE / "out" / "work" / "remote")
    oxi_port, relmark_port = free_port(), free_port()
    oxi_cmd = [tool("oxigraph"), "serve", "--location", str(workdir / "oxigraph")]
    oxi_cmd += ["--bind", f"127.0.0.1:{oxi_port}"]
    location = f"sparql+http://127.0.0.1:{oxi_port}/query"
    with serving("oxigraph", oxi_cmd, oxi_port, workdir / "oxigraph.log", 120, "/query"):
        seconds = run_step(
            [tool("relmark"), "--store", location, "load", str(nt)], workdir / "load.log", 3600
        )
        print(f"relmark load {nt.name} onto the server (SHACL-checked): {seconds:.1f} s")
        remote = RemoteStore(RemoteConfig(f"http://127.0.0.1:{oxi_port}/query", timeout=3600))
        sync_system_graphs(remote)
        started = time.perf_counter()
        summary = refresh_inferences(remote)
        remote_seconds = time.perf_counter() - started
        print(f"  remote:   {summary.text.splitlines()[0]}", flush=True)
        embedded_seconds = materialise_embedded(nt, workdir)

        serve = [tool("relmark"), "--store", location, "serve", "--host", "127.0.0.1"]
        serve += ["--port", str(relmark_port), "--threads", "8"]
        rows = []
        with serving("relmark", serve, relmark_port, workdir / "serve.log", 600):
            oxi = http.client.HTTPConnection("127.0.0.1", oxi_port, timeout=600)
            rel = http.client.HTTPConnection("127.0.0.1", relmark_port, timeout=600)
            for name, text in bench_http.QUERIES.items():

                def direct(text: str = text) -> float:
                    return post(oxi, "/query", {"query": text, "union-default-graph": ""})[0]

                def through(text: str = text) -> float:
                    return post(rel, "/sparql", {"query": text})[0]

                rows.append({"query": f"http {name}", **timed_pair(direct, through, args.budget)})
                print(f"  {rows[-1]}", flush=True)
            brand = f"SELECT ?b WHERE {{ ?b a <{bench_queries.RM}Brand> }} ORDER BY ?b LIMIT 1"
            values = {
                "firm": f"{bench_queries.BENCH}firm/1",
                "brand": next(iter(remote.query(brand)))["b"].value,
                "asOf": bench_queries.AS_OF,
            }
            for query in load_catalogue():
                params = bench_queries.params_for(query, values)
                bindings = bind_parameters(query, params)
                text = paged_text(query, DEFAULT_PAGE, 0)
                sent = bind_values(text, bindings) if bindings else text
                path = f"/api/queries/{query.name}?" + urllib.parse.urlencode(params)

                def direct(sent: str = sent) -> float:
                    return post(oxi, "/query", {"query": sent, "union-default-graph": ""})[0]

                def through(path: str = path) -> float:
                    return get(rel, path)[0]

                rows.append({"query": query.name, **timed_pair(direct, through, args.budget)})
                print(f"  {rows[-1]}", flush=True)
        remote.close()

    print(f"\nrelmark in front of oxigraph server, {args.size} triples (ms, medians)")
    print(f"{'query':36} {'runs':>4} {'direct':>9} {'relmark':>9} {'ratio':>6}  target ≤1.2×")
    for row in rows:
        print(
            f"{row['query']:36} {row['runs']:>4} {row['direct_ms']:>9.2f} "
            f"{row['relmark_ms']:>9.2f} {row['ratio']:>6.2f}  {row['verdict']}"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nfull materialisation: remote (INSERT … WHERE on the server) {remote_seconds:.1f} s, "
        f"embedded {embedded_seconds:.1f} s ({remote_seconds / embedded_seconds:.2f}×)"
    )


if __name__ == "__main__":
    main()
