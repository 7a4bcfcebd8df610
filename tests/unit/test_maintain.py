"""Start-up keeps the inferences current: computed when missing or when the rules changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyoxigraph as ox

from relmark.loading import load_sources, read_source
from relmark.reasoning.maintain import ensure_inferences
from relmark.stores.base import data_graph
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.system_graphs import sync_system_graphs
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_DIR, RM, demo_paths


def test_start_up_infers_when_missing_and_when_the_rules_change(tmp_path: Path):
    ontology = tmp_path / "ontology"
    shutil.copytree(ONTOLOGY_DIR, ontology)
    with EmbeddedStore(tmp_path / "store") as store:
        first = ensure_inferences(store, ontology)  # a new store: no record of a run yet
        assert first is not None and first.inferred == 0
        assert ensure_inferences(store, ontology) is None  # empty and recorded: nothing to do
        store.bulk_replace_graphs(
            {
                data_graph("demo-" + p.stem): [(ox.RdfFormat.TURTLE, p.read_bytes(), p.name)]
                for p in demo_paths()
            }
        )
        assert not store.has_graph(INFERRED_GRAPH)
        summary = ensure_inferences(store, ontology)
        assert summary is not None and summary.inferred > 100
        assert ensure_inferences(store, ontology) is None  # current: nothing to do

        rule = sorted((ontology / "rules").glob("*.rq"))[0]
        rule.write_text(rule.read_text() + "\n# an edit\n")
        rerun = ensure_inferences(store, ontology)
        assert rerun is not None and rerun.inferred == summary.inferred


def test_loading_infers(tmp_path: Path):
    with EmbeddedStore(tmp_path / "store") as store:
        sync_system_graphs(store)  # a store relmark has set up (serve, classify do this)
        load_sources(store, [read_source(str(p)) for p in demo_paths()])
        supporter = "https://w3id.org/relmark/demo/cr-elisa-mariani"
        assert store.query(
            f"ASK {{ GRAPH <{INFERRED_GRAPH}> {{ <{supporter}> a <{RM}Supporter> }} }}"
        )
