"""The store seam: which back end answers which capability (docs/architecture.md's table).

The rest of relmark asks for a capability with ``isinstance(store, Capability)``; a back
end that lost a method (renamed, or a replica that stopped delegating it) would silently
take another path there (a full inference run, a thread per query, no look-up cache), so
each back end's set is checked here, in process. No server is contacted: the remote store
is named an engine, so it asks nothing while it is built.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from relmark.stores import open_replica, open_store
from relmark.stores.base import (
    Checkpoints,
    CopyTo,
    EvaluatesRemotely,
    ForwardsWrites,
    GraphBytes,
    HasDeadline,
    OnDisk,
    Optimizable,
    PatternReads,
    ReadsSnapshots,
    Remote,
    TracksChanges,
)
from relmark.stores.snapshots import SnapshotPublisher

CAPABILITIES = {
    TracksChanges: {"embedded", "remote"},
    Optimizable: {"embedded"},
    GraphBytes: {"embedded"},
    Checkpoints: {"embedded"},
    PatternReads: {"embedded", "snapshot replica"},
    OnDisk: {"embedded", "snapshot replica"},
    CopyTo: {"embedded", "remote", "remote replica"},
    ReadsSnapshots: {"snapshot replica"},
    ForwardsWrites: {"snapshot replica", "remote replica"},
    HasDeadline: {"remote", "remote replica"},
    Remote: {"remote", "remote replica"},
    EvaluatesRemotely: {"remote"},
}
#: Nothing listens here: building the remote stores must not need it.
NOWHERE = "sparql+http://127.0.0.1:9/query"


def _never_called(method: str, *args: object) -> tuple[object, int]:
    raise AssertionError(f"a write was forwarded: {method}")


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    monkeypatch.setenv("RELMARK_REMOTE_ENGINE", "oxigraph")
    embedded = open_store(tmp_path / "store")
    publisher = SnapshotPublisher(embedded, multiprocessing.RawValue("q", 0))  # type: ignore[arg-type]
    publisher.start()
    made = {
        "embedded": embedded,
        "snapshot replica": open_replica(
            tmp_path / "store",
            lambda: publisher.generation.value,
            _never_called,
            snapshots=publisher.directory,
        ),
        "remote": open_store(NOWHERE),
        "remote replica": open_replica(NOWHERE, lambda: 1, _never_called),
    }
    yield made
    for store in made.values():
        store.close()  # type: ignore[attr-defined]
    publisher.remove()


@pytest.mark.parametrize("capability", list(CAPABILITIES), ids=lambda c: c.__name__)
def test_each_back_end_has_its_capabilities(stores: dict[str, object], capability: type) -> None:
    having = {name for name, store in stores.items() if isinstance(store, capability)}
    assert having == CAPABILITIES[capability]


def test_the_answer_is_the_class_s_and_stays_right(stores: dict[str, object]) -> None:
    """``isinstance`` is worked out once per class of store: asked again, and for another
    store of the same class, it answers the same."""
    for _ in range(3):
        assert isinstance(stores["embedded"], TracksChanges)
        assert not isinstance(stores["snapshot replica"], TracksChanges)
        assert not isinstance(object(), TracksChanges)
