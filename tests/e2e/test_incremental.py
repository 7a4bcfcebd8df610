"""Incremental maintenance gives, after every kind of write, what a full recompute gives.

Each test writes through the store (as loads, the Graph Store Protocol and the server's
writer do), lets ``refresh_inferences`` update incrementally, then runs a full
recompute: it must find nothing to write (same inferred and provenance graphs). Every
test runs on the three back ends: embedded, an Oxigraph server and Virtuoso (the remote
store records the changes of the writes made through it, as the embedded one does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from support.backends import (
    Engine,
    oxigraph_engine,  # noqa: F401  (a fixture)
    relmark_cli,
    virtuoso_engine,  # noqa: F401  (a fixture)
)

from relmark.reasoning.explain import explain, leaves
from relmark.reasoning.maintain import ensure_inferences, refresh_inferences
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import Store, data_graph
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.remote.store import RemoteStore
from relmark.vocab import DEMO, INFERRED_GRAPH, ONTOLOGY_DIR, RM, demo_paths

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
BANK = data_graph("demo-bank")
ELISA_CR = DEMO + "cr-elisa-mariani"  # a Supporter: three purchases, no referral
SCRATCH = data_graph("scratch")

RULE_FILES = sorted((ONTOLOGY_DIR / "rules").glob("*.rq"))


def _n(local: str) -> ox.NamedNode:
    return ox.NamedNode(DEMO + local)


def _rm(local: str) -> ox.NamedNode:
    return ox.NamedNode(RM + local)


def referral(graph: str) -> list[ox.Quad]:
    node, g = _n("ref-elisa-new"), ox.NamedNode(graph)
    return [
        ox.Quad(node, RDF_TYPE, _rm("Referral"), g),
        ox.Quad(node, _rm("referrer"), _n("elisa-mariani"), g),
        ox.Quad(node, _rm("referredTo"), _n("banca-lariana"), g),
        ox.Quad(node, _rm("referredParty"), _n("franco-bassi"), g),
    ]


BACKENDS = ["embedded", "oxigraph", "virtuoso"]


def _open(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, *, empty: bool = True
) -> Store:
    """A store on ``backend``; a remote engine (shared by the session) emptied first."""
    if backend == "embedded":
        return EmbeddedStore(tmp_path / "store")
    engine: Engine = request.getfixturevalue(f"{backend}_engine")
    store = open_store(engine.location, Settings.from_env(engine.env))
    assert isinstance(store, RemoteStore)
    if empty:
        store.restore(b"", ox.RdfFormat.N_QUADS)  # every graph relmark sees, dropped
    return store


def _with_demo(store: Store) -> Store:
    ensure_inferences(store)
    store.bulk_replace_graphs(
        {
            data_graph("demo-" + p.stem): [(ox.RdfFormat.TURTLE, p.read_bytes(), p.name)]
            for p in demo_paths()
        }
    )
    assert refresh_inferences(store) is not None  # too many changes: a full run
    return store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with _with_demo(_open(request.param, tmp_path, request)) as store:
        yield store


def stage(store: Store, iri: str) -> set[str]:
    ladder = {"Prospect", "Purchaser", "Client", "Supporter", "Advocate", "Partner"}
    found = store.query(
        "SELECT ?c ?s WHERE { ?s a ?c }",
        default_graph=[INFERRED_GRAPH],
        substitutions={"s": ox.NamedNode(iri)},
    )
    return {s["c"].value[len(RM) :] for s in found} & ladder


def assert_same_as_full_run(store: Store) -> None:
    assert store.take_changes() is not None and not store.take_changes()
    full = refresh_inferences(store, full=True)
    assert full is not None and not full.incremental
    assert not full.written, f"a full run changed {full.added} / {full.removed} inferences"


def test_a_new_referral_makes_an_advocate_and_its_removal_undoes_it(store: Store):
    assert stage(store, ELISA_CR) == {"Supporter"}
    store.add_quads(referral(SCRATCH))
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Advocate"}
    tree = explain(store, ELISA_CR, RM + "Advocate")
    assert {leaf["triple"]["subject"]["value"] for leaf in leaves(tree)} >= {DEMO + "ref-elisa-new"}
    assert_same_as_full_run(store)

    store.drop_graph(SCRATCH)
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Supporter"}
    assert_same_as_full_run(store)


def test_replacing_a_graph_and_changing_a_literal(store: Store):
    """Satisfaction below the threshold turns the Supporter into a dissatisfied Client."""
    triples = [q.triple for q in store.triples(BANK)]
    satisfaction = _rm("satisfactionLevel")
    low = ox.Literal("0.2", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#decimal"))
    changed = [
        ox.Triple(t.subject, t.predicate, low)
        if (t.subject.value, t.predicate) == (ELISA_CR, satisfaction)
        else t
        for t in triples
    ]
    store.replace_graph(BANK, changed)
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Client"}
    assert_same_as_full_run(store)


def test_a_first_purchase_moves_a_prospect_and_chains_to_other_rules(store: Store):
    """Removing every purchase of a customer changes markets and roles, rounds later."""
    purchases = [
        q
        for q in store.triples(BANK)
        if q.predicate == _rm("buyer") and q.object == _n("elisa-mariani")
    ]
    assert len(purchases) == 4
    kept = [
        q.triple for q in store.triples(BANK) if q.subject not in {p.subject for p in purchases}
    ]
    store.replace_graph(BANK, kept)
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental and summary.rounds >= 2
    assert "Supporter" not in stage(store, ELISA_CR)
    assert_same_as_full_run(store)


def test_an_unknown_change_falls_back_to_a_full_run(store: Store):
    store.update(
        f"INSERT DATA {{ GRAPH <{SCRATCH}> {{ "
        + " ".join(f"{q.subject} {q.predicate} {q.object} ." for q in referral(SCRATCH))
        + " } }"
    )
    assert store.take_changes() is None
    store.update(f"INSERT DATA {{ GRAPH <{SCRATCH}> {{ <urn:x> <urn:y> <urn:z> }} }}")
    summary = refresh_inferences(store)
    assert summary is not None and not summary.incremental
    assert stage(store, ELISA_CR) == {"Advocate"}


def test_a_validated_sparql_update_is_followed_incrementally(store: Store):
    """The SPARQL endpoint's path: the update's changes are known from the shapes check."""
    body = " ".join(f"{q.subject} {q.predicate} {q.object} ." for q in referral(SCRATCH))
    store.update_validated(
        f"INSERT DATA {{ GRAPH <{SCRATCH}> {{ {body} }} }}", lambda added, removed: None
    )
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Advocate"}
    assert_same_as_full_run(store)

    store.update_validated(f"DROP GRAPH <{SCRATCH}>", lambda added, removed: None)
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Supporter"}
    assert_same_as_full_run(store)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_write_whose_refresh_never_ran_is_repaired_at_start_up(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """A process that dies between a data write and its refresh leaves a mark (a file next
    to an embedded store, a statement in a remote store's meta graph)."""
    with _with_demo(_open(backend, tmp_path, request)) as store:
        assert not store.inferences_stale()
        store.add_quads(referral(SCRATCH))  # ... and the process dies before refreshing
        assert store.inferences_stale()
    with _open(backend, tmp_path, request, empty=False) as store:
        assert store.inferences_stale() and stage(store, ELISA_CR) == {"Supporter"}
        summary = ensure_inferences(store)
        assert summary is not None and not summary.incremental
        assert stage(store, ELISA_CR) == {"Advocate"} and not store.inferences_stale()
        assert ensure_inferences(store) is None


def test_one_write_naming_several_resources_reaches_all_that_its_patterns_match(
    store: Store,
):
    """A second relationship and a joint initiative for Elisa and the bank, in one write.

    The new relationship and initiative match the Partner rule together, but Elisa's
    existing relationship matches it as well: what the written resources say among
    themselves must not stand for everything the rule's patterns reach.
    """
    second = DEMO + "cr-elisa-mariani-second"
    node, initiative, g = ox.NamedNode(second), _n("init-elisa-new"), ox.NamedNode(SCRATCH)
    store.add_quads(
        [
            ox.Quad(node, RDF_TYPE, _rm("CustomerRelationship"), g),
            ox.Quad(node, _rm("focalParty"), _n("banca-lariana"), g),
            ox.Quad(node, _rm("counterparty"), _n("elisa-mariani"), g),
            ox.Quad(initiative, RDF_TYPE, _rm("JointInitiative"), g),
            ox.Quad(initiative, _rm("jointWith"), _n("banca-lariana"), g),
            ox.Quad(initiative, _rm("participant"), _n("elisa-mariani"), g),
        ]
    )
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Partner"}
    assert stage(store, second) == {"Partner"}
    assert_same_as_full_run(store)

    store.drop_graph(SCRATCH)
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert stage(store, ELISA_CR) == {"Supporter"}
    assert stage(store, second) == set()
    assert_same_as_full_run(store)


def test_a_second_team_on_a_key_account_makes_it_global(store: Store):
    """The count of teams is a sub-select: re-evaluated for the one account that changed."""
    nordwind = DEMO + "nordwind-energy"  # a key account whose opportunities are all EMEA's
    opportunity, g = _n("opp-nordwind-apac"), ox.NamedNode(SCRATCH)

    def is_global() -> bool:
        return bool(
            store.query(
                f"ASK {{ <{nordwind}> a <{RM}GlobalAccount> }}", default_graph=[INFERRED_GRAPH]
            )
        )

    assert store.query(f"ASK {{ <{nordwind}> a <{RM}KeyAccount> }}", default_graph=[INFERRED_GRAPH])
    assert not is_global()
    store.add_quads(
        [
            ox.Quad(opportunity, RDF_TYPE, _rm("SalesOpportunity"), g),
            ox.Quad(opportunity, _rm("sellingFirm"), _n("ferromec"), g),
            ox.Quad(opportunity, _rm("sharedAccount"), ox.NamedNode(nordwind), g),
            ox.Quad(opportunity, _rm("ownedBy"), _n("ferromec-team-apac"), g),
        ]
    )
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert is_global()
    assert_same_as_full_run(store)

    store.drop_graph(SCRATCH)
    summary = refresh_inferences(store)
    assert summary is not None and summary.incremental
    assert not is_global()
    assert_same_as_full_run(store)


@pytest.mark.parametrize("backend", ["oxigraph", "virtuoso"])
def test_what_other_clients_write_to_the_engine_is_taken_in_by_infer_full(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """relmark cannot see writes sent straight to a remote engine: ``relmark infer`` finds
    nothing to do, ``relmark infer --full`` recomputes and takes them in (writing only the
    difference to the stored inferences and provenance)."""
    engine: Engine = request.getfixturevalue(f"{backend}_engine")
    with _with_demo(_open(backend, tmp_path, request)) as store:
        other = _open(backend, tmp_path, request, empty=False)
        assert isinstance(other, RemoteStore)
        body = " ".join(f"{q.subject} {q.predicate} {q.object} ." for q in referral(SCRATCH))
        other._send_update(f"INSERT DATA {{ GRAPH <{SCRATCH}> {{ {body} }} }}")  # not recorded
        other.close()
        assert stage(store, ELISA_CR) == {"Supporter"}

        quick = relmark_cli(engine.location, engine, "infer")
        assert quick.returncode == 0, quick.stderr
        assert "up to date" in quick.stderr and stage(store, ELISA_CR) == {"Supporter"}

        full = relmark_cli(engine.location, engine, "infer", "--full")
        assert full.returncode == 0, full.stderr
        # as many rules as the rule files (47 since issue 18 removed
        # ladder-partner-trust-commitment; counted, not written down, so new rules pass)
        assert f"{len(RULE_FILES)} rules" in full.stderr, full.stderr
        assert "(+4 −1 since the last run)" in full.stderr, full.stderr
        assert stage(store, ELISA_CR) == {"Advocate"}
        assert_same_as_full_run(store)  # the difference written by that run was the right one
