"""The Accept parser and the media-type table (relmark.web.negotiation)."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from relmark.formats import FORMATS, Kind, format_for_content_type, formats_of
from relmark.web.errors import ApiError
from relmark.web.negotiation import choose, format_by_name, negotiate, parse_accept, quality

RESULTS = formats_of(Kind.RESULTS)
RDF = formats_of(Kind.RDF)


def media(accept: str | None, kind: Kind) -> str | None:
    fmt = choose(accept, formats_of(kind))
    return None if fmt is None else fmt.media_type


# --- the table ------------------------------------------------------------------------------
def test_every_row_names_its_spec_and_matches_pyoxigraph() -> None:
    for row in FORMATS:
        assert row.spec.startswith("https://www.w3.org/"), row
        assert row.oxigraph.media_type.split(";")[0] == row.media_type, row


def test_media_types_and_names_are_unique_within_a_kind() -> None:
    for kind in Kind:
        rows = formats_of(kind)
        types = [t for r in rows for t in (r.media_type, *r.aliases)]
        names = [n for r in rows for n in r.names]
        assert len(types) == len(set(types))
        assert len(names) == len(set(names))


def test_the_table_covers_the_design() -> None:
    assert {r.media_type for r in RESULTS} == {
        "application/sparql-results+json",
        "application/sparql-results+xml",
        "text/csv",
        "text/tab-separated-values",
    }
    assert {r.media_type for r in RDF} == {
        "text/turtle",
        "application/n-triples",
        "application/n-quads",
        "application/trig",
        "application/rdf+xml",
        "application/ld+json",
    }


# --- parsing --------------------------------------------------------------------------------
def test_parse_accept_reads_q_values_and_skips_junk() -> None:
    ranges = parse_accept("text/csv;q=0.5, application/json , nonsense, */*;q=0.1, a/b;q=x")
    assert [(r.type_, r.subtype, r.q) for r in ranges] == [
        ("text", "csv", 0.5),
        ("application", "json", 1.0),
        ("*", "*", 0.1),
    ]


def test_absent_or_empty_accept_means_anything() -> None:
    for header in (None, "", "   "):
        assert [(r.type_, r.subtype, r.q) for r in parse_accept(header)] == [("*", "*", 1.0)]


def test_parameters_other_than_q_are_ignored() -> None:
    (only,) = parse_accept('text/turtle; charset="utf-8"; q=0.7')
    assert (only.type_, only.subtype, only.q) == ("text", "turtle", 0.7)


def test_out_of_range_q_is_skipped() -> None:
    assert parse_accept("text/csv;q=2, text/tsv;q=-1") == []


def test_most_specific_range_decides_quality() -> None:
    ranges = parse_accept("text/*;q=0.2, text/csv, */*;q=0.9")
    assert quality(ranges, "text/csv")[0] == 1.0
    assert quality(ranges, "text/tab-separated-values")[0] == 0.2
    assert quality(ranges, "application/n-triples")[0] == 0.9


# --- choosing -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "kind", "expected"),
    [
        (None, Kind.RESULTS, "application/sparql-results+json"),
        (None, Kind.RDF, "text/turtle"),
        ("*/*", Kind.RDF, "text/turtle"),
        ("text/csv", Kind.RESULTS, "text/csv"),
        ("text/tab-separated-values", Kind.RESULTS, "text/tab-separated-values"),
        ("application/sparql-results+xml", Kind.RESULTS, "application/sparql-results+xml"),
        ("application/json", Kind.RESULTS, "application/sparql-results+json"),
        ("application/json", Kind.RDF, "application/ld+json"),
        ("application/xml", Kind.RDF, "application/rdf+xml"),
        ("text/*", Kind.RESULTS, "text/csv"),
        ("text/csv;q=0, text/*", Kind.RDF, "text/turtle"),
        ("text/xml", Kind.RESULTS, "application/sparql-results+xml"),
        ("text/turtle;q=0.5, application/n-triples", Kind.RDF, "application/n-triples"),
        ("application/n-quads;q=0.9, application/trig", Kind.RDF, "application/trig"),
        ("text/csv;q=0.1, */*;q=0.5", Kind.RESULTS, "application/sparql-results+json"),
        # ties on q: the client's earlier range wins
        ("application/rdf+xml, text/turtle", Kind.RDF, "application/rdf+xml"),
        # a browser: HTML is not on offer, XML at 0.9 beats */* at 0.8
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            Kind.RESULTS,
            "application/sparql-results+xml",
        ),
        # SPARQLWrapper's JSON request
        (
            "application/sparql-results+json,application/json,text/javascript",
            Kind.RESULTS,
            "application/sparql-results+json",
        ),
    ],
)
def test_choose(accept: str | None, kind: Kind, expected: str) -> None:
    assert media(accept, kind) == expected


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        ("image/png", Kind.RESULTS),
        ("text/csv", Kind.RDF),
        ("text/turtle;q=0", Kind.RDF),
        ("*/*;q=0", Kind.RESULTS),
    ],
)
def test_nothing_acceptable(accept: str, kind: Kind) -> None:
    assert media(accept, kind) is None


def test_q_zero_excludes_a_type_a_wildcard_would_allow() -> None:
    assert media("*/*, application/sparql-results+json;q=0", Kind.RESULTS) == (
        "application/sparql-results+xml"
    )


def test_an_alias_named_exactly_counts_for_its_format() -> None:
    assert media("application/json;q=0.9, text/csv;q=0.5", Kind.RESULTS) == (
        "application/sparql-results+json"
    )
    assert media("application/x-turtle", Kind.RDF) == "text/turtle"


# --- ?format= override ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("names", "kind", "expected"),
    [
        (["json"], Kind.RESULTS, ox.QueryResultsFormat.JSON),
        (["json"], Kind.RDF, ox.RdfFormat.JSON_LD),
        (["xml"], Kind.RESULTS, ox.QueryResultsFormat.XML),
        (["xml"], Kind.RDF, ox.RdfFormat.RDF_XML),
        (["CSV"], Kind.RESULTS, ox.QueryResultsFormat.CSV),
        (["tsv", "text/tab-separated-values"], Kind.RESULTS, ox.QueryResultsFormat.TSV),
        (["turtle"], Kind.RDF, ox.RdfFormat.TURTLE),
        (["nt"], Kind.RDF, ox.RdfFormat.N_TRIPLES),
        (["nquads"], Kind.RDF, ox.RdfFormat.N_QUADS),
        (["trig"], Kind.RDF, ox.RdfFormat.TRIG),
        (["application/ld+json"], Kind.RDF, ox.RdfFormat.JSON_LD),
        # SPARQLWrapper sends guesses; the first one we know wins
        (["n3", "rdf+xml"], Kind.RDF, ox.RdfFormat.RDF_XML),
    ],
)
def test_format_by_name(names: list[str], kind: Kind, expected: object) -> None:
    fmt = format_by_name(names, kind)
    assert fmt is not None and fmt.oxigraph == expected


def test_format_names_of_the_other_kind_fall_back_to_accept() -> None:
    """SPARQLWrapper sends its one guess whatever the query form (and ``n3``)."""
    assert format_by_name(["turtle"], Kind.RESULTS) is None
    assert format_by_name(["n3"], Kind.RDF) is None
    fmt = negotiate("text/csv", ["rdf+xml"], Kind.RESULTS)
    assert fmt is not None and fmt.media_type == "text/csv"


def test_unknown_format_names_are_400_listing_the_names() -> None:
    """Issue 16: an unknown ``?format=`` was ignored silently."""
    with pytest.raises(ApiError) as refused:
        negotiate("text/csv", ["bogus"], Kind.RESULTS)
    assert refused.value.status == 400
    assert "bogus" in refused.value.detail and "csv" in refused.value.detail


def test_offers_restrict_the_choice() -> None:
    datasets = [f for f in RDF if f.oxigraph.supports_datasets]
    fmt = negotiate("text/turtle, application/trig;q=0.5", [], Kind.RDF, datasets)
    assert fmt is not None and fmt.media_type == "application/trig"
    assert negotiate("text/turtle", [], Kind.RDF, datasets) is None
    assert negotiate(None, ["turtle"], Kind.RDF, datasets) is None


def test_format_override_beats_accept() -> None:
    fmt = negotiate("text/csv", ["json"], Kind.RESULTS)
    assert fmt is not None and fmt.media_type == "application/sparql-results+json"


# --- request bodies -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/turtle", ox.RdfFormat.TURTLE),
        ("text/turtle; charset=utf-8", ox.RdfFormat.TURTLE),
        ("Application/N-Triples", ox.RdfFormat.N_TRIPLES),
        ("application/ld+json", ox.RdfFormat.JSON_LD),
        ("application/rdf+xml", ox.RdfFormat.RDF_XML),
    ],
)
def test_format_for_content_type(content_type: str, expected: ox.RdfFormat) -> None:
    fmt = format_for_content_type(content_type, Kind.RDF)
    assert fmt is not None and fmt.oxigraph == expected


def test_unknown_content_type() -> None:
    assert format_for_content_type("image/png", Kind.RDF) is None
    assert format_for_content_type("", Kind.RDF) is None
