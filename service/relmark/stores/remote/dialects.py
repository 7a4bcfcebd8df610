"""How relmark speaks to SPARQL engines: what each does differently, and what every query
is made into on its way.

- **Oxigraph server** has a real default graph and a ``union-default-graph`` parameter:
  relmark's "default graph is the union of all graphs" maps onto it directly.
- **Virtuoso** has no default graph of its own (``INSERT DATA`` without ``GRAPH`` fails,
  and a query without a dataset sees every graph, its own system graphs included).
  relmark's default graph is therefore the graph ``urn:relmark:default`` there
  (``EMULATED_DEFAULT_GRAPH``), and the union is passed explicitly as
  ``default-graph-uri``/``named-graph-uri`` lists of the graphs relmark sees (Virtuoso's
  own ``virtrdf#``/``ldp#`` graphs are hidden). Virtuoso also has no notion of an empty
  graph, so ``MOVE`` from an empty staging graph simply empties the target (the standard
  says it is an error; relmark never relies on either). Virtuoso 7.2 has no SPARQL 1.2
  ``LATERAL`` (the named questions and label look-ups use it): queries are sent rewritten
  by ``sparql.rewrite.without_lateral``. It answers booleans as 0/1 (read back as
  false/true, ``canonical_booleans``) and exact seconds typed xsd:dayTimeDuration as
  numbers (read back as durations, ``_virtuoso_durations``); a decimal parameter is bound
  computed, not as a constant (``Engine.computed_decimals``); the rest of its deviations
  (COALESCE over an unbound value, ``<=`` on dates, joins on computed values) are written
  around in the query texts themselves (see the README, "Running on a SPARQL server").
- **generic**: the standard only, union passed explicitly; whether it parses ``LATERAL``
  is asked once (``RemoteStore.supports_lateral``).

On their way every query and update may be rewritten: parameters bound by a ``VALUES``
block (``bind_values``), ``FROM`` clauses dropped where the protocol names the dataset
(``without_from``), ``DROP``/``CLEAR`` made ``SILENT`` (``silent_drops``). Answers come
back as pyoxigraph objects (``read_results``), so the rest of relmark cannot tell the
back ends apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pyoxigraph as ox

from relmark.sparql.lexer import code_only, masked, where_brace
from relmark.stores.base import QueryResult, StoreError, Term
from relmark.stores.remote.transport import Reply

#: Where relmark keeps "its" default graph on an engine without one (Virtuoso).
EMULATED_DEFAULT_GRAPH = "urn:relmark:default"
#: Graphs an engine keeps for itself; relmark neither lists nor reads them.
VIRTUOSO_SYSTEM_PREFIXES = (
    "http://www.openlinksw.com/",
    "http://www.w3.org/ns/ldp#",
    "http://localuriqaserver/",
)

XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"
SPARQL_QUERY = "application/sparql-query"
RESULTS_JSON = "application/sparql-results+json"
RESULTS_XML = "application/sparql-results+xml"
RESULTS_TSV = "text/tab-separated-values"
N_TRIPLES = "application/n-triples"


@dataclass(frozen=True)
class Engine:
    """What an engine does differently from the standard (see the module docstring)."""

    name: str
    native_default_graph: bool
    union_parameter: str | None
    hidden_prefixes: tuple[str, ...] = ()
    #: Whether ``GRAPH ?g {}`` lists graphs (cheap) or ``?s ?p ?o`` must be matched.
    empty_graph_pattern: bool = True
    #: Whether the engine parses SPARQL 1.2 ``LATERAL`` (None: ask it once, on first need);
    #: without it queries are rewritten by ``sparql.rewrite.without_lateral``.
    lateral: bool | None = None
    #: Put before a DESCRIBE so the engine describes as pyoxigraph does (the resource's own
    #: statements, blank nodes followed); DESCRIBE's answer is up to each engine.
    describe_prologue: str = ""
    #: Whether ``DROP``/``CLEAR GRAPH`` fail on a graph that has triples but was never
    #: ``CREATE``d (Virtuoso): relmark sends them ``SILENT`` (see ``update``).
    needs_silent_drop: bool = False
    #: Whether an xsd:decimal must be bound as a computed value, not a constant (Virtuoso
    #: 7.2 sorts a projected decimal constant into a (0,0)-precision column: SR128).
    computed_decimals: bool = False
    #: Whether queries go as the POST body (``application/sparql-query``, the dataset in
    #: the URL) rather than a form: ~0.1 ms less per request; Virtuoso 7.2 stalls on it.
    direct_post: bool = False
    #: Whether SELECT answers are asked for as TSV (lossless, unlike CSV): half the bytes
    #: of JSON, parsed in half the time (0.2 ms against 0.4 for 100 rows of 5 terms).
    tsv_select: bool = False


ENGINES = {
    "oxigraph": Engine(
        "oxigraph", True, "union-default-graph", lateral=True, direct_post=True, tsv_select=True
    ),
    "virtuoso": Engine(
        "virtuoso",
        False,
        None,
        VIRTUOSO_SYSTEM_PREFIXES,
        False,
        lateral=False,
        # Virtuoso's own DESCRIBE adds every statement naming the resource as object
        describe_prologue='define sql:describe-mode "CBD"\n',
        needs_silent_drop=True,
        computed_decimals=True,
    ),
    "generic": Engine("generic", True, None, (), False),
}
#: Asked once of a generic engine: does it parse LATERAL?
LATERAL_PROBE = "SELECT ?y WHERE { VALUES ?x { 1 } LATERAL { BIND(?x AS ?y) } }"


# --- results ---------------------------------------------------------------------------------


def read_results(response: Reply, virtuoso: bool = False) -> QueryResult:
    """The engine's answer as pyoxigraph's objects, by the content type it sent."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    content = response.content
    if virtuoso and BOOLEAN_TYPE in content:
        content = canonical_booleans(content, kind)
    if virtuoso and b'"bnode"' in content and kind in (RESULTS_JSON, "application/json"):
        content = _valid_blank_labels(content)
    if virtuoso and _DURATION in content and kind in (RESULTS_JSON, "application/json"):
        content = _virtuoso_durations(content)
    if kind in (RESULTS_JSON, "application/json"):
        return ox.parse_query_results(content, format=ox.QueryResultsFormat.JSON)
    if kind in (RESULTS_XML, "application/xml"):
        return ox.parse_query_results(content, format=ox.QueryResultsFormat.XML)
    if kind == RESULTS_TSV:
        return ox.parse_query_results(content, format=ox.QueryResultsFormat.TSV)
    fmt = ox.RdfFormat.from_media_type(kind) if kind else None
    if fmt is None:
        raise StoreError(f"the SPARQL server answered with an unexpected type {kind!r}")
    graph = ox.Store()
    graph.bulk_extend(
        ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph())
        for t in ox.parse(content, format=fmt)
    )
    return graph.query("CONSTRUCT WHERE { ?s ?p ?o }")


BOOLEAN_TYPE = b"http://www.w3.org/2001/XMLSchema#boolean"
_NT_BOOLEAN = re.compile(rb'"([01])"\^\^<http://www\.w3\.org/2001/XMLSchema#boolean>')


def canonical_booleans(content: bytes, kind: str) -> bytes:
    """Virtuoso stores xsd:boolean as 0/1 and answers "0"^^xsd:boolean; use false/true.

    Without this, a boolean fact would not equal the same fact read from the files (nor
    the embedded store's), and explanations would lose track of where it is asserted.
    """
    words = {b"0": b"false", b"1": b"true"}
    if kind in (RESULTS_JSON, "application/json"):
        data = json.loads(content)
        for row in data.get("results", {}).get("bindings", []):
            for term in row.values():
                if term.get("datatype") == BOOLEAN_TYPE.decode() and term.get("value") in (
                    "0",
                    "1",
                ):
                    term["value"] = words[term["value"].encode()].decode()
        return json.dumps(data).encode()
    if kind in (RESULTS_XML, "application/xml"):
        return content  # relmark asks Virtuoso for JSON results only
    return _NT_BOOLEAN.sub(lambda m: b'"' + words[m[1]] + b'"^^<' + BOOLEAN_TYPE + b">", content)


def _valid_blank_labels(content: bytes) -> bytes:
    """Virtuoso labels blank nodes ``nodeID://b10006`` in JSON results, which is not a
    blank node label: the same node keeps one valid label (``nodeID___b10006``)."""
    data = json.loads(content)
    for row in data.get("results", {}).get("bindings", []):
        for term in row.values():
            if term.get("type") == "bnode":
                term["value"] = re.sub(r"[^A-Za-z0-9_]", "_", term["value"])
    return json.dumps(data).encode()


_DURATION = b"http://www.w3.org/2001/XMLSchema#dayTimeDuration"
#: An exact number of seconds: Virtuoso's lexical form of an xsd:dayTimeDuration it made
#: from a number (``STRDT(STR(?seconds), xsd:dayTimeDuration)``). Its own durations come
#: back rounded (``2.26195e+08``): those are left alone, they cannot be restored.
_SECONDS = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _virtuoso_durations(content: bytes) -> bytes:
    """Virtuoso 7.2 keeps no durations: ``date - date`` is an xsd:integer of seconds and a
    literal typed xsd:dayTimeDuration is turned into a number (openlink/virtuoso-opensource
    #843, #1147). A query that types exact seconds xsd:dayTimeDuration (as
    queries/committed-partners-of-brand.rq does) gets the standard's canonical literal
    (``"P2618D"``) back; a number is no xsd:dayTimeDuration lexical form, so no valid
    duration is ever changed."""
    data = json.loads(content)
    for row in data.get("results", {}).get("bindings", []):
        for term in row.values():
            if term.get("datatype") == _DURATION.decode() and _SECONDS.fullmatch(term["value"]):
                term["value"] = _day_time_duration(Decimal(term["value"]))
    return json.dumps(data).encode()


def _day_time_duration(seconds: Decimal) -> str:
    """The canonical xsd:dayTimeDuration lexical form of a number of seconds."""
    sign, rest = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((int(hours), "H"), (int(minutes), "M")) if n)
    clock += f"{rest.normalize():f}S" if rest else ""
    if not days and not clock:
        return "PT0S"
    return f"{sign}P{f'{int(days)}D' if days else ''}{'T' + clock if clock else ''}"


def raise_local_syntax_error(sparql: str) -> None:
    """Raise pyoxigraph's error for a query the engine called malformed, if pyoxigraph
    agrees: its message says where (``at line:column``), which Virtuoso's does not. The
    query is run on an empty in-memory store (never one with SERVICE: that would call out).
    """
    if re.search(r"\bSERVICE\b", masked(sparql), re.IGNORECASE):
        return
    try:
        ox.Store().query(sparql)
    except SyntaxError:
        raise
    except Exception:  # anything but a syntax error: the engine's word stands
        return


_SILENT = re.compile(r"(?<![\w:?$-])(DROP|CLEAR)(\s+)(?!SILENT\b)", re.IGNORECASE)


def silent_drops(sparql: str) -> str:
    """``DROP``/``CLEAR`` operations made ``SILENT`` (outside strings, IRIs and comments)."""
    code = masked(sparql)
    parts, last = [], 0
    for found in _SILENT.finditer(code):
        parts.append(sparql[last : found.end(1)] + " SILENT")
        last = found.end(1)
    return "".join(parts) + sparql[last:]


_FROM = re.compile(
    r"(?<![\w:?$-])FROM\s+(?:NAMED\s+)?(?:<[^<>\s]*>|[A-Za-z_][\w.-]*:[\w.-]*|:[\w.-]*)",
    re.IGNORECASE,
)


def without_from(sparql: str) -> str:
    """The query without its ``FROM``/``FROM NAMED`` clauses (blanked, so positions stay)."""
    code = code_only(sparql)
    for found in reversed(list(_FROM.finditer(code))):
        sparql = (
            sparql[: found.start()] + " " * (found.end() - found.start()) + sparql[found.end() :]
        )
    return sparql


_SYNTAX = re.compile(r"syntax|parse error|SP030|SP031|37000", re.IGNORECASE)


def looks_like_syntax(body: str) -> bool:
    """Virtuoso answers a malformed query with 500 and an SQL state; others with 400."""
    return bool(_SYNTAX.search(body[:500]))


def first_lines(text: str, lines: int = 3) -> str:
    return " ".join(text.splitlines()[:lines])[:500]


# --- binding substitutions -------------------------------------------------------------------

#: An IRI where a graph's name goes (after GRAPH, INTO, TO, WITH, USING NAMED, MOVE …).
_GRAPH_IRI = re.compile(
    r"""\b(?:GRAPH|INTO|TO|WITH|USING|NAMED|MOVE|ADD|COPY|SILENT)\s+<([^<>"{}|^`\\\s]*)>""",
    re.IGNORECASE,
)


def spelled_graphs(sparql: str) -> set[str]:
    """The graph IRIs a query or update spells out (only those: listing every IRI of a
    query that names many terms as named graphs makes Virtuoso's reply unreadable)."""
    return set(_GRAPH_IRI.findall(code_only(sparql)))


def bind_values(
    sparql: str, substitutions: Mapping[str, Term | ox.Triple], computed_decimals: bool = False
) -> str:
    """The query with its variables bound by a ``VALUES`` block at the top of its WHERE.

    Terms are written in their N-Triples form (pyoxigraph's ``str``), never pasted as raw
    text, so a value cannot change the query's structure. A VALUES block at the start of
    the outer group binds the variables before the rest is evaluated, as pyoxigraph's
    ``substitutions`` do (a trailing VALUES would join only after any aggregation). With
    ``computed_decimals`` an xsd:decimal is bound by ``BIND(value + 0.0 AS ?name)`` there
    instead (the same value, computed: see ``Engine.computed_decimals``).
    """
    names = sorted(substitutions)
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise StoreError(f"{name!r} is not a SPARQL variable name")
        if isinstance(substitutions[name], ox.BlankNode):
            raise StoreError("a blank node cannot be bound in a query sent to a SPARQL server")
    computed = [n for n in names if computed_decimals and _is_decimal(substitutions[n])]
    constant = [n for n in names if n not in computed]
    variables = " ".join(f"?{n}" for n in constant)
    row = " ".join(_term_text(substitutions[n]) for n in constant)
    block = f" VALUES ({variables}) {{ ({row}) }} " if constant else " "
    block += "".join(f"BIND({substitutions[n]} + 0.0 AS ?{n}) " for n in computed)
    brace = where_brace(sparql)
    if brace is None:
        return f"{sparql}\n{block.strip()}"
    return sparql[: brace + 1] + block + sparql[brace + 1 :]


def _is_decimal(term: object) -> bool:
    return isinstance(term, ox.Literal) and term.datatype.value == XSD_DECIMAL


def _term_text(term: object) -> str:
    """A term in SPARQL syntax: its N-Triples form (an RDF 1.2 triple term as ``<<( … )>>``)."""
    if isinstance(term, ox.Triple):
        return f"<<( {term} )>>"
    if not isinstance(term, ox.NamedNode | ox.Literal):
        raise StoreError(f"cannot bind {term!r} in a query sent to a SPARQL server")
    return str(term)
