"""Just enough reading of SPARQL text to find keywords, braces and the graphs a request names.

Not a parser: string literals and comments (and, for ``masked``, IRIs) are blanked out,
positions kept, so a keyword or a brace found in what is left is really one. Used to find
a query's form and ``FROM``/``FROM NAMED`` dataset, the graphs an update may write, where
a remote store binds parameters and whether a query uses ``LATERAL``.

A named question's text is read this way several times on every run against a remote
store (30–80 µs each for a 3 KB text), so the readings of recent short texts are kept
(``kept_for_short_texts``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

#: What may stand between ``<`` and ``>`` of an IRI: pyoxigraph also reads ``\uXXXX`` and
#: ``\UXXXXXXXX`` escapes there (``<urn:relmark:\u006Fntology>`` is the ontology graph).
IRI_BODY = r"""(?:[^<>"{}|^`\\\s]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*"""
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def unescape_iri(body: str) -> str:
    r"""An IRI's text with its ``\u``/``\U`` escapes decoded, as the engine reads it."""
    if "\\" not in body:
        return body
    return _UCHAR.sub(lambda m: chr(int(m[1] or m[2], 16)), body)


_TOKENS = re.compile(
    rf"""(?P<iri><{IRI_BODY}>)"""
    r'''|(?P<string>"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^'\\]|\\.|'(?!''))*\'\'\''''
    r"""|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"|(?P<comment>#[^\n]*)"
    # a prefixed name's escaped character (``ex:a\#b``): part of the name, never the start
    # of a comment or a string
    r"|(?P<escape>\\.)",
    re.DOTALL,
)
#: The tokens that hide keywords and brackets: IRIs, strings, comments, escapes.
TOKENS = _TOKENS
_PREFIX = re.compile(r"\bPREFIX\s+([A-Za-z][\w.-]*)?:\s*<([^<>\s]*)>", re.IGNORECASE)
_TERM = r"<[^<>\s]*>|(?:[A-Za-z][\w.-]*)?:[\w.%-]*"
_PNAME = re.compile(r"(?<![\w?$:<])([A-Za-z][\w.-]*)?:([\w.%-]*)")
_DATASET = re.compile(rf"\bFROM\s+(NAMED\s+)?({_TERM})", re.IGNORECASE)
# BASE too: a graph spelled as a relative IRI is only known once resolved
_ANY_GRAPH = re.compile(r"\bGRAPH\s*[?$]|\b(ALL|NAMED|BASE)\b", re.IGNORECASE)
_DROP_EVERYTHING = re.compile(r"\b(DROP|CLEAR)\s+(SILENT\s+)?(ALL|NAMED)\b", re.IGNORECASE)


#: A query's form, searched for in ``masked`` text.
QUERY_FORM = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)
#: Texts longer than this are read again each time, not kept (an update may be megabytes).
_KEPT_LENGTH = 16 * 1024

T = TypeVar("T")


def kept_for_short_texts(read: Callable[[str], T]) -> Callable[[str], T]:
    """``read`` with its answers kept for the last 256 texts of up to 16 KB (at most
    ~8 MB for a reading that is itself a text, such as ``masked``).

    For readings of a text that are asked again and again: a named question's text is the
    same on every run, and reading it costs 30–80 µs each time (regular expressions over
    3 KB, most of it comments).
    """
    kept = functools.lru_cache(maxsize=256)(read)

    @functools.wraps(read)
    def reading(sparql: str) -> T:
        return kept(sparql) if len(sparql) <= _KEPT_LENGTH else read(sparql)

    return reading


@kept_for_short_texts
def code_only(sparql: str) -> str:
    """The text with string literals and comments blanked (IRIs kept, ``#`` in them too)."""
    kept = ("iri", "escape")
    return _TOKENS.sub(lambda m: m[0] if m.lastgroup in kept else " " * len(m[0]), sparql)


@kept_for_short_texts
def masked(sparql: str) -> str:
    """The text with IRIs, string literals and comments blanked, so keywords and braces can
    be found safely."""
    return _TOKENS.sub(lambda m: " " * len(m[0]), sparql)


@kept_for_short_texts
def query_form(sparql: str) -> str | None:
    """SELECT, ASK, CONSTRUCT or DESCRIBE (upper case), or None for no query form."""
    found = QUERY_FORM.search(masked(sparql))
    return None if found is None else found[1].upper()


def _resolver(code: str) -> dict[str, str]:
    return {prefix or "": namespace for prefix, namespace in _PREFIX.findall(code)}


def _expand(term: str, prefixes: dict[str, str]) -> str | None:
    if term.startswith("<"):
        return term[1:-1]
    prefix, _, local = term.partition(":")
    namespace = prefixes.get(prefix)
    return None if namespace is None else namespace + local.rstrip(".")


def iris_in(sparql: str) -> set[str]:
    """Every IRI the text spells out, as ``<…>`` or as a declared prefixed name."""
    code = code_only(sparql)
    prefixes = _resolver(code)
    iris = {m[1:-1] for m in re.findall(r"<[^<>\s]*>", code)}
    for prefix, local in _PNAME.findall(re.sub(r"<[^<>\s]*>", " ", code)):
        if (prefix or "") in prefixes:
            iris.add(prefixes[prefix or ""] + local.rstrip("."))
    return iris


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
    thread hand-off, which cost 0.1 ms, more than the lookup itself. Anything else, or
    anything this does not recognise, goes through the timeout.
    """
    match = _SINGLE_LOOKUP.fullmatch(sparql)
    if match is None:
        return False
    return not match["s"].startswith(("?", "$")) or not match["o"].startswith(("?", "$"))


# --- rewriting an update for the Protocol's parameters and relmark's graph layout ---------
#: A prefixed name (escapes blanked), so that its parts are never taken for keywords.
PNAME_TOKEN = re.compile(r"(?<![\w?$])(?:[A-Za-z][\w.-]*)?:[\w.:%-]*")
_KEYWORD = r"(?<![\w?$:-])(?:{})(?![\w:-])"
_DATASET_CLAUSE = re.compile(_KEYWORD.format("USING|WITH"), re.IGNORECASE)
_WHERE = re.compile(_KEYWORD.format("WHERE"), re.IGNORECASE)
_DELETE_WHERE = re.compile(_KEYWORD.format(r"DELETE\s+WHERE"), re.IGNORECASE)
_EVERY_GRAPH = re.compile(
    _KEYWORD.format(r"(?P<op>CLEAR|DROP)\s+(?:SILENT\s+)?(?P<which>ALL|NAMED)"), re.IGNORECASE
)


def keywords_only(sparql: str) -> str:
    """``masked`` with prefixed names blanked too: keywords, variables and punctuation."""
    return PNAME_TOKEN.sub(lambda m: " " * len(m[0]), masked(sparql))


def _closing_brace(code: str, opening: int) -> int:
    depth = 0
    for match in re.finditer(r"[{}]", code[opening:]):
        depth += 1 if match[0] == "{" else -1
        if depth == 0:
            return opening + match.start()
    raise ValueError("unbalanced braces")


def with_using(sparql: str, default: list[str], named: list[str]) -> str:
    """An update with ``using-graph-uri``/``using-named-graph-uri`` (SPARQL 1.1 Protocol
    §2.2.3) written in as ``USING``/``USING NAMED`` before each top-level ``WHERE``.

    ``DELETE WHERE { P }`` takes no USING, so it becomes ``DELETE { P } USING … WHERE { P }``
    (its definition). An update that has its own USING or WITH is refused (ValueError),
    as the Protocol requires.
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
    depth, top_level = 0, []
    for match in re.finditer(r"[{}]|" + _WHERE.pattern, code, re.IGNORECASE):
        if match[0] == "{":
            depth += 1
        elif match[0] == "}":
            depth -= 1
        elif depth == 0:
            top_level.append(match.start())
    shortcuts = {m.end() - 5: m.start() for m in _DELETE_WHERE.finditer(code)}
    for where in reversed(top_level):
        if where in shortcuts:  # DELETE WHERE { P } → DELETE { P } USING … WHERE { P }
            opening = code.index("{", where)
            pattern = sparql[opening : _closing_brace(code, opening) + 1]
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
