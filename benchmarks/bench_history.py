"""Classification history figures: what recording costs a write, as-of answers, erasure.

    python benchmarks/bench_history.py --size 100k --repeat 40 --erasures 10

On a store holding SIZE triples of generate.py data (``bench_rules.prepared_store``), the
inferences made once (``ensure_and_record``, which also records the first memberships):

1. **Incremental write, history off vs on**: ``--repeat`` times, add one purchase of an
   existing customer from an existing firm (5 quads, as a Graph Store POST would) and
   refresh, then drop it and refresh; each write is timed once with ``refresh_inferences``
   (history off) and once with ``refresh_and_record`` (history on), the order alternating,
   so both see the same store. p50/p95 of add and remove, and the overhead.
2. **As-of classify**: ``history.read.as_of`` for resources with events, at now and at a
   time between two of their events: p50/p95 (the HTTP view adds JSON only).
3. **History size**: events and triples in ``urn:relmark:history`` after the writes.
4. **Erasure of one customer** (``history.forget``): ``--erasures`` distinct customers,
   p50/p95, with statements removed.

Stores go to a temporary directory under ``benchmarks/out/`` and are deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_rules  # noqa: E402


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.1f} ms, p95 {_p95(values) * 1000:.1f} ms"


def run(size: str, repeat: int, erasures: int) -> None:
    import pyoxigraph as ox

    from relmark.history.forget import forget
    from relmark.history.read import as_of, events_of
    from relmark.history.record import Cause, ensure_and_record, refresh_and_record
    from relmark.reasoning.explain import classify
    from relmark.reasoning.maintain import refresh_inferences
    from relmark.vocab import HISTORY_GRAPH, RM

    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    bench_rules.OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bench_rules.OUT) as directory:
        store = bench_rules.prepared_store(size, Path(directory))
        count = store.count()
        started = time.perf_counter()
        ensure_and_record(store)
        first = time.perf_counter() - started
        events = _count(store, f"?e a <{RM}MembershipEntered>", HISTORY_GRAPH)
        print(
            f"{size}: {count:,} quads; first full run with history: {first:.1f} s, "
            f"{events:,} memberships recorded"
        )
        pairs = list(
            store.query(
                f"SELECT ?customer ?firm WHERE {{ ?r a <{RM}CustomerRelationship> ;"
                f" <{RM}focalParty> ?firm ; <{RM}counterparty> ?customer }} LIMIT {repeat}"
            )
        )
        graph = ox.NamedNode("urn:relmark:data:bench-purchases")
        timings: dict[str, list[float]] = {k: [] for k in ("add-off", "add-on", "rm-off", "rm-on")}
        moved = 0
        for number, pair in enumerate(pairs):
            node = ox.NamedNode(f"urn:relmark:bench:new-purchase-{number}")
            date = ox.Literal("2026-11-20", datatype=ox.NamedNode(bench_rules.XSD + "date"))
            quads = [
                ox.Quad(node, rdf_type, ox.NamedNode(RM + "Purchase"), graph),
                ox.Quad(node, ox.NamedNode(RM + "buyer"), pair["customer"], graph),
                ox.Quad(node, ox.NamedNode(RM + "seller"), pair["firm"], graph),
                ox.Quad(node, ox.NamedNode(RM + "interactionDate"), date, graph),
                ox.Quad(node, ox.NamedNode(RM + "channel"), ox.NamedNode(RM + "Online"), graph),
            ]
            order = ("off", "on") if number % 2 == 0 else ("on", "off")
            for mode in order:
                store.add_quads(quads)
                started = time.perf_counter()
                summary = _refresh(store, mode, refresh_inferences, refresh_and_record, Cause)
                timings[f"add-{mode}"].append(time.perf_counter() - started)
                assert summary is not None and summary.incremental
                moved += mode == "on" and bool(summary.delta)
                store.drop_graph(graph.value)
                started = time.perf_counter()
                _refresh(store, mode, refresh_inferences, refresh_and_record, Cause)
                timings[f"rm-{mode}"].append(time.perf_counter() - started)
        for kind in ("add", "rm"):
            off, on = timings[f"{kind}-off"], timings[f"{kind}-on"]
            overhead = statistics.median(on) / statistics.median(off) - 1
            print(
                f"  incremental write ({'add' if kind == 'add' else 'remove'} one purchase,"
                f" {len(off)} samples): history off {_ms(off)}; on {_ms(on)};"
                f" p50 overhead {overhead:+.0%}"
            )
        print(f"  writes that changed a membership: {moved} of {len(pairs)}")
        triples = _count(store, "?s ?p ?o", HISTORY_GRAPH)
        events = _count(store, f"?e <{RM}eventResource> ?r", HISTORY_GRAPH)
        print(
            f"  history after {2 * len(pairs) * 2} refreshes: {events:,} events,"
            f" {triples:,} triples"
        )

        resources = [
            row["r"]
            for row in store.query(
                f"SELECT DISTINCT ?r WHERE {{ GRAPH <{HISTORY_GRAPH}> {{ ?e <{RM}eventResource> ?r"
                f" }} }} LIMIT {max(repeat, 50)}"
            )
        ]
        asof: list[float] = []
        now = datetime.now(UTC)
        for resource in resources:
            for when in (now, datetime(2026, 1, 1, tzinfo=UTC)):
                started = time.perf_counter()
                as_of(store, resource.value, when)
                asof.append(time.perf_counter() - started)
        print(f"  as-of classify ({len(asof)} answers): {_ms(asof)}")
        # the same resources classified as they are now (``reasoning.explain.classify``,
        # what GET /api/classify answers without asOf): the reference in the same run
        current: list[float] = []
        for resource in resources:
            started = time.perf_counter()
            classify(store, resource.value, "en")
            current.append(time.perf_counter() - started)
        print(f"  classify now, for reference ({len(current)} answers): {_ms(current)}")
        started = time.perf_counter()
        events_of(store, resources[0].value)
        customers = [
            row["c"]
            for row in store.query(
                f"SELECT DISTINCT ?c WHERE {{ ?r a <{RM}CustomerRelationship> ;"
                f" <{RM}counterparty> ?c }} OFFSET {repeat} LIMIT {erasures}"
            )
        ]
        erase: list[float] = []
        statements = []
        for customer in customers:
            started = time.perf_counter()
            receipt = forget(store, customer.value, requested_by="bench")
            erase.append(time.perf_counter() - started)
            statements.append(receipt.statements)
        print(
            f"  erasure of one customer ({len(erase)} customers, "
            f"{statistics.median(statements):.0f} statements each at the median): {_ms(erase)}"
        )
        store.close()


def _refresh(store, mode, refresh_inferences, refresh_and_record, cause_type):
    if mode == "off":
        return refresh_inferences(store)
    return refresh_and_record(store, cause=cause_type("graph-store", "bench"))


def _count(store, pattern: str, graph: str) -> int:
    rows = store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ {pattern} }} }}")
    return int(next(iter(rows))["n"].value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--erasures", type=int, default=10)
    args = parser.parse_args()
    run(args.size, args.repeat, args.erasures)


if __name__ == "__main__":
    main()
