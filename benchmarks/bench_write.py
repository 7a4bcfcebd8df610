"""Validated writes into a store that already holds data: bulk loads and small writes.

    python benchmarks/bench_write.py --size 100k
    python benchmarks/bench_write.py --size 1M --writes 200

Two figures (issue 17), both against a store already holding SIZE triples of generate.py
data (file A, loaded with ``relmark load --no-validate``):

1. **Validated load of SIZE new triples** (file B: A's data with every IRI moved from
   ``…/bench/`` to ``…/bench2/``, so nothing overlaps): ``relmark --store DIR load B``, wall
   clock from spawn to exit, against bare pyoxigraph loading the same file B in a fresh
   process, into a fresh store and into a copy of the store holding A. Target: ≤ 3×.
2. **A 5-quad write about an existing resource** (one customer relationship: its trust and
   commitment levels replaced, a label added: 2 quads removed, 3 added), validated in the
   context of the store (``loading.validate_write``), ``--writes`` times on distinct
   relationships: p50 and p95 in ms. Target: p95 < 20 ms. The same write applied through
   ``EmbeddedStore.update_validated`` as ``DELETE DATA … ; INSERT DATA …`` (validated and
   applied in one transaction) is timed for every write, and a ``DELETE/INSERT … WHERE``
   update of one value (scratch copy, graph diffed, validated, applied) for ``--updates``.

Stores and logs go to ``benchmarks/out/write/run-<pid>/`` and are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
import references  # noqa: E402

DATA_GRAPH = "urn:relmark:data:a"
RM = "https://w3id.org/relmark/ontology#"
XSD = "http://www.w3.org/2001/XMLSchema#"


def _size(text: str) -> int:
    text = text.lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def _bare(path: Path, store_dir: Path) -> None:
    """Child process: bare pyoxigraph bulk load of one file."""
    import pyoxigraph as ox

    store = ox.Store(str(store_dir))
    store.bulk_load(path=str(path), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode("urn:b"))
    store.flush()


def _timed(cmd: list[str], log: Path) -> float:
    with log.open("ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        start = time.perf_counter()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed ({done.returncode}); see {log}")
    return seconds


def bulk(a: Path, b: Path, work: Path, repeat: int) -> dict[str, float]:
    """Median seconds of each way of loading B; the stores holding A are made once."""
    relmark = references.tool("relmark")
    log = work / "bulk.log"
    base = work / "base"
    _timed([relmark, "--store", str(base), "load", "--no-validate", str(a)], log)
    bare_base = work / "bare-base"
    _timed([sys.executable, __file__, "--bare", str(a), str(bare_base)], log)
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        for name in ("bare-empty", "bare-over-A", "relmark-novalidate", "relmark"):
            target = work / name
            shutil.rmtree(target, ignore_errors=True)
            if name == "bare-over-A":
                shutil.copytree(bare_base, target)
            elif name.startswith("relmark"):
                shutil.copytree(base, target)
            if name.startswith("bare"):
                cmd = [sys.executable, __file__, "--bare", str(b), str(target)]
            else:
                cmd = [relmark, "--store", str(target), "load", str(b)]
                if name == "relmark-novalidate":
                    cmd.insert(-1, "--no-validate")
            times.setdefault(name, []).append(_timed(cmd, log))
            shutil.rmtree(target, ignore_errors=True)
    return {name: statistics.median(values) for name, values in times.items()}


def _triples(quads: list) -> str:
    return " ".join(f"{q.subject} {q.predicate} {q.object} ." for q in quads)


def small_writes(store_dir: Path, writes: int, updates: int, compact: bool) -> dict[str, float]:
    """p50/p95 ms of validating (and of applying) a 5-quad write about a stored resource.

    ``compact``: first compact the store as ``relmark serve`` does at start-up (a store
    fresh from a bulk load has many overlapping files, and every lookup reads each)."""
    import pyoxigraph as ox

    from relmark.loading import ShapesCheck, compiled_shapes, validate_write
    from relmark.stores.embedded import EmbeddedStore
    from relmark.vocab import ONTOLOGY_DIR, SHAPES_FILE

    compiled_shapes(ONTOLOGY_DIR / SHAPES_FILE)  # compiled once per process, not per write
    store = EmbeddedStore(store_dir)
    if compact:
        store.optimize()
    try:
        rows = store.query(
            f"SELECT ?r ?t ?c ?g WHERE {{ GRAPH ?g {{ ?r a <{RM}CustomerRelationship> ; "
            f"<{RM}trustLevel> ?t ; <{RM}commitmentLevel> ?c }} }} LIMIT {writes}"
        )
        found = [(r["r"], r["t"], r["c"], r["g"]) for r in rows]
        decimal = ox.NamedNode(XSD + "decimal")
        trust, commitment = ox.NamedNode(RM + "trustLevel"), ox.NamedNode(RM + "commitmentLevel")
        label = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
        validated: list[float] = []
        applied: list[float] = []
        check = ShapesCheck(store)
        for n, (rel, t, c, g) in enumerate(found):
            removed = [ox.Quad(rel, trust, t, g), ox.Quad(rel, commitment, c, g)]
            added = [
                ox.Quad(
                    rel, trust, ox.Literal(f"0.{(n + 37 * compact) % 89 + 10}", datatype=decimal), g
                ),
                ox.Quad(rel, commitment, ox.Literal("0.62", datatype=decimal), g),
                ox.Quad(rel, label, ox.Literal(f"relationship {n}"), g),
            ]
            start = time.perf_counter()
            report = validate_write(store, added, removed)
            validated.append((time.perf_counter() - start) * 1000)
            if not report.conforms:
                raise SystemExit(f"the benchmark's write does not conform:\n{report.text}")
            # the same write as a SPARQL update (DELETE DATA ; INSERT DATA): checked, applied
            update = (
                f"DELETE DATA {{ GRAPH {g} {{ {_triples(removed)} }} }} ;\n"
                f"INSERT DATA {{ GRAPH {g} {{ {_triples(added)} }} }}"
            )
            start = time.perf_counter()
            store.update_validated(update, check, [g.value])
            applied.append((time.perf_counter() - start) * 1000)
        where: list[float] = []
        for rel, _, _, g in found[:updates]:
            update = (
                f"DELETE {{ GRAPH {g} {{ {rel} <{RM}trustLevel> ?t }} }} "
                f"INSERT {{ GRAPH {g} {{ {rel} <{RM}trustLevel> 0.7 }} }} "
                f"WHERE {{ GRAPH {g} {{ {rel} <{RM}trustLevel> ?t }} }}"
            )
            start = time.perf_counter()
            store.update_validated(update, check, [g.value])
            where.append((time.perf_counter() - start) * 1000)
    finally:
        store.close()

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]

    result = {
        "writes": float(len(validated)),
        "validate p50 ms": statistics.median(validated),
        "validate p95 ms": p95(validated),
        "update DATA p50 ms": statistics.median(applied),
        "update DATA p95 ms": p95(applied),
    }
    if where:
        result["update WHERE p50 ms"] = statistics.median(where)
        result["update WHERE p95 ms"] = p95(where)
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        _bare(Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100k")
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--updates", type=int, default=10, help="writes through update_validated")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-bulk", action="store_true")
    args = ap.parse_args()
    size = _size(args.size)
    out = HERE / "out"
    a = out / f"data-{args.size.lower()}.nt"
    if not a.exists():
        generate.main(["--triples", str(size), "--out", str(a)])
    b = out / f"data-{args.size.lower()}-new.nt"
    if not b.exists():
        b.write_bytes(a.read_bytes().replace(b"/relmark/bench/", b"/relmark/bench2/"))
    work = out / "write" / f"run-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"store holds {args.size} triples (A); writes: {b.name} ({size:,} new triples)")
        if not args.skip_bulk:
            medians = bulk(a, b, work, args.repeat)
            for name, seconds in medians.items():
                ratios = " ".join(
                    f"{seconds / medians[ref]:.2f}x {ref}" for ref in ("bare-empty", "bare-over-A")
                )
                print(f"  {name:20} {seconds:7.2f} s   {ratios}")
        base = work / "small"
        relmark = references.tool("relmark")
        _timed([relmark, "--store", str(base), "load", "--no-validate", str(a)], work / "s.log")
        for compact in (False, True):
            print(
                "  small writes, store "
                + ("compacted (as serve runs it)" if compact else "as bulk-loaded")
            )
            figures = small_writes(base, args.writes, 0 if compact else args.updates, compact)
            for name, value in figures.items():
                print(f"    {name:26} {value:8.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
