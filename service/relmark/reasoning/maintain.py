"""Keeping the inferences current: the one function every write path calls.

``refresh_inferences`` recomputes the rules' conclusions (``rules.materialise``: a full
recompute that writes only what changed) and records which rules and which ontology and
config versions they came from. It runs in the process that writes the store: after
``relmark load``, after each Graph Store or SPARQL write of a single-process server, and
in the supervisor's ``StoreWriter`` after each forwarded write, before it publishes the
snapshot, so a worker never reads data without its inferences.

``ensure_inferences`` runs at start-up: it syncs the system graphs and refreshes only when
the inferred graph is missing, the rules, ontology or config changed since the last run, or
the store says a data write was never followed by its refresh (a crash in between).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pyoxigraph as ox

from relmark.reasoning.incremental import update_inferences
from relmark.reasoning.remote_rules import materialise as materialise_remote
from relmark.reasoning.rules import Rule, RunSummary, load_rules, materialise
from relmark.stores.base import (
    CONTENT_HASH,
    Changes,
    EvaluatesRemotely,
    Optimizable,
    Store,
    TracksChanges,
)
from relmark.stores.system_graphs import sync_system_graphs
from relmark.vocab import (
    CONFIG_GRAPH,
    INFERRED_GRAPH,
    META_GRAPH,
    ONTOLOGY_DIR,
    ONTOLOGY_GRAPH,
    SYSTEM_GRAPHS,
)

#: An incremental update costs about 30 times more per changed quad than a full run per
#: stored quad (measured on the 100k benchmark set): past that share, recompute.
INCREMENTAL_RATIO = 30
INCREMENTAL_FLOOR = 200

_RULES_CACHE: dict[str, tuple[str, list[Rule]]] = {}
_RULES_SEEN: dict[str, tuple] = {}
_CACHE_LOCK = threading.Lock()


def rules_for(ontology_dir: Path | None = None) -> tuple[str, list[Rule]]:
    """The rules of ``<ontology_dir>/rules`` and their content hash (parsed once per version)."""
    directory = (ontology_dir or ONTOLOGY_DIR) / "rules"
    # every refresh asks: the files are read and hashed again only when one looks changed
    try:
        with os.scandir(directory) as entries:
            stats = [(e.name, e.stat()) for e in entries if e.name.endswith(".rq")]
    except FileNotFoundError:
        stats = []
    seen = tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats))
    with _CACHE_LOCK:
        cached = _RULES_CACHE.get(str(directory))
        if cached is not None and _RULES_SEEN.get(str(directory)) == seen:
            return cached
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.rq")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    wanted = digest.hexdigest()
    with _CACHE_LOCK:
        cached = _RULES_CACHE.get(str(directory))
        if cached is None or cached[0] != wanted:
            cached = (wanted, load_rules(directory))
            _RULES_CACHE[str(directory)] = cached
        _RULES_SEEN[str(directory)] = seen
    return cached


def _fingerprint(store: Store, rules_hash: str) -> str:
    """The rules' hash together with the stored hashes of the ontology and config graphs."""
    digest = hashlib.sha256(rules_hash.encode())
    for graph in (ONTOLOGY_GRAPH, CONFIG_GRAPH):
        for solution in store.query(
            f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{CONTENT_HASH.value}> ?h }} }}"
        ):
            digest.update(graph.encode() + b"\0" + solution["h"].value.encode() + b"\0")
    return digest.hexdigest()


def _stored_fingerprint(store: Store) -> str | None:
    for solution in store.query(
        f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> "
        f"{{ <{INFERRED_GRAPH}> <{CONTENT_HASH.value}> ?h }} }}"
    ):
        return solution["h"].value
    return None


def refresh_inferences(
    store: Store,
    ontology_dir: Path | None = None,
    changes: Changes | None = None,
    *,
    full: bool = False,
) -> RunSummary | None:
    """Bring ``urn:relmark:inferred`` and its provenance up to date with the store.

    Incremental (``incremental.update_inferences``) when the store can say what its writes
    since the last refresh changed (``changes``, else ``store.take_changes()``) and the
    rules, ontology and config are those of the last run; a full recompute otherwise.
    A store without the ontology graph has not been set up by relmark yet (``relmark serve``
    and ``relmark classify`` do that with ``ensure_inferences``): nothing is inferred there.
    """
    if not store.has_graph(ONTOLOGY_GRAPH):
        return None
    rules_hash, rules = rules_for(ontology_dir)
    as_of, tracked = 0, None
    if isinstance(store, TracksChanges):
        as_of, tracked = store.data_writes(), store.take_changes()
    changes = None if full else changes if changes is not None else tracked
    wanted = _fingerprint(store, rules_hash)
    if changes is not None and _stored_fingerprint(store) == wanted:
        if not changes:
            _current(store, as_of)
            return None
        small = len(changes) <= INCREMENTAL_FLOOR  # (counting a big store takes a while)
        if small or len(changes) <= store.count() // INCREMENTAL_RATIO:
            summary = update_inferences(store, rules, changes)
            _current(store, as_of)
            return summary
    if isinstance(store, EvaluatesRemotely):  # a SPARQL server: the rules run there
        summary = materialise_remote(store, rules)
    else:
        summary = materialise(store, rules)
        if summary.written and isinstance(store, Optimizable):
            # the run bulk-rewrote two graphs and left files behind that make every later
            # read several times slower until the store is compacted
            store.optimize()
    if _stored_fingerprint(store) != wanted:
        key = f"<{INFERRED_GRAPH}> <{CONTENT_HASH.value}>"
        store.update(
            f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ {key} ?h }} }} ;"
            f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ {key} {ox.Literal(wanted)} }} }}",
            system=True,
        )
    _current(store, as_of)
    return summary


def _current(store: Store, as_of: int) -> None:
    if isinstance(store, TracksChanges):
        store.inferences_current(as_of)


def ensure_inferences(store: Store, ontology_dir: Path | None = None) -> RunSummary | None:
    """At start-up: sync the system graphs, then refresh if anything the rules read changed.

    Returns the run's summary, or None when the inferences were already current.
    """
    sync_system_graphs(store, ontology_dir)
    rules_hash, _ = rules_for(ontology_dir)
    # a data write whose refresh never finished (the process died in between)?
    if isinstance(store, TracksChanges) and store.inferences_stale():
        return refresh_inferences(store, ontology_dir, full=True)
    current = _stored_fingerprint(store) == _fingerprint(store, rules_hash)
    if current and store.has_graph(INFERRED_GRAPH):
        return None
    if current and not _has_data(store):
        return None  # nothing to infer from: an empty store stays empty
    return refresh_inferences(store, ontology_dir)


def _has_data(store: Store) -> bool:
    """Whether any graph holds asserted data (anything but relmark's own graphs)."""
    if store.query("ASK { ?s ?p ?o }", default_graph=[None]):
        return True
    return any(g not in SYSTEM_GRAPHS for g in store.graph_names())
