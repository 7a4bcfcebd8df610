"""The graphs relmark loads from its own files: the ontology, the shapes and the config.

They are read from ``ontology/`` at start-up and reloaded only when a file's content
changed: the hash of what was loaded lives in the meta graph, so the check survives
restarts, costs one query, and never duplicates triples. Written once against the
``Store`` protocol, so every back end syncs them the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyoxigraph as ox

from relmark.stores.base import CONTENT_HASH, Store, selected
from relmark.vocab import (
    CONFIG_FILE,
    CONFIG_GRAPH,
    META_GRAPH,
    ONTOLOGY_DIR,
    ONTOLOGY_GRAPH,
    SHAPES_FILE,
    SHAPES_GRAPH,
    ontology_paths,
)


def sync_file_graph(store: Store, graph: str, paths: list[Path]) -> bool:
    """(Re)load ``graph`` from Turtle files when their content changed; True when it did."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    wanted = ox.Literal(digest.hexdigest())
    hash_iri = CONTENT_HASH.value
    stored = selected(
        store.query(f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> ?h }} }}")
    )
    if [row["h"] for row in stored] == [wanted]:
        return False
    triples: list[ox.Triple] = []
    for path in paths:
        triples.extend(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
    store.replace_graph(graph, triples)
    store.update(
        f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> ?h }} }} ;"
        f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> {wanted} }} }}",
        system=True,
    )
    return True


def sync_system_graphs(store: Store, ontology_dir: Path | None = None) -> bool:
    """Reload the ontology, shapes and config graphs whose files changed; True if any did."""
    directory = ontology_dir or ONTOLOGY_DIR
    changed = sync_file_graph(store, ONTOLOGY_GRAPH, ontology_paths(directory))
    changed |= sync_file_graph(store, SHAPES_GRAPH, [directory / SHAPES_FILE])
    changed |= sync_file_graph(store, CONFIG_GRAPH, [directory / CONFIG_FILE])
    return changed
