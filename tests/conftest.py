"""Shared fixtures: the knowledge files as parsed graphs, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib

from relmark.vocab import CONFIG_FILE, ONTOLOGY_DIR, demo_paths, ontology_paths

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ontology_graph() -> rdflib.Graph:
    """rm.ttl + thirty-r.ttl: the ontology proper."""
    graph = rdflib.Graph()
    for path in ontology_paths():
        graph.parse(path, format="turtle")
    return graph


@pytest.fixture(scope="session")
def config_graph() -> rdflib.Graph:
    return rdflib.Graph().parse(ONTOLOGY_DIR / CONFIG_FILE, format="turtle")


@pytest.fixture(scope="session")
def demo_graph() -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in demo_paths():
        graph.parse(path, format="turtle")
    return graph
