"""The one reading of SPARQL text's tokens that every scanner in relmark shares.

relmark reads SPARQL text before an engine does: to find a query's form and dataset, the
graphs an update may write, where to bind parameters, whether a LATERAL needs rewriting,
where an ``sh:select`` query's WHERE group opens, how a rule's template and body split.
None of that needs a parser, only the certainty that a keyword or a brace found in the
text is one, not part of a string, an IRI or a comment. This module is that certainty,
written once.

Two scans, built from the same token definitions:

- ``hidden`` finds only what hides code (IRIs, strings, comments, and a prefixed name's
  ``\\``-escapes such as ``ex:a\\#b``). It is what ``masked`` and ``code_only`` use, and it
  is the fast one: an update may be megabytes of INSERT DATA, and a scan that stopped at
  every word would cost several times more.
- ``tokens`` reads every token (variables, prefixed names, words, numbers, punctuation
  too), for callers that walk the structure token by token.

Both read ``<`` the same way: ``<…>`` is an IRI whenever an IRI can be read there (no
spaces, quotes or braces inside), which is how SPARQL's grammar reads it everywhere except
right after an operand in an expression, where ``?a<?b&&?c>1`` compares. Telling those
apart needs the grammar; ``relmark.sparql.guard`` refuses the texts where the two readings
would disagree on what is code, and a ``<`` followed by a space (``?a < 3``) is always the
operator.

The positions of the text are kept by every function here (blanked spans become spaces,
their newlines stay), so a position found in a masked text is a position in the original.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

#: What may stand between ``<`` and ``>`` of an IRI: pyoxigraph also reads ``\uXXXX`` and
#: ``\UXXXXXXXX`` escapes there (``<urn:relmark:\u006Fntology>`` is the ontology graph).
IRI_BODY = r"""(?:[^<>"{}|^`\\\s]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*"""
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")

_IRI = rf"<{IRI_BODY}>"
# long strings first, so ''' is not read as '' followed by '
_STRING = (
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
)
_COMMENT = r"#[^\n]*"
_ESCAPE = r"\\."
# a prefixed name's local part may hold ':', '%xx' and '\'-escapes, and may not end in '.'
_LOCAL_CHAR = r"(?:[\w:%-]|\\.)"
_LOCAL = rf"(?:{_LOCAL_CHAR}(?:(?:{_LOCAL_CHAR}|\.)*{_LOCAL_CHAR})?)?"
_PREFIX = r"(?:[A-Za-z](?:[\w.-]*[\w-])?)?"

_HIDING = rf"(?P<iri>{_IRI})|(?P<string>{_STRING})|(?P<comment>{_COMMENT})|(?P<escape>{_ESCAPE})"
_HIDDEN = re.compile(_HIDING, re.DOTALL)
_EVERY_TOKEN = re.compile(
    _HIDING
    + r"|(?P<var>[?$]\w+)"
    + r"|(?P<bnode>_:[\w-](?:[\w.-]*[\w-])?)"
    + rf"|(?P<pname>{_PREFIX}:{_LOCAL})"
    + r"|(?P<langtag>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)"
    + r"|(?P<number>\d+\.\d*[eE][+-]?\d+|\.?\d+[eE][+-]?\d+|\d*\.\d+|\d+)"
    + r"|(?P<word>[A-Za-z_]\w*)"
    + r"|(?P<punct>\S)",
    re.DOTALL,
)

#: The kinds of token ``tokens`` yields. ``escape`` is a ``\``-escape outside any name
#: (malformed SPARQL: ``tokens`` reads it as one token so it never starts a string).
KINDS = (
    "iri",
    "string",
    "comment",
    "escape",
    "var",
    "bnode",
    "pname",
    "langtag",
    "number",
    "word",
    "punct",
)
#: The kinds that hide code: blanked by ``masked``.
HIDING_KINDS = frozenset({"iri", "string", "comment", "escape"})


class Token(NamedTuple):
    """One token of a SPARQL text: its kind (one of ``KINDS``), text and span."""

    kind: str
    text: str
    start: int
    end: int


class UnbalancedBrackets(SyntaxError):
    """A bracket that is never closed, or closed by the wrong kind; ``position`` says where.

    A ``SyntaxError``, as the engine's own errors for malformed text are.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def unescape_iri(body: str) -> str:
    r"""An IRI's text with its ``\u``/``\U`` escapes decoded, as the engine reads it."""
    if "\\" not in body:
        return body
    return _UCHAR.sub(lambda m: chr(int(m[1] or m[2], 16)), body)


def hidden(sparql: str) -> Iterator[re.Match[str]]:
    """The IRIs, strings, comments and escapes of the text, in order; ``match.lastgroup``
    is the kind (``iri``, ``string``, ``comment`` or ``escape``)."""
    return _HIDDEN.finditer(sparql)


def tokens(sparql: str) -> Iterator[Token]:
    """Every token of the text, in order (white space skipped)."""
    for match in _EVERY_TOKEN.finditer(sparql):
        yield Token(match.lastgroup or "punct", match[0], match.start(), match.end())


# --- masking --------------------------------------------------------------------------------

#: Texts longer than this are read again each time, not kept (an update may be megabytes).
_KEPT_LENGTH = 16 * 1024

T = TypeVar("T")


def kept_for_short_texts(read: Callable[[str], T]) -> Callable[[str], T]:
    """``read`` with its answers kept for the last 256 texts of up to 16 KB (at most
    ~8 MB for a reading that is itself a text, such as ``masked``).

    For readings of a text that are asked again and again: a named question's text is the
    same on every run, and reading it means running regular expressions over a few KB of
    text, most of it comments.
    """
    kept = functools.lru_cache(maxsize=256)(read)

    @functools.wraps(read)
    def reading(sparql: str) -> T:
        return kept(sparql) if len(sparql) <= _KEPT_LENGTH else read(sparql)

    return reading


_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank(text: str, fill: str = " ") -> str:
    if "\n" not in text:
        return fill * len(text)
    return _NOT_NEWLINE.sub(fill, text)


def blanked(sparql: str, *, keep: frozenset[str] = frozenset(), fill: str = " ") -> str:
    """The text with its hiding tokens (those whose kind is not in ``keep``) blanked,
    newlines and positions kept.

    Comments always become spaces, as SPARQL reads a comment as white space; IRIs, strings
    and escapes become ``fill``, so a caller that must tell "nothing here" from "a term
    here" (a rule's parser) can blank them with ``"_"``.
    """

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind in keep:
            return match[0]
        return _blank(match[0], " " if kind == "comment" else fill)

    return _HIDDEN.sub(replace, sparql)


@kept_for_short_texts
def masked(sparql: str) -> str:
    """The text with IRIs, string literals, comments and escapes blanked, so keywords and
    brackets found in it are really ones."""
    return blanked(sparql)


_CODE_KEPT = frozenset({"iri", "escape"})


@kept_for_short_texts
def code_only(sparql: str) -> str:
    """The text with string literals and comments blanked (IRIs kept, ``#`` in them too)."""
    return blanked(sparql, keep=_CODE_KEPT)


#: A prefixed name, as found in masked text (escapes already blanked), so that its parts
#: are never taken for keywords (``rm:WHERE``, ``ex:select``).
PNAME_TOKEN = re.compile(r"(?<![\w?$])(?:[A-Za-z][\w.-]*)?:[\w.:%-]*")


@kept_for_short_texts
def keywords_only(sparql: str) -> str:
    """``masked`` with prefixed names blanked too: keywords, variables and punctuation."""
    return PNAME_TOKEN.sub(lambda m: " " * len(m[0]), masked(sparql))


def keyword(*words: str) -> re.Pattern[str]:
    """A pattern for any of ``words`` (themselves patterns: ``r"DELETE\\s+WHERE"``) as
    keywords, case-insensitive: not part of a longer word, a variable (``?where``) or a
    prefixed name (``rm:where``, ``where:x``); group 1 is the keyword as written. Search
    ``masked`` or ``keywords_only`` text with it."""
    return re.compile(rf"(?<![\w?$:-])({'|'.join(words)})(?![\w:-])", re.IGNORECASE)


# --- brackets -------------------------------------------------------------------------------

_PAIRS = {"{": "}", "(": ")", "[": "]"}
_PAIR_PATTERNS = {opening: re.compile(rf"\{opening}|\{pair}") for opening, pair in _PAIRS.items()}
_BRACKETS = re.compile(r"[{}()\[\]]")
_BRACES = re.compile(r"[{}]")


def closing(code: str, opening: int) -> int:
    """Where the bracket that closes the one at ``opening`` (``{``, ``(`` or ``[``) is, in
    masked text. Raises ``UnbalancedBrackets`` when it is never closed.

    Only brackets of the same kind are counted: in valid SPARQL the kinds nest properly,
    and a ``<…>`` that the lexer reads as an IRI where the grammar compares
    (``((?a<?b)&&?c>1)``) may hide a parenthesis without hiding its partner.
    """
    pair = _PAIRS.get(code[opening : opening + 1])
    if pair is None:
        raise UnbalancedBrackets(f"expected '{{', '(' or '[' at {opening}", opening)
    depth = 0
    for match in _PAIR_PATTERNS[code[opening]].finditer(code, opening):
        depth += 1 if match[0] != pair else -1
        if depth == 0:
            return match.start()
    raise UnbalancedBrackets(f"{code[opening]!r} is never closed", opening)


def enclosing_brace(code: str, position: int) -> int | None:
    """Where the innermost ``{`` around ``position`` opens (None: it is outside any group),
    in masked text."""
    depth = 0
    for index in range(position - 1, -1, -1):
        char = code[index]
        if char == "}":
            depth += 1
        elif char == "{":
            if depth == 0:
                return index
            depth -= 1
    return None


def first_group(code: str, start: int = 0) -> int | None:
    """Where the first ``{`` at or after ``start`` that is outside parentheses opens, in
    masked text (None: there is none). After a query's form this is its WHERE group:
    braces inside ``( … )`` belong to expressions such as ``EXISTS { … }`` in a
    projection."""
    depth = 0
    for match in _BRACKETS.finditer(code, start):
        char = match[0]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "{" and depth == 0:
            return match.start()
    return None


def top_level(code: str) -> str:
    """Masked text with every nested group blanked, braces and all: what is left is what
    stands at the outermost level of ``code``."""
    out = list(code)
    depth = begin = 0
    for match in _BRACES.finditer(code):
        if match[0] == "{":
            if depth == 0:
                begin = match.start()
            depth += 1
            continue
        if depth == 0:  # a stray '}': blank it alone
            out[match.start()] = " "
            continue
        depth -= 1
        if depth == 0:
            out[begin : match.end()] = _blank(code[begin : match.end()])
    if depth > 0:
        out[begin:] = _blank(code[begin:])
    return "".join(out)


#: A query's form, searched for in ``masked`` text.
QUERY_FORM = keyword("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
_WHERE = keyword("WHERE")


@kept_for_short_texts
def query_form(sparql: str) -> str | None:
    """SELECT, ASK, CONSTRUCT or DESCRIBE (upper case), or None for no query form."""
    found = QUERY_FORM.search(masked(sparql))
    return None if found is None else found[1].upper()


@kept_for_short_texts
def where_brace(sparql: str) -> int | None:
    """Where a query's WHERE group opens (None: it has no group, as ``DESCRIBE <x>``).

    Raises ``SyntaxError`` for a text with no query form. A CONSTRUCT's template is
    skipped: its group is the one after ``WHERE`` (or the only one, ``CONSTRUCT WHERE``).
    """
    code = masked(sparql)
    form = QUERY_FORM.search(code)
    if form is None:
        raise SyntaxError("not a SPARQL query (no SELECT, ASK, CONSTRUCT or DESCRIBE)")
    start = form.end()
    if form[1].upper() == "CONSTRUCT":
        where = _WHERE.search(code, start)
        start = where.end() if where else start
    return first_group(code, start)


__all__ = [
    "HIDING_KINDS",
    "IRI_BODY",
    "KINDS",
    "PNAME_TOKEN",
    "QUERY_FORM",
    "Token",
    "UnbalancedBrackets",
    "blanked",
    "closing",
    "code_only",
    "enclosing_brace",
    "first_group",
    "hidden",
    "kept_for_short_texts",
    "keyword",
    "keywords_only",
    "masked",
    "query_form",
    "tokens",
    "top_level",
    "unescape_iri",
    "where_brace",
]
