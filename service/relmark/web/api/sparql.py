"""``/sparql``: the SPARQL 1.1 Protocol — query, update and the service description.

Protocol: https://www.w3.org/TR/sparql11-protocol/
Service description: https://www.w3.org/TR/sparql11-service-description/

Queries may arrive by GET ``?query=``, by a form POST or by a direct POST of
``application/sparql-query``; updates only by POST, with the bearer token. The default
graph is the union of all graphs unless ``default-graph-uri``/``named-graph-uri`` say
otherwise. Reads are open to other origins (CORS); updates never are.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl

import pyoxigraph as ox
from flask import Blueprint, Response, request, url_for
from werkzeug.datastructures import MultiDict

from relmark.errors import QueryTimeout
from relmark.formats import FORMATS, Format, Kind, formats_of
from relmark.loading import ShapesCheck
from relmark.sparql.guard import (
    SparqlLimits,
    SparqlRefused,
    check_query,
    check_update,
    has_relative_iri,
    iris_of,
)
from relmark.sparql.inspect import (
    dataset_of,
    drops_everything,
    is_single_lookup,
    may_write_any_graph,
)
from relmark.sparql.lexer import keywords_only
from relmark.sparql.rewrite import every_data_graph, with_using
from relmark.vocab import SYSTEM_GRAPHS
from relmark.web.auth import require_admin, require_token, token_store
from relmark.web.cors import allow_cross_origin_reads, mark_read, preflight
from relmark.web.errors import ApiError, query_timeout, syntax_error
from relmark.web.extensions import (
    after_write,
    get_query_runner,
    get_settings,
    get_store,
)
from relmark.web.negotiation import negotiate, not_acceptable
from relmark.web.serialization import serialize_rdf, serialize_result

bp = Blueprint("sparql", __name__)
bp.after_request(allow_cross_origin_reads)

FORM = "application/x-www-form-urlencoded"
QUERY_BODY = "application/sparql-query"
UPDATE_BODY = "application/sparql-update"

SD = "http://www.w3.org/ns/sparql-service-description#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
VOID_TRIPLES = ox.NamedNode("http://rdfs.org/ns/void#triples")
XSD_INTEGER = ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")
#: What an inline lookup (never cancelled) is given as its cancellation flag.
NEVER_CANCELLED = threading.Event()
#: Every negotiated answer varies with Accept (a literal header: parsing ``vary`` costs more).
VARY_ACCEPT = {"Vary": "Accept"}


@bp.route("/sparql", methods=["GET", "POST", "OPTIONS"])
def endpoint() -> Response:
    """Dispatch to the Protocol operation the request carries (HEAD is GET without a body)."""
    if request.method == "OPTIONS":
        return preflight("GET, HEAD, POST, OPTIONS", "GET, HEAD, POST, OPTIONS")
    args = _strict_params(request.query_string, "the query string")
    if request.method in ("GET", "HEAD"):
        if "update" in args:
            raise ApiError(
                400, "updates must be sent with POST", detail="see SPARQL 1.1 Protocol §2.2"
            )
        if "query" not in args:
            mark_read()
            return service_description()
        return run_query(_single(args, "query"), args)
    if request.mimetype == FORM:
        form = _strict_params(request.get_data(), "the form body")
        values = MultiDict([*args.items(multi=True), *form.items(multi=True)])
        if "query" in form and "update" in form:
            raise ApiError(400, "a request carries either query= or update=, not both")
        if "query" in form:
            return run_query(_single(form, "query"), values)
        if "update" in form:
            return run_update(_single(form, "update"), values)
        raise ApiError(400, "a form POST needs a query= or an update= field")
    if request.mimetype == QUERY_BODY:
        return run_query(_body_text(), args)
    if request.mimetype == UPDATE_BODY:
        return run_update(_body_text(), args)
    raise ApiError(
        415,
        "unsupported media type",
        detail=f"POST to /sparql takes {FORM}, {QUERY_BODY} or {UPDATE_BODY}, "
        f"not {request.mimetype or 'a body without Content-Type'}",
    )


def _strict_params(raw: bytes, what: str) -> MultiDict:
    """URL-encoded parameters, refused (400) unless they decode as UTF-8.

    Werkzeug's own parsing replaces bad bytes with U+FFFD, which would run a query the
    client never wrote.
    """
    try:
        text = raw.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"{what} is not UTF-8", detail=str(error)) from None
    return MultiDict(pairs)


# --- queries --------------------------------------------------------------------------------
def run_query(sparql: str, params: MultiDict) -> Response:
    """Evaluate and serialise a query on a worker thread, within the query timeout.

    pyoxigraph cannot cancel an evaluation: on timeout the client gets 503 at once and its
    waitress thread is free, but the evaluation runs on in the background until it ends
    (a query that yields rows stops at the next row). A single-pattern lookup, whose cost
    is bounded by its rows, runs on the request thread instead.
    """
    mark_read()
    _check_version(params)
    base = _base_iri()
    settings = get_settings()
    _guarded(check_query, sparql, SparqlLimits.of(settings), base)
    dataset = _dataset(sparql, params)
    prologue = _base_prologue(sparql, base)
    text = prologue + sparql
    accept, overrides = request.headers.get("Accept"), _format_overrides(params)
    offers = {kind: negotiate(accept, overrides, kind) for kind in Kind}
    if not any(offers.values()):
        raise not_acceptable(FORMATS)
    store = get_store()

    def evaluate(cancelled: threading.Event) -> tuple[Format, bytes]:
        if dataset is None:
            result = store.query(text)
        else:
            result = store.query(text, default_graph=[*dataset[0]], named_graphs=dataset[1])
        kind = Kind.RDF if isinstance(result, ox.QueryTriples) else Kind.RESULTS
        fmt = offers[kind]
        if fmt is None:
            raise not_acceptable(formats_of(kind))
        return fmt, serialize_result(result, fmt, settings.max_result_rows, cancelled)

    try:
        if is_single_lookup(sparql):
            fmt, body = evaluate(NEVER_CANCELLED)  # bounded: no hand-off (sparql/inspect.py)
        else:
            fmt, body = get_query_runner().run(evaluate, settings.query_timeout)
    except SyntaxError as error:
        raise _without_prologue(syntax_error(error, "query"), prologue) from None
    except QueryTimeout as error:
        advice = "narrow the query or add a LIMIT"
        raise query_timeout(error, settings.query_timeout, advice) from None
    except (OSError, RuntimeError) as error:  # pyoxigraph's evaluation errors
        if "SERVICE" in keywords_only(sparql).upper():  # an allowed endpoint that failed
            raise ApiError(502, "a SERVICE endpoint failed", detail=str(error)) from None
        raise ApiError(500, "query evaluation failed", detail=str(error)) from error
    return Response(body, content_type=fmt.content_type, headers=VARY_ACCEPT)


def _dataset(sparql: str, params: MultiDict) -> tuple[list[str], list[str]] | None:
    """The dataset to query: the protocol's graphs, else the query's FROM, else None (union).

    If either protocol parameter is present it replaces the query's dataset entirely
    (Protocol §2.1.4). A query's own FROM/FROM NAMED is passed explicitly because
    pyoxigraph's union-default-graph option would otherwise override it.
    """
    default = _graph_iris(params, "default-graph-uri")
    named = _graph_iris(params, "named-graph-uri")
    if default or named:
        return default, named
    return dataset_of(sparql)


def _format_overrides(params: MultiDict) -> list[str]:
    return params.getlist("format") + params.getlist("output")


#: The values of the SPARQL 1.2 Protocol's ``version`` parameter this endpoint speaks.
VERSIONS = ("1.1", "1.2")


def _check_version(params: MultiDict) -> None:
    """SPARQL 1.2 Protocol: at most one ``version``, and one this endpoint speaks."""
    versions = params.getlist("version")
    if len(versions) > 1:
        raise ApiError(400, "exactly one version= parameter is allowed", detail=f"got {versions}")
    if versions and versions[0] not in VERSIONS:
        raise ApiError(
            400,
            "unsupported SPARQL version",
            detail=f"version={versions[0]!r}; this endpoint speaks {' and '.join(VERSIONS)}",
        )


def _base_iri() -> str:
    """The base IRI of a request's SPARQL text: the endpoint's own URL (no query string)."""
    return request.base_url


def _base_prologue(sparql: str, base: str) -> str:
    """``BASE <endpoint>`` to put before a text that has relative IRIs, on its first line.

    Relative IRIs then resolve against the endpoint on every back end (the remote store's
    engine too), and only first-line columns move (``_without_prologue`` moves them back).
    Other texts are left as they are, so what a remote store reads from an update (the
    graphs it names) and keeps for a query's text is unchanged.
    """
    return f"BASE <{base}> " if has_relative_iri(sparql) else ""


_FIRST_LINE_POSITION = re.compile(r"\b(at )?1:(\d+)\b")


def _without_prologue(error: ApiError, prologue: str) -> ApiError:
    """A syntax error's positions as in the client's text, without ``_base_prologue``."""

    def shifted(match: re.Match) -> str:
        return f"{match[1] or ''}1:{max(1, int(match[2]) - len(prologue))}"

    if isinstance(error.detail, str):
        error.detail = re.sub(r"\b(at )1:(\d+)\b", shifted, error.detail)
    if error.where:
        error.where = _FIRST_LINE_POSITION.sub(shifted, error.where)
    return error


def _guarded(
    check: Callable[[str, SparqlLimits, str | None], None],
    sparql: str,
    limits: SparqlLimits,
    base: str | None,
) -> None:
    """Run a ``sparql_guard`` check; its refusal becomes the HTTP error it names."""
    try:
        check(sparql, limits, base)
    except SparqlRefused as refused:
        raise ApiError(
            refused.status, refused.error, detail=refused.detail, where=refused.where
        ) from None


def _graph_iris(params: MultiDict, name: str) -> list[str]:
    iris = params.getlist(name)
    for iri in iris:
        try:
            ox.NamedNode(iri)
        except ValueError as error:
            raise ApiError(
                400, f"{name} is not an absolute IRI", detail=f"{iri!r}: {error}"
            ) from None
    return iris


def _single(params: MultiDict, name: str) -> str:
    values = params.getlist(name)
    if len(values) != 1:
        raise ApiError(
            400, f"exactly one {name}= parameter is allowed", detail=f"got {len(values)}"
        )
    return values[0]


def _body_text() -> str:
    """A direct POST's body as text: UTF-8 is the only charset SPARQL bodies may declare."""
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in ("utf-8", "utf8"):
        raise ApiError(
            415,
            "unsupported charset",
            detail=f"{request.mimetype} is read as UTF-8 only, not charset={charset}",
        )
    try:
        return request.get_data().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, "the request body is not UTF-8", detail=str(error)) from None


# --- updates --------------------------------------------------------------------------------
def run_update(sparql: str, params: MultiDict) -> Response:
    """Apply an update if the token is right and the graphs it writes still conform.

    ``CLEAR``/``DROP`` of ``ALL`` or ``NAMED`` (admins only) act on every data graph: the
    ontology, shapes, config graphs (files' copies) and relmark's bookkeeping stay, and
    the inferences follow the data. ``using-graph-uri``/``using-named-graph-uri`` set the
    dataset of each ``DELETE``/``INSERT … WHERE`` (Protocol §2.2.3).
    """
    require_token()
    if drops_everything(sparql):
        require_admin()  # store-wide CLEAR/DROP ALL/NAMED: admins only (web/auth.py)
    _check_version(params)
    base = _base_iri()
    store, settings = get_store(), get_settings()
    _guarded(check_update, sparql, SparqlLimits.of(settings), base)
    using = _graph_iris(params, "using-graph-uri")
    using_named = _graph_iris(params, "using-named-graph-uri")
    try:
        sparql = with_using(sparql, using, using_named)
        data_graphs = [g for g in store.graph_names() if g not in SYSTEM_GRAPHS]
        written = every_data_graph(sparql, data_graphs)
        if written != sparql:
            require_admin()  # (as above, whichever reading saw the store-wide operation)
        sparql = written
    except ValueError as error:
        raise ApiError(400, "the update cannot take these parameters", detail=str(error)) from None
    touched_system = sorted(iris_of(sparql, base) & SYSTEM_GRAPHS)
    if touched_system:
        named = ", ".join(f"<{iri}>" for iri in touched_system)
        raise ApiError(
            403,
            "relmark's own graphs are read-only",
            detail=f"the update names {named}; the ontology, shapes, config, inferred, "
            "provenance and meta graphs are written only by relmark itself",
        )
    prologue = _base_prologue(sparql, base)
    try:
        graphs = None if may_write_any_graph(sparql) else iris_of(sparql, base)
        check = ShapesCheck(store, settings.ontology_dir)
        store.update_validated(prologue + sparql, check, graphs)
    except SparqlRefused as refused:  # from the writer process's own check
        raise ApiError(refused.status, refused.error, detail=refused.detail) from None
    except SyntaxError as error:
        raise _without_prologue(syntax_error(error, "update"), prologue) from None
    except OSError as error:  # pyoxigraph's evaluation errors
        raise ApiError(500, "update failed", detail=str(error)) from error
    after_write()
    return Response(status=204)


# --- service description ---------------------------------------------------------------------
def service_description() -> Response:
    """What this endpoint is and offers, as RDF (Turtle unless the client asks otherwise)."""
    fmt = negotiate(request.headers.get("Accept"), _format_overrides(request.args), Kind.RDF)
    if fmt is None:
        raise not_acceptable(formats_of(Kind.RDF))
    store = get_store()

    def sd(name: str) -> ox.NamedNode:
        return ox.NamedNode(SD + name)

    service, dataset, default_graph = ox.BlankNode(), ox.BlankNode(), ox.BlankNode()
    endpoint_iri = ox.NamedNode(url_for("sparql.endpoint", _external=True))
    triples = [
        ox.Triple(service, RDF_TYPE, sd("Service")),
        ox.Triple(service, sd("endpoint"), endpoint_iri),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        ox.Triple(service, sd("feature"), sd("UnionDefaultGraph")),
        ox.Triple(service, sd("defaultDataset"), dataset),
        ox.Triple(dataset, RDF_TYPE, sd("Dataset")),
        ox.Triple(dataset, sd("defaultGraph"), default_graph),
        ox.Triple(default_graph, RDF_TYPE, sd("Graph")),
        ox.Triple(
            default_graph, VOID_TRIPLES, ox.Literal(str(store.count()), datatype=XSD_INTEGER)
        ),
    ]
    if token_store().can_write():  # a writer or admin token exists (web/auth.py)
        triples.append(ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Update")))
    triples += [
        ox.Triple(service, sd("resultFormat"), ox.NamedNode(row.oxigraph.iri)) for row in FORMATS
    ]
    for name in store.graph_names():
        named = ox.BlankNode()
        triples += [
            ox.Triple(dataset, sd("namedGraph"), named),
            ox.Triple(named, RDF_TYPE, sd("NamedGraph")),
            ox.Triple(named, sd("name"), ox.NamedNode(name)),
        ]
    response = Response(serialize_rdf(triples, fmt), content_type=fmt.content_type)
    response.vary.add("Accept")
    return response
