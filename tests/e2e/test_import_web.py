"""Importing over HTTP: ``POST /api/import`` and the ``/import`` page, in-process against a
real store on disk, the real RML engine (its own environment) and real writer tokens.

The promises: a dry run or a preview writes nothing; an import writes and the store then
classifies what came in; bad data is reported by row and column (422) and writes nothing;
a bad mapping is 400; no token is 401; the page works as plain HTML forms.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from support.browse_support import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from support.server import running_relmark

from relmark import tokens
from relmark.settings import Settings
from relmark.vocab import ONTOLOGY_DIR, RM
from relmark.web import close_app, create_app

DEMO_CSV = ONTOLOGY_DIR / "demo" / "csv"
TEMPLATES = ONTOLOGY_DIR / "mappings" / "templates"
DEMO = "https://w3id.org/relmark/demo/"
ACCOUNTS = (TEMPLATES / "accounts.csv").read_bytes()
MULTIPART = "multipart/form-data"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    store = Path(tmp_path_factory.mktemp("import-web")) / "store"
    app = create_app(Settings(store=str(store)))
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def writer(app: Flask) -> str:
    token, _ = tokens.create(_token_file(app), "writer", "import-writer")
    return token


@pytest.fixture(scope="module")
def reader(app: Flask) -> str:
    token, _ = tokens.create(_token_file(app), "reader", "import-reader")
    return token


def _token_file(app: Flask) -> Path:
    """The token file the app checks (``<store>.tokens.json``), re-read on change."""
    return app.extensions["relmark.tokens"].path


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def graph_size(client: FlaskClient, graph: str) -> int:
    query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
    answer = client.get(
        "/sparql", query_string={"query": query}, headers={"Accept": "application/json"}
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return int(answer.json["results"]["bindings"][0]["n"]["value"])


def upload(name: str, data: bytes) -> tuple[io.BytesIO, str]:
    return io.BytesIO(data), name


# --- the API ---------------------------------------------------------------------------
def test_a_dry_run_previews_and_writes_nothing(client: FlaskClient, writer: str) -> None:
    graph = "urn:relmark:data:dry-accounts"
    answer = client.post(
        "/api/import",
        data={"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts", "dry_run": "true"},
        headers=bearer(writer),
        content_type=MULTIPART,
    )
    assert answer.status_code == 200, answer.json
    report = answer.json
    assert report["ok"] is True and report["dry_run"] is True
    assert report["rows"] == 6 and report["triples"] > 6
    assert report["graph"] == "urn:relmark:data:accounts"
    source = report["sources"][0]
    assert source["file"] == "accounts.csv"  # not the server's temporary path
    assert source["preview"][0]["account_id"] == "A001"
    first = report["preview_triples"][0]
    assert first["row"] == 2 and first["subject"].endswith("/account/A001")
    assert "imported" not in report
    assert graph_size(client, report["graph"]) == 0
    assert graph_size(client, graph) == 0


def test_a_crm_exports_mapping_is_named_by_its_folder(client: FlaskClient, writer: str) -> None:
    export = TEMPLATES / "salesforce" / "Account.csv"
    answer = client.post(
        "/api/import",
        data={
            "file": upload("Account.csv", export.read_bytes()),
            "mapping": "salesforce/accounts",
            "dry_run": "true",
        },
        headers=bearer(writer),
        content_type=MULTIPART,
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["mapping"] == "accounts.yml" and answer.json["rows"] > 0


def test_an_import_writes_and_the_store_classifies_it(client: FlaskClient, writer: str) -> None:
    """The demo bank's CSVs with its own uploaded mapping: the ladder stages are inferred."""
    files = [upload(p.name, p.read_bytes()) for p in sorted(DEMO_CSV.glob("*.csv"))]
    answer = client.post(
        "/api/import",
        data={
            "file": files,
            "mapping_file": upload("bank.yml", (DEMO_CSV / "bank.yml").read_bytes()),
        },
        headers=bearer(writer),
        content_type=MULTIPART,
    )
    assert answer.status_code == 200, answer.json
    imported = answer.json["imported"]
    assert imported["triples"] > 0
    assert graph_size(client, imported["graph"]) == imported["triples"]
    classes = client.get("/api/classify", query_string={"iri": f"{DEMO}cr-giovanni-sala"})
    assert classes.status_code == 200, classes.json
    inferred = {c["class"] for c in classes.json["classes"] if c["status"] == "inferred"}
    assert f"{RM}Advocate" in inferred


def test_invalid_data_is_422_by_row_and_column_and_writes_nothing(
    client: FlaskClient, writer: str
) -> None:
    bad = ACCOUNTS.replace(b"Customer", b"Custmer", 1)
    graph = "urn:relmark:data:bad-accounts"
    answer = client.post(
        "/api/import",
        data={"file": upload("accounts.csv", bad), "mapping": "accounts", "graph": graph},
        headers=bearer(writer),
        content_type=MULTIPART,
    )
    assert answer.status_code == 422, answer.json
    body = answer.json
    assert body["error"] == "the data has errors; nothing was imported"
    assert body["where"] == "accounts.csv:3:kind"
    problem = next(p for p in body["report"]["problems"] if p["severity"] == "error")
    assert (problem["source"], problem["row"], problem["column"], problem["value"]) == (
        "accounts.csv",
        3,
        "kind",
        "Custmer",
    )
    assert graph_size(client, graph) == 0


def test_no_token_is_401_and_a_reader_is_403(client: FlaskClient, reader: str) -> None:
    data = {"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts"}
    answer = client.post("/api/import", data=data, content_type=MULTIPART)
    assert answer.status_code == 401
    assert answer.json["error"] == "a bearer token is required"
    data = {"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts"}
    answer = client.post("/api/import", data=data, headers=bearer(reader), content_type=MULTIPART)
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("form", "error", "where"),
    [
        ({"mapping": "no-such-mapping"}, "no ready mapping 'no-such-mapping'", "mapping"),
        ({"mapping": "/etc/passwd"}, "no ready mapping '/etc/passwd'", "mapping"),
        ({"mapping": "pyproject.toml"}, "no ready mapping 'pyproject.toml'", "mapping"),
        ({}, "no mapping", "mapping"),
        (
            {"mapping_file": ("not: [a, mapping", "mine.yml")},
            None,
            None,
        ),
        (
            {"mapping_file": ("targets:\n  out: [/tmp/x.nt]\nmappings: {}\n", "mine.yml")},
            "the uploaded mapping uses what an upload may not",
            "mine.yml",
        ),
    ],
)
def test_a_bad_mapping_is_400(
    client: FlaskClient, writer: str, form: dict, error: str | None, where: str | None
) -> None:
    data: dict = {"file": upload("accounts.csv", ACCOUNTS)}
    for key, value in form.items():
        data[key] = upload(value[1], value[0].encode()) if isinstance(value, tuple) else value
    answer = client.post("/api/import", data=data, headers=bearer(writer), content_type=MULTIPART)
    assert answer.status_code == 400, answer.json
    body = answer.json
    assert set(body) >= {"error", "detail", "where"}
    assert body["error"]
    if error:
        assert body["error"] == error
    if where:
        assert body["where"] == where


def test_an_unknown_language_is_400(client: FlaskClient, writer: str) -> None:
    data = {"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts", "lang": "xx"}
    answer = client.post("/api/import", data=data, headers=bearer(writer), content_type=MULTIPART)
    assert answer.status_code == 400
    assert answer.json["where"] == "lang"


def test_no_file_is_400(client: FlaskClient, writer: str) -> None:
    answer = client.post(
        "/api/import", data={"mapping": "accounts"}, headers=bearer(writer), content_type=MULTIPART
    )
    assert answer.status_code == 400
    assert answer.json["where"] == "file"


def test_a_missing_engine_is_503(app: Flask, writer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's environment named by RELMARK_RML_PYTHON does not exist (a set-up fault)."""
    monkeypatch.setenv("RELMARK_RML_PYTHON", "/nonexistent/python")
    answer = app.test_client().post(
        "/api/import",
        data={"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts"},
        headers=bearer(writer),
        content_type=MULTIPART,
    )
    assert answer.status_code == 503, answer.json
    assert answer.json["error"] == "the RML engine is not available"


# --- the page ----------------------------------------------------------------------------
def test_the_page_shows_the_form_with_the_ready_mappings(client: FlaskClient) -> None:
    page = client.get("/import?lang=it")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html
    assert '<option value="contacts"' in html and '<option value="accounts"' in html
    assert '<option value="hubspot/contacts"' in html  # the CRM exports' mappings too
    assert 'type="password" name="token"' in html
    assert "Anteprima" in html
    assert "<script>" not in html  # the CSP forbids inline script


def test_the_page_previews_then_imports_by_the_waiting_id(client: FlaskClient, writer: str) -> None:
    graph = "urn:relmark:data:page-accounts"
    preview = client.post(
        "/import",
        data={
            "file": upload("accounts.csv", ACCOUNTS),
            "mapping": "accounts",
            "graph": graph,
            "token": writer,
        },
        content_type=MULTIPART,
    )
    assert preview.status_code == 200
    assert preview.headers["Cache-Control"] == "no-store"
    html = preview.get_data(as_text=True)
    assert "<td>Northwind Bank</td>" in html  # the first rows as a table
    assert "/account/A001&gt;" in html  # the triples they become
    assert "No problems" in html
    assert "Classifications the import would add or remove" in html
    what_if = html.split("Classifications the import would add or remove", 1)[1]
    assert "Not worked out" not in what_if
    assert re.search(r"account/A001</a>:\s*(gains|no change)", what_if)
    pending = re.search(r'name="pending" value="([^"]+)"', html)
    assert pending
    assert graph_size(client, graph) == 0  # a preview writes nothing

    without_token = client.post(
        "/import", data={"pending": pending[1], "action": "import"}, content_type=MULTIPART
    )
    assert without_token.status_code == 401
    assert graph_size(client, graph) == 0

    done = client.post(
        "/import",
        data={"pending": pending[1], "action": "import", "token": writer},
        content_type=MULTIPART,
    )
    assert done.status_code == 200
    assert "Imported: 6 rows" in done.get_data(as_text=True)
    assert graph_size(client, graph) > 0

    again = client.post(
        "/import",
        data={"pending": pending[1], "action": "import", "token": writer},
        content_type=MULTIPART,
    )
    assert again.status_code == 404  # one import per preview


def test_the_page_preview_lists_problems_by_row_and_column(
    client: FlaskClient, writer: str
) -> None:
    bad = ACCOUNTS.replace(b"Customer", b"Custmer", 1)
    preview = client.post(
        "/import?lang=it",
        data={"file": upload("accounts.csv", bad), "mapping": "accounts", "token": writer},
        content_type=MULTIPART,
    )
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "Problemi per riga e colonna" in html
    row = re.search(r'<tr class="error">(.*?)</tr>', html, re.S)
    assert row
    cells = [c.strip() for c in re.findall(r"<td>(.*?)</td>", row[1], re.S)]
    assert cells[:5] == ["error", "accounts.csv", "3", "kind", "Custmer"]
    assert 'name="pending"' not in html  # nothing to import


def test_the_page_refuses_a_wrong_token(client: FlaskClient, reader: str) -> None:
    data = {"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts", "token": "nope"}
    assert client.post("/import", data=data, content_type=MULTIPART).status_code == 401
    data = {"file": upload("accounts.csv", ACCOUNTS), "mapping": "accounts", "token": reader}
    assert client.post("/import", data=data, content_type=MULTIPART).status_code == 403


# --- a real server ----------------------------------------------------------------------------
def test_a_real_server_with_two_workers_imports_over_http(tmp_path: Path) -> None:
    """``relmark serve --workers 2``: the write goes through the supervisor, and the next read
    (on either worker) sees the import's inferred classes; a body over RELMARK_MAX_BODY is 413
    and writes nothing."""
    files = [("file", (p.name, p.read_bytes())) for p in sorted(DEMO_CSV.glob("*.csv"))]
    files.append(("mapping_file", ("bank.yml", (DEMO_CSV / "bank.yml").read_bytes())))
    with running_relmark(tmp_path, workers=2, RELMARK_MAX_BODY="200000") as server:
        too_big = requests.post(
            server.url + "/api/import",
            files=[("file", ("accounts.csv", b"account_id,name\n" + b"A1,x\n" * 50_000))],
            data={"mapping": "accounts"},
            headers=server.auth,
            timeout=60,
        )
        assert too_big.status_code == 413, too_big.text
        answer = requests.post(
            server.url + "/api/import", files=files, headers=server.auth, timeout=300
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["imported"]["triples"] > 0
        for _ in range(4):  # each worker in turn, as the connections land
            classes = requests.get(
                server.url + "/api/classify",
                params={"iri": f"{DEMO}cr-giovanni-sala"},
                timeout=60,
            )
            assert classes.status_code == 200, classes.text
            inferred = {c["class"] for c in classes.json()["classes"] if c["status"] == "inferred"}
            assert f"{RM}Advocate" in inferred


def test_the_page_in_chromium_without_javascript(tmp_path: Path) -> None:
    """The basic flow in a real browser with JavaScript off: choose the file and the mapping,
    type the token, Preview (the rows, the triples, no problems), Import."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium")
    accounts = tmp_path / "files" / "accounts.csv"
    accounts.parent.mkdir()
    accounts.write_bytes(ACCOUNTS)
    with (
        running_relmark(tmp_path) as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=server.url, java_script_enabled=False)
            context.set_default_timeout(60_000)
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            assert page.goto("/import").status == 200
            page.set_input_files("#import-file", str(accounts))
            page.select_option("#import-mapping", "accounts")
            page.fill("#import-token", server.token)
            page.click("button[value=preview]")
            assert page.locator("table.import-rows tbody tr").count() == 6
            assert page.locator("table.import-rows tbody tr td").nth(2).text_content() == (
                "Northwind Bank"
            )
            assert page.locator("details.import-triples").count() == 6
            assert page.locator("p.ok").count() == 1
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "import-preview.png"), full_page=True)
            page.click("button[value=import]")
            assert "Imported: 6 rows" in page.locator("p.imported").text_content()
            assert errors == []
        finally:
            browser.close()
        query = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <urn:relmark:data:accounts> { ?s ?p ?o } }"
        answer = requests.get(
            server.sparql, params={"query": query}, headers={"Accept": "application/json"}
        )
        assert int(answer.json()["results"]["bindings"][0]["n"]["value"]) > 0
