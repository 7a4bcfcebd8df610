"""What a remote store has already answered to small look-ups, so pages do not ask again.

On a remote store every query is a round trip: the HTTP client's own ~0.5 ms of CPU, plus
the engine's work. Two look-ups come with most pages and repeat across them:

- labels (``queries.labels``): one index lookup per IRI on the engine, ~14 µs each on
  Oxigraph's server at 1M triples, 5 ms for a page of 350 IRIs, as much as relmark's
  whole overhead may be on a 25 ms question. Pages repeat IRIs (the classes, the firm,
  its brands, the next page of the same question), so an IRI's labels are kept, in every
  language at once (any page language is served from them), and so is the fact that an
  IRI has none;
- class checks of a question's IRI parameters (``queries.check_classes``): paging
  through a question, or asking it again, checks the same firm again.

Both are kept until the store sends any write, relmark's own writes being seen at once
(``generation`` counts them; with several serving workers, the writer's), or for ``ttl``
seconds: writes other clients send straight to the engine are not seen by relmark (as
with inferences, ``relmark infer``), and what they change shows within that time. The
embedded store needs none of this: a look-up there costs microseconds, in process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from relmark.settings import LOOKUP_TTL

#: At most this many keys are kept per cache (the oldest go first): ~100 MB for labels.
MAX_ENTRIES = 200_000

Value = TypeVar("Value")


class LookupCache(Generic[Value]):
    """A value per key (an IRI's labels, a check's verdict), as last looked up."""

    def __init__(
        self,
        generation: Callable[[], int],
        ttl: float = LOOKUP_TTL,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._generation = generation
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Value]] = {}
        self._seen = generation()

    def known(self, keys: Iterable[str]) -> tuple[dict[str, Value], int]:
        """The kept values of those ``keys`` that have one, and the token to pass to
        ``remember`` with what a look-up of the others finds."""
        now = time.monotonic()
        with self._lock:
            token = self._generation()
            if token != self._seen:  # something was written since: nothing kept is sure
                self._entries.clear()
                self._seen = token
            found = {}
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and now - entry[0] < self._ttl:
                    found[key] = entry[1]
            return found, token

    def remember(self, values: Mapping[str, Value], token: int) -> None:
        """Keep ``values``, unless the store wrote anything since ``known`` gave ``token``:
        the look-up may predate that write."""
        if self._ttl <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if self._generation() != token or token != self._seen:
                return
            for key, value in values.items():
                self._entries.pop(key, None)  # re-inserted last: the oldest go first
                self._entries[key] = (now, value)
            while len(self._entries) > self._max:
                del self._entries[next(iter(self._entries))]
