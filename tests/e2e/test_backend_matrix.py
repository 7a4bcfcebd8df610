"""The command line (``relmark load`` all or nothing, ``classify``, ``explain``,
``query --named``) against each remote back end, an Oxigraph server and Virtuoso.

The HTTP side of the three-back-end matrix is the protocol, Graph Store, classification
and named-question suites themselves (tests/e2e/test_sparql_protocol.py,
test_graph_store.py, test_api_classify.py, test_named_queries.py): their
``SERVER_BACKENDS`` runs each test that takes ``relmark_server`` on the embedded store and on
both engines (tests/conftest.py parametrises it). The tests here take the same servers, so
each engine starts once: ``relmark serve --workers 2`` in front of it, the demo data PUT
through ``/data`` into graphs ``urn:relmark:data:demo-*``. These engines are not the ones of
tests/e2e/test_remote_backends.py (graphs ``urn:relmark:data:bank`` …), so no demo data is
seen twice. Where an engine differs from the standard and relmark handles it, the note is in
service/relmark/stores/remote/ (and the README, "Running on a SPARQL server").
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests
import test_named_queries
from support.backends import REMOTE_SERVERS, Backend, relmark_cli
from support.server import DEMO_GRAPH_PREFIX
from test_api_classify import MARKET_MEMBER, SUPPORTER
from test_loading import BAD_SCORE, GOOD

from relmark.vocab import DEMO, HISTORY_GRAPH

#: Only the remote engines: the embedded store's CLI has suites of its own.
SERVER_BACKENDS = REMOTE_SERVERS
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


# --- the command line against each back end --------------------------------------------------


@pytest.fixture
def backend(server_backend: Backend) -> Backend:
    """The back end under test (its server, store location and engine)."""
    return server_backend


@pytest.fixture
def cli_store(backend: Backend) -> str:
    """Where ``relmark --store`` points: the engine itself (the server in front of it does
    not lock it, as ``relmark serve`` locks an embedded store)."""
    return backend.store


def everything(backend: Backend, store: str) -> set[tuple[str, str, str, str]]:
    """Every statement, read straight from the engine, but the history graph: a write that is
    undone leaves what it did recorded there, as it should."""
    assert backend.engine is not None
    return {q for q in backend.engine.graph_triples() if q[0] != HISTORY_GRAPH}


def cli(backend: Backend, store: str, *args: str) -> subprocess.CompletedProcess:
    return relmark_cli(store, backend.engine, *args)


def test_cli_load_parse_error_names_file_line_column_and_changes_nothing(
    backend: Backend, cli_store: str, tmp_path: Path
) -> None:
    good = tmp_path / "acme.ttl"
    good.write_text(GOOD, encoding="utf-8")
    broken = tmp_path / "broken.ttl"
    broken.write_text(GOOD + 'demo:x rm:trustLevel "unterminated .\n', encoding="utf-8")
    before = everything(backend, cli_store)
    assert len(before) > 1889  # the demo data, its inferences and the system graphs
    for flags in ([], ["--no-validate"]):
        done = cli(backend, cli_store, "load", *flags, str(good), str(broken))
        assert done.returncode == 2, done.stderr
        assert "broken.ttl:5:" in done.stderr
        assert everything(backend, cli_store) == before


def test_cli_load_violation_rejects_the_whole_load(
    backend: Backend, cli_store: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_SCORE, encoding="utf-8")
    other = tmp_path / "other.ttl"
    other.write_text(GOOD.replace("acme", "beta"), encoding="utf-8")
    before = everything(backend, cli_store)
    done = cli(backend, cli_store, "load", str(other), str(bad))
    assert done.returncode == 2
    assert "demo:rel" in done.stderr and "trustLevel" in done.stderr and "1.7" in done.stderr
    assert "nothing was loaded" in done.stderr
    as_json = cli(backend, cli_store, "load", "--report", "json", str(bad))
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["conforms"] is False
    assert any(r["focus_node"] == f"{DEMO}rel" for r in report["results"])
    assert everything(backend, cli_store) == before


def test_cli_load_writes_classifies_and_is_undone_over_http(
    backend: Backend, cli_store: str, tmp_path: Path
) -> None:
    good = tmp_path / "acme.ttl"
    good.write_text(GOOD, encoding="utf-8")
    graph = "urn:relmark:data:acme"
    before = everything(backend, cli_store)
    done = cli(backend, cli_store, "load", str(good))
    assert done.returncode == 0, done.stderr
    assert "loaded 5 triples into <urn:relmark:data:acme>" in done.stderr
    try:
        added = everything(backend, cli_store) - before
        assert (graph, DEMO + "zoe", RDFS_LABEL, "Zoe") in added
        classified = cli(backend, cli_store, "classify", DEMO + "zoe")
        assert classified.returncode == 0, classified.stderr
        assert "rm:Person" in classified.stdout and f"asserted in {graph}" in classified.stdout
    finally:  # the server_backend data must stay the demo's
        gone = requests.delete(
            backend.server.data, params={"graph": graph}, headers=backend.server.auth, timeout=120
        )
        assert gone.status_code == 204, gone.text
    assert everything(backend, cli_store) == before


def test_cli_classify_and_explain(backend: Backend, cli_store: str) -> None:
    """tests/e2e/test_api_classify.py's CLI checks, on the demo-* graphs of this module."""
    done = cli(backend, cli_store, "classify", SUPPORTER)
    assert done.returncode == 0, done.stderr
    assert "rm:Supporter (supporter)   [inferred]" in done.stdout
    assert "by ladder-supporter" in done.stdout
    assert f"asserted in {DEMO_GRAPH_PREFIX}bank" in done.stdout
    italian = cli(backend, cli_store, "classify", MARKET_MEMBER, "--lang", "it")
    assert "mercato dei clienti" in italian.stdout
    explained = cli(backend, cli_store, "explain", SUPPORTER, "rm:Supporter")
    assert explained.returncode == 0, explained.stderr
    assert "inferred by ladder-supporter" in explained.stdout
    assert f"[asserted in {DEMO_GRAPH_PREFIX}bank]" in explained.stdout
    assert "[asserted in urn:relmark:config]" in explained.stdout
    for args, message in (
        (("classify", DEMO + "nobody"), "no statement about"),
        (("explain", SUPPORTER, "http://example.org/Thing"), "not a class of"),
        (("explain", SUPPORTER, "rm:Advocate"), "is not an instance of"),
    ):
        refused = cli(backend, cli_store, *args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert message in refused.stderr


def test_cli_named_questions(backend: Backend, cli_store: str) -> None:
    """tests/e2e/test_named_queries.py's CLI checks (exact rows), against each back end."""
    done = cli(
        backend,
        cli_store,
        "query",
        "--named",
        "global-accounts",
        "--param",
        "firm=demo:ferromec",
        "--format",
        "csv",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["account,teams", f"{DEMO}voltaris-group,3"]
    done = cli(
        backend,
        cli_store,
        "query",
        "--named",
        "referral-market",
        "--param",
        "firm=demo:banca-lariana",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    rows = test_named_queries.tuples(json.loads(done.stdout)["rows"], ("source", "strong"))
    assert rows == test_named_queries.demo.Q1.expected
    refused = cli(
        backend, cli_store, "query", "--named", "referral-market", "--param", "firm=not an iri"
    )
    assert refused.returncode == 2
    assert "firm" in refused.stderr and "not an iri" in refused.stderr


def test_cli_named_question_with_a_decimal_parameter(backend: Backend, cli_store: str) -> None:
    """``query --named`` sends no LIMIT (the API pages with LIMIT 101), with a decimal
    parameter: the rows of every firm, in the question's order. (Virtuoso 7.2 fails such a
    query with SR128 when the decimal is a constant: remote_store binds it computed.)"""
    done = cli(
        backend,
        cli_store,
        "query",
        "--named",
        "repeat-share",
        "--param",
        "heuristic=0.75",
        "--format",
        "csv",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "seller,repeatAmount,totalAmount,share,meetsHeuristic",
        f"{DEMO}ferromec,1371000,1678000,0.817,true",
        f"{DEMO}banca-lariana,100600,128000,0.7859,true",
    ]
