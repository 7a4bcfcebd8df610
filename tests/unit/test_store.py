"""The embedded store on disk: graph naming, system-graph sync by content hash, and the
journal that undoes an interrupted bulk write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest

from relmark.stores.base import StoreError, StoreLocked, data_graph
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.system_graphs import sync_file_graph
from relmark.vocab import DATA_GRAPH_PREFIX, ONTOLOGY_DIR, ONTOLOGY_GRAPH, ontology_paths


def test_data_graph_names():
    assert data_graph("bank") == DATA_GRAPH_PREFIX + "bank"
    assert data_graph("https://example.org/g") == "https://example.org/g"
    with pytest.raises(StoreError, match="written by relmark"):
        data_graph(ONTOLOGY_GRAPH)
    with pytest.raises(StoreError):
        data_graph("")


def test_system_graph_is_synced_once_and_again_when_its_file_changes(tmp_path: Path):
    ontology = tmp_path / "ontology"
    shutil.copytree(ONTOLOGY_DIR, ontology)
    with EmbeddedStore(tmp_path / "store") as store:
        assert sync_file_graph(store, ONTOLOGY_GRAPH, ontology_paths(ontology)) is True
        size = store.graph_size(ONTOLOGY_GRAPH)
        assert size > 2000
        assert sync_file_graph(store, ONTOLOGY_GRAPH, ontology_paths(ontology)) is False
    with EmbeddedStore(tmp_path / "store") as store:  # the hash survives a restart
        assert sync_file_graph(store, ONTOLOGY_GRAPH, ontology_paths(ontology)) is False
        rm = ontology / "rm.ttl"
        rm.write_text(rm.read_text() + "\n<urn:x> <urn:y> <urn:z> .\n", encoding="utf-8")
        assert sync_file_graph(store, ONTOLOGY_GRAPH, ontology_paths(ontology)) is True
        assert store.graph_size(ONTOLOGY_GRAPH) == size + 1  # replaced, not duplicated


def test_a_leftover_journal_restores_the_backup(tmp_path: Path):
    path = tmp_path / "store"
    with EmbeddedStore(path) as store:
        store.add_quads(
            [
                ox.Quad(
                    ox.NamedNode("urn:a"),
                    ox.NamedNode("urn:p"),
                    ox.Literal("before"),
                    ox.NamedNode("urn:g"),
                )
            ]
        )
    # Simulate a crash in the middle of a journaled write: backup and journal exist, and the
    # live store already holds part of the new data.
    with EmbeddedStore(path) as store:
        store._db.backup(str(path.with_name("store.pre-write")))
        path.with_name("store.journal").write_text(json.dumps({"backup": "store.pre-write"}))
        store.add_quads(
            [
                ox.Quad(
                    ox.NamedNode("urn:a"),
                    ox.NamedNode("urn:p"),
                    ox.Literal("half"),
                    ox.NamedNode("urn:g"),
                )
            ]
        )
    with EmbeddedStore(path) as store:
        values = {q.object.value for q in store.triples("urn:g")}
    assert values == {"before"}
    assert not path.with_name("store.journal").exists()
    assert not path.with_name("store.pre-write").exists()


def test_a_failed_bulk_write_changes_nothing(tmp_path: Path):
    with EmbeddedStore(tmp_path / "store") as store:
        store.bulk_replace_graphs(
            {"urn:g": [(ox.RdfFormat.N_TRIPLES, b'<urn:a> <urn:p> "1" .\n', "first")]}
        )
        with pytest.raises(SyntaxError) as caught:
            store.bulk_replace_graphs(
                {
                    "urn:g": [(ox.RdfFormat.N_TRIPLES, b'<urn:a> <urn:p> "2" .\n', "ok.nt")],
                    "urn:h": [(ox.RdfFormat.N_TRIPLES, b"<urn:a> <urn:p> .\n", "broken.nt")],
                }
            )
        assert caught.value.filename == "broken.nt"
        assert [q.object.value for q in store.triples("urn:g")] == ["1"]
        assert not store.has_graph("urn:h")


def test_a_second_writer_is_told_the_store_is_in_use(tmp_path: Path):
    with EmbeddedStore(tmp_path / "store"), pytest.raises(StoreLocked, match="relmark serve"):
        EmbeddedStore(tmp_path / "store")


def test_count_follows_writes(tmp_path: Path):
    with EmbeddedStore(tmp_path / "store") as store:
        assert store.count() == 0
        store.update("INSERT DATA { <urn:a> <urn:p> 1 . GRAPH <urn:g> { <urn:a> <urn:p> 2 } }")
        assert store.count() == 2
        assert store.drop_graph("urn:g") is True
        assert store.count() == 1
        assert store.drop_graph("urn:g") is False
