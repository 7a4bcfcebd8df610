"""The change an update made only of ``INSERT DATA`` / ``DELETE DATA`` operations makes.

Such an update says its quads outright, so its change can be worked out from the quads and
the store's membership tests alone, without the scratch copy and the graph-by-graph diff
that an update with a ``WHERE`` clause needs (whose cost grows with the graphs it names:
seconds at a million quads). Each operation's quads are found by running it, turned into
``INSERT DATA``, on an empty in-memory store: pyoxigraph does the parsing (prefixes, base,
``GRAPH`` blocks, literals) and mints the blank nodes of ``INSERT DATA`` once, so the
blank nodes checked are the ones written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyoxigraph as ox

from relmark.sparql.lexer import UnbalancedBrackets, closing, masked

#: An operation's start: its own prologue, then INSERT DATA or DELETE DATA and its brace.
_DATA_OPERATION = re.compile(
    r"\s*(?:(?:PREFIX\s+(?:[A-Za-z][\w.-]*)?:|BASE)\s*)*(INSERT|DELETE)\s+DATA\s*\{",
    re.IGNORECASE,
)


def data_operations(sparql: str) -> list[tuple[str, str]] | None:
    """``[(verb, update)]`` for each operation; None when some operation is not INSERT DATA
    or DELETE DATA.

    Each update is the original text with the other operations blanked (their prologues
    kept: a prefix declared earlier holds later) and DELETE spelled INSERT, so a syntax
    error's line and column are those of the text the client sent.
    """
    code = masked(sparql)
    operations: list[tuple[str, str]] = []
    prologues: list[tuple[int, int]] = []
    start = 0
    while start < len(code):
        if not code[start:].strip():
            break
        found = _DATA_OPERATION.match(code, start)
        if found is None:
            return None
        try:
            close = closing(code, found.end() - 1)
        except UnbalancedBrackets:
            return None
        rest = code[close + 1 :]
        end = close + 1 + len(rest) - len(rest.lstrip())
        if end < len(code) and code[end] != ";":
            return None
        keyword = found.start(1)
        prologues.append((start, keyword))
        kept = [*prologues, (keyword, close + 1)]
        text = _blank_except(sparql, kept)
        text = text[:keyword] + "INSERT" + text[keyword + 6 :]
        operations.append((found[1].upper(), text))
        start = end + 1
    return operations or None


def _blank_except(text: str, kept: list[tuple[int, int]]) -> str:
    """``text`` with everything outside the ``kept`` spans turned to spaces (lines kept)."""
    parts: list[str] = []
    position = 0
    for begin, end in sorted(kept):
        parts.append(_NOT_NEWLINE.sub(" ", text[position:begin]))
        parts.append(text[begin:end])
        position = end
    parts.append(_NOT_NEWLINE.sub(" ", text[position:]))
    return "".join(parts)


_NOT_NEWLINE = re.compile(r"[^\n]")


def data_change(
    operations: list[tuple[str, str]],
    present: Callable[[ox.Quad], bool],
    ignored: Callable[[ox.Quad], bool],
) -> tuple[list[ox.Quad], list[ox.Quad]]:
    """The quads added and removed by the operations, applied in order to a store where
    ``present`` tells which quads are there now; quads ``ignored`` says are skipped."""
    added: dict[ox.Quad, None] = {}
    removed: dict[ox.Quad, None] = {}
    for verb, update in operations:
        scratch = ox.Store()
        scratch.update(update)
        for quad in scratch:
            if ignored(quad):
                continue
            if verb == "INSERT":
                if quad in removed:
                    del removed[quad]
                elif quad not in added and not present(quad):
                    added[quad] = None
            elif quad in added:
                del added[quad]
            elif quad not in removed and present(quad):
                removed[quad] = None
    return list(added), list(removed)
