"""The wire formats relmark reads and writes: one table for the HTTP layer and the CLI.

Every format is one row of ``FORMATS`` with its media type, the short names a user types
(``?format=``, ``relmark query --format``) and its spec; the lookups below are derived
from it, so adding a format is adding a row. Content negotiation over these rows lives
in ``relmark.web.negotiation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyoxigraph as ox


class Kind(Enum):
    """What a response carries: SPARQL results (SELECT/ASK) or an RDF graph/dataset."""

    RESULTS = "results"
    RDF = "rdf"


@dataclass(frozen=True, eq=False)
class Format:
    """One wire format: its media type, the names ``?format=`` knows it by, its spec.

    Each format is one object in ``FORMATS``, compared and hashed by identity (cheap: the
    negotiation cache hashes a tuple of them per request).
    """

    media_type: str
    kind: Kind
    oxigraph: ox.QueryResultsFormat | ox.RdfFormat
    names: tuple[str, ...]
    spec: str
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The main short name, the one a command-line option lists."""
        return self.names[0]

    @property
    def content_type(self) -> str:
        """The Content-Type header value (text formats are UTF-8 by their specs)."""
        return f"{self.media_type}; charset=utf-8"


QRF = ox.QueryResultsFormat
RDF = ox.RdfFormat

#: The one table. Order matters: within a kind, the first row is the default when the
#: client accepts anything, and earlier rows win ties between equally acceptable types.
FORMATS: tuple[Format, ...] = (
    # SPARQL 1.1 Query Results JSON Format — https://www.w3.org/TR/sparql11-results-json/
    Format(
        "application/sparql-results+json",
        Kind.RESULTS,
        QRF.JSON,
        ("json", "srj"),
        "https://www.w3.org/TR/sparql11-results-json/",
        aliases=("application/json", "text/javascript", "application/javascript"),
    ),
    # SPARQL Query Results XML Format — https://www.w3.org/TR/rdf-sparql-XMLres/
    Format(
        "application/sparql-results+xml",
        Kind.RESULTS,
        QRF.XML,
        ("xml", "srx"),
        "https://www.w3.org/TR/rdf-sparql-XMLres/",
        aliases=("application/xml", "text/xml"),
    ),
    # SPARQL 1.1 Query Results CSV and TSV Formats — https://www.w3.org/TR/sparql11-results-csv-tsv/
    Format(
        "text/csv",
        Kind.RESULTS,
        QRF.CSV,
        ("csv",),
        "https://www.w3.org/TR/sparql11-results-csv-tsv/",
    ),
    Format(
        "text/tab-separated-values",
        Kind.RESULTS,
        QRF.TSV,
        ("tsv",),
        "https://www.w3.org/TR/sparql11-results-csv-tsv/",
    ),
    # RDF 1.1 Turtle — https://www.w3.org/TR/turtle/
    Format(
        "text/turtle",
        Kind.RDF,
        RDF.TURTLE,
        ("turtle", "ttl"),
        "https://www.w3.org/TR/turtle/",
        aliases=("application/x-turtle", "application/turtle"),
    ),
    # RDF 1.1 N-Triples — https://www.w3.org/TR/n-triples/
    Format(
        "application/n-triples",
        Kind.RDF,
        RDF.N_TRIPLES,
        ("ntriples", "nt", "n-triples"),
        "https://www.w3.org/TR/n-triples/",
        aliases=("text/plain",),
    ),
    # RDF 1.1 N-Quads — https://www.w3.org/TR/n-quads/
    Format(
        "application/n-quads",
        Kind.RDF,
        RDF.N_QUADS,
        ("nquads", "nq", "n-quads"),
        "https://www.w3.org/TR/n-quads/",
        aliases=("text/x-nquads",),
    ),
    # RDF 1.1 TriG — https://www.w3.org/TR/trig/
    Format(
        "application/trig",
        Kind.RDF,
        RDF.TRIG,
        ("trig",),
        "https://www.w3.org/TR/trig/",
    ),
    # RDF 1.1 XML Syntax — https://www.w3.org/TR/rdf-syntax-grammar/
    Format(
        "application/rdf+xml",
        Kind.RDF,
        RDF.RDF_XML,
        ("rdfxml", "rdf+xml", "xml", "rdf"),
        "https://www.w3.org/TR/rdf-syntax-grammar/",
        aliases=("application/xml", "text/xml"),
    ),
    # JSON-LD 1.1 — https://www.w3.org/TR/json-ld11/
    Format(
        "application/ld+json",
        Kind.RDF,
        RDF.JSON_LD,
        ("jsonld", "json-ld", "json"),
        "https://www.w3.org/TR/json-ld11/",
        aliases=("application/x-json+ld", "application/json"),
    ),
)


def formats_of(kind: Kind) -> list[Format]:
    """The rows of one kind, in preference order."""
    return [f for f in FORMATS if f.kind is kind]


def format_for_content_type(media_type: str, kind: Kind) -> Format | None:
    """The format of a request body, from its Content-Type (parameters ignored)."""
    wanted = media_type.split(";", 1)[0].strip().lower()
    for fmt in formats_of(kind):
        if wanted == fmt.media_type or wanted in fmt.aliases:
            return fmt
    return None


def named(kind: Kind) -> dict[str, Format]:
    """The formats of one kind by their main name (``json``, ``turtle``…), in table order:
    the choices a command-line option offers."""
    return {fmt.name: fmt for fmt in formats_of(kind)}


def rdf_format(fmt: Format) -> ox.RdfFormat:
    """pyoxigraph's format of an RDF row of the table (``Kind.RDF``)."""
    if isinstance(fmt.oxigraph, ox.RdfFormat):
        return fmt.oxigraph
    raise TypeError(f"{fmt.name} is a query results format, not an RDF one")


def results_format(fmt: Format) -> ox.QueryResultsFormat:
    """pyoxigraph's format of a query results row of the table (``Kind.RESULTS``)."""
    if isinstance(fmt.oxigraph, ox.QueryResultsFormat):
        return fmt.oxigraph
    raise TypeError(f"{fmt.name} is an RDF format, not a query results one")
