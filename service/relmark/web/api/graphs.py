"""``/data``: the SPARQL 1.1 Graph Store HTTP Protocol (https://www.w3.org/TR/sparql11-http-rdf-update/).

``?graph=IRI`` names a graph, ``?default`` the store's default graph; GET without either
returns the whole dataset and POST without either creates a new graph (§5.5). Writes
need the bearer token, are parsed by ``loading``'s parser, validated against the shapes
and written in one transaction, or not at all. relmark's own graphs are read-only here.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO

import pyoxigraph as ox
from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.wsgi import wrap_file

from relmark.formats import Format, Kind, format_for_content_type, formats_of, rdf_format
from relmark.history.forget import check_not_erased
from relmark.loading import LoadError, ShapesCheck, Source, parse_quads
from relmark.vocab import DATA_GRAPH_PREFIX, SYSTEM_GRAPHS
from relmark.web.auth import require_token
from relmark.web.cors import allow_cross_origin_reads, mark_read, preflight
from relmark.web.errors import ApiError, load_error
from relmark.web.extensions import after_write, get_settings, get_store
from relmark.web.negotiation import negotiate, not_acceptable, not_rdf
from relmark.web.serialization import serialize_rdf, written_bytes

bp = Blueprint("graphs", __name__)
bp.after_request(allow_cross_origin_reads)

#: Bodies bigger than this are spooled to a temporary file instead of held in memory.
SPOOL_BYTES = 8 * 1024 * 1024
BODY = "request body"
#: Where triples for the default graph are parsed before being moved there.
_DEFAULT_PLACEHOLDER = "urn:relmark:request:default-graph"


@dataclass(frozen=True)
class Target:
    """The graph a request addresses: ``iri`` None means the store's default graph."""

    iri: str | None

    @property
    def label(self) -> str:
        return "the default graph" if self.iri is None else f"<{self.iri}>"


@bp.route("/data", methods=["GET", "PUT", "POST", "DELETE", "OPTIONS"])
def graph_store() -> Response:
    """Dispatch by method; HEAD is GET without the body."""
    if request.method == "OPTIONS":
        return preflight("GET, HEAD, PUT, POST, DELETE, OPTIONS", "GET, HEAD, OPTIONS")
    target = _target()
    if request.method in ("GET", "HEAD"):
        mark_read()
        return read_dataset() if target is None else read_graph(target)
    require_token()
    if target is None:
        if request.method == "POST":
            return create_graph()
        raise ApiError(400, f"{request.method} needs ?graph=IRI or ?default")
    if target.iri in SYSTEM_GRAPHS:
        raise ApiError(
            403,
            "relmark's own graphs are read-only",
            detail=f"{target.label} is written only by relmark itself; write data to "
            f"{DATA_GRAPH_PREFIX}<name> or another IRI",
        )
    if request.method == "PUT":
        return replace_graph(target)
    if request.method == "POST":
        return add_to_graph(target)
    return delete_graph(target)


def _target() -> Target | None:
    graphs = request.args.getlist("graph")
    if graphs and "default" in request.args:
        raise ApiError(400, "use either ?graph=IRI or ?default, not both")
    if len(graphs) > 1:
        raise ApiError(400, "exactly one ?graph= parameter is allowed")
    if graphs:
        try:
            ox.NamedNode(graphs[0])
        except ValueError as error:
            raise ApiError(400, "?graph= is not an absolute IRI", detail=str(error)) from None
        return Target(graphs[0])
    return Target(None) if "default" in request.args else None


# --- reads ------------------------------------------------------------------------------------
def read_graph(target: Target) -> Response:
    """One graph's triples, Turtle unless the client asks for another RDF format."""
    fmt = _negotiated(formats_of(Kind.RDF))
    store = get_store()
    if target.iri is not None and not store.has_graph(target.iri):
        raise ApiError(404, "no such graph", detail=f"the store has no graph {target.label}")
    return _spooled(
        fmt, lambda out: serialize_rdf((q.triple for q in store.triples(target.iri)), fmt, out)
    )


def read_dataset() -> Response:
    """Every graph at once, in a format that can hold named graphs."""
    fmt = _negotiated([f for f in formats_of(Kind.RDF) if rdf_format(f).supports_datasets])
    store = get_store()
    return _spooled(fmt, lambda out: store.dump(out, rdf_format(fmt)))


def _negotiated(offers: list[Format]) -> Format:
    overrides = request.args.getlist("format") + request.args.getlist("output")
    fmt = negotiate(request.headers.get("Accept"), overrides, Kind.RDF, offers)
    if fmt is None:
        raise not_acceptable(offers)
    return fmt


def _spooled(fmt: Format, write: Callable[[IO[bytes]], object]) -> Response:
    """Serialise into a spooled temporary file and stream it, so big graphs never sit in RAM."""
    buffer = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the response closes it
    write(buffer)
    size = buffer.tell()
    buffer.seek(0)
    response = Response(
        wrap_file(request.environ, buffer), content_type=fmt.content_type, direct_passthrough=True
    )
    response.content_length = size
    response.vary.add("Accept")
    return response


# --- writes -----------------------------------------------------------------------------------
# Every write goes through the store's validated update: checked against the shapes in the
# context of the store, in the process that applies writes, and applied in one transaction
# (an INSERT DATA is worked out from its quads; a PUT or DELETE is compared graph by graph).
def replace_graph(target: Target) -> Response:
    """PUT: the body becomes the graph (201 when it is new, 204 when it replaced one)."""
    store = get_store()
    quads = _parsed_body(target)
    check_not_erased(store, quads, force=_forced())
    created = target.iri is not None and not store.has_graph(target.iri)
    if target.iri is None:
        _write_validated(f"DROP SILENT DEFAULT ;\nINSERT DATA {{\n{_ntriples(quads)}}}", [])
    else:
        _write_validated(
            f"DROP SILENT GRAPH <{target.iri}> ;\nCREATE SILENT GRAPH <{target.iri}> ;\n"
            f"INSERT DATA {{ GRAPH <{target.iri}> {{\n{_ntriples(quads)}}} }}",
            [target.iri],
        )
    after_write()
    return Response(status=201 if created else 204)


def add_to_graph(target: Target) -> Response:
    """POST: the body is merged into the graph (201 when that created it, else 204)."""
    store = get_store()
    quads = _parsed_body(target)
    check_not_erased(store, quads, force=_forced())
    created = target.iri is not None and not store.has_graph(target.iri)
    if quads:
        body = _ntriples(quads)
        block = body if target.iri is None else f"GRAPH <{target.iri}> {{\n{body}}}"
        _write_validated(f"INSERT DATA {{\n{block}}}", [] if target.iri is None else [target.iri])
    elif created:
        store.update(f"CREATE SILENT GRAPH <{target.iri}>")
    after_write()
    return Response(status=201 if created else 204)


def _forced() -> bool:
    """``force=true``: store even resources erased under GDPR Art. 17 (``relmark forget``)."""
    return request.args.get("force", "").strip().lower() in ("1", "true", "yes")


def create_graph() -> Response:
    """POST to the store itself: a new graph with a fresh IRI, named in ``Location``."""
    target = Target(f"{DATA_GRAPH_PREFIX}{uuid.uuid4()}")
    add_to_graph(target)
    location = url_for("graphs.graph_store", graph=target.iri, _external=True)
    response = jsonify(graph=target.iri, location=location)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def delete_graph(target: Target) -> Response:
    """DELETE: 204 when the graph went away, 404 when there was none, 422 when what is left
    would break the shapes (a value another graph's resource needs, say)."""
    store = get_store()
    if target.iri is None:
        _write_validated("CLEAR DEFAULT", [])
    elif not store.has_graph(target.iri):
        raise ApiError(404, "no such graph", detail=f"the store has no graph {target.label}")
    else:
        _write_validated(f"DROP GRAPH <{target.iri}>", [target.iri])
    after_write()
    return Response(status=204)


def _parsed_body(target: Target) -> list[ox.Quad]:
    """The body's statements as quads of the target graph; 415/400 when it cannot be read."""
    fmt = format_for_content_type(request.mimetype, Kind.RDF)
    if fmt is None:
        raise not_rdf("the graph", request.mimetype)
    graph = target.iri or _DEFAULT_PLACEHOLDER
    source = Source(name=BODY, data=request.get_data(), fmt=rdf_format(fmt))
    try:
        quads = parse_quads(source, graph, get_settings().max_iri_length)
    except LoadError as error:
        raise load_error(error, BODY) from None
    wanted = ox.NamedNode(graph)
    others = {q.graph_name for q in quads if q.graph_name != wanted}
    if others:
        raise ApiError(
            400,
            "the body names other graphs",
            detail="a Graph Store request carries one graph; found "
            + ", ".join(sorted(str(o) for o in others)),
        )
    if target.iri is None:
        return [ox.Quad(q.subject, q.predicate, q.object, ox.DefaultGraph()) for q in quads]
    return quads


def _write_validated(sparql: str, graphs: list[str]) -> None:
    """Refuse (422, nothing written) unless the store after the write conforms to the shapes
    for every focus node the write affects; otherwise write it, all at once."""
    store = get_store()
    store.update_validated(sparql, ShapesCheck(store, get_settings().ontology_dir), graphs)


def _ntriples(quads: Iterable[ox.Quad]) -> str:
    triples = (q.triple for q in quads)
    return written_bytes(ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)).decode()
