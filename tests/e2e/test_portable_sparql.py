"""``relmark.sparql.rewrite.without_lateral``: the SPARQL 1.1 form of a LATERAL query gives the same
answers. Checked on the embedded store (pyoxigraph speaks both forms), so a difference can
only come from the rewrite: every named question, with its example parameters bound as a
remote store binds them (``bind_values``), original against rewritten."""

from __future__ import annotations

from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from support.backends import load_demo

from relmark.queries import RDFS_LABEL, bind_parameters, load_catalogue
from relmark.reasoning.maintain import ensure_inferences
from relmark.sparql.rewrite import Unportable, uses_lateral, without_lateral
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.remote.dialects import bind_values
from relmark.vocab import DEMO, ONTOLOGY_DIR

LATERAL_QUESTIONS = {
    "clients-without-referral",
    "committed-trusting-suppliers",
    "customised-segments-key-accounts",
    "global-accounts",
    "influencers-contacted-this-year",
    "ladder-stages",
    "loyal-without-courtesy-contact",
    "members-still-purchasers",
    "partner-candidates",  # issue 18
    "promise-breakers",
    "referral-market",
    "six-markets",
    "thirty-r-by-group",
}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    path = tmp_path_factory.mktemp("portable") / "store"
    load_demo(str(path), None)
    store = EmbeddedStore(path)
    ensure_inferences(store, ONTOLOGY_DIR)
    try:
        yield store
    finally:
        store.close()


def rows(result: ox.QuerySolutions) -> list[tuple[str, ...]]:
    names = [v.value for v in result.variables]
    return sorted(tuple(str(s[n]) for n in names) for s in result)


def test_the_catalogue_uses_lateral_where_expected() -> None:
    assert {q.name for q in load_catalogue() if uses_lateral(q.text)} == LATERAL_QUESTIONS


@pytest.mark.parametrize("name", sorted(LATERAL_QUESTIONS))
def test_rewritten_question_answers_as_the_original(demo_store: EmbeddedStore, name: str) -> None:
    (query,) = [q for q in load_catalogue() if q.name == name]
    examples = {
        p.name: DEMO + p.example[5:] if p.example.startswith("demo:") else p.example
        for p in query.parameters
        if p.example
    }
    required = {p.name: examples[p.name] for p in query.parameters if p.required}
    answered = 0
    for params in (required, examples):
        bound = bind_values(query.text, bind_parameters(query, params))
        portable = without_lateral(bound)
        assert not uses_lateral(portable)
        original = rows(demo_store.query(bound))
        assert rows(demo_store.query(portable)) == original
        answered += len(original)
    assert answered  # not an empty comparison


def test_the_labels_query_is_rewritten_too(demo_store: EmbeddedStore) -> None:
    """``queries.labels`` asks with VALUES + LATERAL; the rewrite is a plain group."""
    text = (
        f"SELECT ?s ?label WHERE {{ VALUES ?s {{ <{DEMO}banca-lariana> <{DEMO}ferromec> }} "
        f"LATERAL {{ ?s <{RDFS_LABEL}> ?label }} }}"
    )
    portable = without_lateral(text)
    assert rows(demo_store.query(portable)) == rows(demo_store.query(text))
    assert {r[1] for r in rows(demo_store.query(portable))} >= {'"Banca Lariana"'}


def test_text_that_only_looks_like_lateral_is_left_alone() -> None:
    text = (
        'PREFIX x: <urn:x:> SELECT ?lateral WHERE { ?lateral x:LATERAL "LATERAL { }" '
        "# LATERAL {\n <urn:LATERAL> ?p ?o }"
    )
    assert not uses_lateral(text)
    assert without_lateral(text) == text


def test_a_comment_before_lateral_does_not_swallow_the_join() -> None:
    text = "SELECT ?s ?o WHERE { ?s a <urn:C> # a comment\n LATERAL { ?s <urn:p> ?o } }"
    portable = without_lateral(text)
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.Literal("o")))
    store.add(
        ox.Quad(
            ox.NamedNode("urn:s"),
            ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
            ox.NamedNode("urn:C"),
        )
    )
    assert rows(store.query(portable)) == rows(store.query(text)) == [("<urn:s>", '"o"')]


@pytest.mark.parametrize(
    "text",
    [
        # a FILTER of the left part would lose sight of what follows the LATERAL
        "SELECT * WHERE { ?s ?p ?o FILTER(?o > 1) LATERAL { ?s <urn:q> ?x } ?x <urn:r> ?y }",
        # LIMIT per outer solution has no SPARQL 1.1 form
        "SELECT * WHERE { ?s a <urn:C> LATERAL { SELECT ?s ?x WHERE { ?s <urn:q> ?x } LIMIT 3 } }",
    ],
)
def test_what_cannot_be_rewritten_is_refused(text: str) -> None:
    with pytest.raises(Unportable, match="no LATERAL"):
        without_lateral(text)


def test_nested_and_repeated_laterals() -> None:
    store = ox.Store()
    for s, o in (("a", "b"), ("b", "c"), ("c", "d")):
        store.add(
            ox.Quad(ox.NamedNode(f"urn:{s}"), ox.NamedNode("urn:next"), ox.NamedNode(f"urn:{o}"))
        )
    text = (
        "SELECT ?a ?b ?c ?d WHERE { VALUES ?a { <urn:a> } LATERAL { ?a <urn:next> ?b "
        "LATERAL { ?b <urn:next> ?c } } LATERAL { ?c <urn:next> ?d } }"
    )
    portable = without_lateral(text)
    assert not uses_lateral(portable)
    assert rows(store.query(portable)) == rows(store.query(text))
    assert rows(store.query(portable)) == [("<urn:a>", "<urn:b>", "<urn:c>", "<urn:d>")]
