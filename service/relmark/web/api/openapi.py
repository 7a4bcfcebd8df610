"""``/api/openapi.json``: an OpenAPI 3.1 description of the whole HTTP surface.

Built on every request from two sources, so it cannot drift from what is served: the
operations below (one entry per view of ``sparql``, ``graphs``, ``health``, ``api`` and this
module's own blueprint) and the named questions' ``.rq`` headers, each of which becomes a
path of its own with its typed parameters. A new ``.rq`` file appears without code changes.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from relmark import __version__ as relmark_version
from relmark.formats import Kind, formats_of
from relmark.i18n import LANGUAGES
from relmark.queries import NamedQuery, Parameter, parse_value
from relmark.web.api.queries import DEFAULT_PAGE, OUTPUTS, catalogue
from relmark.web.cors import allow_cross_origin_reads, mark_read
from relmark.web.extensions import get_settings

bp = Blueprint("openapi", __name__, url_prefix="/api")
bp.after_request(allow_cross_origin_reads)

OPENAPI_VERSION = "3.1.0"
ERROR = {"$ref": "#/components/schemas/Error"}

#: A parameter's JSON Schema, by the type its ``.rq`` header declares.
PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "iri": {"type": "string", "format": "iri"},
    "date": {"type": "string", "format": "date"},
    "integer": {"type": "integer", "minimum": -(10**18) + 1, "maximum": 10**18 - 1},
    "decimal": {"type": "number"},
    "string": {"type": "string", "maxLength": 1000},
    "language": {"type": "string", "pattern": "^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"},
}


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI document of this server, named questions included."""
    mark_read()
    return jsonify(build_document(catalogue(), get_settings().max_result_rows))


def build_document(questions: list[NamedQuery], max_rows: int) -> dict[str, Any]:
    """The whole document: fixed operations plus one path per named question."""
    paths: dict[str, Any] = {
        "/sparql": _sparql(),
        "/data": _graph_store(),
        "/healthz": _health(),
        "/api/classify": _classify(),
        "/api/explain": _explain(),
        "/api/history": _history(),
        "/api/forget": _forget(),
        "/api/events": _events(),
        "/api/subscriptions": _subscriptions(),
        "/api/subscriptions/{name}": _subscription(),
        "/api/queries": _catalogue(),
        "/api/openapi.json": _self(),
        "/api/import": _import(),
    }
    for query in questions:
        paths[f"/api/queries/{query.name}"] = _named(query, max_rows)
    for path, item in _other_routes(set(paths) | {"/api/queries/{name}"}).items():
        paths.setdefault(path, item)
    _secure(paths, get_settings().reads_public)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "relmark",
            "version": relmark_version,
            "summary": "A knowledge-graph service for relationship marketing.",
            "description": "SPARQL 1.1 endpoint and Graph Store over a validated RDF store, "
            "classification with explanations, and the competency questions of "
            "relationship marketing as named queries.",
        },
        "servers": [{"url": request.host_url.rstrip("/")}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token made with `relmark token create --role "
                    "reader|writer|admin` (or RELMARK_TOKEN, an admin token). Readers "
                    "query and read; writers also update; admins also run store-wide "
                    "updates (CLEAR/DROP ALL) and see the store's location in /healthz.",
                }
            },
        },
    }


def _secure(paths: dict[str, Any], public: bool) -> None:
    """Every operation's security and its 401/403: reads take a token (optional where reads
    are public), writes need one. A request that sends a wrong token is 401 anywhere."""
    reads: list[dict[str, list[str]]] = [{}, {"bearer": []}] if public else [{"bearer": []}]
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            if path == "/healthz":
                operation.setdefault("security", [{}, {"bearer": []}])
            else:
                operation.setdefault("security", reads)
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", _errors(401)["401"])
            if path != "/healthz":
                responses.setdefault("403", _errors(403)["403"])


#: URL prefixes of the machine API: a route under one of them is always in the document.
API_PREFIXES = ("/sparql", "/data", "/healthz", "/api/")


def _other_routes(described: set[str]) -> dict[str, Any]:
    """Routes of the API that no entry above describes (added by another module since):
    listed from the app's URL map with their view's docstring, so none is ever missing."""
    found: dict[str, Any] = {}
    for rule in current_app.url_map.iter_rules():
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        if not rule.rule.startswith(API_PREFIXES) or path in described:
            continue
        view = current_app.view_functions.get(rule.endpoint)
        doc = (view.__doc__ or rule.endpoint).strip().splitlines()[0] if view else rule.endpoint
        item = found.setdefault(path, {})
        names = _CONVERTER.findall(rule.rule)
        if names:
            item["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in names
            ]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            item[method.lower()] = {
                "summary": doc,
                "responses": {"200": {"description": "OK"}, **_errors(400, 404)},
            }
    return found


_CONVERTER = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


# --- pieces ------------------------------------------------------------------------------------
def _query_param(
    name: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _errors(*statuses: int) -> dict[str, Any]:
    meanings = {
        400: "Bad request: a malformed query, or a missing, ill-typed or unknown parameter.",
        401: "No bearer token where one is needed (a write, or any read where reads are "
        "not public), or a token relmark does not know.",
        403: "The token's role does not allow this (a reader writing, a writer running a "
        "store-wide update), or a write to one of relmark's own graphs.",
        404: "No such resource, graph or query.",
        406: "None of the formats the client accepts is offered.",
        413: "The request body or the result is too large.",
        415: "Unsupported request body media type.",
        422: "The data does not conform to the SHACL shapes; nothing was written.",
        503: "The query did not finish within the time limit.",
    }
    return {
        str(s): {
            "description": meanings[s],
            "content": {"application/json": {"schema": ERROR}},
        }
        for s in statuses
    }


def _results_content() -> dict[str, Any]:
    return {f.media_type: {"schema": {"type": "string"}} for f in formats_of(Kind.RESULTS)}


def _rdf_content() -> dict[str, Any]:
    return {f.media_type: {"schema": {"type": "string"}} for f in formats_of(Kind.RDF)}


def _lang() -> dict[str, Any]:
    return _query_param(
        "lang",
        {"type": "string", "enum": list(LANGUAGES)},
        "Language of titles, descriptions and labels (default: Accept-Language, else en).",
    )


def _sparql() -> dict[str, Any]:
    graph_list = {"type": "array", "items": {"type": "string", "format": "iri"}}
    dataset = [
        _query_param("default-graph-uri", graph_list, "Graphs forming the default graph."),
        _query_param("named-graph-uri", graph_list, "Graphs available as named graphs."),
        _query_param(
            "version", {"type": "string", "enum": ["1.1", "1.2"]}, "SPARQL 1.2 Protocol version."
        ),
    ]
    using = [
        _query_param("using-graph-uri", graph_list, "An update's USING graphs."),
        _query_param("using-named-graph-uri", graph_list, "An update's USING NAMED graphs."),
    ]
    responses = {
        "200": {
            "description": "Query results (SELECT/ASK) or an RDF graph (CONSTRUCT/DESCRIBE); "
            "a bare GET returns the service description.",
            "content": {**_results_content(), **_rdf_content()},
        },
        **_errors(400, 403, 406, 413, 503),
    }
    return {
        "get": {
            "summary": "SPARQL 1.1 query (or the service description without ?query=)",
            "tags": ["SPARQL"],
            "parameters": [
                _query_param("query", {"type": "string"}, "A SPARQL 1.1 query."),
                *dataset,
            ],
            "responses": responses,
        },
        "post": {
            "summary": "SPARQL 1.1 query or update (updates need the bearer token)",
            "tags": ["SPARQL"],
            "parameters": [*dataset, *using],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "query": {"type": "string"},
                                "update": {"type": "string"},
                            },
                        }
                    },
                    "application/sparql-query": {"schema": {"type": "string"}},
                    "application/sparql-update": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                **responses,
                "204": {"description": "The update was applied."},
                **_errors(401, 403, 415, 422),
            },
            "security": [{}, {"bearer": []}],
        },
    }


def _graph_store() -> dict[str, Any]:
    target = [
        _query_param("graph", {"type": "string", "format": "iri"}, "The graph's IRI."),
        _query_param(
            "default", {"type": "string"}, "Present (empty) to address the default graph."
        ),
    ]
    body = {"required": True, "content": _rdf_content()}
    written = {
        "201": {"description": "The graph was created."},
        "204": {"description": "The graph was replaced, extended or deleted."},
        **_errors(400, 401, 403, 404, 413, 415, 422),
    }
    return {
        "parameters": target,
        "get": {
            "summary": "Read a graph (SPARQL 1.1 Graph Store HTTP Protocol)",
            "tags": ["Graph Store"],
            "responses": {
                "200": {"description": "The graph.", "content": _rdf_content()},
                **_errors(400, 404, 406),
            },
        },
        "put": {
            "summary": "Replace a graph with validated data",
            "tags": ["Graph Store"],
            "requestBody": body,
            "responses": written,
            "security": [{"bearer": []}],
        },
        "post": {
            "summary": "Add validated data to a graph",
            "tags": ["Graph Store"],
            "requestBody": body,
            "responses": written,
            "security": [{"bearer": []}],
        },
        "delete": {
            "summary": "Delete a graph",
            "tags": ["Graph Store"],
            "responses": written,
            "security": [{"bearer": []}],
        },
    }


def _import() -> dict[str, Any]:
    field = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {
        "post": {
            "summary": "Import CSV or Excel files through a YARRRML mapping (writer role)",
            "description": "Maps the files with a ready mapping (ontology/mappings) or an "
            "uploaded one, validates the triples in the context of the store and writes "
            "them all or none into one graph (a re-import replaces it). With dry_run the "
            "answer is the preview only (ok says whether it would be imported). Problems "
            "come by source, row and column.",
            "tags": ["Import"],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {
                                    "type": "array",
                                    "items": field,
                                    "description": "One or more CSV or Excel files, named "
                                    "like the mapping's sources (contacts.csv).",
                                },
                                "mapping": {
                                    "type": "string",
                                    "description": "A ready mapping's name (contacts).",
                                },
                                "mapping_file": {
                                    **field,
                                    "description": "A YARRRML mapping (instead of mapping).",
                                },
                                "graph": {
                                    "type": "string",
                                    "description": "The graph: a name under "
                                    "urn:relmark:data: or an IRI (default: the mapping's).",
                                },
                                "lang": {"type": "string", "enum": list(LANGUAGES)},
                                "dry_run": {"type": "boolean", "default": False},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json_response(
                    "The import's report: rows, triples, sources with their first rows, "
                    "preview_triples, problems by source/row/column; imported when written."
                ),
                "400": {
                    "description": "A file or mapping that cannot be used (unreadable, "
                    "empty, unknown mapping, no file).",
                    "content": {"application/json": {"schema": ERROR}},
                },
                **_errors(413),
                "422": {
                    "description": "The data has errors; nothing was written. report.problems "
                    "lists them by source, row and column.",
                    "content": {"application/json": {"schema": ERROR}},
                },
                "503": {
                    "description": "The RML engine (morph-kgc, installed by make install) "
                    "is missing or failed.",
                    "content": {"application/json": {"schema": ERROR}},
                },
            },
            "security": [{"bearer": []}],
        }
    }


def _json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


def _health() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Liveness: status for anyone; counts and workers for readers (or "
            "anyone where reads are public); the store's location for admins",
            "tags": ["Service"],
            "responses": {"200": _json_response("The server is up.")},
        }
    }


def _classify() -> dict[str, Any]:
    return {
        "get": {
            "summary": "The classes of a resource, asserted and inferred, with the rules",
            "tags": ["Classification"],
            "parameters": [
                _query_param(
                    "iri", {"type": "string", "format": "iri"}, "The resource.", required=True
                ),
                _lang(),
                _query_param(
                    "asOf",
                    {"type": "string"},
                    "An ISO date (its end of day, UTC) or date-time: the inferred classes "
                    "the resource had then, from the classification history, each with the "
                    "write and rule that made it one (transaction time).",
                ),
            ],
            "responses": {
                "200": _json_response("The resource's classes."),
                **_errors(400, 404),
            },
        }
    }


def _explain() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Why a resource is (or is not) in a class: an explanation tree",
            "tags": ["Classification"],
            "parameters": [
                _query_param(
                    "iri", {"type": "string", "format": "iri"}, "The resource.", required=True
                ),
                _query_param(
                    "class",
                    {"type": "string"},
                    "The class: an IRI or rm:Name.",
                    required=True,
                ),
                _query_param(
                    "why",
                    {"type": "string", "enum": ["not"]},
                    "'not' to ask why the resource is not in the class.",
                ),
                _lang(),
            ],
            "responses": {
                "200": _json_response("The explanation."),
                **_errors(400, 404),
            },
        }
    }


def _history() -> dict[str, Any]:
    time_text = "An ISO date or date-time (transaction time, UTC)."
    return {
        "get": {
            "summary": "The classification history: a resource's membership events, or who "
            "entered or left a class",
            "tags": ["Classification"],
            "parameters": [
                _query_param(
                    "iri", {"type": "string", "format": "iri"}, "The resource (or pass class)."
                ),
                _query_param(
                    "class",
                    {"type": "string"},
                    "A class or market property (IRI or rm:Name), instead of iri.",
                ),
                _query_param("since", {"type": "string"}, "From (with class). " + time_text),
                _query_param("until", {"type": "string"}, "Up to (with class). " + time_text),
            ],
            "responses": {
                "200": _json_response(
                    "The events, oldest first: resource, class (or property and firm), "
                    "entered or left, when, the rule and the write (kind, name, agent)."
                ),
                **_errors(400, 404),
            },
        }
    }


def _events() -> dict[str, Any]:
    return {
        "get": {
            "summary": "The change feed: new classification events as Server-Sent Events",
            "tags": ["Classification"],
            "parameters": [
                _query_param("class", {"type": "string"}, "Only this class or market property."),
                _query_param("iri", {"type": "string", "format": "iri"}, "Only this resource."),
                _query_param("firm", {"type": "string", "format": "iri"}, "Only this firm."),
                _query_param(
                    "since",
                    {"type": "string"},
                    "Events after this time (or the Last-Event-ID header; default: now).",
                ),
                _query_param(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 15},
                    "Seconds the stream stays open (default 10, at most 15); clients reconnect.",
                ),
            ],
            "responses": {
                "200": {
                    "description": "A text/event-stream: one `membership` event per change, "
                    "its id the event's time, its data the event as JSON.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(400),
            },
        }
    }


def _forget() -> dict[str, Any]:
    return {
        "post": {
            "summary": "Erase a person (GDPR Art. 17): their statements, the records that only "
            "linked them, what was inferred from them and their history; admin role",
            "tags": ["Classification"],
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["iri"],
                            "properties": {
                                "iri": {"type": "string", "format": "iri"},
                                "legalBasis": {
                                    "type": "string",
                                    "format": "iri",
                                    "description": "Default: DPV's GDPR Art. 17.",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json_response(
                    "The erasure receipt, without personal data: when, who asked, how many "
                    "statements and resources, the legal basis."
                ),
                **_errors(400, 404),
                "501": {"description": "A serving worker: erase with `relmark forget`."},
            },
        }
    }


def _subscriptions() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "format": "uri",
                "description": "http or https, no credentials, under RELMARK_WEBHOOK_ALLOW "
                "(default: the loopback only).",
            },
            "class": {"type": "string", "description": "A class or market property (rm: ok)."},
            "resource": {"type": "string", "format": "iri"},
        },
    }
    return {
        "post": {
            "summary": "Subscribe a URL to the change feed: each matching history event is "
            "POSTed to it, signed (Relmark-Signature: sha256=HMAC of the body), retried with "
            "back-off for 24 h; writer role",
            "tags": ["Classification"],
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body}},
            },
            "responses": {
                "201": _json_response(
                    "The subscription with its id and its secret (shown only this once)."
                ),
                **_errors(400, 401, 403),
                "501": {"description": "No outbox: a remote store or a serving worker."},
            },
        },
        "get": {
            "summary": "The webhook subscriptions, without their secrets; writer role",
            "tags": ["Classification"],
            "security": [{"bearer": []}],
            "responses": {"200": _json_response("The subscriptions."), **_errors(401, 403)},
        },
    }


def _subscription() -> dict[str, Any]:
    return {
        "delete": {
            "summary": "End a webhook subscription and drop its pending deliveries; writer role",
            "tags": ["Classification"],
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The subscription id.",
                }
            ],
            "responses": {
                "204": {"description": "Ended."},
                **_errors(401, 403, 404),
            },
        }
    }


def _catalogue() -> dict[str, Any]:
    return {
        "get": {
            "summary": "The named questions: titles, descriptions, parameters, links",
            "tags": ["Named questions"],
            "parameters": [_lang()],
            "responses": {
                "200": _json_response("The catalogue.", {"$ref": "#/components/schemas/Catalogue"}),
                **_errors(400),
            },
        }
    }


def _self() -> dict[str, Any]:
    return {
        "get": {
            "summary": "This document",
            "tags": ["Service"],
            "responses": {"200": _json_response("The OpenAPI 3.1 document.")},
        }
    }


def parameter_schema(parameter: Parameter) -> dict[str, Any]:
    """The JSON Schema of one declared parameter, with its default where it has a typed one."""
    schema = dict(PARAMETER_SCHEMAS[parameter.type])
    if parameter.default is not None and parameter.default != "today":
        schema["default"] = _typed_default(parameter, parameter.default)
    return schema


def _typed_default(parameter: Parameter, default: str) -> Any:
    if parameter.type == "integer":
        return int(default)
    if parameter.type == "decimal":
        return float(default)
    return default


def _parameter_text(parameter: Parameter) -> str:
    text = parameter.description.get("en", "")
    text += f" Expected: {parameter.expected}."
    if parameter.default is not None:
        text += f" Default: {parameter.default}."
    return text


def _example(parameter: Parameter, example: str) -> Any:
    """The header's example as the JSON value a client sends (IRIs in full)."""
    term = parse_value(parameter, example)
    if parameter.type == "integer":
        return int(term.value)
    if parameter.type == "decimal":
        return float(term.value)
    return term.value


def _named(query: NamedQuery, max_rows: int) -> dict[str, Any]:
    parameters = []
    for p in query.parameters:
        entry = _query_param(p.name, parameter_schema(p), _parameter_text(p), p.required)
        if p.example is not None:
            entry["example"] = _example(p, p.example)
        parameters.append(entry)
    parameters += [
        _query_param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": max_rows, "default": DEFAULT_PAGE},
            "Rows per page.",
        ),
        _query_param("offset", {"type": "integer", "minimum": 0, "default": 0}, "Rows to skip."),
        _lang(),
        _query_param(
            "format",
            {"type": "string", "enum": list(OUTPUTS)},
            "Answer format (otherwise chosen by Accept).",
        ),
    ]
    description = query.description["en"]
    if "it" in query.title:
        description += f"\n\nIT: {query.title['it']}. {query.description.get('it', '')}"
    return {
        "get": {
            "operationId": f"query_{query.name.replace('-', '_')}",
            "summary": query.title["en"],
            "description": description,
            "tags": ["Named questions"],
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "One page of answers.",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/QueryResult"}
                        },
                        "application/sparql-results+json": {"schema": {"type": "object"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 406, 503),
            },
        }
    }


def _schemas() -> dict[str, Any]:
    cell = {
        "type": ["object", "null"],
        "properties": {
            "value": {"type": "string"},
            "type": {"type": "string", "enum": ["iri", "literal", "bnode"]},
            "label": {"type": "string"},
            "datatype": {"type": "string"},
            "lang": {"type": "string"},
        },
        "required": ["value", "type"],
    }
    parameter = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": list(PARAMETER_SCHEMAS)},
            "class": {"type": ["string", "null"]},
            "required": {"type": "boolean"},
            "default": {"type": ["string", "null"]},
            "description": {"type": "string"},
        },
    }
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "detail": {},
                "where": {"type": ["string", "null"]},
            },
            "required": ["error"],
        },
        "Cell": cell,
        "QueryResult": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "lang": {"type": "string"},
                "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": {"$ref": "#/components/schemas/Cell"},
                    },
                },
                "limit": {"type": ["integer", "null"]},
                "offset": {"type": "integer"},
                "next": {"type": ["string", "null"]},
            },
            "required": ["query", "columns", "rows", "next"],
        },
        "Catalogue": {
            "type": "object",
            "properties": {
                "queries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "question": {"type": ["integer", "null"]},
                            "title": {"type": "string"},
                            "description": {"type": "string"},
                            "parameters": {"type": "array", "items": parameter},
                            "links": {"type": "object"},
                        },
                    },
                }
            },
        },
    }
