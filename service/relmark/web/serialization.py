"""Query results and graphs to bytes, in the negotiated format, within the row limit.

Everything is written by pyoxigraph's own writers, exactly to each format's spec, in one
pass; only a result large enough to break the row limit has its rows counted.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable
from typing import IO, overload

import pyoxigraph as ox

from relmark.formats import Format, rdf_format, results_format
from relmark.vocab import DEMO, RM
from relmark.web.errors import ApiError

#: Prefixes for Turtle/TriG output, so graphs read well in a browser.
PREFIXES = {
    "rm": RM,
    "demo": DEMO,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "sh": "http://www.w3.org/ns/shacl#",
    "dcterms": "http://purl.org/dc/terms/",
    "sd": "http://www.w3.org/ns/sparql-service-description#",
    "void": "http://rdfs.org/ns/void#",
}


class Cancelled(Exception):
    """The request gave up waiting (timeout): stop pulling rows."""


def _too_large(max_rows: int, what: str) -> ApiError:
    return ApiError(
        413,
        "result too large",
        detail=f"the query returns more than {max_rows:,} {what} (RELMARK_MAX_ROWS); "
        "add a LIMIT or narrow the pattern",
    )


def written_bytes(body: bytes | None) -> bytes:
    """The bytes pyoxigraph's writers return when given no output (typed as maybe None,
    which they are only when they wrote to an output)."""
    if body is None:
        raise TypeError("pyoxigraph wrote to an output, not to bytes")
    return body


def serialize_result(
    result: ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples,
    fmt: Format,
    max_rows: int,
    cancelled: threading.Event,
) -> bytes:
    """The body for one query result; raises 413 past ``max_rows`` rows or triples."""
    if isinstance(result, ox.QueryBoolean):
        return written_bytes(result.serialize(format=results_format(fmt)))
    if isinstance(result, ox.QueryTriples):
        triples: list[ox.Triple] = []
        for triple in result:
            if cancelled.is_set():
                raise Cancelled
            triples.append(triple)
            if len(triples) > max_rows:
                raise _too_large(max_rows, "triples")
        return serialize_rdf(triples, fmt)
    body = written_bytes(result.serialize(format=results_format(fmt)))
    if len(body) > max_rows and _rows(body, fmt) > max_rows:
        raise _too_large(max_rows, "rows")
    return body


def _rows(body: bytes, fmt: Format) -> int:
    """The rows of a serialised result (only asked of large ones: every format spends at
    least a byte per row, so a body of at most ``max_rows`` bytes is within the limit).

    Counted as lines of SPARQL TSV, written by pyoxigraph (TSV escapes newlines inside
    terms): counting rows in Python cost more than a point lookup itself.
    """
    if fmt.oxigraph == ox.QueryResultsFormat.CSV:  # lossy, so pyoxigraph cannot read it
        return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8"), newline=""))) - 1
    tsv = body
    if fmt.oxigraph != ox.QueryResultsFormat.TSV:
        parsed = ox.parse_query_results(body, format=results_format(fmt))
        tsv = written_bytes(parsed.serialize(format=ox.QueryResultsFormat.TSV))
    return tsv.count(b"\n") - 1


Statements = Iterable[ox.Triple] | Iterable[ox.Quad]


@overload
def serialize_rdf(statements: Statements, fmt: Format, output: None = None) -> bytes: ...


@overload
def serialize_rdf(statements: Statements, fmt: Format, output: IO[bytes]) -> None: ...


def serialize_rdf(
    statements: Statements, fmt: Format, output: IO[bytes] | None = None
) -> bytes | None:
    """Triples or quads in an RDF format, with readable prefixes where the format has them:
    the bytes, or None once written to ``output``."""
    written = rdf_format(fmt)
    if written in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG):
        body = ox.serialize(statements, output, format=written, prefixes=PREFIXES)
    else:
        body = ox.serialize(statements, output, format=written)
    return body if output is not None else written_bytes(body)
