"""SPARQL 1.2 ``LATERAL`` for engines that only speak SPARQL 1.1 (Virtuoso 7.2).

Why the catalogue uses LATERAL at all: pyoxigraph 0.5 plans a query before it binds the
substituted parameters, so ``?firm a rm:FocalFirm . LATERAL { … ?x rm:focalParty ?firm }``
is how a question makes the embedded engine look the firm up first (7 ms instead of 1.4 s
at 100k triples; see the comments in ``queries/*.rq`` and ``relmark.queries``). The
``.rq`` files stay as they are; a remote store whose engine lacks LATERAL sends
``without_lateral(text)`` instead.

The rewrite: in a group ``{ A LATERAL { B } C }`` the pattern ``A LATERAL { B }`` becomes
the sub-group ``{ A B }``::

    { A LATERAL { B } C }   →   { { A B } C }

It is an equivalent SPARQL 1.1 query when (checked here; otherwise ``Unportable``):

- ``A`` has no FILTER of its own: a group's FILTER applies to the whole group, and moving
  it into the sub-group would hide ``C``'s variables from it;
- ``B`` has no LIMIT/OFFSET: a sliced sub-query is the one place where "evaluate ``B``
  once per solution of ``A``" (LATERAL) and "join ``A`` with ``B`` in one group" differ.

Everything else in ``B`` sees ``A``'s values as LATERAL's substitution would: its FILTERs
(and EXISTS) are evaluated on the joined solutions of the sub-group, its OPTIONALs have
``A`` on their left, and a sub-query sees ``A``'s variables exactly when it projects them
(then the join matches on them, as a substitution of its projection would). Parameters
bound by ``remote_store.bind_values`` (a VALUES block at the top of the outermost group)
are part of ``A`` when the LATERAL is in that group, so they stay visible to ``B``'s
FILTERs; the sub-group's results carry them on to ``C``.

One request, evaluated entirely by the engine, no values pasted into the text.
"""

from __future__ import annotations

import re

from relmark.sparql.text import kept_for_short_texts, masked
from relmark.stores.base import StoreError

# a keyword, not a prefixed name's local part (rm:LATERAL) nor a variable (?lateral)
_LATERAL = re.compile(r"(?<![\w:?$-])LATERAL\b", re.IGNORECASE)
_FILTER = re.compile(r"(?<![\w:?$-])FILTER\b", re.IGNORECASE)
_SLICE = re.compile(r"(?<![\w:?$-])(?:LIMIT|OFFSET)\b", re.IGNORECASE)


class Unportable(StoreError):
    """A query whose LATERAL cannot be rewritten into an equivalent SPARQL 1.1 query."""


@kept_for_short_texts
def uses_lateral(sparql: str) -> bool:
    """Whether the query has a LATERAL (outside strings, IRIs and comments)."""
    return _LATERAL.search(masked(sparql)) is not None


def without_lateral(sparql: str) -> str:
    """The query with every ``A LATERAL { B }`` rewritten as ``{ A B }`` (see above).

    Raises ``Unportable`` when a LATERAL is used where the rewrite would change the answer.
    """
    while True:
        code = masked(sparql)
        found = _LATERAL.search(code)
        if found is None:
            return sparql
        open_ = _enclosing_brace(code, found.start())
        brace = found.end() + len(code[found.end() :]) - len(code[found.end() :].lstrip())
        if open_ is None or brace >= len(code) or code[brace] != "{":
            raise Unportable("LATERAL must be followed by a group { … } inside a group")
        close = _matching_brace(code, brace)
        left, inner = code[open_ + 1 : found.start()], code[brace + 1 : close]
        if _at_top_level(left, _FILTER):
            raise Unportable(
                "this engine has no LATERAL, and a FILTER before the LATERAL in the same "
                "group would change meaning if the LATERAL were rewritten as a join"
            )
        if _SLICE.search(inner):
            raise Unportable(
                "this engine has no LATERAL, and a LIMIT or OFFSET inside a LATERAL group "
                "(once per outer solution) has no SPARQL 1.1 equivalent"
            )
        stripped = left.rstrip()
        # triples before a group need no '.', but before more triples they do
        joint = " " if not stripped or stripped.endswith((".", "}", "{")) else " ."
        sparql = (
            sparql[: open_ + 1]
            + " {"
            + sparql[open_ + 1 : found.start()].rstrip()
            + "\n"  # (the left part may end in a comment)
            + joint
            + "\n"
            + sparql[brace + 1 : close]
            + "}"
            + sparql[close + 1 :]
        )


def _enclosing_brace(code: str, position: int) -> int | None:
    depth = 0
    for index in range(position - 1, -1, -1):
        if code[index] == "}":
            depth += 1
        elif code[index] == "{":
            if depth == 0:
                return index
            depth -= 1
    return None


def _matching_brace(code: str, open_: int) -> int:
    depth = 0
    for index in range(open_, len(code)):
        if code[index] == "{":
            depth += 1
        elif code[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise SyntaxError("unbalanced braces in the query")


def _at_top_level(code: str, keyword: re.Pattern[str]) -> bool:
    """Whether ``keyword`` occurs in ``code`` outside any nested ``{ }``."""
    depth = 0
    flat = []
    for char in code:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        flat.append(char if depth == 0 and char not in "{}" else " ")
    return keyword.search("".join(flat)) is not None


__all__ = ["Unportable", "uses_lateral", "without_lateral"]
