"""``make run``: a restart keeps what users changed, and Ctrl-C ends it cleanly.

These tests run ``make run`` itself (its recipes, not a copy of them), on a store and a
port of their own, and stop it as Ctrl-C does: SIGINT to its whole process group.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from support.paths import RELMARK, ROOT
from support.server import SERVER_TOKEN, free_port, wait_until_ready

#: Sent with reads too: harmless where reads are open, needed where they are not.
AUTH = {"Authorization": f"Bearer {SERVER_TOKEN}"}
RM = "https://w3id.org/relmark/ontology#"
ELISA = "https://w3id.org/relmark/demo/cr-elisa-mariani"
COMMITMENT = (
    f"SELECT ?c {{ GRAPH <urn:relmark:data:bank> {{ <{ELISA}> <{RM}commitmentLevel> ?c }} }}"
)
LOWER_COMMITMENT = (
    f"DELETE {{ GRAPH <urn:relmark:data:bank> {{ <{ELISA}> <{RM}commitmentLevel> ?c }} }} "
    f"INSERT {{ GRAPH <urn:relmark:data:bank> {{ <{ELISA}> <{RM}commitmentLevel> 0.1 }} }} "
    f"WHERE {{ GRAPH <urn:relmark:data:bank> {{ <{ELISA}> <{RM}commitmentLevel> ?c }} }}"
)
A_REFERRAL = """\
@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix demo: <https://w3id.org/relmark/demo/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
demo:ref-what-if-restart a rm:Referral ;
    rm:referrer demo:elisa-mariani ;
    rm:referredTo demo:banca-lariana ;
    rm:referredParty demo:marta-sala ;
    rm:interactionDate "2026-11-20"^^xsd:date .
"""


def _make_env() -> dict[str, str]:
    """The environment ``make run`` gets from a shell, with the write token set.

    A make that runs pytest (``make test``) exports its jobserver in MAKEFLAGS; the inner
    make must not inherit it (it would warn, or wait on the outer make's tokens).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["RELMARK_TOKEN"] = SERVER_TOKEN
    return env


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    """``make run`` installs what is missing first; ``make test`` already did (pytest's
    prerequisites), and a test must not run ``pip`` or ``npm ci`` behind the user's back."""
    question = subprocess.run(
        ["make", "-q", "install", "npm-deps"], cwd=ROOT, env=_make_env(), capture_output=True
    )
    if question.returncode != 0:
        pytest.skip("make install npm-deps is not up to date (run `make install npm-deps`)")


@contextmanager
def make_run(store: Path, log: Path) -> Iterator[str]:
    """``make run`` on ``store`` and a free port, in its own process group; the base URL.

    Stopped at the end like Ctrl-C in a terminal: SIGINT to the whole group (make, the
    supervisor, its workers and any process they started).
    """
    port = free_port()
    command = ["make", "--no-print-directory", "run", f"STORE={store}", f"PORT={port}"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_make_env(),
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url + "/healthz", log, "make run", 120)
        yield url
    finally:
        code = _interrupt(process, log)
    assert code == -signal.SIGINT, log.read_text()  # make ends so on Ctrl-C, whatever ran


def _interruptible() -> None:
    """Ctrl-C's default action for make, as in a terminal: a shell that started this run in
    the background (a CI script with ``&``) leaves SIGINT ignored, and make keeps that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(process: subprocess.Popen, log: Path) -> int:
    """Ctrl-C: SIGINT to the process group, then wait until every process of it is gone.

    Returns the exit status of the group's leader.
    """
    group = process.pid
    os.killpg(group, signal.SIGINT)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{process.args} did not stop on SIGINT:\n{log.read_text()[-3000:]}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return code
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)
    pytest.fail(f"processes of {process.args} outlived SIGINT:\n{log.read_text()[-3000:]}")


def commitment(url: str) -> list[str]:
    response = requests.get(
        url + "/sparql",
        params={"query": COMMITMENT},
        headers={"Accept": "application/sparql-results+json", **AUTH},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [b["c"]["value"] for b in response.json()["results"]["bindings"]]


def cli_commitment(store: Path) -> list[str]:
    result = subprocess.run(
        [str(RELMARK), "--store", str(store), "query", COMMITMENT, "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1:]


def test_restart_keeps_a_change_and_ctrl_c_is_clean(tmp_path: Path) -> None:
    """Change a demo resource through SPARQL Update, restart with make run: still changed.

    Each stop is a Ctrl-C after a what-if (which starts a process pool in the worker that
    answers it): it must leave no "leaked semaphore objects" warning behind.
    """
    store, log = tmp_path / "store", tmp_path / "make-run.log"
    with make_run(store, log) as url:
        assert commitment(url) == ["0.78"]
        response = requests.post(
            url + "/sparql",
            data={"update": LOWER_COMMITMENT},
            headers={"Authorization": f"Bearer {SERVER_TOKEN}"},
            timeout=60,
        )
        assert response.status_code in (200, 204), response.text
        assert commitment(url) == ["0.1"]
        for _ in range(2):  # likely on both workers
            what_if = requests.post(
                url + "/api/classify",
                data=A_REFERRAL.encode(),
                headers={"Content-Type": "text/turtle", **AUTH},
                timeout=120,
            )
            assert what_if.status_code == 200, what_if.text
    first_run = log.read_text()
    assert "loaded" in first_run  # a new store: the demo went in

    with make_run(store, log) as url:
        assert commitment(url) == ["0.1"]
    second_run = log.read_text()[len(first_run) :]
    assert "the store already holds data" in second_run, second_run
    assert "the demo is not loaded" in second_run

    text = log.read_text()
    assert "leaked" not in text, text
    assert "Traceback" not in text, text
    assert text.count("stopped") == 2, text  # the supervisor's last word, each time

    # `make demo` is how to get the demo back, explicitly
    subprocess.run(
        ["make", "--no-print-directory", "demo", f"STORE={store}"],
        cwd=ROOT,
        env=_make_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert cli_commitment(store) == ["0.78"]


def test_demo_goes_only_into_a_store_that_never_had_data(tmp_path: Path) -> None:
    """``relmark demo`` (what make run runs): loads a new store; then never again on its
    own, not even after the user deleted the demo's graphs."""
    from relmark.stores.embedded import EmbeddedStore

    store = tmp_path / "store"

    def demo(*flags: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(RELMARK), "--store", str(store), "demo", *flags],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result

    assert "loaded" in demo().stderr
    assert cli_commitment(store) == ["0.78"]
    assert "already holds data" in demo().stderr

    with EmbeddedStore(store) as opened:
        for graph in opened.graph_names():
            if graph.startswith("urn:relmark:data:"):
                opened.drop_graph(graph)
    answer = demo().stderr
    assert "the demo was loaded at" in answer and "removed since" in answer, answer
    assert cli_commitment(store) == []

    assert "loaded" in demo("--reset").stderr
    assert cli_commitment(store) == ["0.78"]


def test_ctrl_c_on_make_runs_server_exits_0_without_leaks(tmp_path: Path) -> None:
    """The server command of ``make run`` (read from ``make -n run``), run directly, so its
    own exit status is seen: SIGINT to its group after what-ifs ends it with 0, quietly."""
    store, log = tmp_path / "store", tmp_path / "serve.log"
    port = free_port()
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", f"STORE={store}", f"PORT={port}"],
        cwd=ROOT,
        env=_make_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    commands = [shlex.split(line) for line in dry_run.stdout.splitlines() if line.strip()]
    for command in commands[:-1]:  # the demo, into the new store
        subprocess.run(command, cwd=ROOT, env=_make_env(), check=True, capture_output=True)
    serve = commands[-1]
    assert "serve" in serve and "--workers" in serve, serve
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve, cwd=ROOT, env=_make_env(), stdout=out, stderr=out, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url + "/healthz", log, "relmark serve", 120)
        for _ in range(3):
            response = requests.post(
                url + "/api/classify",
                data=A_REFERRAL.encode(),
                headers={"Content-Type": "text/turtle", **AUTH},
                timeout=120,
            )
            assert response.status_code == 200, response.text
    finally:
        code = _interrupt(process, log)
    text = log.read_text()
    assert code == 0, text
    assert "leaked" not in text and "Traceback" not in text, text
    assert "stopped" in text
