"""Hostile input cannot hurt relmark (issue 16): SSRF, deep nesting, entity expansion, bad
bytes, and the SPARQL Protocol gaps, each against a real ``relmark serve``.

Every attack is one bounded request. After each: a socket we listen on at 127.0.0.1 has
received no connection (the server fetched nothing), ``/healthz`` answers, and the store
holds as many quads as before. The server under test runs under ``RLIMIT_AS`` (so a
regression costs a worker, never the machine) in one process and with two workers (where
an update crosses to the supervisor process).
"""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyoxigraph as ox
import pytest
import rdflib
import requests
from SPARQLWrapper import JSON, POST, TURTLE, SPARQLWrapper
from support.paths import RELMARK
from support.server import (
    DEMO_GRAPH_PREFIX,
    RelmarkServer,
    put_demo_data,
    running_relmark,
)

from relmark.sparql.guard import (
    CRASH_SAFE_DEPTH,
    SparqlLimits,
    SparqlRefused,
    check_parse_safety,
    check_query,
)
from relmark.vocab import DEMO

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:SPARQLWrapper"),
]

#: The server's address space: far above its needs (~1 GB mapped), far below the machine.
ADDRESS_SPACE = 4 * 1024**3
BANK_GRAPH = DEMO_GRAPH_PREFIX + "bank"
DEEP = 10_000
SYSTEM_GRAPHS = ("urn:relmark:ontology", "urn:relmark:shapes", "urn:relmark:config")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
 <!ENTITY a "lollollollollollollollollollol">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
 <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
 <!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">
  <rdf:Description rdf:about="urn:test:laugh"><rdfs:label>&i;</rdfs:label></rdf:Description>
</rdf:RDF>
"""


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@contextlib.contextmanager
def hostile_relmark(home: Path, workers: int, **env: str) -> Iterator[RelmarkServer]:
    """``relmark serve`` under RLIMIT_AS, with extra ``RELMARK_*`` settings; it must
    survive every attack."""
    settings = {
        "RELMARK_QUERY_TIMEOUT": "5",
        "RELMARK_MAX_BODY": str(8 * 1024 * 1024),
        "RELMARK_MAX_ROWS": "100000",
        **env,
    }
    with running_relmark(home, workers, address_space=ADDRESS_SPACE, **settings) as server:
        yield server
        died = psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
        assert not died, f"the server died:\n{server.log.read_text()[-3000:]}"


class Listener:
    """A socket on 127.0.0.1 that must never be connected to (the SSRF target)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def connected(self, wait: float = 0.3) -> bool:
        """Whether a connection arrived (accepting and closing it)."""
        readable, _, _ = select.select([self.sock], [], [], wait)
        if readable:
            connection, _ = self.sock.accept()
            connection.close()
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    sock = Listener()
    yield sock
    sock.close()


@pytest.fixture(scope="module", params=(1, 2), ids=lambda n: f"workers={n}")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelmarkServer]:
    home = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with hostile_relmark(home, request.param) as running:
        put_demo_data(running)
        yield running


def quads(server: RelmarkServer) -> int:
    body = requests.get(
        server.sparql,
        params={"query": "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }"},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    ).json()
    return int(body["results"]["bindings"][0]["n"]["value"])


@contextlib.contextmanager
def unharmed(server: RelmarkServer, listener: Listener) -> Iterator[None]:
    """The attack inside changes nothing, fetches nothing and leaves the server up."""
    before = quads(server)
    yield
    assert not listener.connected(), "the server connected to the listener"
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert quads(server) == before
    assert not list(server.store.parent.glob(".store.scratch-*"))


def ask(server: RelmarkServer, query: str, **params: str) -> requests.Response:
    return requests.post(
        server.sparql,
        params=params,
        data=query.encode(),
        headers={"Content-Type": "application/sparql-query", "Accept": "application/json"},
        timeout=30,
    )


def update(server: RelmarkServer, text: str, **params: str) -> requests.Response:
    return requests.post(
        server.sparql,
        params=params,
        data=text.encode(),
        headers={"Content-Type": "application/sparql-update", **server.auth},
        timeout=60,
    )


def refused(response: requests.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail", "where"}
    text = f"{body['error']} {body['detail']}"
    for word in words:
        assert word in text, text
    return body


# --- 1. SSRF: SERVICE and LOAD ----------------------------------------------------------------
def ssrf_queries(target: str) -> list[str]:
    host = target.rstrip("/")
    return [
        f"SELECT * {{ SERVICE <{target}x> {{ ?s ?p ?o }} }}",
        f"select * {{ service silent <{target}x> {{ ?s ?p ?o }} }}",
        f"PREFIX ex: <{target}>\nSELECT * {{ SERVICE ex:x {{ ?s ?p ?o }} }}",
        f"BASE <{target}>\nSELECT * {{ SERVICE <x> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ ?s ?p 'SERVICE' # not this SERVICE, but the next\n"
        f" SERVICE <{host}/y> {{ ?s ?p ?o }} }}",
        # an escaped '#' in a prefixed name is not a comment
        f"PREFIX ex: <urn:x:>\nSELECT * {{ {{ ?s ex:p\\# ?o }}\n"
        f" SERVICE <{target}> {{ ?s ?p ?o }} }}",
    ]


@pytest.mark.parametrize("n", range(6))
def test_service_to_an_endpoint_not_allowed_is_refused(
    server: RelmarkServer, listener: Listener, n: int
) -> None:
    with unharmed(server, listener):
        response = ask(server, ssrf_queries(listener.url)[n])
        refused(response, 403, "SERVICE", listener.url.rstrip("/"), "RELMARK_SERVICE_ALLOW")


def test_service_with_a_variable_is_400_not_500(server: RelmarkServer, listener: Listener) -> None:
    with unharmed(server, listener):
        refused(ask(server, "SELECT * { SERVICE ?where { ?s ?p ?o } }"), 400, "variable")


def test_a_less_than_that_could_hide_a_service_is_refused(
    server: RelmarkServer, listener: Listener
) -> None:
    """``?o<'b>'`` is ``?o < "b>"`` to the parser but an IRI and a string to a naive reader,
    which would then miss the SERVICE after it."""
    text = f"SELECT * {{ ?s ?p ?o FILTER(?o<'b>') SERVICE <{listener.url}> {{ ?s ?p ?o }} }} #'"
    with unharmed(server, listener):
        refused(ask(server, text), 400, "ambiguous")


def test_words_in_strings_comments_and_iris_are_not_keywords(server: RelmarkServer) -> None:
    text = (
        "PREFIX ex: <http://example.org/service/load#>\n"
        "SELECT ?service WHERE { # SERVICE <http://127.0.0.1:1/>\n"
        "  BIND('SERVICE <http://127.0.0.1:1/>' AS ?service)\n"
        "  OPTIONAL { ?service ex:load <http://example.org/SERVICE> } }"
    )
    assert ask(server, text).status_code == 200


@pytest.mark.parametrize(
    "text",
    ["LOAD <{url}data.ttl>", "LOAD SILENT <{url}data.ttl> INTO GRAPH <urn:test:loaded>"],
)
def test_load_of_an_endpoint_not_allowed_is_refused(
    server: RelmarkServer, listener: Listener, text: str
) -> None:
    with unharmed(server, listener):
        refused(update(server, text.format(url=listener.url)), 403, "LOAD", "RELMARK_SERVICE_ALLOW")


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("update", "LOAD <file:///etc/passwd>"),
        ("update", "LOAD <FILE:///etc/hostname> INTO GRAPH <urn:test:f>"),
        ("query", "SELECT * { SERVICE <file:///etc/passwd> { ?s ?p ?o } }"),
        ("query", "SELECT * { SERVICE <\\u0066ile:///etc/passwd> { ?s ?p ?o } }"),
        ("query", "BASE <file:///etc/> SELECT * { SERVICE <passwd> { ?s ?p ?o } }"),
    ],
)
def test_file_iris_are_never_fetched(
    server: RelmarkServer, listener: Listener, kind: str, text: str
) -> None:
    with unharmed(server, listener):
        response = update(server, text) if kind == "update" else ask(server, text)
        refused(response, 403, "file")


def test_the_allow_list_lets_an_operator_federate(tmp_path: Path, listener: Listener) -> None:
    """The control: with the listener on RELMARK_SERVICE_ALLOW, the same SERVICE fetches."""
    with hostile_relmark(tmp_path, 1, RELMARK_SERVICE_ALLOW=f"urn:other: , {listener.url}") as srv:
        result: list[requests.Response] = []
        asking = threading.Thread(
            target=lambda: result.append(ask(srv, f"SELECT * {{ SERVICE <{listener.url}x> {{}} }}"))
        )
        asking.start()
        try:
            assert listener.connected(wait=10)
        finally:
            asking.join(30)
        # fetched; the listener answered nothing: the endpoint failed (502, not a bare 500)
        refused(result[0], 502, "SERVICE")
        # what is not on the list stays refused
        refused(ask(srv, "SELECT * { SERVICE <http://127.0.0.1:1/> {} }"), 403, "urn:other:")


# --- 2. deep nesting ----------------------------------------------------------------------
def test_deeply_nested_query_is_400_and_kills_nothing(
    server: RelmarkServer, listener: Listener
) -> None:
    text = "SELECT * " + "{" * DEEP + " ?s ?p ?o " + "}" * DEEP
    with unharmed(server, listener):
        for _ in range(3):  # once killed a worker each time (SIGSEGV)
            refused(ask(server, text), 400, "RELMARK_MAX_SPARQL_DEPTH", "64")
        parens = "SELECT * { FILTER(" + "(" * DEEP + "1" + ")" * DEEP + ") }"
        refused(requests.get(server.sparql, params={"query": parens}, timeout=30), 400, "deep")


def test_deeply_nested_update_is_400_and_the_supervisor_lives(
    server: RelmarkServer, listener: Listener
) -> None:
    text = "INSERT { ?s ?p ?o } WHERE " + "{" * DEEP + " ?s ?p ?o " + "}" * DEEP
    with unharmed(server, listener):
        refused(update(server, text), 400, "RELMARK_MAX_SPARQL_DEPTH")
        lists = "INSERT DATA { <urn:x> <urn:y> " + "( " * 300 + "1" + " )" * 300 + " }"
        refused(update(server, lists), 400, "nests too deeply")


def test_nesting_within_the_limit_is_answered(server: RelmarkServer) -> None:
    text = "SELECT * " + "{" * 40 + " ?s ?p ?o " + "}" * 40 + " LIMIT 1"
    assert ask(server, text).status_code == 200


def test_the_writer_process_refuses_what_would_crash_it() -> None:
    """``StoreWriter.apply`` runs this on every update it receives, whatever a worker did."""
    with pytest.raises(SparqlRefused, match="nests too deeply"):
        check_parse_safety("INSERT DATA {" + "{" * (CRASH_SAFE_DEPTH + 1) + "}")
    check_parse_safety("INSERT DATA {" + "[ <urn:p> " * 100 + "1" + " ]" * 100 + "}")


def test_relmark_query_refuses_a_deep_text(tmp_path: Path) -> None:
    relmark = RELMARK
    text = "SELECT * " + "{" * DEEP + " ?s ?p ?o " + "}" * DEEP
    done = subprocess.run(
        [str(relmark), "--store", str(tmp_path / "store"), "query", "-"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        preexec_fn=_limit_address_space,
    )
    assert done.returncode == 2, done.stderr
    assert b"RELMARK_MAX_SPARQL_DEPTH" in done.stderr


def test_oversized_text_is_refused_before_parsing() -> None:
    with pytest.raises(SparqlRefused, match="RELMARK_MAX_SPARQL_BYTES"):
        check_query("SELECT * {}" + " " * 2000, SparqlLimits(max_bytes=1000))


# --- 3. entity expansion and remote JSON-LD contexts -----------------------------------------
def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (workers, what-if helpers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = Path(f"/proc/{current}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0]) * 1024
    return total


def test_billion_laughs_to_what_if_is_400(server: RelmarkServer, listener: Listener) -> None:
    """Once grew a worker to 16 GB; now refused before any parser sees it."""
    before = tree_rss(server.pid)
    with unharmed(server, listener):
        for _ in range(3):
            response = requests.post(
                server.url + "/api/classify",
                data=BILLION_LAUGHS,
                headers={"Content-Type": "application/rdf+xml"},
                timeout=30,
            )
            refused(response, 400, "DOCTYPE")
    assert tree_rss(server.pid) - before < 200 * 1024**2


def test_billion_laughs_to_the_graph_store_is_400(
    server: RelmarkServer, listener: Listener
) -> None:
    with unharmed(server, listener):
        for method in (requests.put, requests.post):
            response = method(
                server.data,
                params={"graph": "urn:test:laughs"},
                data=BILLION_LAUGHS,
                headers={"Content-Type": "application/rdf+xml", **server.auth},
                timeout=30,
            )
            refused(response, 400, "DOCTYPE")


def test_relmark_load_refuses_a_dtd(tmp_path: Path) -> None:
    source = tmp_path / "laughs.rdf"
    source.write_bytes(BILLION_LAUGHS)
    relmark = RELMARK
    done = subprocess.run(
        [str(relmark), "--store", str(tmp_path / "store"), "load", str(source)],
        capture_output=True,
        timeout=120,
        preexec_fn=_limit_address_space,
    )
    assert done.returncode == 2, done.stderr
    assert b"DOCTYPE" in done.stderr


def test_plain_rdf_xml_is_still_read(server: RelmarkServer) -> None:
    body = (
        b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"><rdf:Description'
        b' rdf:about="urn:test:plain"><rdfs:label>plain</rdfs:label></rdf:Description></rdf:RDF>'
    )
    response = requests.put(
        server.data,
        params={"graph": "urn:test:plain-xml"},
        data=body,
        headers={"Content-Type": "application/rdf+xml", **server.auth},
        timeout=30,
    )
    assert response.status_code in (201, 204), response.text
    requests.delete(
        server.data, params={"graph": "urn:test:plain-xml"}, headers=server.auth, timeout=30
    ).raise_for_status()


def test_json_ld_never_fetches_a_remote_context(server: RelmarkServer, listener: Listener) -> None:
    body = ('{"@context": "' + listener.url + 'ctx", "@id": "urn:test:ctx", "name": "x"}').encode()
    with unharmed(server, listener):
        response = requests.post(
            server.url + "/api/classify",
            data=body,
            headers={"Content-Type": "application/ld+json"},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        response = requests.put(
            server.data,
            params={"graph": "urn:test:ctx"},
            data=body,
            headers={"Content-Type": "application/ld+json", **server.auth},
            timeout=30,
        )
        assert response.status_code == 400, response.text


# --- 4. small items -----------------------------------------------------------------------------
def test_form_post_that_is_not_utf8_is_400(server: RelmarkServer, listener: Listener) -> None:
    with unharmed(server, listener):
        response = requests.post(
            server.sparql,
            data=b"query=SELECT%20*%20%7B%20%3Fs%20%3Fp%20%22%FF%22%20%7D",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
        refused(response, 400, "UTF-8")
        response = requests.get(server.sparql + "?query=ASK%20%7B%7D%23%FF", timeout=30)
        refused(response, 400, "UTF-8")


def test_unknown_format_is_400_naming_the_formats(server: RelmarkServer) -> None:
    response = requests.get(server.sparql, params={"query": "ASK {}", "format": "yaml"}, timeout=30)
    refused(response, 400, "yaml", "json", "turtle")
    response = requests.get(server.data, params={"graph": BANK_GRAPH, "format": "yaml"}, timeout=30)
    refused(response, 400, "yaml")


def test_non_ascii_digits_are_not_numbers(server: RelmarkServer) -> None:
    for value in ("٣", "1_0"):
        response = requests.get(
            server.url + "/api/queries/clients-without-referral",
            params={"firm": DEMO + "banca-lariana", "limit": value},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert "limit" in response.text


def test_a_huge_iri_is_not_written(server: RelmarkServer, listener: Listener) -> None:
    iri = "urn:test:" + "a" * 5_000_000
    with unharmed(server, listener):
        refused(
            update(server, f"INSERT DATA {{ <{iri}> <urn:test:p> 1 }}"),
            400,
            "RELMARK_MAX_IRI_LENGTH",
        )
        response = requests.put(
            server.data,
            params={"graph": "urn:test:huge"},
            data=f"<{iri}> <urn:test:p> 1 .".encode(),
            headers={"Content-Type": "text/turtle", **server.auth},
            timeout=60,
        )
        refused(response, 400, "RELMARK_MAX_IRI_LENGTH")


# --- 5. protocol gaps -------------------------------------------------------------------------
def test_relative_iris_resolve_against_the_endpoint(server: RelmarkServer) -> None:
    client = SPARQLWrapper(server.sparql)
    client.setQuery("CONSTRUCT { <s> <p> 1 } WHERE {}")
    client.setReturnFormat(TURTLE)
    graph = rdflib.Graph().parse(data=client.queryAndConvert(), format="turtle")
    assert {str(s) for s in graph.subjects()} == {server.url + "/s"}

    writer = SPARQLWrapper(server.sparql, updateEndpoint=server.sparql)
    writer.addCustomHttpHeader("Authorization", f"Bearer {server.token}")
    writer.setMethod(POST)
    writer.setQuery("INSERT DATA { GRAPH <relative-graph> { <s> <p> 1 } }")
    writer.query()
    reader = SPARQLWrapper(server.sparql)
    reader.setQuery(f"SELECT ?s FROM <{server.url}/relative-graph> WHERE {{ ?s ?p 1 }}")
    reader.setReturnFormat(JSON)
    rows = reader.queryAndConvert()["results"]["bindings"]
    assert [r["s"]["value"] for r in rows] == [server.url + "/s"]
    update(server, "DROP GRAPH <relative-graph>").raise_for_status()


def test_syntax_error_positions_are_the_clients(server: RelmarkServer) -> None:
    """The BASE prologue relmark adds moves no position the client sees."""
    text = "SELECT * WHERE { <s> ?p }"  # relative: sent with a BASE prologue
    with pytest.raises(SyntaxError) as engine:
        ox.Store().query(text)  # the engine on the client's text alone, as the oracle
    body = refused(ask(server, text), 400, "malformed")
    assert f"at {body['where']}:" in engine.value.msg
    assert body["detail"] == engine.value.msg


@pytest.mark.parametrize("charset", ["UTF-16", "latin-1", "us-ascii"])
def test_a_body_charset_other_than_utf8_is_415(server: RelmarkServer, charset: str) -> None:
    for media_type in ("application/sparql-query", "application/sparql-update"):
        response = requests.post(
            server.sparql,
            data="ASK {}".encode("utf-16" if charset == "UTF-16" else "ascii"),
            headers={"Content-Type": f"{media_type}; charset={charset}", **server.auth},
            timeout=30,
        )
        refused(response, 415, charset)
    response = requests.post(
        server.sparql,
        data=b"ASK {}",
        headers={"Content-Type": "application/sparql-query; charset=utf-8"},
        timeout=30,
    )
    assert response.status_code == 200


def test_version_parameter(server: RelmarkServer) -> None:
    for version in ("1.1", "1.2"):
        assert ask(server, "ASK {}", version=version).status_code == 200
        response = requests.get(
            server.sparql, params={"query": "ASK {}", "version": version}, timeout=30
        )
        assert response.status_code == 200
    for params in ({"version": "2.0"}, {"version": ["1.1", "1.2"]}):
        refused(
            requests.get(server.sparql, params={"query": "ASK {}", **params}, timeout=30),
            400,
            "version",
        )
        form = requests.post(server.sparql, data={"query": "ASK {}", **params}, timeout=30)
        refused(form, 400, "version")
        refused(update(server, "INSERT DATA {}", **params), 400, "version")
    assert update(server, "INSERT DATA {}", version="1.2").status_code == 204


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[RelmarkServer]:
    with hostile_relmark(tmp_path, 2) as running:
        put_demo_data(running)
        yield running


def graph_sizes(server: RelmarkServer) -> dict[str, int]:
    body = requests.get(
        server.sparql,
        params={"query": "SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    ).json()
    return {b["g"]["value"]: int(b["n"]["value"]) for b in body["results"]["bindings"]}


def inferred_about_demo(server: RelmarkServer) -> int:
    query = (
        "SELECT (COUNT(*) AS ?n) FROM <urn:relmark:inferred> WHERE { ?s ?p ?o "
        f"FILTER(STRSTARTS(STR(?s), '{DEMO}')) }}"
    )
    body = requests.get(
        server.sparql, params={"query": query}, headers={"Accept": "application/json"}, timeout=30
    ).json()
    return int(body["results"]["bindings"][0]["n"]["value"])


@pytest.mark.parametrize("operation", ["CLEAR ALL", "DROP SILENT ALL", "clear named", "DROP NAMED"])
def test_clear_and_drop_all_act_on_the_data_graphs(
    fresh_server: RelmarkServer, operation: str
) -> None:
    before = graph_sizes(fresh_server)
    assert before.get(BANK_GRAPH) and inferred_about_demo(fresh_server)
    assert update(fresh_server, operation).status_code == 204
    after = graph_sizes(fresh_server)
    data = [g for g in after if g.startswith(DEMO_GRAPH_PREFIX)]
    assert not data, after  # every data graph emptied (DROP: gone; CLEAR: emptied)
    for graph in SYSTEM_GRAPHS:
        assert after[graph] == before[graph]  # the files' graphs stay
    assert inferred_about_demo(fresh_server) == 0  # the inferences followed
    refused(
        update(fresh_server, "INSERT DATA { GRAPH <urn:relmark:shapes> { <urn:x> <urn:y> 1 } }"),
        403,
        "read-only",
    )
