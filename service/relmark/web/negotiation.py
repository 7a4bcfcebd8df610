"""Content negotiation over the formats table (``relmark.formats``), and the Accept parser.

A request picks a format by
``?format=`` / ``?output=`` (Fuseki's override, also sent by SPARQLWrapper) or else by its
``Accept`` header (RFC 9110 §12.5.1: q-values, ``type/*`` and ``*/*`` wildcards, the most
specific range deciding an offer's quality).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relmark.formats import FORMATS, Format, Kind, formats_of
from relmark.web.errors import ApiError


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header."""

    type_: str
    subtype: str
    q: float
    position: int

    @property
    def specificity(self) -> int:
        """2 for ``type/sub``, 1 for ``type/*``, 0 for ``*/*``: the most specific range wins."""
        return (self.type_ != "*") + (self.subtype != "*")

    def matches(self, media_type: str) -> bool:
        type_, _, subtype = media_type.partition("/")
        return self.type_ in ("*", type_) and self.subtype in ("*", subtype)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Parse an Accept header; malformed elements are skipped rather than failing the request.

    An absent or empty header means ``*/*`` (RFC 9110: any media type is acceptable).
    """
    if not header or not header.strip():
        return [MediaRange("*", "*", 1.0, 0)]
    ranges = []
    for position, element in enumerate(header.split(",")):
        media, *params = (part.strip() for part in element.split(";"))
        type_, slash, subtype = media.lower().partition("/")
        if not slash or not type_ or not subtype or (type_ == "*" and subtype != "*"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if not 0.0 <= q <= 1.0:
            continue
        ranges.append(MediaRange(type_, subtype, q, position))
    return ranges


def quality(ranges: Sequence[MediaRange], media_type: str) -> tuple[float, int, int]:
    """How acceptable a media type is: (q, specificity, -position) of its best matching range.

    Per RFC 9110 the *most specific* matching range decides the q-value, so
    ``text/*;q=0.1, text/csv`` accepts CSV at 1 and TSV at 0.1.
    """
    matching = [r for r in ranges if r.matches(media_type)]
    if not matching:
        return (0.0, -1, 0)
    best = max(matching, key=lambda r: (r.specificity, -r.position))
    return (best.q, best.specificity, -best.position)


def _format_quality(ranges: Sequence[MediaRange], fmt: Format) -> tuple[float, int, int]:
    """A format's quality: its media type's, unless the client named an alias exactly.

    Aliases (``application/json`` for SPARQL JSON) count only when named exactly, so
    ``text/*`` does not pick a format through an alias, and ``…+json;q=0`` is not undone
    by ``*/*`` matching ``application/json``.
    """
    own = quality(ranges, fmt.media_type)
    if own[1] == 2:
        return own
    named = [quality(ranges, alias) for alias in fmt.aliases]
    exact = [score for score in named if score[1] == 2]
    return max(exact) if exact else own


def choose(accept: str | None, offers: Iterable[Format]) -> Format | None:
    """The offer the client prefers most, or None when it accepts none of them.

    Ties on q go to the more specific range, then to the client's earlier range, then to
    the server's order. Answers are remembered: clients send the same few Accept headers,
    and parsing one cost a tenth of a point lookup.
    """
    return _choose(accept, tuple(offers))


@functools.lru_cache(maxsize=1024)
def _choose(accept: str | None, offers: tuple[Format, ...]) -> Format | None:
    ranges = parse_accept(accept)
    best: tuple[tuple[float, int, int], int] | None = None
    chosen: Format | None = None
    for rank, fmt in enumerate(offers):
        score = _format_quality(ranges, fmt)
        if score[0] <= 0:
            continue
        key = (score, -rank)
        if best is None or key > best:
            best, chosen = key, fmt
    return chosen


def format_by_name(names: Iterable[str], kind: Kind) -> Format | None:
    """The first ``?format=``/``?output=`` value that names a format of this kind.

    Values may be short names (``json``, ``turtle``) or media types. A value that names a
    format of the other kind is passed over (SPARQLWrapper sends its guess in ``format``,
    ``output`` and ``results`` whatever the query form), but one that names no format at
    all is a 400 listing the names, rather than silently ignored.
    """
    for raw in names:
        name = raw.strip().lower()
        for fmt in formats_of(kind):
            if name in fmt.names or name == fmt.media_type:
                return fmt
        if not _known(name):
            known = ", ".join(sorted({n for f in FORMATS for n in f.names}))
            raise ApiError(
                400,
                "unknown format",
                detail=f"format={raw!r} names no format here; use one of {known} or a media type",
            )
    return None


#: Every value ``?format=``/``?output=`` may carry, of either kind; plus SPARQLWrapper's
#: ``n3``, which it sends for Notation3 (answered as Turtle through Accept), and ``html``,
#: which the resource pages take as "not RDF".
_KNOWN_NAMES = frozenset(
    [*(n for f in FORMATS for n in f.names), *(f.media_type for f in FORMATS)]
    + [a for f in FORMATS for a in f.aliases]
    + ["n3", "text/n3", "text/rdf+n3", "html", "text/html"]
)


def _known(value: str) -> bool:
    """Whether a ``?format=`` value names formats: a name, a media type, or (as SPARQLWrapper
    sends for JSON-LD) an Accept-like list of media types; empty means no choice."""
    parts = [part.split(";", 1)[0].strip() for part in value.split(",")]
    return all(not part or part in _KNOWN_NAMES for part in parts)


def negotiate(
    accept: str | None, overrides: Sequence[str], kind: Kind, offers: Sequence[Format] | None = None
) -> Format | None:
    """The response format: ``?format=`` first, then Accept, among ``offers`` (default: all
    formats of ``kind``)."""
    offers = formats_of(kind) if offers is None else offers
    named = format_by_name(overrides, kind)
    if named is not None:
        return named if named in offers else None
    return choose(accept, offers)


def not_acceptable(offers: Iterable[Format]) -> ApiError:
    """The 406 listing what the client could have asked for."""
    offered = ", ".join(f.media_type for f in offers)
    return ApiError(406, "not acceptable", detail=f"this resource is available as: {offered}")


def not_rdf(what: str, mimetype: str | None) -> ApiError:
    """415 for a body that should be RDF; names the formats relmark reads."""
    accepted = ", ".join(f.media_type for f in formats_of(Kind.RDF))
    return ApiError(
        415,
        "unsupported media type",
        detail=f"send {what} as one of: {accepted} (got {mimetype or 'no Content-Type'})",
    )
