"""Opening a store: the back end a location names.

Only this package knows the concrete back ends; everything else gets a ``Store`` (and asks
for capabilities with ``isinstance``, ``relmark.stores.base``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from relmark.settings import Settings
from relmark.stores.base import Replica, Store
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.memory_copy import MemoryCopyCache
from relmark.stores.remote.replica import RemoteReplica
from relmark.stores.remote.store import open_remote, remote_config
from relmark.stores.snapshots import (
    SnapshotPublisher,
    SnapshotReplica,
    SnapshotThread,
    WriteForwarder,
    copy_snapshot,
)

__all__ = [
    "SnapshotPublisher",
    "SnapshotThread",
    "copy_snapshot",
    "open_replica",
    "open_store",
]

REMOTE_SCHEMES = ("sparql+http://", "sparql+https://")


def open_store(location: str | Path, settings: object | None = None) -> Store:
    """Open the back end a location names: a directory, or ``sparql+http(s)://…``.

    A remote store takes its endpoints, credentials and timeout from ``settings``
    (default: ``Settings.from_env()``, so ``relmark serve`` and the CLI need no change).
    """
    text = str(location)
    if text.startswith(REMOTE_SCHEMES):
        return open_remote(text, settings or Settings.from_env())
    return EmbeddedStore(text)


def open_replica(
    location: str | Path,
    generation: Callable[[], int],
    writer: WriteForwarder,
    *,
    settings: object | None = None,
    snapshots: Path | None = None,
    memory_quads: int = 0,
    log: Callable[[str], None] | None = None,
) -> Replica:
    """A serving worker's store: reads here, writes through ``writer`` (the writer process).

    On the embedded store at ``location``, reads go to the newest of its ``snapshots``
    (kept in memory up to ``memory_quads`` quads); on a remote one, to the engine.
    ``generation`` is the writer's count of what it applied, shared with the workers.
    """
    text = str(location)
    if text.startswith(REMOTE_SCHEMES):
        config = remote_config(text, settings or Settings.from_env())
        return RemoteReplica(config, generation, writer)
    if snapshots is None:
        raise ValueError("a replica of the embedded store reads its snapshots: name them")
    memory = MemoryCopyCache(memory_quads, log)
    return SnapshotReplica(location, snapshots, generation, writer, memory)
