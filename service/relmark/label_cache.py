"""Labels a remote store has already given, so pages do not ask for them again.

On a remote store a label look-up is a round trip plus one index lookup per IRI on the
engine: ~14 µs per IRI on Oxigraph's server at 1M triples, 5 ms for a page of 350 IRIs,
as much as relmark's whole overhead may be on a 25 ms question. Pages repeat IRIs (the
classes, the firm, its brands, the next page of the same question), so the labels of an
IRI are kept, in every language at once (any page language is served from them), and so
is the fact that an IRI has none.

They are kept until the store sends any write, relmark's own writes being seen at once
(``generation`` counts them), or for ``ttl`` seconds: writes other clients send straight
to the engine are not seen by relmark (as with inferences, ``relmark infer``), and their
labels show within that time. The embedded store needs none of this: a look-up there is
a few microseconds per IRI, in process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

#: How long labels are kept when nothing is written through relmark (seconds).
LABELS_TTL = 60.0
#: At most this many IRIs are kept (the oldest go first): ~100 MB at most.
MAX_ENTRIES = 200_000


class LabelCache:
    """Each IRI's labels by lowercased language tag ("" for none), as last looked up."""

    def __init__(
        self,
        generation: Callable[[], int],
        ttl: float = LABELS_TTL,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._generation = generation
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, str]]] = {}
        self._seen = generation()

    def known(self, iris: Iterable[str]) -> tuple[dict[str, dict[str, str]], int]:
        """The kept labels of those ``iris`` that have any kept, and the token to pass to
        ``remember`` with what a look-up of the others finds."""
        now = time.monotonic()
        with self._lock:
            token = self._generation()
            if token != self._seen:  # something was written since: nothing kept is sure
                self._entries.clear()
                self._seen = token
            found = {}
            for iri in iris:
                entry = self._entries.get(iri)
                if entry is not None and now - entry[0] < self._ttl:
                    found[iri] = entry[1]
            return found, token

    def remember(self, labels: Mapping[str, dict[str, str]], token: int) -> None:
        """Keep ``labels`` (an empty dict: the IRI has none), unless the store wrote
        anything since ``known`` gave ``token``: the look-up may predate that write."""
        if self._ttl <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if self._generation() != token or token != self._seen:
                return
            for iri, by_lang in labels.items():
                self._entries.pop(iri, None)  # re-inserted last: the oldest go first
                self._entries[iri] = (now, by_lang)
            while len(self._entries) > self._max:
                del self._entries[next(iter(self._entries))]
