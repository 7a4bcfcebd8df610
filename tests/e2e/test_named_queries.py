"""Named competency questions through the real HTTP server (issue 6).

Each of the twenty numbered competency questions runs as ``GET /api/queries/<name>`` against a
``relmark serve`` holding the demo data, and must return exactly the answer set that
tests/unit/test_demo_questions.py derives independently from the asserted facts (imported from
there, so both tests agree on one expectation), with the demo's near-misses absent. Then the
error paths of every parameter type, the injection case, paging, CSV, SPARQL JSON, labels,
the catalogue's own checks and the CLI.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.backends import ALL_SERVERS
from support.paths import RELMARK
from support.server import RelmarkServer
from unit import test_demo_questions as demo

from relmark.queries import (
    PARAMETER_TYPES,
    CatalogueError,
    load_catalogue,
    parse_query_file,
)
from relmark.vocab import DEMO, QUERIES_DIR, RM

#: Every test that takes ``relmark_server`` runs on each back end (tests/conftest.py).
SERVER_BACKENDS = ALL_SERVERS

TODAY = demo.TODAY
BANK, FERROMEC = "demo:banca-lariana", "demo:ferromec"
GROUPS = {
    "rm:ClassicMarketRelationship": "classic market",
    "rm:SpecialMarketRelationship": "special market",
    "rm:MegaRelationship": "mega",
    "rm:NanoRelationship": "nano",
}


@dataclass(frozen=True)
class Case:
    """A question's run on the demo data: its parameters and the columns the expectation of
    test_demo_questions.py is made of (in its order)."""

    name: str
    params: dict[str, str]
    columns: tuple[str, ...]
    question: demo.Question


CASES = [
    Case("referral-market", {"firm": BANK}, ("source", "strong"), demo.Q1),
    Case("six-markets", {"firm": BANK}, ("stakeholder", "market"), demo.Q2),
    Case(
        "ladder-stages",
        {"firm": BANK, "asOf": TODAY},
        ("relationship", "stage", "movedUp"),
        demo.Q3,
    ),
    Case("clients-without-referral", {"firm": BANK}, ("relationship", "customer"), demo.Q4),
    Case("unenabled-promises", {}, ("promise", "madeIn"), demo.Q5),
    Case("promise-breakers", {"firm": BANK}, ("employee", "customer"), demo.Q6),
    Case("fournier-forms", {}, ("relationship", "form"), demo.Q7),
    Case(
        "committed-partners-of-brand",
        {"brand": "demo:brand-caffe-aurora", "asOf": TODAY},
        ("consumer", "relationship", "start", "duration"),
        demo.Q8,
    ),
    Case("imposed-brand-relationships", {}, ("relationship", "negative"), demo.Q9),
    Case("at-risk-relationships", {}, ("relationship",), demo.Q10),
    Case("committed-trusting-suppliers", {"firm": BANK}, ("supplier", "relationship"), demo.Q11),
    Case("thirty-r-by-group", {"firm": BANK}, ("group", "r"), demo.Q12),
    Case("members-still-purchasers", {"firm": BANK}, ("member", "relationship"), demo.Q13),
    Case("stuck-opportunities", {"asOf": TODAY}, ("opportunity", "since"), demo.Q14),
    Case("closed-without-follow-up", {}, ("opportunity", "closed"), demo.Q15),
    Case("repeat-share", {}, ("seller", "share", "meetsHeuristic"), demo.Q16),
    Case(
        "customised-segments-key-accounts",
        {"firm": FERROMEC},
        ("segment", "account"),
        demo.Q17,
    ),
    Case(
        "influencers-contacted-this-year",
        {"firm": BANK, "asOf": TODAY},
        ("actor", "channel"),
        demo.Q18,
    ),
    Case(
        "loyal-without-courtesy-contact",
        {"firm": BANK, "asOf": TODAY},
        ("relationship", "customer"),
        demo.Q19,
    ),
    Case("global-accounts", {"firm": FERROMEC}, ("account", "teams"), demo.Q20),
    # Added in issue 18 (not one of the twenty): the candidate signal that high trust and
    # commitment became when they stopped making a partner.
    Case(
        "partner-candidates", {"firm": BANK}, ("relationship", "customer"), demo.PARTNER_CANDIDATES
    ),
]
INJECTION = '"> } ; DROP ALL #'


def short(cell: dict | None) -> str | None:
    """A JSON cell as test_demo_questions.py writes values: CURIEs for demo:/rm: IRIs."""
    if cell is None:
        return None
    value = cell["value"]
    if cell["type"] == "iri":
        for prefix, namespace in (("demo:", DEMO), ("rm:", RM)):
            if value.startswith(namespace):
                return prefix + value[len(namespace) :]
    return value


def ask(
    server: RelmarkServer, name: str, params: dict | None = None, **kwargs
) -> requests.Response:
    return requests.get(f"{server.url}/api/queries/{name}", params=params, timeout=60, **kwargs)


def rows_of(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def tuples(rows: list[dict], columns: tuple[str, ...]) -> set[tuple[str | None, ...]]:
    return {tuple(short(row[c]) for c in columns) for row in rows}


# --- one test per question -----------------------------------------------------------------
def test_every_question_has_a_case() -> None:
    # The twenty numbered questions and partner-candidates (the ladder's candidate signal)
    # have a case here; the unnumbered ones added with the concepts of the source texts are
    # tested in test_seed_questions.py.
    numbered = [q for q in load_catalogue() if q.question is not None]
    assert sorted(q.question for q in numbered) == list(range(1, 21))
    assert sorted(c.name for c in CASES) == sorted(
        [q.name for q in numbered] + ["partner-candidates"]
    )
    assert {c.question.id_ for c in CASES} == {q.id_ for q in demo.QUESTIONS} | {
        demo.PARTNER_CANDIDATES.id_
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_question_answers_exactly_on_the_demo_data(relmark_server: RelmarkServer, case: Case):
    rows = rows_of(ask(relmark_server, case.name, case.params))
    answer = tuples(rows, case.columns)
    if case.name == "thirty-r-by-group":  # the group is the scheme's class; the oracle's text
        answer = {(GROUPS[group], r) for group, r in answer}
    assert answer == case.question.expected, case.question.text
    assert len(rows) == len(answer), "a row is repeated"
    returned = {short(cell) for row in rows for cell in row.values()}
    assert not returned & case.question.near_misses, "a near-miss is answered"


# --- parameters change the answer as declared ---------------------------------------------
def test_days_parameter_overrides_the_configured_threshold(relmark_server: RelmarkServer):
    params = {"asOf": TODAY, "days": "40"}
    rows = rows_of(ask(relmark_server, "stuck-opportunities", params))
    assert tuples(rows, ("opportunity", "daysAtStep")) == {
        ("demo:opp-voltaris-china-bearings", "66")
    }


def test_integer_and_decimal_parameters(relmark_server: RelmarkServer):
    global_accounts = ask(relmark_server, "global-accounts", {"firm": FERROMEC, "minTeams": "4"})
    assert rows_of(global_accounts) == []
    share = ask(relmark_server, "repeat-share", {"firm": BANK, "heuristic": "0.75"})
    assert tuples(rows_of(share), ("seller", "meetsHeuristic")) == {(BANK, "true")}


def test_optional_firm_restricts_the_answer(relmark_server: RelmarkServer):
    rows = rows_of(ask(relmark_server, "at-risk-relationships", {"firm": BANK}))
    assert tuples(rows, ("relationship",)) == {("demo:cr-stefano-bruni",), ("demo:sr-copyservice",)}


def test_as_of_fixes_this_year(relmark_server: RelmarkServer):
    """On 30 June 2026 the year's contacts are those dated before it (bank.ttl: the press
    call of 15 April and the regulator meeting; the regulator's e-mail and the consumer
    group's letter came later); on 15 November the whole expected set of Q18."""
    name, firm = "influencers-contacted-this-year", {"firm": BANK}
    june = rows_of(ask(relmark_server, name, {**firm, "asOf": "2026-06-30"}))
    assert tuples(june, ("actor", "channel")) == {
        ("demo:autorita-vigilanza", "rm:FaceToFace"),
        ("demo:corriere-lario", "rm:Phone"),
    }
    november = rows_of(ask(relmark_server, name, {**firm, "asOf": TODAY}))
    assert tuples(november, ("actor", "channel")) == demo.Q18.expected


def test_string_and_language_parameters(relmark_server: RelmarkServer):
    english = rows_of(
        ask(relmark_server, "thirty-r-by-group", {"firm": BANK, "search": "Internal"})
    )
    assert tuples(english, ("r", "name")) == {
        ("rm:R25", "internal customer relationship"),
        ("rm:R27", "internal marketing: the employee market"),
    }
    italian = rows_of(
        ask(
            relmark_server,
            "thirty-r-by-group",
            {"firm": BANK, "search": "elettronica", "language": "it"},
        )
    )
    assert tuples(italian, ("r", "name")) == {("rm:R12", "relazione elettronica")}


def test_default_date_is_today(relmark_server: RelmarkServer):
    import datetime as dt

    response = ask(relmark_server, "loyal-without-courtesy-contact", {"firm": BANK})
    assert response.json()["parameters"]["asOf"] == dt.date.today().isoformat()


# --- errors --------------------------------------------------------------------------------
ERROR_CASES = [
    # (question, parameters, parameter at fault, words of the expected type)
    ("referral-market", {}, "firm", "IRI"),  # missing required
    ("referral-market", {"firm": "not an iri"}, "firm", "IRI"),
    ("referral-market", {"firm": "demo:brand-caffe-aurora"}, "firm", "rm:FocalFirm"),
    ("referral-market", {"firm": INJECTION}, "firm", "IRI"),
    ("ladder-stages", {"firm": BANK, "asOf": "2026-13-45"}, "asOf", "YYYY-MM-DD"),
    ("ladder-stages", {"firm": BANK, "asOf": "15/11/2026"}, "asOf", "YYYY-MM-DD"),
    ("stuck-opportunities", {"days": "thirty"}, "days", "whole number"),
    ("stuck-opportunities", {"days": "1.5"}, "days", "whole number"),
    ("repeat-share", {"heuristic": "80%"}, "heuristic", "decimal"),
    ("thirty-r-by-group", {"firm": BANK, "language": "en_US!"}, "language", "language tag"),
    ("thirty-r-by-group", {"firm": BANK, "search": "x" * 1001}, "search", "at most 1000"),
    ("imposed-brand-relationships", {"colour": "red"}, "colour", "no such parameter"),
    ("six-markets", {"firm": BANK, "limit": "0"}, "limit", "whole number"),
    ("six-markets", {"firm": BANK, "limit": "ten"}, "limit", "whole number"),
    ("six-markets", {"firm": BANK, "offset": "-1"}, "offset", "whole number"),
    ("six-markets", {"firm": BANK, "format": "xml"}, "format", "json"),
    ("six-markets", {"firm": BANK, "lang": "fr"}, "lang", "en"),
]


@pytest.mark.parametrize(
    ("name", "params", "parameter", "expected"),
    ERROR_CASES,
    ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(ERROR_CASES)],
)
def test_bad_parameter_is_a_400_naming_parameter_value_and_type(
    relmark_server: RelmarkServer, name: str, params: dict, parameter: str, expected: str
):
    response = ask(relmark_server, name, params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["parameter"] == parameter
    assert body["where"] == parameter
    assert body["value"] == params.get(parameter)
    assert expected in body["expected"]
    assert parameter in body["error"] and parameter in body["detail"]


def test_every_parameter_type_has_an_error_case() -> None:
    faulted = set()
    for name, _, parameter, _ in ERROR_CASES:
        declared = next(q for q in load_catalogue() if q.name == name).parameter(parameter)
        if declared is not None:
            faulted.add(declared.type)
    assert faulted == set(PARAMETER_TYPES)


WRONG_CLASS_CASES = [
    # (question, parameters, the parameter whose value is of the wrong class)
    ("referral-market", {"firm": "demo:brand-caffe-aurora"}, "firm"),  # required
    ("promise-breakers", {"firm": "demo:brand-caffe-aurora"}, "firm"),  # optional
    ("committed-partners-of-brand", {"brand": BANK, "asOf": TODAY}, "brand"),
    ("six-markets", {"firm": "demo:no-such-firm"}, "firm"),  # in no graph at all
]


@pytest.mark.parametrize("output", ["json", "sparql-json", "csv"])
@pytest.mark.parametrize(
    ("name", "params", "parameter"), WRONG_CLASS_CASES, ids=[c[0] for c in WRONG_CLASS_CASES]
)
def test_wrong_class_is_a_400_in_every_format(
    relmark_server: RelmarkServer, name: str, params: dict, parameter: str, output: str
):
    """The class check runs with the label look-up (JSON) or alone after the question (the
    other formats): either way a value of the wrong class is a 400 naming the parameter,
    never a page of answers."""
    response = ask(relmark_server, name, {**params, "format": output})
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["parameter"], body["where"], body["value"]) == (
        parameter,
        parameter,
        params[parameter],
    )
    assert body["expected"].endswith("(no such resource here)")
    assert body["error"] == f"ill-typed parameter {parameter!r}"


def test_parameter_given_twice_is_a_400(relmark_server: RelmarkServer):
    response = ask(relmark_server, "referral-market", [("firm", BANK), ("firm", FERROMEC)])
    assert response.status_code == 400
    assert response.json()["parameter"] == "firm"


def test_unknown_query_is_a_404(relmark_server: RelmarkServer):
    response = ask(relmark_server, "who-is-the-best-customer")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown query"
    assert "referral-market" in response.json()["detail"]


def test_unacceptable_media_type_is_a_406(relmark_server: RelmarkServer):
    response = ask(relmark_server, "fournier-forms", headers={"Accept": "application/xml"})
    assert response.status_code == 406


def test_injection_is_a_value_that_matches_nothing(relmark_server: RelmarkServer):
    before = requests.get(relmark_server.url + "/healthz", timeout=10).json()["triples"]
    response = ask(relmark_server, "thirty-r-by-group", {"firm": BANK, "search": INJECTION})
    assert response.json()["rows"] == []
    assert response.json()["parameters"]["search"] == INJECTION
    after = requests.get(relmark_server.url + "/healthz", timeout=10).json()["triples"]
    assert after == before
    rows = rows_of(ask(relmark_server, "referral-market", {"firm": BANK}))
    assert tuples(rows, ("source", "strong")) == demo.Q1.expected


# --- paging and formats ----------------------------------------------------------------------
def test_paging_follows_next_links_to_the_whole_answer(relmark_server: RelmarkServer):
    full = rows_of(ask(relmark_server, "six-markets", {"firm": BANK}))
    assert len(full) == len(demo.Q2.expected)
    pages, url, params = (
        [],
        f"{relmark_server.url}/api/queries/six-markets",
        {"firm": BANK, "limit": "10"},
    )
    while url:
        response = requests.get(url, params=params, timeout=30)
        body = response.json()
        pages.append(body["rows"])
        assert len(body["rows"]) <= 10
        if body["next"]:
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        url, params = body["next"], None
    assert [len(page) for page in pages] == [10, 10, 10, 10, len(full) - 40]
    assert [row for page in pages for row in page] == full


def test_offset_past_the_end_is_an_empty_last_page(relmark_server: RelmarkServer):
    body = ask(relmark_server, "six-markets", {"firm": BANK, "offset": "1000"}).json()
    assert body["rows"] == [] and body["next"] is None


def test_csv_parses_with_the_csv_module(relmark_server: RelmarkServer):
    response = ask(relmark_server, "ladder-stages", {"firm": BANK, "asOf": TODAY, "format": "csv"})
    assert response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    rows = rows_of(ask(relmark_server, "ladder-stages", {"firm": BANK, "asOf": TODAY}))
    assert table == [{col: cell["value"] for col, cell in row.items()} for row in rows]
    by_accept = ask(relmark_server, "ladder-stages", {"firm": BANK}, headers={"Accept": "text/csv"})
    assert by_accept.text.splitlines()[0] == "relationship,customer,stage,movedUp"


def test_sparql_json_output(relmark_server: RelmarkServer):
    response = ask(
        relmark_server,
        "global-accounts",
        {"firm": FERROMEC},
        headers={"Accept": "application/sparql-results+json"},
    )
    assert response.headers["Content-Type"].startswith("application/sparql-results+json")
    body = response.json()
    assert body["head"]["vars"] == ["account", "teams"]
    assert body["results"]["bindings"] == [
        {
            "account": {"type": "uri", "value": DEMO + "voltaris-group"},
            "teams": {
                "type": "literal",
                "value": "3",
                "datatype": "http://www.w3.org/2001/XMLSchema#integer",
            },
        }
    ]


def test_labels_follow_the_language(relmark_server: RelmarkServer):
    """Labels of IRIs come in ?lang=, as the ontology (asked over /sparql) has them."""
    sparql = requests.get(
        relmark_server.sparql,
        params={
            "query": f"SELECT ?l WHERE {{ <{RM}CustomerMarket> "
            "<http://www.w3.org/2000/01/rdf-schema#label> ?l FILTER(LANG(?l) = 'it') }"
        },
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    ).json()
    italian = sparql["results"]["bindings"][0]["l"]["value"]
    labels = {}
    for lang in ("en", "it"):
        rows = rows_of(ask(relmark_server, "six-markets", {"firm": BANK, "lang": lang}))
        labels[lang] = {
            row["market"]["label"]
            for row in rows
            if row["market"]["value"] == RM + "CustomerMarket"
        }
    assert labels["it"] == {italian}
    assert labels["en"] != labels["it"]
    bank = rows_of(ask(relmark_server, "repeat-share", {"firm": BANK, "lang": "it"}))
    assert bank[0]["seller"]["label"] == "Banca Lariana S.p.A."


# --- the catalogue ---------------------------------------------------------------------------
def test_catalogue_over_http(relmark_server: RelmarkServer):
    english = requests.get(relmark_server.url + "/api/queries", timeout=30).json()["queries"]
    italian = requests.get(relmark_server.url + "/api/queries?lang=it", timeout=30).json()[
        "queries"
    ]
    assert [q["name"] for q in english] == sorted(p.stem for p in QUERIES_DIR.glob("*.rq"))
    referral = next(q for q in italian if q["name"] == "referral-market")
    assert referral["title"].startswith("Mercato delle segnalazioni")
    assert referral["parameters"] == [
        {
            "name": "firm",
            "type": "iri",
            "class": RM + "FocalFirm",
            "required": True,
            "default": None,
            "description": "L'impresa di cui si elenca il mercato delle segnalazioni.",
            "example": "demo:banca-lariana",
        }
    ]
    assert referral["links"]["run"] == relmark_server.url + "/api/queries/referral-market"
    for entry in english:
        assert entry["title"] and entry["description"]
        assert all(p["type"] in PARAMETER_TYPES and p["description"] for p in entry["parameters"])


def test_every_query_file_is_documented_in_both_languages() -> None:
    for query in load_catalogue():
        assert set(query.title) == {"en", "it"}, query.path
        assert set(query.description) == {"en", "it"}, query.path
        for parameter in query.parameters:
            assert set(parameter.description) == {"en", "it"}, (query.path, parameter.name)
        date_params = [p for p in query.parameters if p.type == "date"]
        assert all(p.name == "asOf" and p.default == "today" for p in date_params), query.path


GOOD_HEADER = """\
# title: Something
# description: What it tells.
# param: firm (iri rm:FocalFirm, required) The firm.
"""
BODY = "\nSELECT ?x ?firm WHERE { ?x ?p ?firm }\n"


@pytest.mark.parametrize(
    ("header", "line", "message"),
    [
        (GOOD_HEADER.replace("# title: Something\n", ""), 1, "title"),
        (GOOD_HEADER.replace("# description: What it tells.\n", ""), 1, "description"),
        (GOOD_HEADER.replace("(iri rm:FocalFirm, required)", "(required)"), 3, "type"),
        (GOOD_HEADER.replace("(iri rm:FocalFirm, required)", "(colour)"), 3, "type"),
        (GOOD_HEADER.replace("(iri rm:FocalFirm, required) ", ""), 3, "param"),
        (GOOD_HEADER.replace("required", "default yesterday"), 3, "default"),
        (GOOD_HEADER.replace("firm (", "limit ("), 3, "reserved"),
        (GOOD_HEADER + "# param@it: area Zona.\n", 1, "undeclared"),
    ],
    ids=[
        "no-title",
        "no-description",
        "no-type",
        "bad-type",
        "no-spec",
        "bad-default",
        "reserved",
        "stray-translation",
    ],
)
def test_catalogue_rejects_a_bad_header(tmp_path: Path, header: str, line: int, message: str):
    path = tmp_path / "bad-question.rq"
    path.write_text(header + BODY, encoding="utf-8")
    with pytest.raises(CatalogueError, match=message) as raised:
        load_catalogue(tmp_path)
    assert f"{path}:{line}:" in str(raised.value)


def test_catalogue_rejects_a_parameter_missing_from_the_projection(tmp_path: Path):
    path = tmp_path / "unprojected.rq"
    path.write_text(GOOD_HEADER + "\nSELECT ?x WHERE { ?x ?p ?firm }\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="projection"):
        parse_query_file(path)


def test_catalogue_rejects_bound_of_a_parameter(tmp_path: Path):
    """pyoxigraph folds BOUND(?param) to false even when ?param is substituted (regression:
    an optional firm filter written with BOUND returned every firm's rows)."""
    path = tmp_path / "bound-param.rq"
    path.write_text(
        GOOD_HEADER
        + "\nSELECT ?x ?firm WHERE {\n  ?x ?p ?y\n  FILTER(!BOUND(?firm) || ?y = ?firm)\n}\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogueError, match="BOUND") as raised:
        parse_query_file(path)
    assert f"{path}:7:" in str(raised.value)


def test_catalogue_accepts_a_good_header(tmp_path: Path):
    (tmp_path / "good-question.rq").write_text(GOOD_HEADER + BODY, encoding="utf-8")
    [query] = load_catalogue(tmp_path)
    assert query.name == "good-question"
    assert query.parameters[0].class_iri == RM + "FocalFirm"


# --- the command line ----------------------------------------------------------------------
def _cli(store: Path, *args: str) -> subprocess.CompletedProcess:
    relmark = RELMARK
    return subprocess.run(
        [str(relmark), "--store", str(store), "query", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_named_query_csv_and_json(loaded_store: Path):
    done = _cli(
        loaded_store, "--named", "global-accounts", "--param", f"firm={FERROMEC}", "--format", "csv"
    )
    assert done.returncode == 0, done.stderr
    assert list(csv.reader(io.StringIO(done.stdout))) == [
        ["account", "teams"],
        [DEMO + "voltaris-group", "3"],
    ]
    done = _cli(
        loaded_store, "--named", "referral-market", "--param", f"firm={BANK}", "--format", "json"
    )
    body = json.loads(done.stdout)
    assert tuples(body["rows"], ("source", "strong")) == demo.Q1.expected


def test_cli_named_query_errors(loaded_store: Path):
    done = _cli(loaded_store, "--named", "referral-market", "--param", "firm=not an iri")
    assert done.returncode == 2
    assert "firm" in done.stderr and "not an iri" in done.stderr
    done = _cli(loaded_store, "--named", "no-such-question")
    assert done.returncode == 2 and "no named question" in done.stderr


# --- class checks folded into the label look-up (relmark.queries.answer) --------------------
FIRMS_TTL = f"""\
@prefix rm: <{RM}> .
@prefix demo: <{DEMO}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
demo:firm-a a rm:FocalFirm ; rdfs:label "Firm A"@en, "Impresa A"@it .
demo:firm-b a rm:FocalFirm .
demo:holding a demo:HoldingFirm .
demo:HoldingFirm rdfs:subClassOf rm:FocalFirm .
demo:brand-x a rm:Brand ; rdfs:label "Brand X" .
<https://example.org/x/7> rdfs:label "Seven" .
<https://example.org/x/a.b> rdfs:label "A dot B" .
<https://example.org/x/caff%C3%A8> rdfs:label "Caffè" .
<https://example.org/x/> rdfs:label "The x namespace" .
<https://example.org/y#-z> rdfs:label "Minus z" .
<urn:relmark:test:u> rdfs:label "A URN" .
"""
#: A question that ignores its parameter: a wrong-class value would still find rows.
EVERY_FIRM = f"""\
# title: Every focal firm
# description: Whatever the firm parameter says.
# param: firm (iri rm:FocalFirm) Any firm.
SELECT ?other ?firm WHERE {{ ?other a <{RM}FocalFirm> }} ORDER BY ?other
"""
#: A question the engine cannot evaluate (SERVICE to a port pyoxigraph refuses to call).
FAILING = """\
# title: Fails
# description: Always fails in the engine.
# param: firm (iri rm:FocalFirm) Any firm.
SELECT ?other ?firm WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?other ?p ?firm } }
"""


class RecordingStore:
    """The real embedded store, recording the text of each query sent to it; ``remote``:
    answered as a remote store's queries are (the class check beside the question)."""

    def __init__(self, store, remote: bool = False) -> None:
        self.store = store
        self.remote = remote
        self.sent: list[str] = []

    def query(self, sparql: str, **options):
        self.sent.append(sparql)
        return self.store.query(sparql, **options)


@pytest.fixture(scope="module")
def firms_store(tmp_path_factory: pytest.TempPathFactory):
    import pyoxigraph as ox

    from relmark.stores.embedded import EmbeddedStore

    home = tmp_path_factory.mktemp("class-checks")
    store = EmbeddedStore(home / "store")
    store.bulk_replace_graphs(
        {"urn:relmark:data:firms": [(ox.RdfFormat.TURTLE, FIRMS_TTL.encode(), "firms.ttl")]}
    )
    for name, text in (("every-firm", EVERY_FIRM), ("failing", FAILING)):
        (home / f"{name}.rq").write_text(text, encoding="utf-8")
    yield home, store
    store.close()


def _question(home: Path, name: str):
    return next(q for q in load_catalogue(home) if q.name == name)


@pytest.mark.parametrize("remote", [False, True], ids=["embedded", "remote"])
@pytest.mark.parametrize("lang", ["en", "it", None])
def test_answer_checks_classes_asks_the_question_then_the_labels(
    firms_store, lang: str | None, remote: bool
):
    """One query for the class check (first, or beside the question on a remote store),
    the question, then one for the labels (none without lang)."""
    from relmark.queries import answer

    home, store = firms_store
    recording = RecordingStore(store, remote)
    result, names = answer(
        recording, _question(home, "every-firm"), {"firm": "demo:holding"}, lang=lang
    )
    # demo:holding passes the check as an instance of a subclass; the question itself asks
    # for asserted rm:FocalFirm only
    others = [row["other"].value for row in result.rows]
    assert others == [DEMO + "firm-a", DEMO + "firm-b"]
    expected = {
        "en": {DEMO + "firm-a": "Firm A", DEMO + "firm-b": "firm-b"},
        "it": {DEMO + "firm-a": "Impresa A", DEMO + "firm-b": "firm-b"},
        None: {},
    }
    assert names == expected[lang]
    checks = [text for text in recording.sent if "VALUES (?value ?class)" in text]
    assert len(checks) == 1 and len(recording.sent) == (3 if lang else 2)
    if not remote:
        assert recording.sent[0] == checks[0]


@pytest.mark.parametrize("lang", ["en", None])
@pytest.mark.parametrize("value", ["demo:brand-x", "demo:nowhere"])
def test_answer_refuses_a_wrong_class_even_when_the_question_found_rows(
    firms_store, lang: str | None, value: str
):
    from relmark.queries import ParameterError, answer, run_named

    home, store = firms_store
    question = _question(home, "every-firm")
    with pytest.raises(ParameterError) as raised:
        answer(store, question, {"firm": value}, lang=lang)
    assert (raised.value.name, raised.value.value) == ("firm", value)
    assert raised.value.expected == "the IRI of an rm:FocalFirm (no such resource here)"
    with pytest.raises(ParameterError):
        run_named(store, question, {"firm": value})


@pytest.mark.parametrize("remote", [False, True], ids=["embedded", "remote"])
def test_a_failing_question_still_reports_a_wrong_class_first(firms_store, remote: bool):
    """Also when the check runs beside the question (a remote store): a wrong-class value
    is the error, and only a right one lets the engine's own error through."""
    from relmark.queries import ParameterError, answer

    home, embedded = firms_store
    store = RecordingStore(embedded, remote)
    question = _question(home, "failing")
    with pytest.raises(ParameterError) as raised:
        answer(store, question, {"firm": "demo:brand-x"}, lang="en")
    assert raised.value.name == "firm"
    with pytest.raises(Exception) as failed:
        answer(store, question, {"firm": "demo:firm-a"}, lang="en")
    assert not isinstance(failed.value, ParameterError)


def test_labels_of_iris_written_as_prefixed_names_or_whole(firms_store):
    """The label query writes IRIs as prefixed names where their last segment allows it
    (``n0:7``, ``n0:a.b``) and whole otherwise: each must find its own label."""
    from relmark.queries import labels

    _, store = firms_store
    expected = {
        "https://example.org/x/7": "Seven",
        "https://example.org/x/a.b": "A dot B",
        "https://example.org/x/caff%C3%A8": "Caffè",
        "https://example.org/x/": "The x namespace",
        "https://example.org/y#-z": "Minus z",
        "urn:relmark:test:u": "A URN",
        DEMO + "brand-x": "Brand X",
        DEMO + "firm-a": "Firm A",
        "https://example.org/x/no-label": "no-label",  # the local name
    }
    assert labels(store, expected, "en") == expected


#: A question that takes seconds (pairs of statements of the ontology): to time out.
SLOW = """\
# title: Slow
# description: Counts pairs of statements, seconds on the ontology alone.
# param: firm (iri rm:FocalFirm) Any firm.
SELECT ?n ?firm WHERE {
  { SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f FILTER(STR(?c) != STR(?f)) } }
}
"""


@pytest.mark.parametrize("backend", ["embedded", "oxigraph"])
@pytest.mark.parametrize(
    ("firm", "output", "status"),
    [("demo:brand-x", "json", 400), ("demo:brand-x", "csv", 400), ("demo:firm-a", "json", 503)],
)
def test_a_question_that_times_out_still_reports_a_wrong_class(
    tmp_path: Path, firm: str, output: str, status: int, backend: str
):
    """A wrong-class value is a 400 and a right one the 503: the check runs first on the
    embedded store; on a remote store it runs beside the question, and when the question
    runs out of time, again alone. (An Oxigraph server of the test's own: stopping it
    ends the slow query there.)"""
    import pyoxigraph as ox
    from support.backends import oxigraph_server

    from relmark.settings import Settings
    from relmark.stores import open_store
    from relmark.web import create_app
    from relmark.web.extensions import close_app

    with contextlib.ExitStack() as stack:
        location = str(tmp_path / "store")
        if backend == "oxigraph":
            location = stack.enter_context(oxigraph_server(tmp_path)).location
        settings = Settings(store=location, query_timeout=0.5)
        with open_store(location, settings) as store:
            store.bulk_replace_graphs(
                {"urn:relmark:data:firms": [(ox.RdfFormat.TURTLE, FIRMS_TTL.encode(), "firms.ttl")]}
            )
        (tmp_path / "queries").mkdir()
        (tmp_path / "queries" / "slow.rq").write_text(SLOW, encoding="utf-8")
        app = create_app(settings)
        app.config["RELMARK_QUERIES_DIR"] = tmp_path / "queries"
        try:
            response = app.test_client().get(
                "/api/queries/slow", query_string={"firm": firm, "format": output}
            )
            assert response.status_code == status, response.get_json()
            if status == 400:
                assert response.get_json()["parameter"] == "firm"
        finally:
            close_app(app)
