"""Bulk-load time and peak memory: relmark against bare pyoxigraph and rdflib.

    python benchmarks/bench_load.py                          # 100k and 1M, median of 3
    python benchmarks/bench_load.py --sizes 100k --repeat 1

For each size, each loader runs --repeat times, each time in a fresh subprocess (and, for
the stores, into a fresh directory), rounds interleaved so drift hits every loader alike:

  pyoxigraph          Store(dir).bulk_load(path=file, to_graph=<urn:relmark:data:bench>)
  rdflib              rdflib.Graph().parse(file, format="nt")   (in memory, for scale)
  relmark-novalidate  relmark --store DIR load --no-validate FILE
  relmark             relmark --store DIR load FILE             (with SHACL validation)

Seconds are wall-clock from spawning the process to reaping it, interpreter start-up and
imports included, for every loader alike. Peak RSS is the child's own high-water mark as the
kernel reports it when the child is reaped (os.wait4 → ru_maxrss; it also covers any
processes the child itself started and waited for), so runs never contaminate each other.
The ratios divide each loader's median by bare pyoxigraph's, next to relmark's targets.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
import references  # noqa: E402

LOADERS = ["pyoxigraph", "rdflib", "relmark-novalidate", "relmark"]
DATA_GRAPH = references.DATA_GRAPH
TARGETS = {  # loader: (max time ratio, max peak-RSS ratio) vs bare pyoxigraph
    "relmark-novalidate": (1.3, 1.5),
    "relmark": (3.0, 1.5),
}


@dataclass
class Run:
    seconds: float
    rss_mb: float
    ok: bool
    detail: str = ""


def worker(kind: str, path: str, store_dir: str) -> None:
    """Runs in the child process: one load, nothing else."""
    if kind == "pyoxigraph":
        import pyoxigraph as ox

        store = ox.Store(store_dir)
        store.bulk_load(path=path, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(DATA_GRAPH))
        store.flush()
        del store
    elif kind == "rdflib":
        import rdflib

        graph = rdflib.Graph()
        graph.parse(path, format="nt")
        print(f"loaded {len(graph)} triples")
    else:
        raise SystemExit(f"unknown worker {kind}")


def command(kind: str, path: Path, store_dir: Path) -> list[str]:
    if kind in ("pyoxigraph", "rdflib"):
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            kind,
            str(path),
            str(store_dir),
        ]
    relmark = references.tool("relmark")
    cmd = [relmark, "--store", str(store_dir), "load"]
    if kind == "relmark-novalidate":
        cmd.append("--no-validate")
    return [*cmd, str(path)]


def measure(cmd: list[str], log: Path, timeout: float) -> Run:
    """Spawns cmd, reaps it with os.wait4 (bounded by timeout) and reads its peak RSS."""
    with open(log, "ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        reaped = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    seconds = time.perf_counter() - t0
                    reaped = True
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    reaped = True
                    proc.returncode = -9
                    detail = f"timed out after {timeout:.0f} s"
                    return Run(timeout, usage.ru_maxrss / 1024, False, detail)
                time.sleep(0.005)
        finally:
            if not reaped:  # interrupted: do not leave the loader running
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    rss_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    if proc.returncode != 0:
        return Run(seconds, rss_mb, False, f"exit {proc.returncode}: {references.log_tail(log, 3)}")
    return Run(seconds, rss_mb, True)


def loaded_count(log: Path) -> int | None:
    """The triple count a loader printed last ("loaded 1,000,000 triples …"), if any."""
    found = re.findall(r"loaded ([\d,]+) triples", log.read_text(errors="replace"))
    return int(found[-1].replace(",", "")) if found else None


def startup_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["100k", "1M"])
    ap.add_argument("--repeat", type=int, default=3, help="runs per loader; the median is shown")
    ap.add_argument("--loaders", nargs="+", default=LOADERS, choices=LOADERS)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=HERE / "out" / "load" / f"run-{os.getpid()}",
        help="stores (deleted after each size) and logs; one per run, so runs never collide",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each run, wait up to this many seconds for other CPU use to settle",
    )
    args = ap.parse_args(argv)
    references.exit_on_sigterm()

    loaders = list(args.loaders)
    notes: list[str] = []
    if any(k.startswith("relmark") for k in loaders):
        ok, why = references.relmark_runnable()
        if not ok:
            notes.append(f"relmark rows skipped: `relmark load` not runnable yet ({why})")
            loaders = [k for k in loaders if not k.startswith("relmark")]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    python = startup_seconds([sys.executable, "-c", "import pyoxigraph"], 3)
    print(f"python start-up + import pyoxigraph: {python:.2f} s")
    if any(k.startswith("relmark") for k in loaders):
        cli = startup_seconds([references.tool("relmark"), "--help"], 3)
        print(f"relmark CLI start-up (`relmark --help`): {cli:.2f} s")

    table: list[tuple[str, int, str, Run, float]] = []
    for size in args.sizes:
        target = generate.parse_size(size)
        path = HERE / "out" / f"data-{size.lower()}.nt"
        if not path.exists():
            print(f"generating {path.name} …", flush=True)
            generate.generate(target, path)
        with open(path, "rb") as fh:  # read once so every loader starts from a warm page cache
            triples = sum(1 for _ in fh)
        print(f"\n{path.name}: {triples} triples, {path.stat().st_size / 1e6:.0f} MB", flush=True)
        runs: dict[str, list[Run]] = {k: [] for k in loaders}
        for rep in range(args.repeat):
            for kind in loaders:
                work = args.workdir / f"{size.lower()}-{kind}"
                store_dir = work / "store"
                if store_dir.exists():
                    shutil.rmtree(store_dir)
                work.mkdir(parents=True, exist_ok=True)
                log = work / f"run{rep + 1}.log"
                log.unlink(missing_ok=True)
                busy = references.wait_quiet(args.quiet_wait)
                if busy >= 0.3:
                    notes.append(
                        f"{size} {kind} run {rep + 1}: other processes used {busy:.2f} CPUs"
                    )
                run = measure(command(kind, path, store_dir), log, args.timeout)
                count = loaded_count(log)
                if run.ok and count is not None and count < triples:
                    run.detail = f"loaded {count} of {triples} triples"
                runs[kind].append(run)
                rate = triples / run.seconds if run.ok else 0
                status = "ok" if run.ok else "FAILED"
                print(
                    f"  run {rep + 1} {kind:<19} {run.seconds:8.2f} s {rate:>10,.0f} triples/s "
                    f"{run.rss_mb:8.0f} MB  {status} {run.detail}",
                    flush=True,
                )
        for kind in loaders:
            good = [r for r in runs[kind] if r.ok]
            if not good:
                notes.append(f"{size} {kind}: every run failed ({runs[kind][0].detail})")
                continue
            median = Run(
                statistics.median(r.seconds for r in good),
                statistics.median(r.rss_mb for r in good),
                True,
                f"{len(good)}/{len(runs[kind])} runs ok",
            )
            table.append((size, triples, kind, median, triples / median.seconds))
        for kind in loaders:  # stores can be large; the logs stay
            shutil.rmtree(args.workdir / f"{size.lower()}-{kind}" / "store", ignore_errors=True)

    print()
    print(
        f"{'size':<6} {'loader':<19} {'seconds':>8} {'triples/s':>11} {'peak RSS MB':>12} "
        f"{'time ×':>7} {'RSS ×':>6}  targets"
    )
    base = {size: run for size, _, kind, run, _ in table if kind == "pyoxigraph"}
    for size, _, kind, run, rate in table:
        ref = base.get(size)
        t_ratio = run.seconds / ref.seconds if ref else None
        m_ratio = run.rss_mb / ref.rss_mb if ref else None
        targets = ""
        if kind in TARGETS and t_ratio is not None and m_ratio is not None:
            max_t, max_m = TARGETS[kind]
            t_ok = "ok" if t_ratio <= max_t else "MISS"
            m_ok = "ok" if m_ratio <= max_m else "MISS"
            targets = f"time ≤{max_t:g}× {t_ok}, RSS ≤{max_m:g}× {m_ok}"
        fmt = lambda x: "—" if x is None else f"{x:.2f}"  # noqa: E731
        print(
            f"{size:<6} {kind:<19} {run.seconds:>8.2f} {rate:>11,.0f} {run.rss_mb:>12.0f} "
            f"{fmt(t_ratio):>7} {fmt(m_ratio):>6}  {targets}"
        )
    if notes:
        print("\nnotes:")
        for note in notes:
            print("  - " + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
