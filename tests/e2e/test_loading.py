"""`relmark load`, `validate`, `query`, `dump` and `restore` as a user runs them: real
processes, a real store on disk, and the promise that a failed load changes nothing."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyoxigraph as ox
import pytest

from relmark.stores.embedded import EmbeddedStore
from relmark.vocab import DEMO, RM, demo_paths

RELMARK = [sys.executable, "-m", "relmark.cli"]

GOOD = f"""@prefix rm: <{RM}> . @prefix demo: <{DEMO}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
demo:acme a rm:FocalFirm ; rdfs:label "Acme" .
demo:zoe a rm:Person ; rdfs:label "Zoe" ; rm:employedBy demo:acme .
"""
BAD_SCORE = f"""@prefix rm: <{RM}> . @prefix demo: <{DEMO}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
demo:acme a rm:FocalFirm ; rdfs:label "Acme" .
demo:zoe a rm:Person ; rdfs:label "Zoe" .
demo:rel a rm:CustomerRelationship ; rm:focalParty demo:acme ; rm:counterparty demo:zoe ;
    rm:trustLevel "1.7"^^xsd:decimal .
"""


def relmark(store: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RELMARK, "--store", str(store), *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def snapshot(store: Path) -> set[str]:
    """Every quad in the store, as text (blank nodes are not used in these tests)."""
    with EmbeddedStore(store) as opened:
        return {str(q) for g in [None, *opened.graph_names()] for q in opened.triples(g)}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "acme.ttl"
    path.write_text(GOOD, encoding="utf-8")
    return path


def test_load_validates_writes_and_summarises(store_dir, good_file):
    done = relmark(store_dir, "load", str(good_file))
    assert done.returncode == 0, done.stderr.decode()
    assert b"loaded 5 triples into <urn:relmark:data:acme>" in done.stderr
    assert b"triples/s" in done.stderr
    assert len(snapshot(store_dir)) == 5


def test_reloading_the_same_source_replaces_it(store_dir, good_file):
    assert relmark(store_dir, "load", str(good_file)).returncode == 0
    first = snapshot(store_dir)
    assert relmark(store_dir, "load", str(good_file)).returncode == 0
    assert snapshot(store_dir) == first


def test_gzip_and_stdin_and_explicit_graph(store_dir, good_file, tmp_path):
    zipped = tmp_path / "acme.ttl.gz"
    zipped.write_bytes(gzip.compress(good_file.read_bytes()))
    assert relmark(store_dir, "load", str(zipped)).returncode == 0
    done = relmark(
        store_dir, "load", "--graph", "piped", "--format", "turtle", "-", stdin=GOOD.encode()
    )
    assert done.returncode == 0, done.stderr.decode()
    with EmbeddedStore(store_dir) as opened:
        assert {"urn:relmark:data:acme", "urn:relmark:data:piped"} <= set(opened.graph_names())


def test_stdin_without_format_is_refused(store_dir):
    done = relmark(store_dir, "load", "-", stdin=GOOD.encode())
    assert done.returncode == 2
    assert b"--format" in done.stderr


def test_parse_error_names_file_line_column_and_changes_nothing(store_dir, good_file, tmp_path):
    assert relmark(store_dir, "load", str(good_file)).returncode == 0
    before = snapshot(store_dir)
    broken = tmp_path / "broken.ttl"
    broken.write_text(GOOD + 'demo:x rm:trustLevel "unterminated .\n', encoding="utf-8")
    for flags in ([], ["--no-validate"]):
        done = relmark(store_dir, "load", *flags, str(good_file), str(broken))
        assert done.returncode == 2, done.stderr.decode()
        assert b"broken.ttl:5:" in done.stderr, done.stderr.decode()
        assert snapshot(store_dir) == before


def test_violation_rejects_the_whole_load(store_dir, good_file, tmp_path):
    assert relmark(store_dir, "load", str(good_file)).returncode == 0
    before = snapshot(store_dir)
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_SCORE, encoding="utf-8")
    other = tmp_path / "other.ttl"
    other.write_text(GOOD.replace("acme", "beta"), encoding="utf-8")
    done = relmark(store_dir, "load", str(other), str(bad))
    assert done.returncode == 2
    text = done.stderr.decode()
    assert "demo:rel" in text and "trustLevel" in text and "1.7" in text
    assert snapshot(store_dir) == before

    as_json = relmark(store_dir, "load", "--report", "json", str(bad))
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["conforms"] is False
    assert any(r["focus_node"] == f"{DEMO}rel" for r in report["results"])


def test_validate_command(good_file, tmp_path):
    assert relmark(tmp_path / "unused", "validate", str(good_file)).returncode == 0
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_SCORE, encoding="utf-8")
    done = relmark(tmp_path / "unused", "validate", str(bad))
    assert done.returncode == 2
    assert b"trustLevel" in done.stderr


def test_demo_data_loads(store_dir):
    done = relmark(store_dir, "load", *map(str, demo_paths()))
    assert done.returncode == 0, done.stderr.decode()
    query = relmark(store_dir, "query", "--format", "csv", "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")
    assert int(query.stdout.decode().splitlines()[1]) > 500


def test_query_errors_and_formats(store_dir, good_file):
    relmark(store_dir, "load", str(good_file))
    ok = relmark(store_dir, "query", "--format", "json", f"SELECT ?l {{ <{DEMO}acme> ?p ?l }}")
    assert json.loads(ok.stdout)["results"]["bindings"]
    bad = relmark(store_dir, "query", "SELECT * WHERE { ?s }")
    assert bad.returncode == 2 and b"malformed query" in bad.stderr


def test_dump_restore_round_trips(store_dir, good_file, tmp_path):
    relmark(store_dir, "load", str(good_file))
    relmark(
        store_dir,
        "load",
        "--graph",
        "blank",
        "--format",
        "ntriples",
        "-",
        stdin=b'_:b0 <urn:p> "with a blank node" .\n',
    )
    dumped = relmark(store_dir, "dump")
    assert dumped.returncode == 0
    backup = tmp_path / "backup.nq"
    backup.write_bytes(dumped.stdout)
    other = tmp_path / "restored"
    done = relmark(other, "restore", str(backup))
    assert done.returncode == 0, done.stderr.decode()
    again = relmark(other, "dump").stdout

    def canonical(data: bytes) -> ox.Dataset:
        dataset = ox.Dataset(ox.parse(data, format=ox.RdfFormat.N_QUADS))
        dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
        return dataset

    assert canonical(again) == canonical(dumped.stdout)


def _big_ntriples(path: Path, triples: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(triples):
            out.write(f'<{DEMO}s{i // 8}> <{DEMO}p{i % 8}> "value number {i}" .\n')


def test_kill_minus_nine_mid_load_leaves_the_store_as_before(store_dir, good_file, tmp_path):
    assert relmark(store_dir, "load", str(good_file)).returncode == 0
    before = snapshot(store_dir)
    big = tmp_path / "big.nt"
    _big_ntriples(big, 1_500_000)
    journal = store_dir.with_name(store_dir.name + ".journal")
    process = subprocess.Popen(
        [*RELMARK, "--store", str(store_dir), "load", "--no-validate", str(big)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not journal.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    assert journal.exists(), "the load finished before it could be killed; make the file bigger"
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert snapshot(store_dir) == before
    assert not journal.exists()
