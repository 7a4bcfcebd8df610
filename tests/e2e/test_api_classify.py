"""``/api/classify`` and ``/api/explain`` on a live server (one process and two workers),
inferences kept current by writes, and ``relmark classify`` / ``relmark explain``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from support.backends import ALL_SERVERS, EMBEDDED_SERVERS
from support.cli import run_relmark
from support.server import RelmarkServer
from unit.test_rules import RULE_CASES

from relmark.reasoning.explain import leaves
from relmark.reasoning.rules.provenance import PROV, RDF
from relmark.vocab import CONFIG_GRAPH, DEMO, PROVENANCE_GRAPH, RM

#: Every test that takes ``relmark_server`` runs on each back end (tests/conftest.py).
SERVER_BACKENDS = ALL_SERVERS

DEMO_BANK = "urn:relmark:data:demo-bank"
SUPPORTER = DEMO + "cr-elisa-mariani"
ADVOCATE = DEMO + "cr-laura-colombo"
MARKET_MEMBER = DEMO + "giovanni-sala"
RDF_TYPE = RDF + "type"


def classify(server: RelmarkServer, iri: str, **params: str) -> requests.Response:
    return requests.get(server.url + "/api/classify", params={"iri": iri, **params}, timeout=30)


def explain(server: RelmarkServer, iri: str, class_iri: str, **params: str) -> requests.Response:
    params = {"iri": iri, "class": class_iri, **params}
    return requests.get(server.url + "/api/explain", params=params, timeout=30)


def classes(response: requests.Response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {entry["class"]: entry for entry in response.json()["classes"]}


# --- classify -------------------------------------------------------------------------------


def test_classify_a_supporter_and_an_advocate(relmark_server: RelmarkServer):
    supporter = classes(classify(relmark_server, SUPPORTER))
    assert supporter[RM + "CustomerRelationship"]["status"] == "asserted"
    assert supporter[RM + "CustomerRelationship"]["graphs"] == [DEMO_BANK]
    entry = supporter[RM + "Supporter"]
    assert entry["status"] == "inferred"
    assert entry["rule"] == "ladder-supporter" and entry["why"]
    assert entry["label"] == "supporter"
    assert RM + "Advocate" not in supporter
    advocate = classes(classify(relmark_server, ADVOCATE))
    assert advocate[RM + "Advocate"]["rule"] == "ladder-advocate"
    assert RM + "Supporter" not in advocate


def test_classify_a_market_member(relmark_server: RelmarkServer):
    response = classify(relmark_server, MARKET_MEMBER)
    assert response.json()["iri"] == MARKET_MEMBER
    entries = classes(response)
    assert entries[RM + "Person"]["status"] == "asserted"
    assert entries[RM + "CustomerMarket"]["status"] == "inferred"
    assert entries[RM + "CustomerMarket"]["rule"] == "market-customer"
    assert entries[RM + "StrongReferralMarket"]["status"] == "inferred"


def test_classify_in_italian(relmark_server: RelmarkServer):
    entries = classes(classify(relmark_server, MARKET_MEMBER, lang="it"))
    assert entries[RM + "CustomerMarket"]["label"] == "mercato dei clienti"
    headers = {"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"}
    response = requests.get(
        relmark_server.url + "/api/classify",
        params={"iri": MARKET_MEMBER},
        headers=headers,
        timeout=30,
    )
    assert response.json()["lang"] == "it"
    assert classes(response)[RM + "CustomerMarket"]["label"] == "mercato dei clienti"


# --- explain --------------------------------------------------------------------------------


def test_explain_goes_down_to_asserted_facts_with_their_graphs(relmark_server: RelmarkServer):
    response = explain(relmark_server, SUPPORTER, RM + "Supporter")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["iri"], body["class"]) == (SUPPORTER, RM + "Supporter")
    tree = body["explanation"]
    assert tree["status"] == "inferred" and tree["rule"] == "ladder-supporter"
    found = leaves(tree)
    assert found and all(leaf["status"] == "asserted" and leaf["graphs"] for leaf in found)
    graphs = {g for leaf in found for g in leaf["graphs"]}
    assert DEMO_BANK in graphs and CONFIG_GRAPH in graphs


def test_explain_follows_inferred_premises(relmark_server: RelmarkServer):
    response = explain(relmark_server, DEMO + "voltaris-group", "rm:GlobalAccount")
    tree = response.json()["explanation"]
    assert tree["rule"] == "account-global"
    assert any(p["status"] == "inferred" for p in tree["premises"])


def test_explain_in_italian(relmark_server: RelmarkServer):
    tree = explain(relmark_server, SUPPORTER, RM + "Supporter", lang="it").json()["explanation"]
    assert tree["label"] == "Scala della fedeltà: sostenitore"
    assert "soglia di soddisfazione" in {t["label"] for t in tree["thresholds"]}


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, params, status",
    [
        ("/api/classify", {}, 400),
        ("/api/classify", {"iri": DEMO + "nobody"}, 404),
        ("/api/classify", {"iri": SUPPORTER, "lang": "fr"}, 400),
        ("/api/explain", {"iri": SUPPORTER}, 400),
        ("/api/explain", {"class": RM + "Supporter"}, 400),
        ("/api/explain", {"iri": DEMO + "nobody", "class": RM + "Supporter"}, 404),
        ("/api/explain", {"iri": SUPPORTER, "class": "http://example.org/Thing"}, 400),
        ("/api/explain", {"iri": SUPPORTER, "class": RM + "NoSuchClass"}, 400),
        ("/api/explain", {"iri": SUPPORTER, "class": RM + "Advocate"}, 404),
    ],
)
def test_errors(relmark_server: RelmarkServer, path: str, params: dict, status: int):
    response = requests.get(relmark_server.url + path, params=params, timeout=30)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] and body["detail"]


def test_not_in_that_class_says_so(relmark_server: RelmarkServer):
    response = explain(relmark_server, SUPPORTER, RM + "Advocate")
    assert response.json()["error"] == "the resource is not in that class"


# --- writes keep the inferences current -----------------------------------------------------


def update(server: RelmarkServer, sparql: str) -> None:
    response = requests.post(
        server.sparql,
        data=sparql.encode(),
        headers={"Content-Type": "application/sparql-update", **server.auth},
        timeout=60,
    )
    assert response.status_code == 204, response.text


def test_a_referral_makes_a_supporter_an_advocate_and_its_removal_undoes_it(
    relmark_server: RelmarkServer,
):
    graph = f"urn:relmark:data:test-api-referral-{relmark_server.workers}"
    referral = f"""PREFIX rm: <{RM}> PREFIX demo: <{DEMO}>
        PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
        INSERT DATA {{ GRAPH <{graph}> {{
            demo:ref-mariani-api a rm:Referral ;
                rm:interactionDate "2026-11-10"^^xsd:date ;
                rm:referrer demo:elisa-mariani ;
                rm:referredParty demo:pietro-neri ;
                rm:referredTo demo:banca-lariana .
        }} }}"""
    update(relmark_server, referral)
    try:
        after = classes(classify(relmark_server, SUPPORTER))
        assert after[RM + "Advocate"]["rule"] == "ladder-advocate"
        assert RM + "Supporter" not in after
        tree = explain(relmark_server, SUPPORTER, RM + "Advocate").json()["explanation"]
        assert graph in {g for leaf in leaves(tree) for g in leaf["graphs"]}
    finally:
        update(relmark_server, f"DROP GRAPH <{graph}>")
    back = classes(classify(relmark_server, SUPPORTER))
    assert back[RM + "Supporter"]["status"] == "inferred"
    assert RM + "Advocate" not in back


# --- the command line -----------------------------------------------------------------------


def test_cli_classify(loaded_store: Path):
    result = run_relmark("--store", str(loaded_store), "classify", SUPPORTER)
    assert result.returncode == 0, result.stderr
    assert "rm:Supporter (supporter)   [inferred]" in result.stdout
    assert "by ladder-supporter" in result.stdout
    assert "rm:CustomerRelationship" in result.stdout and "asserted in" in result.stdout


def test_cli_classify_in_italian(loaded_store: Path):
    result = run_relmark("--store", str(loaded_store), "classify", MARKET_MEMBER, "--lang", "it")
    assert result.returncode == 0, result.stderr
    assert "mercato dei clienti" in result.stdout


def test_cli_explain(loaded_store: Path):
    result = run_relmark("--store", str(loaded_store), "explain", SUPPORTER, "rm:Supporter")
    assert result.returncode == 0, result.stderr
    assert "inferred by ladder-supporter" in result.stdout
    assert "[asserted in urn:relmark:data:bank]" in result.stdout
    assert "[asserted in urn:relmark:config]" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("classify", DEMO + "nobody"), "no statement about"),
        (("explain", DEMO + "nobody", "rm:Supporter"), "no statement about"),
        (("explain", SUPPORTER, "http://example.org/Thing"), "not a class of"),
        (("explain", SUPPORTER, "rm:Advocate"), "is not an instance of"),
    ],
)
def test_cli_errors_exit_2(loaded_store: Path, args: tuple[str, ...], message: str):
    result = run_relmark("--store", str(loaded_store), *args)
    assert result.returncode == 2
    assert message in result.stderr


# --- every rule through HTTP: its positive case and its near-miss ----------------------------


def _expand(term: str) -> str:
    prefix, _, local = term.partition(":")
    return {"demo": DEMO, "rm": RM}[prefix] + local


@pytest.mark.parametrize("name", sorted(RULE_CASES))
def test_every_rule_through_the_api(relmark_server: RelmarkServer, name: str):
    """Each rule's positive case and near-miss over HTTP: whether the rule's own derivation
    of the triple is on record (/sparql over the provenance graph; a positive case the data
    asserts needs none), and for inferred classes that /api/classify names the rule."""
    for (s, p, o), expected in zip(RULE_CASES[name], (True, False), strict=True):
        subject, predicate = _expand(s), RDF_TYPE if p == "a" else _expand(p)
        ask = (
            f"ASK {{ GRAPH <{PROVENANCE_GRAPH}> {{ ?d <{PROV}used> <urn:relmark:rule:{name}> ;"
            f" <{PROV}generated> ?st . ?st <{RDF}subject> <{subject}> ;"
            f" <{RDF}predicate> <{predicate}> ; <{RDF}object> <{_expand(o)}> }} }}"
        )
        response = requests.get(
            relmark_server.sparql,
            params={"query": ask},
            headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        recorded = response.json()["boolean"]
        if expected and not recorded:  # the data asserts it already (the role rules' cases)
            entry = classes(classify(relmark_server, subject)).get(_expand(o), {})
            assert p == "a" and entry.get("status") == "asserted", (name, s, p, o)
            continue
        assert recorded is expected, (name, s, p, o)
        if p == "a" and expected:
            entry = classes(classify(relmark_server, subject))[_expand(o)]
            assert name in {r["rule"] for r in entry["rules"]}


# --- issue 18: the ladder says what the literature says, through HTTP -----------------------
#
# Small records written to a graph of their own, classified through /api/classify, dropped
# again. Each corrected rule has a near-miss that the rule classified before issue 18 and
# must not now, and a positive record it must classify (with the rule named).

LADDER_GRAPH = "urn:relmark:data:test-api-ladder-{workers}"
BANK_IRI = "demo:banca-lariana"


def _customer(name: str, purchases: list[str], extra: str = "", satisfaction: str = "") -> str:
    """A person, their customer relationship with the bank, and a purchase per date."""
    lines = [
        f'demo:lt-{name} a rm:Person ; rdfs:label "Test customer {name}" .',
        f"demo:lt-cr-{name} a rm:CustomerRelationship ; rm:focalParty {BANK_IRI} ;"
        f" rm:counterparty demo:lt-{name} {satisfaction} {extra} .",
    ]
    for number, day in enumerate(purchases, start=1):
        lines.append(
            f'demo:lt-pur-{name}-{number} a rm:Purchase ; rm:interactionDate "{day}"^^xsd:date ;'
            f" rm:buyer demo:lt-{name} ; rm:seller {BANK_IRI} ; rm:amount 100.0 ."
        )
    return "\n".join(lines)


def _referral(name: str) -> str:
    return (
        f'demo:lt-ref-{name} a rm:Referral ; rm:interactionDate "2026-03-01"^^xsd:date ;'
        f" rm:referrer demo:lt-{name} ; rm:referredParty demo:pietro-neri ;"
        f" rm:referredTo {BANK_IRI} ."
    )


def _initiative(name: str) -> str:
    return (
        f"demo:lt-ji-{name} a rm:JointInitiative ; rm:jointWith {BANK_IRI} ;"
        f" rm:participant demo:lt-{name} ."
    )


SATISFIED = "; rm:satisfactionLevel 0.9"
HIGH_SCORES = "; rm:trustLevel 0.9 ; rm:commitmentLevel 0.9"
#: One write per rule family: small writes, as a user makes them (a remote engine under the
#: backend matrix's 2 s query budget re-derives what each write reaches).
LADDER_RECORDS = [
    "\n".join(
        [
            # ladder-advocate: one referral and no purchase (an Advocate before issue 18) ...
            _customer("referrer-no-purchase", []),
            _referral("referrer-no-purchase"),
            # ... one referral and one purchase: a first-time purchaser, not an advocate ...
            _customer("referrer-one-purchase", ["2026-02-01"]),
            _referral("referrer-one-purchase"),
            # ... one referral and two purchases: an advocate.
            _customer("referrer-two-purchases", ["2025-01-10", "2026-02-01"]),
            _referral("referrer-two-purchases"),
        ]
    ),
    "\n".join(
        [
            # ladder-partner-*: high trust and commitment and a joint initiative, no purchase
            # (a Partner twice over before issue 18) ...
            _customer("initiative-no-purchase", [], HIGH_SCORES),
            _initiative("initiative-no-purchase"),
            # ... high scores and repeat purchases but no joint initiative: a supporter ...
            _customer("scores-only", ["2024-05-02", "2025-09-09"], HIGH_SCORES, SATISFIED),
            # ... repeat purchases and a joint initiative: a partner.
            _customer("initiative-two-purchases", ["2024-05-02", "2025-09-09"]),
            _initiative("initiative-two-purchases"),
        ]
    ),
    "\n".join(
        [
            # ladder-loyal-customer: a dissatisfied client buying for three years (spurious
            # loyalty, loyal before issue 18) ...
            _customer(
                "spurious", ["2023-01-10", "2026-01-10"], satisfaction="; rm:satisfactionLevel 0.3"
            ),
            # ... a satisfied supporter whose purchases are one day short of twelve months ...
            _customer("short-period", ["2025-01-15", "2026-01-14"], satisfaction=SATISFIED),
            # ... and one whose purchases are exactly twelve months apart: loyal.
            _customer("long-period", ["2025-01-15", "2026-01-15"], satisfaction=SATISFIED),
        ]
    ),
]

#: (relationship, class, the rule that must conclude it, or None: it must not hold)
LADDER_CASES = [
    ("lt-cr-referrer-no-purchase", "Advocate", None),
    ("lt-cr-referrer-one-purchase", "Advocate", None),
    ("lt-cr-referrer-one-purchase", "Purchaser", "ladder-purchaser"),
    ("lt-cr-referrer-two-purchases", "Advocate", "ladder-advocate"),
    ("lt-cr-initiative-no-purchase", "Partner", None),
    ("lt-cr-scores-only", "Partner", None),
    ("lt-cr-scores-only", "Supporter", "ladder-supporter"),
    ("lt-cr-initiative-two-purchases", "Partner", "ladder-partner-joint-initiative"),
    ("lt-cr-spurious", "Client", "ladder-client-dissatisfied"),
    ("lt-cr-spurious", "LoyalCustomer", None),
    ("lt-cr-short-period", "Supporter", "ladder-supporter"),
    ("lt-cr-short-period", "LoyalCustomer", None),
    ("lt-cr-long-period", "LoyalCustomer", "ladder-loyal-customer"),
]


# A dozen customers with their purchases: a remote engine re-deriving the ladder for them
# needs more than the shared servers' 2 s query budget, and a timed-out write would leave
# their inferences stale for the next tests. The ladder rules on remote engines are checked
# by e2e/test_incremental.py and e2e/test_remote_backends.py.
@pytest.mark.server_backends(*EMBEDDED_SERVERS)
def test_the_corrected_ladder_rules_through_the_api(relmark_server: RelmarkServer):
    graph = LADDER_GRAPH.format(workers=relmark_server.workers)
    try:  # dropped whatever happens: the other suites share this server's data
        for records in LADDER_RECORDS:
            insert = f"""PREFIX rm: <{RM}> PREFIX demo: <{DEMO}>
                PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
                PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
                INSERT DATA {{ GRAPH <{graph}> {{
                {records}
                }} }}"""
            update(relmark_server, insert)
        for relationship, name, rule in LADDER_CASES:
            entries = classes(classify(relmark_server, DEMO + relationship))
            assert entries[RM + "CustomerRelationship"]["graphs"] == [graph]
            if rule is None:
                assert RM + name not in entries, (relationship, name, entries.get(RM + name))
            else:
                entry = entries.get(RM + name)
                assert entry is not None, (relationship, name, sorted(entries))
                assert entry["status"] == "inferred"
                assert rule in {r["rule"] for r in entry["rules"]}, (relationship, entry)
        # the referrer who never bought is on no rung at all, but in the referral market
        nowhere = classes(classify(relmark_server, DEMO + "lt-cr-referrer-no-purchase"))
        stages = {RM + s for s in ("Prospect", "Purchaser", "Client", "Supporter", "Partner")}
        assert not stages & set(nowhere)
        referrer = classes(classify(relmark_server, DEMO + "lt-referrer-no-purchase"))
        assert referrer[RM + "ReferralMarket"]["rule"] == "market-referral"
    finally:
        update(relmark_server, f"DROP GRAPH <{graph}>")
    gone = requests.get(
        relmark_server.url + "/api/classify",
        params={"iri": DEMO + "lt-cr-long-period"},
        timeout=30,
    )
    assert gone.status_code == 404
