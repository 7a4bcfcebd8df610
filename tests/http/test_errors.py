"""Every error path answers alike: HTML to a reader of pages, JSON to API clients.

In-process (Flask's test client on a real store): what is tested is the app's mapping of
errors to responses, which a subprocess would add nothing to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from relmark.i18n import LANGUAGES
from relmark.settings import Settings
from relmark.web import close_app, create_app

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
ANY = {"Accept": "*/*"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    store = Path(tmp_path_factory.mktemp("errors")) / "store"
    app = create_app(Settings(store=str(store)))
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _is_html(response) -> bool:
    return response.content_type.startswith("text/html")


def _json_error(response) -> dict:
    assert response.content_type.startswith("application/json"), response.data[:200]
    body = response.get_json()
    assert {"error", "detail", "where"} <= body.keys()
    return body


def test_an_unknown_url_is_html_for_a_browser_and_json_for_a_client(client):
    assert _is_html(page := client.get("/no/such/page", headers=BROWSER))
    assert page.status_code == 404 and "<title>404 · relmark</title>" in page.text
    for headers in (JSON, ANY, {}):
        response = client.get("/no/such/page", headers=headers)
        assert response.status_code == 404
        assert _json_error(response)["error"] == "not found"


def test_a_missing_page_is_html_unless_json_is_preferred(client):
    path = "/ontology/class?iri=rm:NoSuchClass"
    for headers in (BROWSER, ANY, {}):
        response = client.get(path, headers=headers)
        assert response.status_code == 404 and _is_html(response), headers
        assert "NoSuchClass" in response.text and 'class="langs"' in response.text  # the chrome
    answer = client.get(path, headers=JSON)
    assert answer.status_code == 404 and "NoSuchClass" in _json_error(answer)["detail"]


def test_405_keeps_allow_and_follows_the_same_policy(client):
    page = client.delete("/", headers=BROWSER)
    assert page.status_code == 405 and _is_html(page) and "GET" in page.headers["Allow"]
    answer = client.delete("/", headers=JSON)
    assert answer.status_code == 405 and "GET" in answer.headers["Allow"]
    assert _json_error(answer)["error"] == "method not allowed"


def test_the_api_answers_json_even_to_a_browser(client):
    for path in ("/api/no-such-endpoint", "/sparql?query=SELECT"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code in (400, 404)
        _json_error(response)


@pytest.mark.parametrize(
    "path",
    ["/ontology", "/query", "/pictures", "/api/classify?iri=urn:x:a", "/api/queries"],
)
def test_an_unsupported_language_is_the_same_400_everywhere(client, path):
    separator = "&" if "?" in path else "?"
    answer = client.get(f"{path}{separator}lang=fr", headers=JSON)
    assert answer.status_code == 400
    body = _json_error(answer)
    assert (body["parameter"], body["value"], body["where"]) == ("lang", "fr", "lang")
    assert all(lang in body["expected"] for lang in LANGUAGES)


def test_an_unsupported_language_on_a_page_is_an_html_400_naming_the_languages(client):
    page = client.get("/ontology?lang=fr", headers=BROWSER)
    assert page.status_code == 400 and _is_html(page)
    assert "one of en, it" in page.text and "<title>400 · relmark</title>" in page.text


@pytest.mark.parametrize("value", ["IT", " it "])
def test_a_supported_language_is_read_case_and_space_insensitively(client, value):
    page = client.get("/ontology", query_string={"lang": value}, headers=BROWSER)
    assert page.status_code == 200 and '<html lang="it">' in page.text
