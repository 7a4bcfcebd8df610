"""`relmark import` of a CRM export against its parts: the RML engine alone, then `relmark load`.

    python benchmarks/bench_import.py                  # 100k rows (about 1M triples)
    python benchmarks/bench_import.py --rows 10000

A generated orders export (one row per order; customers and their relationship scores
repeated on each row, as a CRM's orders export has them) is imported three ways, each in a
fresh subprocess, into a fresh copy of a store that holds the selling firm (and has been
set up for inference, so both end by refreshing the inferences):

  import   relmark --store DIR import orders.csv --mapping bench_import_mapping.yml
  engine   .venv-rml/bin/python -m morph_kgc config.ini        (the same mapping → N-Triples)
  load     relmark --store DIR load out.nt --graph crm-export  (validated, like the import)

Seconds are wall-clock, interpreter start-up included; peak RSS is each process's
high-water mark as the kernel reports it when it is reaped (for `relmark import` that is the
larger of relmark's and the engine's, which it runs as a child). Targets: the import within
1.3x the engine's plus the load's seconds, its peak RSS within 1.5x the larger of theirs.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_load import measure  # noqa: E402

from relmark.importing import engine, load_mapping  # noqa: E402

RELMARK = [sys.executable, "-m", "relmark.cli"]
MAPPING = HERE / "bench_import_mapping.yml"
FIRM = """@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<https://w3id.org/relmark/crm/account/A001> a rm:FocalFirm , rm:Organization ;
    rdfs:label "Northwind Bank" .
"""
TARGET_TIME, TARGET_RSS = 1.3, 1.5
PRODUCTS = ["Current account", "Credit card", "Mortgage", "Savings deposit", "Personal loan"]
CHANNELS = ["FaceToFace", "Phone", "Email", "Web"]


def generate(path: Path, rows: int, seed: int = 20261205) -> None:
    """``rows`` orders by ``rows // 4`` customers (four orders each on average)."""
    rng = random.Random(seed)
    customers = max(1, rows // 4)
    scores = {c: [f"{rng.random():.2f}" for _ in range(3)] for c in range(customers)}
    seen: set[int] = set()
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "order_id",
                "order_date",
                "customer_id",
                "customer_name",
                "product",
                "amount",
                "channel",
                "is_repeat",
                "satisfaction",
                "trust",
                "commitment",
            ]
        )
        for order in range(rows):
            c = rng.randrange(customers)
            repeat = "true" if c in seen else "false"
            seen.add(c)
            writer.writerow(
                [
                    f"O{order:07d}",
                    f"20{rng.randint(20, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    f"K{c:06d}",
                    f"Customer {c}",
                    rng.choice(PRODUCTS),
                    f"{rng.randint(100, 99999) / 100:.2f}",
                    rng.choice(CHANNELS),
                    repeat,
                    *scores[c],
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relmark-bench-import-"))
    log = work / "log.txt"
    try:
        orders = work / "orders.csv"
        generate(orders, args.rows)
        firm = work / "firm.ttl"
        firm.write_text(FIRM)
        base = work / "base"
        # the firm, and the store set up for inference (`infer`), so both the import and the
        # load end by refreshing the inferences as they would in a served store
        for step in (["load", str(firm)], ["infer"]):
            if not measure([*RELMARK, "--store", str(base), *step], log, 600).ok:
                sys.exit(f"could not prepare the store; see {log}")
        stores = {name: work / name for name in ("import", "load")}
        for store in stores.values():
            shutil.copytree(base, store)

        imported = measure(
            [
                *RELMARK,
                "--store",
                str(stores["import"]),
                "import",
                str(orders),
                "--mapping",
                str(MAPPING),
            ],
            log,
            args.timeout,
        )
        document = work / "engine.yml"
        document.write_text(load_mapping(MAPPING).engine_document({"orders.csv": orders}))
        output = work / "out.nt"
        config = output.with_suffix(".ini")
        config.write_text(
            f"[CONFIGURATION]\noutput_file={output}\noutput_format=N-TRIPLES\nna_values=\n"
            f"number_of_processes=1\nlogging_level=WARNING\n\n[DataSource1]\nmappings={document}\n"
        )
        mapped = measure(
            [str(engine.rml_python()), "-m", "morph_kgc", str(config)], log, args.timeout
        )
        triples = sum(1 for _ in output.open("rb")) if output.exists() else 0
        loaded = measure(
            [
                *RELMARK,
                "--store",
                str(stores["load"]),
                "load",
                str(output),
                "--graph",
                "crm-export",
            ],
            log,
            args.timeout,
        )
        runs = {"relmark import": imported, "engine (morph-kgc)": mapped, "relmark load": loaded}
        print(f"{args.rows:,} rows -> {triples:,} triples")
        print(f"{'run':20} {'seconds':>9} {'rows/s':>9} {'peak RSS':>10}  ok")
        for name, run in runs.items():
            print(
                f"{name:20} {run.seconds:9.2f} {args.rows / run.seconds:9,.0f} "
                f"{run.rss_mb:7.0f} MB  {'yes' if run.ok else 'NO ' + run.detail}"
            )
        parts = mapped.seconds + loaded.seconds
        time_ratio = imported.seconds / parts
        rss_ratio = imported.rss_mb / max(mapped.rss_mb, loaded.rss_mb)
        print(f"{'engine + load':20} {parts:9.2f} {args.rows / parts:9,.0f}")
        print(f"time ratio  import / (engine + load) = {time_ratio:.2f}  (target <= {TARGET_TIME})")
        print(f"RSS ratio   import / max(engine, load) = {rss_ratio:.2f}  (target <= {TARGET_RSS})")
        if not all(run.ok for run in runs.values()):
            sys.exit(f"a run failed; see {log}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
