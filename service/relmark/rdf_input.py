"""What RDF input relmark refuses to parse, whoever sends it.

RDF/XML may carry a document type declaration whose entities pyoxigraph expands: a
1.5 KB "billion laughs" body grew a worker to 16 GB. RDF/XML needs no DTD (the RDF/XML
grammar has none), so a document with ``<!DOCTYPE`` or ``<!ENTITY`` is refused before
any parser sees it. JSON-LD is safe as it is: pyoxigraph never fetches a remote
``@context`` (tests/test_hostile_input.py proves it with a local listener). Other formats
have no such constructs. Parsed statements may also not carry an over-long IRI.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox

#: The markup that opens a DTD or declares an entity, as UTF-8 and as UTF-16 (either
#: byte order), since an XML parser may honour a byte-order mark.
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)


class UnsafeRdf(ValueError):
    """RDF input refused before parsing; the message says what and why."""


def check_rdf_input(data: bytes, fmt: ox.RdfFormat) -> None:
    """Refuse RDF/XML with a DTD or entity declarations (entity expansion attacks)."""
    if fmt != ox.RdfFormat.RDF_XML:
        return
    upper = data.upper()  # XML names are case-sensitive; a lenient parser might not be
    for marker in _DTD_MARKERS:
        at = upper.find(marker)
        if at >= 0:
            raise UnsafeRdf(
                "RDF/XML with a document type declaration (<!DOCTYPE>/<!ENTITY>) is not "
                f"accepted (found at byte {at:,}): entities can expand without bound, and "
                "RDF/XML needs none; write the IRIs out in full"
            )


def check_iri_lengths(quads: Iterable[ox.Quad], limit: int) -> None:
    """Refuse a statement whose subject, predicate, object or graph IRI exceeds ``limit``."""
    for quad in quads:
        for term in (quad.subject, quad.predicate, quad.object, quad.graph_name):
            if isinstance(term, ox.NamedNode) and len(term.value) > limit:
                raise UnsafeRdf(
                    f"an IRI of {len(term.value):,} characters; this server takes IRIs of "
                    f"up to {limit:,} (RELMARK_MAX_IRI_LENGTH)"
                )
