"""relmark in front of an Oxigraph server vs the same queries sent straight to that server.

    python benchmarks/bench_remote.py                      # 100k triples, 2 s per query
    python benchmarks/bench_remote.py --size 1m --budget 3 # the issue's data set
    python benchmarks/bench_remote.py --size 1m --inferences copy  # queries only, quicker
    python benchmarks/bench_remote.py --inferences copy --only six-markets global-accounts
    python benchmarks/bench_remote.py --size 1m --server http://127.0.0.1:7878/query  # loaded

In one run, on one ``oxigraph serve`` loaded by ``relmark load`` (SHACL check included):

- materialisation: the 48 rules to a fixpoint with provenance, on the remote store
  (``remote_rules.materialise``: the server evaluates every rule, round by round) vs the embedded
  store on the same data (``rules.materialise``), each timed once, cold;
- queries: the three HTTP shapes of bench_http.py (POST /sparql) and every named question
  (GET /api/queries/<name>, JSON with labels), through ``relmark serve --store
  sparql+http://…`` vs the same SPARQL (same LIMIT, same parameters bound as a VALUES block,
  union default graph) POSTed straight to the server. relmark's side is timed three ways:
  as served (labels kept from the previous request: ``relmark.stores.remote.lookup_cache``), cold (a
  second ``relmark serve`` with ``RELMARK_LOOKUP_TTL=0``: every label looked up, as on a
  page of IRIs never seen) and without labels. Rounds alternate (direct, relmark, …) so
  noise from other processes falls on every side.

Target (issue 8): relmark's overhead ≤ 1.2× on queries over 10 ms.
"""

from __future__ import annotations

import argparse
import contextlib
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
from relmark.reasoning.maintain import refresh_inferences  # noqa: E402
from relmark.stores.base import CONTENT_HASH  # noqa: E402
from relmark.stores.embedded import EmbeddedStore  # noqa: E402
from relmark.stores.remote.dialects import bind_values  # noqa: E402
from relmark.stores.remote.store import RemoteStore  # noqa: E402
from relmark.stores.remote.transport import RemoteConfig  # noqa: E402
from relmark.stores.system_graphs import sync_system_graphs  # noqa: E402
from relmark.vocab import INFERRED_GRAPH, META_GRAPH, PROVENANCE_GRAPH  # noqa: E402
from relmark.web.api.queries import DEFAULT_PAGE  # noqa: E402

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


def timed_pair(
    direct, through, budget: float, min_runs: int = 5, max_runs: int = 60, **others
) -> dict:
    """Medians of interleaved runs; ``others`` (name: side) are relmark's other ways
    (``cold_ms``: nothing kept, ``plain_ms``: no labels)."""
    sides = [direct, through, *others.values()]
    for _ in range(2):  # warm every side
        for side in sides:
            side()
    times: list[list[float]] = [[] for _ in sides]
    started = time.perf_counter()
    while len(times[0]) < max_runs and (
        len(times[0]) < min_runs or time.perf_counter() - started < budget
    ):
        for side, samples in zip(sides, times, strict=True):
            samples.append(side())
    d, r, *rest = (statistics.median(t) * 1000 for t in times)
    verdict = ("ok" if r <= 1.2 * d else "MISS") if d > 10 else "(<10 ms)"
    row = {"runs": len(times[0]), "direct_ms": d, "relmark_ms": r, "ratio": r / d}
    row.update({f"{name}_ms": ms for name, ms in zip(others, rest, strict=True)})
    return {**row, "verdict": verdict}


def materialise_embedded(nt: Path, workdir: Path, copy_to: RemoteStore | None = None) -> float:
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
        if copy_to is not None:
            copy_inferences(store, copy_to)
        return seconds
    finally:
        store.close()


def copy_inferences(source: EmbeddedStore, target: RemoteStore) -> None:
    """The embedded run's inferences, provenance and fingerprint, put on the server as they
    are (``--inferences copy``): what a remote run gives (tests/e2e/test_remote_backends.py
    checks they are identical on the demo data), without waiting for the server."""
    started = time.perf_counter()
    target.bulk_replace_graphs(
        {g: [("quads", list(source.triples(g)), g)] for g in (INFERRED_GRAPH, PROVENANCE_GRAPH)}
    )
    key = f"<{INFERRED_GRAPH}> <{CONTENT_HASH.value}>"
    fingerprint = next(
        iter(source.query(f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ {key} ?h }} }}"))
    )
    target.update(
        f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ {key} ?h }} }} ;"
        f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ {key} {fingerprint['h']} }} }}"
    )
    print(
        f"  copied the embedded inferences to the server in {time.perf_counter() - started:.1f} s"
    )


def prepare_server(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack):
    """An Oxigraph server holding the data set and its inferences: started and loaded here
    (materialisation timed), or the one ``--server`` names (already loaded by an earlier
    run of this script, say). Returns its query URL and the two materialisation times."""
    if args.server:
        print(f"reusing the server at {args.server} (its data and inferences as they are)")
        return args.server, None, None
    nt = bench_queries.data_file(args.size)
    port = free_port()
    oxi_cmd = [tool("oxigraph"), "serve", "--location", str(workdir / "oxigraph")]
    oxi_cmd += ["--bind", f"127.0.0.1:{port}"]
    stack.enter_context(serving("oxigraph", oxi_cmd, port, workdir / "oxigraph.log", 120, "/query"))
    query_url = f"http://127.0.0.1:{port}/query"
    seconds = run_step(
        [tool("relmark"), "--store", f"sparql+{query_url}", "load", str(nt)],
        workdir / "load.log",
        3600,
    )
    print(f"relmark load {nt.name} onto the server (SHACL-checked): {seconds:.1f} s")
    with RemoteStore(RemoteConfig(query_url, timeout=3600)) as remote:
        sync_system_graphs(remote)
        remote_seconds = None
        if args.inferences == "remote":
            started = time.perf_counter()
            summary = refresh_inferences(remote)
            remote_seconds = time.perf_counter() - started
            print(f"  remote:   {summary.text.splitlines()[0]}", flush=True)
        copy_to = remote if args.inferences == "copy" else None
        embedded_seconds = materialise_embedded(nt, workdir, copy_to)
    return query_url, remote_seconds, embedded_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(bench_queries.SIZES), default="100k")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per query")
    parser.add_argument(
        "--only", nargs="*", help="only these named questions (and no HTTP query shapes)"
    )
    parser.add_argument(
        "--inferences",
        choices=("remote", "copy"),
        default="remote",
        help="remote: materialise on the server (timed against embedded); copy: only "
        "embedded, its result copied to the server (when the server takes too long)",
    )
    parser.add_argument(
        "--server",
        metavar="QUERY_URL",
        help="an Oxigraph server's query URL, already holding --size's data and inferences: "
        "only the queries are timed",
    )
    args = parser.parse_args()

    workdir = fresh_dir(HERE / "out" / "work" / "remote")
    with contextlib.ExitStack() as stack:
        query_url, remote_seconds, embedded_seconds = prepare_server(args, workdir, stack)
        oxi = urllib.parse.urlsplit(query_url)
        remote = stack.enter_context(RemoteStore(RemoteConfig(query_url, timeout=3600)))
        ports = {"relmark": free_port(), "relmark-cold": free_port()}
        for name, port in ports.items():
            serve = [tool("relmark"), "--store", f"sparql+{query_url}", "serve"]
            serve += ["--host", "127.0.0.1", "--port", str(port), "--threads", "8"]
            # the cold twin keeps no labels: every page looks all its labels up
            env = {"RELMARK_LOOKUP_TTL": "0"} if name == "relmark-cold" else None
            stack.enter_context(serving(name, serve, port, workdir / f"{name}.log", 600, env=env))
        direct_conn = http.client.HTTPConnection(oxi.hostname, oxi.port, timeout=600)
        rel, cold = (
            http.client.HTTPConnection("127.0.0.1", p, timeout=600) for p in ports.values()
        )
        rows = []
        for name, text in bench_http.QUERIES.items() if args.only is None else ():

            def direct(text: str = text) -> float:
                return post(direct_conn, oxi.path, {"query": text, "union-default-graph": ""})[0]

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
            if args.only is not None and query.name not in args.only:
                continue
            params = bench_queries.params_for(query, values)
            bindings = bind_parameters(query, params)
            text = paged_text(query, DEFAULT_PAGE, 0)
            sent = bind_values(text, bindings) if bindings else text
            path = f"/api/queries/{query.name}?" + urllib.parse.urlencode(params)

            def direct(sent: str = sent) -> float:
                return post(direct_conn, oxi.path, {"query": sent, "union-default-graph": ""})[0]

            def through(path: str = path) -> float:
                return get(rel, path)[0]

            def labels_cold(path: str = path) -> float:  # every label looked up again
                return get(cold, path)[0]

            def plain(path: str = path) -> float:  # the same answer, no label look-up
                return get(rel, path + "&format=sparql-json")[0]

            timed = timed_pair(direct, through, args.budget, cold=labels_cold, plain=plain)
            rows.append({"query": query.name, **timed})
            print(f"  {rows[-1]}", flush=True)

    print(f"\nrelmark in front of oxigraph server, {args.size} triples (ms, medians)")
    print("(relmark: the API's JSON with labels, as served again (labels kept, as when paging")
    print(" back or through IRIs seen before); cold: the same with every label looked up")
    print(" (RELMARK_LOOKUP_TTL=0: a page of IRIs never seen); no labels: ?format=sparql-json)")
    header = f"{'query':36} {'runs':>4} {'direct':>9} {'relmark':>9} {'ratio':>6}  target ≤1.2×"
    print(f"{header}  {'cold':>9} {'ratio':>6}  {'no labels':>9} {'ratio':>6}")
    for row in rows:
        line = (
            f"{row['query']:36} {row['runs']:>4} {row['direct_ms']:>9.2f} "
            f"{row['relmark_ms']:>9.2f} {row['ratio']:>6.2f}  {row['verdict']:<12}"
        )
        for key in ("cold_ms", "plain_ms"):
            if key in row:
                line += f"  {row[key]:>9.2f} {row[key] / row['direct_ms']:>6.2f}"
        print(line)
    shutil.rmtree(workdir, ignore_errors=True)
    if embedded_seconds is None:
        return
    if remote_seconds is None:
        print(f"\nfull materialisation: embedded {embedded_seconds:.1f} s (remote not run)")
        return
    print(
        f"\nfull materialisation: remote (rules evaluated by the server) {remote_seconds:.1f} s, "
        f"embedded {embedded_seconds:.1f} s ({remote_seconds / embedded_seconds:.2f}×)"
    )


if __name__ == "__main__":
    main()
