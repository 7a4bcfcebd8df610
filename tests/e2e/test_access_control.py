"""Access control and HTTP hardening against real ``relmark serve`` processes.

Tokens are made with the real CLI (``relmark token create``); the servers bind 127.0.0.2
to stand for a network address (only 127.0.0.1, localhost and ::1 count as local, so
reads there need a token) and 127.0.0.1 for the local default (reads open). Every request
goes to 127.0.0.x.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from support.paths import RELMARK
from support.server import SERVER_TOKEN, free_port, wait_until_ready

from relmark.settings import Settings
from relmark.tokens import read_entries
from relmark.web.cors import allowed_origins

GRAPH = "urn:relmark:data:access-test"
NOTE = "a note only readers may see"
TURTLE = f'<urn:relmark:test:note> <http://www.w3.org/2000/01/rdf-schema#comment> "{NOTE}" .'
ALLOWED_ORIGIN = "https://app.example.org"
OTHER_ORIGIN = "https://evil.example"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
COUNT = "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }"


@dataclass
class Server:
    """A running server and the tokens made for it (role → token)."""

    url: str
    home: Path
    tokens: dict[str, str]
    process: subprocess.Popen

    def auth(self, who: str | None) -> dict[str, str]:
        """Headers for ``who``: a role with a token, ``bad``, or None (no credentials)."""
        if who is None:
            return {}
        token = "rmk_not-a-token" if who == "bad" else self.tokens[who]
        return {"Authorization": f"Bearer {token}"}


def relmark_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``relmark --store HOME/store ARGS`` and return its stdout (exit 0 asserted)."""
    done = subprocess.run(
        [str(RELMARK), "--store", str(home / "store"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def create_token(home: Path, role: str, name: str) -> str:
    token = relmark_cli(home, "token", "create", "--role", role, "--name", name).strip()
    assert token.startswith("rmk_") and len(token) > 40
    return token


@contextlib.contextmanager
def serve(
    home: Path, host: str, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[Server]:
    """``relmark serve --host HOST`` with a reader, a writer and an admin token from the CLI
    (and RELMARK_TOKEN, an admin token too), the test graph written by the writer."""
    home.mkdir(parents=True, exist_ok=True)
    tokens = {role: create_token(home, role, f"{role}-t") for role in ("reader", "writer")}
    tokens["admin"] = create_token(home, "admin", "admin-t")
    tokens["env-admin"] = SERVER_TOKEN
    port = free_port()
    environ = {**os.environ, "RELMARK_TOKEN": SERVER_TOKEN, "RELMARK_QUERY_TIMEOUT": "5"}
    for name in ("RELMARK_PUBLIC_READS", "RELMARK_CORS_ORIGINS", "RELMARK_TOKEN_FILE"):
        environ.pop(name, None)
    environ.update(env or {})
    command = [str(RELMARK), "--store", str(home / "store"), "serve", "--host", host]
    command += ["--port", str(port), "--workers", str(workers)]
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://{host}:{port}", home, tokens, process)
    try:
        wait_until_ready(process, server.url + "/healthz", log, "relmark serve", 60)
        response = requests.put(
            server.url + "/data",
            params={"graph": GRAPH},
            data=TURTLE.encode(),
            headers={"Content-Type": "text/turtle", **server.auth("writer")},
            timeout=60,
        )
        assert response.status_code in (201, 204), response.text
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Bound to 127.0.0.2 (not local): reads need a token. Two workers, so the bind
    address must reach the worker processes too. ``*`` is listed but must never be sent."""
    home = tmp_path_factory.mktemp("access-network")
    env = {"RELMARK_CORS_ORIGINS": f"{ALLOWED_ORIGIN}, *"}
    with serve(home, "127.0.0.2", env, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default: bound to 127.0.0.1, reads open, writes need a writer token."""
    with serve(tmp_path_factory.mktemp("access-local"), "127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A network bind whose operator opened reads explicitly."""
    home = tmp_path_factory.mktemp("access-public")
    with serve(home, "127.0.0.2", {"RELMARK_PUBLIC_READS": "1"}) as server:
        yield server


def quads(server: Server) -> int:
    response = requests.get(
        server.url + "/sparql",
        params={"query": COUNT},
        headers={"Accept": "application/sparql-results+json", **server.auth("admin")},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


# --- the token file and the CLI ------------------------------------------------------------
def test_the_token_file_keeps_hashes_only(network: Server) -> None:
    path = network.home / "store.tokens.json"
    text = path.read_text()
    for token in network.tokens.values():
        assert token not in text
    entries = {e.name: e for e in read_entries(path)}
    assert {n: e.role for n, e in entries.items()} == {
        "reader-t": "reader",
        "writer-t": "writer",
        "admin-t": "admin",
    }
    assert all(e.hash.startswith("sha256:") and len(e.hash) == 71 for e in entries.values())
    assert all(e.created.endswith("Z") for e in entries.values())
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    listed = json.loads(relmark_cli(network.home, "token", "list", "--json"))
    assert {r["name"] for r in listed} == {"reader-t", "writer-t", "admin-t"}
    assert all(set(r) == {"name", "role", "created"} for r in listed)


def test_the_cli_refuses_a_bad_role_a_taken_name_and_an_unknown_revoke(tmp_path: Path) -> None:
    create_token(tmp_path, "reader", "r")

    def fails(*args: str) -> subprocess.CompletedProcess:
        command = [str(RELMARK), "--store", str(tmp_path / "store"), "token", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert fails("create", "--role", "root").returncode == 2
    taken = fails("create", "--role", "writer", "--name", "r")
    assert taken.returncode == 1 and "exists" in taken.stderr and not taken.stdout
    assert fails("revoke", "nobody").returncode == 1
    assert [e.name for e in read_entries(tmp_path / "store.tokens.json")] == ["r"]


def test_a_broken_token_file_refuses_every_token_but_keeps_open_reads(tmp_path: Path) -> None:
    with serve(tmp_path, "127.0.0.1") as server:
        (tmp_path / "store.tokens.json").write_text('{"tokens": [{"name": "x"')
        url = server.url + "/sparql"
        for who in ("reader", "writer"):
            response = requests.post(
                url, data={"update": _insert(who)}, headers=server.auth(who), timeout=30
            )
            assert response.status_code == 500
            body = response.json()
            assert body["error"] == "the token file cannot be read"
            assert str(tmp_path) not in response.text
        assert requests.get(url, params={"query": "ASK {}"}, timeout=30).status_code == 200
    assert "not a relmark token file" in (tmp_path / "server.log").read_text()


def test_a_revoked_token_is_refused_by_the_running_server(network: Server) -> None:
    token = create_token(network.home, "reader", "short-lived")
    headers = {"Authorization": f"Bearer {token}"}
    ask = {"query": "ASK {}"}
    for _ in range(4):  # both workers see it: new connections land on either
        assert requests.get(network.url + "/sparql", params=ask, headers=headers).ok
    relmark_cli(network.home, "token", "revoke", "short-lived")
    for _ in range(4):
        response = requests.get(network.url + "/sparql", params=ask, headers=headers, timeout=30)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# --- 401 against 403 -----------------------------------------------------------------------
READS = [
    ("GET", "/sparql", {"query": "ASK { ?s ?p ?o }"}),
    ("GET", "/sparql", {}),  # the service description
    ("GET", "/data", {"graph": GRAPH}),
    ("GET", "/data", {}),  # the whole store
    ("GET", "/api/queries", {}),
    ("GET", "/api/openapi.json", {}),
    ("GET", "/api/classify", {"iri": "urn:relmark:test:note"}),
    ("GET", "/", {}),
    ("GET", "/ontology", {}),
    ("GET", "/query", {}),
    ("GET", "/search", {"q": "note"}),
]


@pytest.mark.parametrize(("method", "path", "params"), READS, ids=lambda v: str(v))
def test_reads_on_a_network_bind_need_a_reader_token(
    network: Server, method: str, path: str, params: dict
) -> None:
    url = network.url + path
    anonymous = requests.request(method, url, params=params, timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="relmark"'
    assert NOTE not in anonymous.text
    wrong = requests.request(method, url, params=params, headers=network.auth("bad"), timeout=30)
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    for who in ("reader", "writer", "admin", "env-admin"):
        response = requests.request(
            method, url, params=params, headers=network.auth(who), timeout=30
        )
        assert response.status_code == 200, (who, response.text[:300])


def test_the_whole_store_goes_to_readers_only(network: Server) -> None:
    anonymous = requests.get(network.url + "/data", timeout=30)
    assert anonymous.status_code == 401 and NOTE not in anonymous.text
    reader = requests.get(network.url + "/data", headers=network.auth("reader"), timeout=30)
    assert reader.status_code == 200 and NOTE in reader.text


def _insert(n: str) -> str:
    triple = f'<urn:relmark:test:w{n}> <urn:relmark:test:p> "{n}"'
    return f"INSERT DATA {{ GRAPH <{GRAPH}> {{ {triple} }} }}"


@pytest.mark.parametrize("server_name", ["network", "local", "public"])
def test_writes_need_a_writer_token_everywhere(
    request: pytest.FixtureRequest, server_name: str
) -> None:
    server: Server = request.getfixturevalue(server_name)
    before = quads(server)
    update = server.url + "/sparql"
    put = server.url + "/data"
    turtle = {"Content-Type": "text/turtle"}
    for who, status in ((None, 401), ("bad", 401), ("reader", 403)):
        response = requests.post(
            update, data={"update": _insert(server_name)}, headers=server.auth(who), timeout=30
        )
        assert response.status_code == status, (who, response.text)
        if status == 403:
            assert response.json()["error"] == "this needs the writer role"
            assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        else:
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="relmark"')
        for method in ("PUT", "POST", "DELETE"):
            response = requests.request(
                method,
                put,
                params={"graph": GRAPH},
                data=TURTLE.encode(),
                headers={**turtle, **server.auth(who)},
                timeout=30,
            )
            assert response.status_code == status, (who, method, response.text)
    assert quads(server) == before  # nothing refused was written
    for who in ("writer", "admin", "env-admin"):
        response = requests.post(
            update, data={"update": _insert(who)}, headers=server.auth(who), timeout=30
        )
        assert response.status_code == 204, (who, response.text)
    assert quads(server) == before + 3


def test_store_wide_updates_are_for_admins(network: Server) -> None:
    before = quads(network)
    for who, needed in (("reader", "writer"), ("writer", "admin")):
        response = requests.post(
            network.url + "/sparql",
            data={"update": "CLEAR ALL"},
            headers=network.auth(who),
            timeout=30,
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"] == f"this needs the {needed} role"
    assert quads(network) == before


def test_reads_are_open_on_a_loopback_bind_and_where_the_operator_says(
    local: Server, public: Server
) -> None:
    for server in (local, public):
        response = requests.get(server.url + "/data", params={"graph": GRAPH}, timeout=30)
        assert response.status_code == 200 and NOTE in response.text
        # a token sent is checked even where reads are open: a wrong one is never anonymous
        response = requests.get(
            server.url + "/sparql",
            params={"query": "ASK {}"},
            headers=server.auth("bad"),
            timeout=30,
        )
        assert response.status_code == 401


def test_the_operator_can_close_reads_on_loopback(tmp_path: Path) -> None:
    with serve(tmp_path, "127.0.0.1", {"RELMARK_PUBLIC_READS": "0"}) as server:
        url = server.url + "/sparql"
        assert requests.get(url, params={"query": "ASK {}"}, timeout=30).status_code == 401
        ok = requests.get(url, params={"query": "ASK {}"}, headers=server.auth("reader"))
        assert ok.status_code == 200


# --- /healthz ----------------------------------------------------------------------------------
def test_healthz_says_less_to_anonymous_callers(network: Server) -> None:
    url = network.url + "/healthz"
    anonymous = requests.get(url, timeout=30)
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ok"}
    reader = requests.get(url, headers=network.auth("reader"), timeout=30).json()
    assert reader["triples"] >= 1 and reader["workers"] == 2 and "store" not in reader
    assert str(network.home) not in json.dumps(reader)
    for who in ("admin", "env-admin"):
        admin = requests.get(url, headers=network.auth(who), timeout=30).json()
        assert admin["store"] == str((network.home / "store").resolve())
    assert requests.get(url, headers=network.auth("bad"), timeout=30).status_code == 401


def test_healthz_on_open_reads_shows_counts_not_the_path(public: Server) -> None:
    body = requests.get(public.url + "/healthz", timeout=30).json()
    assert body["status"] == "ok" and body["triples"] >= 1 and "store" not in body


# --- CORS --------------------------------------------------------------------------------------
def test_cors_echoes_a_listed_origin_and_never_a_wildcard_when_reads_need_a_token(
    network: Server,
) -> None:
    url = network.url + "/sparql"
    ask = {"query": "ASK {}"}
    listed = requests.get(
        url, params=ask, headers={"Origin": ALLOWED_ORIGIN, **network.auth("reader")}
    )
    assert listed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in listed.headers["Vary"]
    other = requests.get(
        url, params=ask, headers={"Origin": OTHER_ORIGIN, **network.auth("reader")}
    )
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]
    # the listed origin's page sees the 401 (and so knows to ask for a token)
    refused = requests.get(url, params=ask, headers={"Origin": ALLOWED_ORIGIN}, timeout=30)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    for path in ("/sparql", "/data", "/api/queries", "/api/openapi.json"):
        response = requests.get(
            network.url + path, headers={"Origin": OTHER_ORIGIN, **network.auth("reader")}
        )
        assert response.headers.get("Access-Control-Allow-Origin") != "*", path


def test_preflight_lets_a_listed_origin_send_its_token(network: Server) -> None:
    asking = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    response = requests.options(
        network.url + "/sparql", headers={"Origin": ALLOWED_ORIGIN, **asking}, timeout=30
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    response = requests.options(
        network.url + "/sparql", headers={"Origin": OTHER_ORIGIN, **asking}, timeout=30
    )
    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Headers" not in response.headers


def test_cors_is_a_wildcard_only_while_reads_are_public(local: Server, public: Server) -> None:
    for server in (local, public):
        response = requests.get(
            server.url + "/sparql",
            params={"query": "ASK {}"},
            headers={"Origin": OTHER_ORIGIN},
            timeout=30,
        )
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        preflight = requests.options(
            server.url + "/sparql",
            headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
            timeout=30,
        )
        # no page may send a visitor's token cross-origin, so none can write through it
        assert "authorization" not in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_the_cors_setting_reads_as_documented() -> None:
    env = {"RELMARK_CORS_ORIGINS": "https://a.example/, https://b.example"}
    listed = Settings.from_env(env)
    assert allowed_origins(listed, public=True) == ("https://a.example", "https://b.example")
    assert allowed_origins(Settings.from_env({}), public=True) == ("*",)
    assert allowed_origins(Settings.from_env({}), public=False) == ()
    assert allowed_origins(Settings.from_env({"RELMARK_CORS_ORIGINS": ""}), public=True) == ()
    star = Settings.from_env({"RELMARK_CORS_ORIGINS": "*"})
    assert allowed_origins(star, public=True) == ("*",)
    assert allowed_origins(star, public=False) == ()
    with pytest.raises(ValueError, match="RELMARK_PUBLIC_READS"):
        Settings.from_env({"RELMARK_PUBLIC_READS": "maybe"})


# --- security headers and error pages -----------------------------------------------------------
class _Scripts(HTMLParser):
    """Collects every ``<script>`` and every ``on…=`` event-handler attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.handlers += [f"<{tag} {k}>" for k, _ in attrs if k.startswith("on")]
        if tag == "script" and not named.get("src") and named.get("type") != "application/json":
            self.inline.append(str(named))


PAGES = [
    "/",
    "/ontology",
    "/ontology/class?iri=rm:Advocate",
    "/query",
    "/resource?iri=urn:relmark:test:note",
    "/search?q=note",
    "/ontology/thirty-r",
]


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_a_strict_policy_and_carry_no_inline_script(local: Server, path: str) -> None:
    response = requests.get(local.url + path, headers={"Accept": BROWSER_ACCEPT}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    directives = response.headers["Content-Security-Policy"].split(";")
    policy = dict(d.strip().partition(" ")[::2] for d in directives)
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    scripts = _Scripts()
    scripts.feed(response.text)
    assert scripts.inline == [] and scripts.handlers == []


def test_every_response_says_nosniff(network: Server) -> None:
    reader = network.auth("reader")
    responses = [
        requests.get(network.url + "/sparql", params={"query": "ASK {}"}, headers=reader),
        requests.get(network.url + "/data", params={"graph": GRAPH}, headers=reader),
        requests.get(network.url + "/healthz"),
        requests.get(network.url + "/sparql"),  # 401
        requests.get(network.url + "/static/browse/browse.js"),
        requests.get(network.url + "/no/such/thing", headers=reader),  # 404
    ]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    api = responses[0].headers["Content-Security-Policy"]
    assert api == "default-src 'none'; frame-ancestors 'none'"
    assert responses[4].status_code == 200  # the pages' own script needs no token


def test_errors_are_html_for_a_browser_and_json_for_api_clients(local: Server) -> None:
    page = requests.get(local.url + "/no-such-page", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<h1>Error 404</h1>" in page.text
    assert "Accept" in page.headers["Vary"]
    assert "Content-Security-Policy" in page.headers
    curl = requests.get(local.url + "/no-such-page", headers={"Accept": "*/*"}, timeout=30)
    assert curl.status_code == 404
    assert set(curl.json()) >= {"error", "detail", "where"}
    # the machine API answers JSON even to a browser
    api = requests.get(
        local.url + "/sparql", params={"query": "SELECT"}, headers={"Accept": BROWSER_ACCEPT}
    )
    assert api.status_code == 400 and api.json()["error"] == "malformed query"


def test_a_browser_without_a_token_gets_an_html_401(network: Server) -> None:
    response = requests.get(network.url + "/ontology", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="relmark"'
    assert "a bearer token is required" in response.text


def test_the_openapi_document_says_which_operations_need_a_token(
    network: Server, local: Server
) -> None:
    closed = requests.get(
        network.url + "/api/openapi.json", headers=network.auth("reader"), timeout=60
    ).json()
    opened = requests.get(local.url + "/api/openapi.json", timeout=60).json()
    assert closed["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert closed["paths"]["/sparql"]["get"]["security"] == [{"bearer": []}]
    assert opened["paths"]["/sparql"]["get"]["security"] == [{}, {"bearer": []}]
    for document in (closed, opened):
        assert document["paths"]["/data"]["put"]["security"] == [{"bearer": []}]
        assert document["paths"]["/healthz"]["get"]["security"] == [{}, {"bearer": []}]
        for item in document["paths"].values():
            for method, operation in item.items():
                if method in ("get", "put", "post", "delete"):
                    assert "401" in operation["responses"], (method, operation["summary"])
