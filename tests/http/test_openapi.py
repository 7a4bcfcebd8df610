"""``/api/openapi.json``: a valid OpenAPI 3.1 document of the whole API, generated from the
code and the ``.rq`` headers (a live server under schemathesis: e2e/test_openapi_fuzz.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask
from openapi_spec_validator import validate

from relmark.queries import load_catalogue
from relmark.settings import Settings
from relmark.vocab import QUERIES_DIR
from relmark.web import close_app, create_app
from relmark.web.api.openapi import API_PREFIXES


@pytest.fixture(scope="module")
def document(app: Flask) -> dict:
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi_3_1(document: dict) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_named_question_is_a_path_with_its_parameters(document: dict) -> None:
    for query in load_catalogue():
        operation = document["paths"][f"/api/queries/{query.name}"]["get"]
        assert operation["summary"] == query.title["en"]
        declared = {p["name"]: p for p in operation["parameters"]}
        for parameter in query.parameters:
            assert declared[parameter.name]["required"] == parameter.required
        assert {"limit", "offset", "lang", "format"} <= set(declared)
    stuck = document["paths"]["/api/queries/stuck-opportunities"]["get"]["parameters"]
    schemas = {p["name"]: p["schema"] for p in stuck}
    assert schemas["asOf"] == {"type": "string", "format": "date"}
    assert schemas["days"]["type"] == "integer"
    assert schemas["firm"] == {"type": "string", "format": "iri"}


@pytest.fixture()
def app_with_queries(tmp_path: Path):
    """An app over a temporary store whose catalogue is a copy of queries/ plus one file."""
    queries = tmp_path / "queries"
    shutil.copytree(QUERIES_DIR, queries)
    app = create_app(Settings(store=str(tmp_path / "store")))
    app.config["RELMARK_QUERIES_DIR"] = queries
    yield app, queries
    close_app(app)


def test_every_api_route_is_described(app_with_queries) -> None:
    """Routes come from the app's URL map: one added by any module is in the document, with
    its view's docstring; relmark's own operations have their hand-written parameters."""
    app, _ = app_with_queries

    @app.get("/api/added-by-a-test")
    def added_by_a_test() -> str:
        """Added by a test."""
        return "ok"

    document = app.test_client().get("/api/openapi.json").get_json()
    validate(document)
    routes = {
        rule.rule.replace("<name>", "{name}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API_PREFIXES)
    }
    described = set(document["paths"])
    assert routes - {"/api/queries/{name}"} <= described
    assert document["paths"]["/api/added-by-a-test"]["get"]["summary"] == "Added by a test."
    named = {p for p in described if p.startswith("/api/queries/")}
    assert len(named) == len(load_catalogue())
    classify = document["paths"]["/api/classify"]["get"]["parameters"]
    assert {"name": "iri", "required": True}.items() <= classify[0].items()
    assert set(document["paths"]["/data"]) >= {"get", "put", "post", "delete"}
    assert set(document["paths"]["/sparql"]) == {"get", "post"}


def test_a_new_query_file_appears_without_code_changes(app_with_queries) -> None:
    app, queries = app_with_queries
    (queries / "brand-count.rq").write_text(
        "# title: How many brands\n# title@it: Quante marche\n"
        "# description: The number of brands on record.\n"
        "# param: minimum (integer, default 0) Only if at least this many.\n\n"
        "PREFIX rm: <https://w3id.org/relmark/ontology#>\n"
        "SELECT ?brands ?minimum WHERE {\n"
        "  { SELECT (COUNT(?b) AS ?brands) WHERE { ?b a rm:Brand } }\n"
        "  FILTER(?brands >= ?minimum)\n}\n",
        encoding="utf-8",
    )
    client = app.test_client()
    document = client.get("/api/openapi.json").get_json()
    validate(document)
    parameters = document["paths"]["/api/queries/brand-count"]["get"]["parameters"]
    assert parameters[0]["name"] == "minimum"
    assert parameters[0]["schema"] == {
        "type": "integer",
        "minimum": -(10**18) + 1,
        "maximum": 10**18 - 1,
        "default": 0,
    }
    names = [q["name"] for q in client.get("/api/queries").get_json()["queries"]]
    assert "brand-count" in names
    answer = client.get("/api/queries/brand-count").get_json()  # an empty store: no brands
    assert answer["columns"] == ["brands"]
    assert [row["brands"]["value"] for row in answer["rows"]] == ["0"]
    assert answer["parameters"] == {"minimum": "0"}
