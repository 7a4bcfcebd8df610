"""Checks on a SPARQL text before any engine parses or runs it.

Why before: pyoxigraph's parser recurses once per nesting level, so ten thousand ``{``
overflow the thread's stack and kill the process (SIGSEGV, no exception to catch), and
nested ``[ ]``/``( )`` take super-linear time (depth 100: ~2 s, depth 200: over 10 s).
pyoxigraph 0.5 also evaluates ``SERVICE`` and ``LOAD`` by fetching the URL, and offers
no hook to turn that off (``Store.query``/``update`` take no service handler). So the
text is read here with ``relmark.sparql.lexer`` (strings, comments and IRIs blanked,
positions kept), and refused with a ``SparqlRefused`` naming the limit or setting when:

- it is longer than ``max_bytes`` or nests ``{ ( [`` deeper than ``max_depth``;
- a ``SERVICE`` or ``LOAD`` names an endpoint that is not on the operator's allow-list
  (``RELMARK_SERVICE_ALLOW``, empty by default), a ``file:`` IRI (never allowed) or a
  variable; prefixed names and relative IRIs are resolved first (``PREFIX``, ``BASE``
  and the request's base IRI), so ``SERVICE ex:x`` cannot slip by;
- (updates) an IRI is longer than ``max_iri_length``.

Where the text could be read two ways, it is refused rather than guessed: a ``<…>`` right
after an operand may be the ``<`` operator instead of an IRI (``?a<'x>'…``), and if its
inside holds a quote, ``#`` or a bracket the two readings disagree on what is code.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyoxigraph as ox

from relmark.settings import Settings
from relmark.sparql.lexer import IRI_BODY, PNAME_TOKEN, hidden, keyword, unescape_iri

#: The deepest nesting any setting may allow: pyoxigraph 0.5.13 dies of a stack overflow
#: between 2,000 and 2,500 nested ``{`` on an 8 MB thread stack (measured); this keeps
#: a wide margin and is what the writer process checks whatever the workers allow.
CRASH_SAFE_DEPTH = 512
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_IRI_LENGTH = 4096

_BRACKETS = re.compile(r"[{}()\[\]]")
_OPENERS = "{(["
#: ``<`` followed by ``scheme://``: as an operator, ``http: //…`` cannot parse past ``//``.
_SCHEME_SLASHES = re.compile(r"<[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
#: Characters that can end an operand, after which ``<`` may be the less-than operator.
_OPERAND_END = re.compile(r"[\w)\]\"'>:%.\-]")
#: Inside an IRI-looking token, what would make the two readings disagree.
_DIVERGING = re.compile(r"['#()\[\]]")
_FETCHING = keyword("SERVICE", "LOAD")
_SILENT = re.compile(r"\s*SILENT(?![\w:-])", re.IGNORECASE)
_ENDPOINT = re.compile(
    rf"\s*(?:<(?P<iri>{IRI_BODY})>|(?P<var>[?$]\w+)|(?P<pname>(?:[A-Za-z][\w.-]*)?:[\w.:%-]*))"
)
_PROLOGUE = re.compile(
    r"(?<![\w?$:-])(?:(?P<base>BASE)|PREFIX\s+(?P<prefix>(?:[A-Za-z][\w.-]*)?):)"
    rf"\s*<(?P<iri>{IRI_BODY})>",
    re.IGNORECASE,
)
_IRIREF = re.compile(rf"<({IRI_BODY})>")
_DOT_SEGMENT = re.compile(r"(?:^|[/:])\.\.?(?:[/?#]|$)")


class SparqlRefused(ValueError):
    """A SPARQL text refused before evaluation; ``status`` is the HTTP status to answer."""

    def __init__(self, error: str, detail: str, where: str | None = None, status: int = 400):
        super().__init__(f"{error}: {detail}")
        self.error, self.detail, self.where, self.status = error, detail, where, status

    def __reduce__(self) -> tuple:  # crosses the worker/writer pipe (serving.encode_error)
        return (SparqlRefused, (self.error, self.detail, self.where, self.status))


@dataclass(frozen=True)
class SparqlLimits:
    """What a SPARQL text may be: its size, nesting, IRI length and fetchable endpoints."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_bytes: int = DEFAULT_MAX_BYTES
    max_iri_length: int = DEFAULT_MAX_IRI_LENGTH
    service_allow: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> SparqlLimits:
        """The limits a ``Settings`` sets (the depth never above ``CRASH_SAFE_DEPTH``)."""
        return cls(
            max_depth=min(settings.max_sparql_depth, CRASH_SAFE_DEPTH),
            max_bytes=settings.max_sparql_bytes,
            max_iri_length=settings.max_iri_length,
            service_allow=tuple(settings.service_allow),
        )


#: What the writer process checks on every update it receives, whatever the workers allow:
#: only what keeps the process alive (it must never crash on input).
CRASH_LIMITS = SparqlLimits(max_depth=CRASH_SAFE_DEPTH, max_bytes=1 << 40, max_iri_length=1 << 40)


def check_query(sparql: str, limits: SparqlLimits, base_iri: str | None = None) -> None:
    """Refuse a query that is too big, too deep or fetches an endpoint not allowed."""
    _checked(sparql, limits, base_iri, "query")


def check_update(sparql: str, limits: SparqlLimits, base_iri: str | None = None) -> None:
    """As ``check_query`` for an update, which may also not carry over-long IRIs."""
    _checked(sparql, limits, base_iri, "update")


def check_parse_safety(sparql: str) -> None:
    """What the writer process runs on an update it received: nothing that can crash it."""
    _check_size_and_depth(sparql, CRASH_LIMITS, "update", _lexed(sparql))


#: Texts up to this long that passed are remembered (a dashboard sends the same query
#: again and again; reading a 1.5 KB question costs ~40 µs).
_KEPT_LENGTH = 16 * 1024


@functools.lru_cache(maxsize=256)
def _passed(sparql: str, limits: SparqlLimits, base_iri: str | None, what: str) -> bool:
    _check(sparql, limits, base_iri, what)
    return True  # a refusal raises, and is not remembered


def _checked(sparql: str, limits: SparqlLimits, base_iri: str | None, what: str) -> None:
    if len(sparql) <= _KEPT_LENGTH:
        _passed(sparql, limits, base_iri, what)
    else:
        _check(sparql, limits, base_iri, what)


def _check(sparql: str, limits: SparqlLimits, base_iri: str | None, what: str) -> None:
    lexed = _check_size_and_depth(sparql, limits, what, None)
    if what == "update":
        _check_iri_lengths(lexed, limits.max_iri_length)
    lowered = sparql.lower()
    if "service" in lowered or "load" in lowered:  # most texts have neither: skip the reading
        _check_endpoints(sparql, lexed, limits.service_allow, base_iri, what)


def _check_size_and_depth(sparql: str, limits: SparqlLimits, what: str, lexed: str | None) -> str:
    fits = len(sparql) * 4 <= limits.max_bytes
    size = len(sparql) if fits else len(sparql.encode("utf-8", "replace"))
    if size > limits.max_bytes:
        raise SparqlRefused(
            f"the {what} is too long",
            f"{size:,} bytes; this server reads SPARQL texts of up to {limits.max_bytes:,} "
            "bytes (RELMARK_MAX_SPARQL_BYTES)",
        )
    lexed = _lexed(sparql) if lexed is None else lexed
    depth, where = _nesting(_IRIREF.sub(_blank, lexed))  # prefixed names hold no brackets
    if depth > limits.max_depth:
        raise SparqlRefused(
            f"the {what} nests too deeply",
            f"{{ ( [ nested {depth} deep; this server allows {limits.max_depth} "
            "(RELMARK_MAX_SPARQL_DEPTH)",
            where=_line_column(sparql, where),
        )
    return lexed


def _blank(match: re.Match) -> str:
    return " " * len(match[0])


def _lexed(sparql: str) -> str:
    """The text with strings and comments blanked, escapes as ``__`` and IRIs kept.

    Refuses an IRI-looking token that could also be read as the ``<`` operator and whose
    inside would then be read differently (see the module's docstring).
    """
    out: list[str] = []
    pos = 0
    operand_before = False
    for match in hidden(sparql):
        gap = sparql[pos : match.start()]
        out.append(gap)
        code = gap.rstrip()
        if code:
            operand_before = bool(_OPERAND_END.match(code[-1])) or code[-2:-1] == "\\"
        kind, text = match.lastgroup, match[0]
        if kind == "iri":
            ambiguous = operand_before or sparql[match.start() - 1 : match.start()] == "<"
            if ambiguous and _DIVERGING.search(text) and not _SCHEME_SLASHES.match(text):
                raise SparqlRefused(
                    "ambiguous '<'",
                    f"{text[:60]!r} may be an IRI or the '<' operator; write spaces around "
                    "'<' when it compares, or write the IRI in full",
                    where=_line_column(sparql, match.start()),
                )
            out.append(text)
            operand_before = True
        elif kind == "escape":
            out.append("__")
        else:
            out.append(" " * len(text))
            operand_before = operand_before if kind == "comment" else True
        pos = match.end()
    out.append(sparql[pos:])
    return "".join(out)


def _keywords_view(lexed: str) -> str:
    """``lexed`` with IRIs and prefixed names blanked too: what is left is keywords,
    variables, numbers and punctuation."""
    return PNAME_TOKEN.sub(_blank, _IRIREF.sub(_blank, lexed))


def _nesting(view: str) -> tuple[int, int]:
    """The deepest ``{ ( [`` nesting and where it is reached."""
    depth = deepest = 0
    where = 0
    for match in _BRACKETS.finditer(view):
        if match[0] in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest, where = depth, match.start()
        elif depth:
            depth -= 1
    return deepest, where


def _line_column(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    return f"{line}:{position - (text.rfind(chr(10), 0, position) + 1) + 1}"


def _check_iri_lengths(lexed: str, limit: int) -> None:
    for match in _IRIREF.finditer(lexed):
        if len(match[1]) > limit:
            raise SparqlRefused(
                "an IRI is too long",
                f"an IRI of {len(match[1]):,} characters; this server takes IRIs of up to "
                f"{limit:,} (RELMARK_MAX_IRI_LENGTH)",
                where=_line_column(lexed, match.start()),
                status=400,
            )


def resolve(iri: str, base: str | None) -> str:
    """``iri`` resolved against ``base`` the way pyoxigraph's parsers do (RFC 3986, oxiri).

    Only what needs it goes through the parser (relative IRIs, ``.``/``..`` segments):
    the rest resolves to itself.
    """
    scheme = _SCHEME.match(iri)
    if scheme is not None and not _DOT_SEGMENT.search(iri, scheme.end()):
        return iri
    if base is None:
        return iri  # pyoxigraph resolves nothing without a base
    document = f"<{iri}> <urn:p> <urn:o> ."
    try:
        (triple,) = ox.parse(document, format=ox.RdfFormat.TURTLE, base_iri=base)
    except (SyntaxError, ValueError) as error:
        raise SparqlRefused(
            "an IRI does not resolve", f"<{iri}> against <{base}>: {error}"
        ) from None
    return triple.subject.value


class _Prologue:
    """The BASE and PREFIX declarations of a text, as they stand at each position."""

    def __init__(self, lexed: str, base_iri: str | None) -> None:
        self._starts: list[int] = []
        self._states: list[tuple[str | None, dict[str, str]]] = [(base_iri, {})]
        for match in _PROLOGUE.finditer(lexed):
            base, prefixes = self._states[-1]
            iri = resolve(unescape_iri(match["iri"]), base)
            declared = {match["prefix"]: iri}
            state = (iri, prefixes) if match["base"] else (base, {**prefixes, **declared})
            self._starts.append(match.start())
            self._states.append(state)

    def at(self, position: int) -> tuple[str | None, dict[str, str]]:
        return self._states[bisect.bisect_left(self._starts, position)]


def _expand(pname: str, prefixes: dict[str, str]) -> str | None:
    """A prefixed name (as written, escapes and all) as an IRI, None if undeclared."""
    prefix, _, local = pname.partition(":")
    namespace = prefixes.get(prefix)
    return None if namespace is None else namespace + re.sub(r"\\(.)", r"\1", local)


def _check_endpoints(
    sparql: str, lexed: str, allow: Iterable[str], base_iri: str | None, what: str
) -> None:
    """Refuse every SERVICE and LOAD whose endpoint is a variable, ``file:`` or not allowed."""
    view = _keywords_view(lexed)
    found = list(_FETCHING.finditer(view))
    if not found:
        return
    prologue = _Prologue(lexed, base_iri)
    allowed = tuple(a for a in allow if a)
    for fetching in found:
        name = fetching[0].upper()
        where = _line_column(lexed, fetching.start())
        position = fetching.end()
        silent = _SILENT.match(view, position)
        if silent:
            position = silent.end()
        term = _ENDPOINT.match(lexed, position)
        if term is None or term["var"]:
            shown = "a variable" if term is not None else "no IRI"
            raise SparqlRefused(
                f"{name} needs a fixed endpoint",
                f"{name} names {shown}; only endpoints on RELMARK_SERVICE_ALLOW can be "
                "fetched, so the endpoint must be an IRI",
                where=where,
            )
        base, prefixes = prologue.at(fetching.start())
        if term["pname"] is not None:
            iri = _expand(sparql[term.start("pname") : term.end("pname")], prefixes)
            if iri is None:
                continue  # an undeclared prefix: the parser refuses the text itself
        else:
            iri = unescape_iri(term["iri"])
        iri = resolve(iri, base)
        if iri.lower().startswith("file:"):
            raise SparqlRefused(
                f"{name} of a file is not allowed",
                f"{name} <{iri}>: this server never reads its own files for a request",
                where=where,
                status=403,
            )
        if not any(iri.startswith(prefix) for prefix in allowed):
            listed = ", ".join(allowed) or "empty"
            raise SparqlRefused(
                f"{name} of this endpoint is not allowed",
                f"{name} <{iri}>: the {what} would make this server fetch that URL; the "
                f"operator's allow-list (RELMARK_SERVICE_ALLOW) is {listed}",
                where=where,
                status=403,
            )


def iris_of(sparql: str, base_iri: str | None = None) -> set[str]:
    """Every IRI a text names, as written and as the engine resolves it (``BASE``,
    ``PREFIX``, the request's base, ``.``/``..`` segments): what an update may touch."""
    lexed = _lexed(sparql)
    prologue = _Prologue(lexed, base_iri)
    iris: set[str] = set()
    for match in _IRIREF.finditer(lexed):
        iri = unescape_iri(match[1])
        iris.add(iri)
        iris.add(resolve(iri, prologue.at(match.start())[0]))
    blanked = _IRIREF.sub(lambda m: " " * len(m[0]), lexed)
    for match in PNAME_TOKEN.finditer(blanked):
        pname = sparql[match.start() : match.end()].rstrip(".")
        base, prefixes = prologue.at(match.start())
        expanded = _expand(pname, prefixes)
        if expanded is not None:
            iris.add(expanded)
            iris.add(resolve(expanded, base))
    return iris


def has_relative_iri(sparql: str) -> bool:
    """Whether the text writes an IRI without a scheme, which only a base IRI resolves."""
    lexed = _lexed(sparql)
    return any(not _SCHEME.match(unescape_iri(m[1])) for m in _IRIREF.finditer(lexed))
