"""What a SPARQL text says about itself: its form, its dataset, the graphs it may write.

Read from the text before (or instead of) parsing it: the web layer decides from this
whether a query may skip the timeout's thread hand-off, which graphs a query reads when
it names its own dataset, and whether an update needs the administrator's token; a remote
store decides from it how to send an update. The readings are made on the lexer's masked
text (``relmark.sparql.lexer``), so a keyword found is never part of a string, an IRI or a
comment. Where the text could hide a graph (``GRAPH ?g``, ALL, a relative IRI after a
BASE), the answers err on the side of "any graph".
"""

from __future__ import annotations

import re

from relmark.sparql.lexer import code_only, masked

_PREFIX = re.compile(r"\bPREFIX\s+([A-Za-z][\w.-]*)?:\s*<([^<>\s]*)>", re.IGNORECASE)
_TERM = r"<[^<>\s]*>|(?:[A-Za-z][\w.-]*)?:[\w.%-]*"
_DATASET = re.compile(rf"\bFROM\s+(NAMED\s+)?({_TERM})", re.IGNORECASE)
# BASE too: a graph spelled as a relative IRI is only known once resolved
_ANY_GRAPH = re.compile(r"\bGRAPH\s*[?$]|\b(ALL|NAMED|BASE)\b", re.IGNORECASE)
_DROP_EVERYTHING = re.compile(r"\b(DROP|CLEAR)\s+(SILENT\s+)?(ALL|NAMED)\b", re.IGNORECASE)


def _resolver(code: str) -> dict[str, str]:
    return {prefix or "": namespace for prefix, namespace in _PREFIX.findall(code)}


def _expand(term: str, prefixes: dict[str, str]) -> str | None:
    if term.startswith("<"):
        return term[1:-1]
    prefix, _, local = term.partition(":")
    namespace = prefixes.get(prefix)
    return None if namespace is None else namespace + local.rstrip(".")


def dataset_of(sparql: str) -> tuple[list[str], list[str]] | None:
    """A query's ``FROM`` and ``FROM NAMED`` graphs, or None when it names none."""
    code = code_only(sparql)
    clauses = _DATASET.findall(code)
    if not clauses:
        return None
    prefixes = _resolver(code)
    default: list[str] = []
    named: list[str] = []
    for is_named, term in clauses:
        iri = _expand(term, prefixes)
        if iri is not None:
            (named if is_named else default).append(iri)
    return default, named


def may_write_any_graph(sparql: str) -> bool:
    """True when an update's graphs are not all spelled out (``GRAPH ?g``, ALL, NAMED,
    or relative IRIs after a BASE)."""
    return bool(_ANY_GRAPH.search(masked(sparql)))


def drops_everything(sparql: str) -> bool:
    """True for ``DROP``/``CLEAR`` of ALL or NAMED graphs."""
    return bool(_DROP_EVERYTHING.search(code_only(sparql)))


_LOOKUP_TERM = r"(?:<[^<>\"{}|^`\\\s]*>|[?$]\w+|(?:[A-Za-z][\w-]*)?:[\w%-]*|a)"
_SINGLE_LOOKUP = re.compile(
    r"\s*(?:PREFIX\s+(?:[A-Za-z][\w-]*)?:\s*<[^<>\s]*>\s*)*"
    r"SELECT\s+(?:DISTINCT\s+)?(?:\*|(?:[?$]\w+\s*)+)\s*(?:WHERE\s*)?"
    rf"\{{\s*(?P<s>{_LOOKUP_TERM})\s+(?P<p>{_LOOKUP_TERM})\s+(?P<o>{_LOOKUP_TERM})\s*\.?\s*\}}"
    r"\s*(?:LIMIT\s+\d+\s*)?(?:OFFSET\s+\d+\s*)?",
    re.IGNORECASE,
)


def is_single_lookup(sparql: str) -> bool:
    """Whether a query is one triple pattern with a fixed subject or object, and no more.

    Such a query is one range scan of one index: its cost is bounded by the triples it
    returns (and the row limit bounds those), so it can run without the query timeout's
    thread hand-off, which costs more than the lookup itself. Anything else, or anything
    this does not recognise, goes through the timeout.
    """
    match = _SINGLE_LOOKUP.fullmatch(sparql)
    if match is None:
        return False
    return not match["s"].startswith(("?", "$")) or not match["o"].startswith(("?", "$"))


__all__ = ["dataset_of", "drops_everything", "is_single_lookup", "may_write_any_graph"]
