"""Rule engine figures: full materialisation, incremental updates, and reference reasoners.

For each size, in one run and each measurement in its own child process (so peak RSS is
that measurement's own):

- ``full``: relmark's full materialisation (48 rules to a fixpoint, with provenance) on a
  store holding the data, the ontology and the config; seconds and peak RSS;
- ``incremental``: after a full run, N times: add one purchase of an existing customer
  from an existing firm (5 quads, as a Graph Store POST would), time the re-classification
  (``refresh_inferences``), then remove it and time that; p50/p95, and the ratio to the
  full run; then once a full recompute that finds one such write's change;
- ``owlready2`` (sizes up to ``--owl-max``): the same classes as OWL definitions classified
  by HermiT through owlready2 (``tests/oracles/owl_classifier.py``, the test oracle;
  Pellet's jars need a newer Java than this machine's 17), given ``--owl-timeout`` seconds;
- ``owlrl`` (sizes up to ``--owl-max``): the OWL 2 RL closure of ontology + data with
  ``owlrl`` on rdflib (a different job — generic RL entailment, not our rules — but the
  usual Python baseline).

    python benchmarks/bench_rules.py --sizes 2k,10k,100k,1m --repeat 30 --owl-max 100k

With ``--backend oxigraph`` the full and incremental figures are taken on a remote store: an
``oxigraph serve`` (PyPI ``oxigraph``) started by each child, the data posted to it through
relmark's Graph Store staging, the rules run by ``remote_rules`` and the incremental engine
over SPARQL (the reference reasoners are skipped: they do not depend on the back end).

With ``--copies 1,3,6`` the data is loaded under that many graph names at once (the same
facts stated by several sources) and the full and incremental figures are taken for each
count: a fact held in N graphs should cost what one does (``rules._workspace``)::

    python benchmarks/bench_rules.py --sizes demo,10k --copies 1,3,6 --repeat 10
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
#: Where the rules run: "embedded" (pyoxigraph on disk) or "oxigraph" (a remote server).
BACKEND = "embedded"
#: Under how many graph names the data is loaded (``--copies``).
COPIES = 1


def data_file(size: str) -> Path:
    """The generator's data set of that size, or ``demo``: the demo files as N-Triples."""
    path = OUT / f"data-{size.lower()}.nt"
    if size == "demo" and not path.exists():
        import pyoxigraph as ox

        from relmark.vocab import demo_paths

        OUT.mkdir(exist_ok=True)
        triples = [
            t for p in demo_paths() for t in ox.parse(path=str(p), format=ox.RdfFormat.TURTLE)
        ]
        ox.serialize(triples, str(path), format=ox.RdfFormat.N_TRIPLES)
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--triples", size, "--out", str(path)],
            check=True,
        )
    return path


def prepared_store(size: str, directory: Path) -> object:
    import pyoxigraph as ox

    from relmark.stores.embedded import EmbeddedStore
    from relmark.stores.system_graphs import sync_system_graphs

    store = EmbeddedStore(directory / "store") if BACKEND == "embedded" else _remote(directory)
    sync_system_graphs(store)
    data = data_file(size).read_bytes()
    names = ["urn:relmark:data:bench"] + [
        f"urn:relmark:data:bench-{n}" for n in range(2, COPIES + 1)
    ]
    store.bulk_replace_graphs({name: [(ox.RdfFormat.N_TRIPLES, data, "bench")] for name in names})
    store.take_changes()
    return store


def _remote(directory: Path) -> object:
    """A RemoteStore on an ``oxigraph serve`` this process starts (and stops at exit)."""
    import atexit
    import socket

    import requests

    from relmark.stores.remote.store import RemoteStore
    from relmark.stores.remote.transport import RemoteConfig

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binary = Path(sys.executable).with_name("oxigraph")
    command = [str(binary), "serve", "--location", str(directory / "oxigraph")]
    server = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(server.terminate)
    url = f"http://127.0.0.1:{port}/query"
    for _ in range(300):
        try:
            requests.get(url, params={"query": "ASK {}"}, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    return RemoteStore(RemoteConfig(url, timeout=3600, engine="oxigraph"))


def child_full(size: str) -> dict:
    from relmark.reasoning.maintain import rules_for
    from relmark.reasoning.remote_rules import materialise as materialise_remote
    from relmark.reasoning.rules import materialise

    with tempfile.TemporaryDirectory(dir=OUT) as directory:
        store = prepared_store(size, Path(directory))
        _, rules = rules_for()
        started = time.perf_counter()
        summary = (materialise if BACKEND == "embedded" else materialise_remote)(store, rules)
        seconds = time.perf_counter() - started
        store.close()
    return {
        "seconds": seconds,
        "inferred": summary.inferred,
        "derivations": summary.derivations,
        "provenance": summary.provenance,
    }


def child_incremental(size: str, repeat: int) -> dict:
    import pyoxigraph as ox

    from relmark.reasoning.maintain import ensure_inferences, refresh_inferences
    from relmark.vocab import RM

    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    with tempfile.TemporaryDirectory(dir=OUT) as directory:
        store = prepared_store(size, Path(directory))
        started = time.perf_counter()
        ensure_inferences(store)
        full = time.perf_counter() - started
        pairs = list(
            store.query(
                f"SELECT ?customer ?firm WHERE {{ ?r a <{RM}CustomerRelationship> ;"
                f" <{RM}focalParty> ?firm ; <{RM}counterparty> ?customer }} LIMIT {repeat}"
            )
        )
        graph = ox.NamedNode("urn:relmark:data:bench-purchases")
        adds, removes, kinds = [], [], []
        for number, pair in enumerate(pairs):
            node = ox.NamedNode(f"urn:relmark:bench:new-purchase-{number}")
            date = ox.Literal("2026-11-20", datatype=ox.NamedNode(XSD + "date"))
            quads = [
                ox.Quad(node, rdf_type, ox.NamedNode(RM + "Purchase"), graph),
                ox.Quad(node, ox.NamedNode(RM + "buyer"), pair["customer"], graph),
                ox.Quad(node, ox.NamedNode(RM + "seller"), pair["firm"], graph),
                ox.Quad(node, ox.NamedNode(RM + "interactionDate"), date, graph),
                ox.Quad(node, ox.NamedNode(RM + "channel"), ox.NamedNode(RM + "Online"), graph),
            ]
            store.add_quads(quads)
            started = time.perf_counter()
            summary = refresh_inferences(store)
            adds.append(time.perf_counter() - started)
            kinds.append(bool(summary and summary.incremental))
            store.drop_graph(graph.value)
            started = time.perf_counter()
            refresh_inferences(store)
            removes.append(time.perf_counter() - started)
        # a full recompute that finds one write's worth of change (what ``relmark infer
        # --full`` does after other clients wrote a remote engine): writes the difference
        store.add_quads(quads)
        started = time.perf_counter()
        rerun = refresh_inferences(store, full=True)
        rerun_seconds = time.perf_counter() - started
        store.close()
    return {
        "full_seconds": full,
        "incremental_all": all(kinds),
        "add_p50_ms": statistics.median(adds) * 1000,
        "add_p95_ms": _p95(adds) * 1000,
        "remove_p50_ms": statistics.median(removes) * 1000,
        "remove_p95_ms": _p95(removes) * 1000,
        "samples": len(adds),
        "rerun_seconds": rerun_seconds,
        "rerun_changed": f"+{rerun.added} −{rerun.removed}" if rerun else "",
    }


def child_owlready2(size: str) -> dict:
    import rdflib

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from oracles.owl_classifier import classify_with_owl

    from relmark.vocab import CONFIG_FILE, ONTOLOGY_DIR, ontology_paths

    graph = rdflib.Graph()
    for path in ontology_paths():
        graph.parse(path, format="turtle")
    graph.parse(data_file(size), format="nt")
    config = rdflib.Graph().parse(ONTOLOGY_DIR / CONFIG_FILE, format="turtle")
    started = time.perf_counter()
    found = classify_with_owl(graph, config)
    return {"seconds": time.perf_counter() - started, "members": sum(map(len, found.values()))}


def child_owlrl(size: str) -> dict:
    import owlrl
    import rdflib

    from relmark.vocab import ontology_paths

    graph = rdflib.Graph()
    for path in ontology_paths():
        graph.parse(path, format="turtle")
    graph.parse(data_file(size), format="nt")
    before = len(graph)
    started = time.perf_counter()
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(graph)
    return {"seconds": time.perf_counter() - started, "added": len(graph) - before}


XSD = "http://www.w3.org/2001/XMLSchema#"


def _triples(size: str) -> float:
    size = size.lower()
    if size == "demo":
        return 2e3
    return float(size.rstrip("km")) * {"k": 1e3, "m": 1e6}.get(size[-1], 1)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run_child(kind: str, size: str, timeout: float, repeat: int) -> dict:
    """One measurement in a fresh process; its peak RSS from the kernel's accounting."""
    command = [sys.executable, __file__, "--child", kind, "--sizes", size]
    command += ["--repeat", str(repeat), "--backend", BACKEND, "--copies", str(COPIES)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--owl-timeout", type=float, default=600)
    parser.add_argument("--skip", default="", help="comma-separated: owlready2,owlrl")
    parser.add_argument("--owl-max", default="100k", help="largest size given to the references")
    parser.add_argument("--backend", choices=("embedded", "oxigraph"), default="embedded")
    parser.add_argument(
        "--copies", help="comma-separated graph-name counts to load the data under (e.g. 1,3,6)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global BACKEND, COPIES
    BACKEND = args.backend
    if args.child and args.copies:
        COPIES = int(args.copies)
    if args.child:
        size = args.sizes
        work = {
            "full": lambda: child_full(size),
            "incremental": lambda: child_incremental(size, args.repeat),
            "owlready2": lambda: child_owlready2(size),
            "owlrl": lambda: child_owlrl(size),
        }[args.child]
        result = work()
        # the child's own peak, plus its children's (HermiT runs in a Java process)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result["peak_rss_mb"] = (own + children) / 1024
        print(json.dumps(result))
        return
    if args.copies:
        copies_table(args.sizes.split(","), [int(n) for n in args.copies.split(",")], args.repeat)
        return
    skip = set(filter(None, args.skip.split(",")))
    results = {}
    for size in args.sizes.split(","):
        data_file(size)
        row = {"full": run_child("full", size, 3600, args.repeat)}
        row["incremental"] = run_child("incremental", size, 7200, args.repeat)
        for kind in ("owlready2", "owlrl"):
            wanted = kind not in skip and BACKEND == "embedded"
            if wanted and _triples(size) <= _triples(args.owl_max):
                row[kind] = run_child(kind, size, args.owl_timeout, args.repeat)
        results[size] = row
        print_row(size, row)
    name = "rules.json" if BACKEND == "embedded" else f"rules-{BACKEND}.json"
    (OUT / name).write_text(json.dumps(results, indent=2))


def copies_table(sizes: list[str], counts: list[int], repeat: int) -> None:
    """Full and incremental figures with the data under 1, 3, 6… graph names, and the ratio
    of each to one copy (the target: within 2x)."""
    global COPIES
    results: dict[str, dict[int, dict]] = {}
    for size in sizes:
        data_file(size)
        print(f"\n== {size} ({BACKEND}), data under N graph names ==")
        print("N  full s  (xN=1)  peak RSS MB  (xN=1)  inferred  add p95 ms  remove p95 ms")
        rows: dict[int, dict] = {}
        for count in counts:
            COPIES = count
            full = run_child("full", size, 3600, repeat)
            inc = run_child("incremental", size, 3600, repeat)
            rows[count] = {"full": full, "incremental": inc}
            if "error" in full:
                print(f"{count}  full: {full['error']}")
                continue
            one = rows[counts[0]]["full"]
            print(
                f"{count:<2} {full['seconds']:6.2f}  {full['seconds'] / one['seconds']:5.2f}x"
                f"  {full['peak_rss_mb']:11.0f}  {full['peak_rss_mb'] / one['peak_rss_mb']:5.2f}x"
                f"  {full['inferred']:8}  {inc.get('add_p95_ms', float('nan')):10.1f}"
                f"  {inc.get('remove_p95_ms', float('nan')):13.1f}"
                + (f"  incremental: {inc['error']}" if "error" in inc else "")
            )
        results[size] = rows
    name = "rules-copies.json" if BACKEND == "embedded" else f"rules-copies-{BACKEND}.json"
    (OUT / name).write_text(json.dumps(results, indent=2))


def print_row(size: str, row: dict) -> None:
    full, inc = row["full"], row["incremental"]
    print(f"\n== {size} ({BACKEND}) ==")
    if "error" in full:
        print(f"full materialisation: {full['error']}")
    else:
        print(
            f"full materialisation: {full['seconds']:.1f} s, peak RSS {full['peak_rss_mb']:.0f} MB,"
            f" {full['inferred']} inferred triples, {full['derivations']} derivations,"
            f" {full['provenance']} provenance triples"
        )
    if "error" in inc:
        print(f"incremental: {inc['error']}")
    else:
        ratio = inc["add_p95_ms"] / 1000 / full.get("seconds", float("nan"))
        print(
            f"incremental, add one purchase ({inc['samples']} samples, all incremental:"
            f" {inc['incremental_all']}): p50 {inc['add_p50_ms']:.1f} ms,"
            f" p95 {inc['add_p95_ms']:.1f} ms ({ratio:.5f} of a full run);"
            f" remove it: p50 {inc['remove_p50_ms']:.1f} ms, p95 {inc['remove_p95_ms']:.1f} ms"
        )
        if "rerun_seconds" in inc:
            print(
                f"full recompute after one such write ({inc['rerun_changed']} inferred triples):"
                f" {inc['rerun_seconds']:.1f} s"
            )
    for kind in ("owlready2", "owlrl"):
        if kind in row:
            other = row[kind]
            if "error" in other:
                print(f"{kind}: {other['error']}")
            else:
                speedup = other["seconds"] / full["seconds"] if "seconds" in full else float("nan")
                print(
                    f"{kind}: {other['seconds']:.1f} s, peak RSS {other['peak_rss_mb'] or 0:.0f} MB"
                    f" (relmark full run {speedup:.1f}x faster)"
                )


if __name__ == "__main__":
    main()
