"""Opening a store: the back end a location names."""

from __future__ import annotations

from pathlib import Path

from relmark.settings import Settings
from relmark.stores.base import Store
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.remote.store import open_remote


def open_store(location: str | Path, settings: object | None = None) -> Store:
    """Open the back end a location names: a directory, or ``sparql+http(s)://…``.

    A remote store takes its endpoints, credentials and timeout from ``settings``
    (default: ``Settings.from_env()``, so ``relmark serve`` and the CLI need no change).
    """
    text = str(location)
    if text.startswith(("sparql+http://", "sparql+https://")):
        return open_remote(text, settings or Settings.from_env())
    return EmbeddedStore(text)
