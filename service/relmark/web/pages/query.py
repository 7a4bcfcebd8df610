"""The query page: a SPARQL editor over ``/sparql`` and the named questions as forms.

Without JavaScript the editor is a textarea whose form comes back here and is answered on
the server (within the query timeout, first ``SHOWN_ROWS`` rows); with it, CodeMirror
edits and the page asks ``/sparql`` and ``/api/queries/<name>`` directly. The forms are
generated from each question's declared parameters (``relmark.queries``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pyoxigraph as ox
from flask import Blueprint, render_template, request

from relmark import queries as named_queries
from relmark.errors import Busy, QueryTimeout
from relmark.formats import FORMATS
from relmark.sparql.inspect import dataset_of
from relmark.stores.base import selected
from relmark.vocab import DEMO, RM
from relmark.web.errors import ApiError, busy, query_timeout, syntax_error
from relmark.web.extensions import get_query_runner, get_settings, get_store
from relmark.web.i18n import request_language, words
from relmark.web.pages.ontology import bound, labels, local_name
from relmark.web.pages.resource import term_view
from relmark.web.serialization import serialize_rdf

bp = Blueprint("query", __name__)

#: Rows a server-rendered result shows; the editor's JavaScript path shows all of them.
SHOWN_ROWS = 1000
#: Options offered for an IRI parameter (instances of its class).
MAX_OPTIONS = 300

PREFIXES = f"""PREFIX rm: <{RM}>
PREFIX demo: <{DEMO}>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""

DEFAULT_QUERY = (
    PREFIXES
    + """
# Who is in which market of which focal firm (inferred by the rules)
SELECT ?stakeholder ?label ?market ?firm WHERE {
  ?stakeholder a ?market ; rm:inMarketOf ?firm ; rdfs:label ?label .
  ?market rdfs:subClassOf rm:StakeholderMarket .
}
ORDER BY ?firm ?market ?label
LIMIT 100"""
)


def catalogue() -> list[named_queries.NamedQuery]:
    """The named questions of ``queries/``."""
    return named_queries.load_catalogue()


def text_in(values: Mapping[str, str], lang: str) -> str:
    """A header text in ``lang``, else English, else any."""
    return values.get(lang) or values.get("en") or next(iter(values.values()), "")


def _examples(lang: str) -> list[dict]:
    examples = [{"title": "six markets", "text": DEFAULT_QUERY}]
    for query in catalogue():
        text = query.text if "PREFIX rdfs:" in query.text else PREFIXES + "\n" + query.text
        examples.append({"title": text_in(query.title, lang), "text": text})
    return examples


def _run_editor_query(sparql: str) -> dict:
    """Evaluate the editor's query on a worker thread within the timeout: rows as views."""
    store, settings = get_store(), get_settings()
    dataset = dataset_of(sparql)

    def evaluate(cancelled: threading.Event) -> dict:
        if dataset is None:
            result = store.query(sparql)
        else:
            result = store.query(sparql, default_graph=[*dataset[0]], named_graphs=dataset[1])
        if isinstance(result, ox.QueryBoolean):
            return {"boolean": bool(result)}
        if isinstance(result, ox.QueryTriples):
            triples: list[ox.Triple] = []
            for triple in result:
                if cancelled.is_set() or len(triples) > SHOWN_ROWS:
                    break
                triples.append(triple)
            return {"triples": triples}
        columns = [v.value for v in result.variables]
        rows: list[dict[str, Any]] = []
        for solution in result:
            if cancelled.is_set() or len(rows) > SHOWN_ROWS:
                break
            rows.append({c: solution[c] for c in columns})
        return {"columns": columns, "rows": rows}

    try:
        return get_query_runner().run(evaluate, settings.query_timeout)
    except SyntaxError as error:
        raise syntax_error(error, "query") from None
    except Busy as error:  # shown in the editor's page, as every error of its query
        raise busy(error) from None
    except QueryTimeout as error:
        advice = "narrow the query or add a LIMIT"
        raise query_timeout(error, settings.query_timeout, advice) from None


def _table(columns: list[str], rows: list[dict], lang: str) -> dict:
    """Rows of terms as the results template prints them (IRIs with labels)."""
    iris = {t.value for row in rows for t in row.values() if isinstance(t, ox.NamedNode)}
    names = labels(get_store(), iris, lang)
    return {
        "columns": columns,
        "rows": [
            [term_view(row[c], names) if row.get(c) is not None else None for c in columns]
            for row in rows[:SHOWN_ROWS]
        ],
        "truncated": len(rows) > SHOWN_ROWS,
    }


def _forms(lang: str) -> list[dict]:
    """Every named question as a form: fields from its parameters, IRIs as choices."""
    forms = []
    store = get_store()
    for query in catalogue():
        fields = []
        for p in query.parameters:
            options = []
            if p.type == "iri" and p.class_iri:
                found = selected(
                    store.query(
                        bound(
                            "SELECT DISTINCT ?s WHERE { ?s a/<http://www.w3.org/2000/01/rdf-schema#"
                            f"subClassOf>* ?c FILTER(isIRI(?s)) }} LIMIT {MAX_OPTIONS}",
                            c=ox.NamedNode(p.class_iri),
                        )
                    )
                )
                iris = [row["s"].value for row in found]
                names = labels(store, iris, lang)
                options = sorted(
                    ({"value": i, "label": names[i]} for i in iris),
                    key=lambda o: o["label"].lower(),
                )
            fields.append(
                {
                    "name": p.name,
                    "type": p.type,
                    "class": local_name(p.class_iri) if p.class_iri else None,
                    "required": p.required,
                    "default": p.default or "",
                    "description": text_in(p.description, lang),
                    "options": options,
                    "value": request.args.get(p.name, p.default or "")
                    if request.view_args and request.view_args.get("name") == query.name
                    else p.default or "",
                }
            )
        forms.append(
            {
                "name": query.name,
                "title": text_in(query.title, lang),
                "description": text_in(query.description, lang),
                "fields": fields,
            }
        )
    return forms


def _page(**context: Any) -> tuple[str, int]:
    lang = request_language()
    status = context.pop("status", 200)
    return (
        render_template(
            "browse/query.html",
            examples=_examples(lang),
            forms=_forms(lang),
            prefixes=PREFIXES,
            title=words(lang)["query"],
            **context,
        ),
        status,
    )


@bp.get("/query")
def editor() -> tuple[str, int]:
    """The editor; with ``?query=`` (the form without JavaScript) also its answer."""
    sparql = request.args.get("query")
    if not sparql:
        return _page(query_text=DEFAULT_QUERY, result=None)
    try:
        answer = _run_editor_query(sparql)
    except ApiError as error:
        return _page(query_text=sparql, error=error, status=error.status, result=None)
    if "rows" in answer:
        result: dict[str, Any] = {
            "table": _table(answer["columns"], answer["rows"], request_language())
        }
    elif "triples" in answer:
        turtle = next(f for f in FORMATS if f.media_type == "text/turtle")
        result = {"turtle": serialize_rdf(answer["triples"], turtle).decode("utf-8")}
    else:
        result = {"boolean": answer["boolean"]}
    return _page(query_text=sparql, result=result)


@bp.get("/query/named/<name>")
def named(name: str) -> tuple[str, int]:
    """One named question answered from its form (without JavaScript)."""
    lang = request_language()
    query = next((q for q in catalogue() if q.name == name), None)
    if query is None:
        return _page(
            query_text=DEFAULT_QUERY,
            result=None,
            status=404,
            error=ApiError(404, "unknown named question", detail=name),
        )
    params = {p.name: request.args[p.name] for p in query.parameters if request.args.get(p.name)}
    store, settings = get_store(), get_settings()

    def evaluate(cancelled: threading.Event) -> Any:
        return named_queries.run_named(store, query, params, limit=SHOWN_ROWS)

    try:
        result = get_query_runner().run(evaluate, settings.query_timeout)
    except named_queries.ParameterError as error:
        return _page(
            query_text=DEFAULT_QUERY,
            result=None,
            status=400,
            active=name,
            error=ApiError(400, "bad parameter", detail=str(error)),
        )
    except QueryTimeout as error:
        return _page(
            query_text=DEFAULT_QUERY,
            result=None,
            status=503,
            active=name,
            error=ApiError(503, "query timeout", detail=str(error)),
        )
    table = _table(result.columns, result.rows, lang)
    csv_args = {**params, "format": "csv"}
    return _page(
        query_text=DEFAULT_QUERY,
        result=None,
        active=name,
        named_result={"name": name, "title": text_in(query.title, lang), "table": table},
        csv_args=csv_args,
    )
