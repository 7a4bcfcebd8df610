"""SPARQL texts rewritten for a request's parameters, relmark's graphs or an older engine.

Each rewrite works on the text, not on a parsed algebra: the engine receives a text, and
a text keeps the client's own spelling, line numbers and comments for its error messages.
Keywords and braces are found on the lexer's masked text (``relmark.sparql.lexer``).

- ``with_using``: the SPARQL 1.1 Protocol's ``using-graph-uri``/``using-named-graph-uri``
  written into an update as ``USING``/``USING NAMED``.
- ``every_data_graph``: ``CLEAR``/``DROP`` ``ALL``/``NAMED`` as the same operation on each
  data graph, so relmark's own graphs stay.
- ``without_lateral``: SPARQL 1.2 ``LATERAL`` for engines that only speak SPARQL 1.1.

Why the catalogue uses LATERAL at all: pyoxigraph 0.5 plans a query before it binds the
substituted parameters, so ``?firm a rm:FocalFirm . LATERAL { … ?x rm:focalParty ?firm }``
is how a question makes the embedded engine look the firm up first (see the comments in
``queries/*.rq`` and ``relmark.queries``). The ``.rq`` files stay as they are; a remote
store whose engine lacks LATERAL sends ``without_lateral(text)`` instead.

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
bound by the remote store's ``bind_values`` (a VALUES block at the top of the outermost
group) are part of ``A`` when the LATERAL is in that group, so they stay visible to
``B``'s FILTERs; the sub-group's results carry them on to ``C``.

One request, evaluated entirely by the engine, no values pasted into the text.
"""

from __future__ import annotations

import re

from relmark.sparql.lexer import (
    UnbalancedBrackets,
    closing,
    enclosing_brace,
    kept_for_short_texts,
    keyword,
    keywords_only,
    masked,
    top_level,
)

# --- the Protocol's parameters and relmark's graph layout ----------------------------------
_DATASET_CLAUSE = keyword("USING", "WITH")
_WHERE = keyword("WHERE")
_DELETE_WHERE = keyword(r"DELETE\s+WHERE")
_EVERY_GRAPH = keyword(r"(?P<op>CLEAR|DROP)\s+(?:SILENT\s+)?(?P<which>ALL|NAMED)")
_BRACE_OR_WHERE = re.compile(r"[{}]|" + _WHERE.pattern, re.IGNORECASE)


def with_using(sparql: str, default: list[str], named: list[str]) -> str:
    """An update with ``using-graph-uri``/``using-named-graph-uri`` (SPARQL 1.1 Protocol
    §2.2.3) written in as ``USING``/``USING NAMED`` before each top-level ``WHERE``.

    ``DELETE WHERE { P }`` takes no USING, so it becomes ``DELETE { P } USING … WHERE { P }``
    (its definition). An update that has its own USING or WITH is refused (ValueError),
    as the Protocol requires; so is one whose braces do not balance.
    """
    if not default and not named:
        return sparql
    code = keywords_only(sparql)
    clause = _DATASET_CLAUSE.search(code)
    if clause is not None:
        raise ValueError(
            f"the update has its own {clause[0].upper()}; using-graph-uri and "
            "using-named-graph-uri may only set the dataset of an update without USING/WITH"
        )
    using = " ".join([*(f"USING <{g}>" for g in default), *(f"USING NAMED <{g}>" for g in named)])
    depth, top = 0, []
    for match in _BRACE_OR_WHERE.finditer(code):
        if match[0] == "{":
            depth += 1
        elif match[0] == "}":
            depth -= 1
        elif depth == 0:
            top.append(match.start())
    shortcuts = {m.end() - 5: m.start() for m in _DELETE_WHERE.finditer(code)}
    for where in reversed(top):
        if where in shortcuts:  # DELETE WHERE { P } → DELETE { P } USING … WHERE { P }
            opening = code.index("{", where)
            try:
                pattern = sparql[opening : closing(code, opening) + 1]
            except UnbalancedBrackets:
                raise ValueError("unbalanced braces") from None
            sparql = f"{sparql[:where]}{pattern} {using} WHERE {sparql[where + 5 :]}"
        else:
            sparql = f"{sparql[:where]}{using} {sparql[where:]}"
    return sparql


def every_data_graph(sparql: str, data_graphs: list[str]) -> str:
    """``CLEAR``/``DROP`` of ``ALL`` or ``NAMED`` as the same operation on every data graph
    (``data_graphs``, plus the default graph for ALL), so relmark's own graphs stay."""
    code = keywords_only(sparql)
    found = list(_EVERY_GRAPH.finditer(code))
    for match in reversed(found):
        op = match["op"].upper()
        targets = [f"{op} SILENT GRAPH <{g}>" for g in data_graphs]
        if match["which"].upper() == "ALL":
            targets.insert(0, f"{op} SILENT DEFAULT")
        replacement = " ;\n".join(targets) or "INSERT DATA { }"  # NAMED, no data graph
        sparql = sparql[: match.start()] + replacement + sparql[match.end() :]
    return sparql


# --- LATERAL for SPARQL 1.1 engines ---------------------------------------------------------
_LATERAL = keyword("LATERAL")
_FILTER = keyword("FILTER")
_SLICE = keyword("LIMIT", "OFFSET")


class Unportable(ValueError):
    """A query whose LATERAL cannot be rewritten into an equivalent SPARQL 1.1 query."""


@kept_for_short_texts
def uses_lateral(sparql: str) -> bool:
    """Whether the query has a LATERAL (outside strings, IRIs and comments)."""
    return _LATERAL.search(masked(sparql)) is not None


def without_lateral(sparql: str) -> str:
    """The query with every ``A LATERAL { B }`` rewritten as ``{ A B }`` (see above).

    Raises ``Unportable`` when a LATERAL is used where the rewrite would change the answer,
    ``SyntaxError`` when its braces do not balance.
    """
    while True:
        code = masked(sparql)
        found = _LATERAL.search(code)
        if found is None:
            return sparql
        open_ = enclosing_brace(code, found.start())
        brace = found.end() + len(code[found.end() :]) - len(code[found.end() :].lstrip())
        if open_ is None or brace >= len(code) or code[brace] != "{":
            raise Unportable("LATERAL must be followed by a group { … } inside a group")
        close = closing(code, brace)
        left, inner = code[open_ + 1 : found.start()], code[brace + 1 : close]
        if _FILTER.search(top_level(left)):
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


__all__ = ["Unportable", "every_data_graph", "uses_lateral", "with_using", "without_lateral"]
