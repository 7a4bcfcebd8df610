"""Start and stop SPARQL endpoints as subprocesses on 127.0.0.1, each pre-loaded with one file.

Each helper is a context manager that yields an :class:`Endpoint` once the server answers
``ASK {}`` with 200, and always stops the server (terminate, then kill) on the way out:

    with oxigraph_server(nt, workdir) as ep:  # `oxigraph load` + `oxigraph serve`
    with rdflib_endpoint_server(nt, workdir) as ep:  # `rdflib-endpoint serve FILE`
    with bare_flask_server(nt, workdir) as ep:  # benchmarks/bare_flask.py
    with relmark_server(nt, workdir) as ep:  # `relmark load --no-validate` + `relmark serve`

Stores are deleted when the server stops; logs stay in ``workdir``. Give each concurrent
benchmark run its own ``workdir`` (the scripts use ``benchmarks/out/work/run-<pid>/``).

The data goes the same way into every engine that has named graphs: into one named graph,
with the union of all graphs as the default graph (relmark's layout, see docs/architecture.md).
rdflib-endpoint serves an rdflib Dataset with default_union=True, the same view.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
DATA_GRAPH = "urn:relmark:data:bench"
ACCEPT_JSON = "application/sparql-results+json"


def tool(name: str) -> str:
    """A console script of the running venv, else the one on PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


@dataclass
class Endpoint:
    name: str
    url: str  # the /sparql URL
    pid: int
    log: Path
    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/sparql"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path, n: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def run_step(cmd: list[str], log: Path, timeout: float) -> float:
    """Runs one set-up command to completion (bounded), appending its output to log."""
    t0 = time.perf_counter()
    with open(log, "ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{log_tail(log)}")
    return time.perf_counter() - t0


def query_once(
    host: str, port: int, query: str, path: str = "/sparql", timeout: float = 60.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "GET",
            f"{path}?{urllib.parse.urlencode({'query': query})}",
            headers={"Accept": ACCEPT_JSON},
        )
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def busy_cpus(seconds: float = 0.5) -> float:
    """How many CPUs were busy (not idle/iowait) over the next few moments, from /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return float("nan")
    total = total1 - total0
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / total) if total > 0 else 0.0


def wait_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Waits (at most max_wait s) until other processes use under threshold CPUs; returns the
    last reading, so a noisy run can be told from a quiet one."""
    deadline = time.monotonic() + max_wait
    busy = busy_cpus()
    while busy >= threshold and time.monotonic() < deadline:
        time.sleep(2.0)
        busy = busy_cpus()
    return busy


def exit_on_sigterm() -> None:
    """Turns SIGTERM (e.g. from `timeout`) into SystemExit, so the servers get stopped."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def wait_ready(proc: subprocess.Popen, ep: Endpoint, timeout: float) -> float:
    """Polls ASK {} until 200; fails fast if the server exits or keeps answering 4xx.
    Bounded in time and tries."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    tries = 0
    client_errors = 0
    last = ""
    while time.perf_counter() < deadline and tries < 100_000:
        tries += 1
        if proc.poll() is not None:
            raise RuntimeError(f"{ep.name} exited with {proc.returncode}:\n{log_tail(ep.log)}")
        try:
            status, body = query_once(ep.host, ep.port, "ASK {}", ep.path, timeout=5.0)
            if status == 200:
                return time.perf_counter() - t0
            last = f"HTTP {status}: {body[:200]!r}"
            client_errors = client_errors + 1 if 400 <= status < 500 else 0
            if client_errors >= 20:
                raise RuntimeError(f"{ep.name} at {ep.url} keeps answering {last}")
        except OSError as e:
            last = repr(e)
        time.sleep(0.1 if tries < 50 else 0.5)
    raise TimeoutError(f"{ep.name} not ready after {timeout:.0f} s ({last}):\n{log_tail(ep.log)}")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stops the server we started, by its own process group (started with a new session)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@contextlib.contextmanager
def serving(
    name: str,
    cmd: list[str],
    port: int,
    log: Path,
    ready_timeout: float,
    path: str = "/sparql",
    env: dict[str, str] | None = None,
):
    """Starts cmd (new session, output to log, ``env`` added to the environment), waits
    until ready, yields, always stops."""
    with open(log, "ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    ep = Endpoint(name, f"http://127.0.0.1:{port}{path}", proc.pid, log, port=port, path=path)
    try:
        ready = wait_ready(proc, ep, ready_timeout)
        print(f"  {name}: ready on {ep.url} after {ready:.1f} s (pid {proc.pid})", flush=True)
        yield ep
    finally:
        stop(proc)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# -- the engines -------------------------------------------------------------------------------


@contextlib.contextmanager
def oxigraph_server(nt: Path, workdir: Path, ready_timeout: float = 300.0) -> Iterator[Endpoint]:
    """`oxigraph load` into a fresh directory, then `oxigraph serve --union-default-graph`."""
    store = fresh_dir(workdir / "oxigraph-store")
    log = workdir / "oxigraph.log"
    exe = tool("oxigraph")
    try:
        load = [exe, "load", "--location", str(store), "--file", str(nt), "--graph", DATA_GRAPH]
        seconds = run_step(load, log, timeout=1800)
        print(f"  oxigraph: loaded {nt.name} in {seconds:.1f} s", flush=True)
        port = free_port()
        cmd = [exe, "serve", "--location", str(store), "--bind", f"127.0.0.1:{port}"]
        cmd.append("--union-default-graph")
        with serving("oxigraph", cmd, port, log, ready_timeout) as ep:
            yield ep
    finally:
        shutil.rmtree(store, ignore_errors=True)


@contextlib.contextmanager
def rdflib_endpoint_server(
    nt: Path, workdir: Path, ready_timeout: float = 900.0
) -> Iterator[Endpoint]:
    """`rdflib-endpoint serve FILE` (rdflib in-memory Dataset, uvicorn, one process).
    Its SPARQL endpoint is at / (GET ?query=), not /sparql."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "rdflib-endpoint.log"
    port = free_port()
    cmd = [tool("rdflib-endpoint"), "serve", str(nt), "--host", "127.0.0.1", "--port", str(port)]
    with serving("rdflib-endpoint", cmd, port, log, ready_timeout, path="/") as ep:
        yield ep


@contextlib.contextmanager
def bare_flask_server(
    nt: Path, workdir: Path, ready_timeout: float = 300.0, threads: int = 8
) -> Iterator[Endpoint]:
    """benchmarks/bare_flask.py: bulk_load into a named graph, then serve with waitress,
    with as many threads as `relmark serve` uses by default (8), one process."""
    store = fresh_dir(workdir / "bare-flask-store")
    log = workdir / "bare-flask.log"
    port = free_port()
    cmd = [sys.executable, str(HERE / "bare_flask.py"), "--store", str(store)]
    cmd += ["--load", str(nt), "--port", str(port), "--threads", str(threads)]
    try:
        with serving("bare-flask", cmd, port, log, ready_timeout) as ep:
            yield ep
    finally:
        shutil.rmtree(store, ignore_errors=True)


def relmark_runnable() -> tuple[bool, str]:
    """Whether `relmark load` and `relmark serve` exist yet (they are being built)."""
    try:
        exe = tool("relmark")
    except FileNotFoundError as e:
        return False, str(e)
    for sub in ("load", "serve"):
        try:
            proc = subprocess.run([exe, sub, "--help"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"relmark {sub} --help: {e!r}"
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            return False, f"relmark {sub} --help exited {proc.returncode}: {last[0]}"
    return True, exe


@contextlib.contextmanager
def relmark_server(nt: Path, workdir: Path, ready_timeout: float = 1800.0) -> Iterator[Endpoint]:
    """`relmark --store DIR load --no-validate FILE`, then `relmark --store DIR serve`."""
    store = fresh_dir(workdir / "relmark-store")
    log = workdir / "relmark.log"
    exe = tool("relmark")
    try:
        load = [exe, "--store", str(store), "load", "--no-validate", str(nt)]
        seconds = run_step(load, log, 1800)
        print(f"  relmark: loaded {nt.name} in {seconds:.1f} s", flush=True)
        port = free_port()
        cmd = [exe, "--store", str(store), "serve", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", str(os.cpu_count() or 1)]  # the production setting
        with serving("relmark", cmd, port, log, ready_timeout) as ep:
            waited = wait_for_memory_copies(ep, ready_timeout)
            print(f"  relmark: every worker reads from memory after {waited:.1f} s", flush=True)
            yield ep
    finally:
        shutil.rmtree(store, ignore_errors=True)


def wait_for_memory_copies(ep: Endpoint, timeout: float, in_a_row: int = 20) -> float:
    """Seconds until /healthz says ``reads: memory`` ``in_a_row`` times running (each answer
    comes from whichever worker accepted it), so no run measures a worker still on disk."""
    started = time.monotonic()
    url = f"http://127.0.0.1:{ep.port}/healthz"
    streak = 0
    while streak < in_a_row:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"relmark's workers still read from disk after {timeout:.0f} s")
        with urllib.request.urlopen(url, timeout=10) as response:
            streak = streak + 1 if json.load(response).get("reads") == "memory" else 0
        if streak == 0:
            time.sleep(0.2)
    return time.monotonic() - started


ENGINES = {
    "oxigraph": oxigraph_server,
    "rdflib-endpoint": rdflib_endpoint_server,
    "bare-flask": bare_flask_server,
    "relmark": relmark_server,
}


if __name__ == "__main__":
    exit_on_sigterm()
    # smoke test: python benchmarks/references.py FILE.nt [engine ...]
    nt_file = Path(sys.argv[1]).resolve()
    names = sys.argv[2:] or ["oxigraph", "rdflib-endpoint", "bare-flask"]
    work = HERE / "out" / "work" / f"run-{os.getpid()}"
    for engine in names:
        with ENGINES[engine](nt_file, work / engine) as endpoint:
            q = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
            print(engine, *query_once(endpoint.host, endpoint.port, q, endpoint.path))
