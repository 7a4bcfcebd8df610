"""Labels and class checks read from a remote store are kept until relmark writes, or
for the TTL.

On the real engines (an Oxigraph server, Virtuoso): a second ``RemoteStore`` plays
another client writing straight to the engine, which relmark cannot see; what it changed
shows once relmark writes anything, or at once when nothing is kept
(``RELMARK_LOOKUP_TTL=0``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from support.backends import (
    Engine,
    oxigraph_engine,  # noqa: F401  (a fixture)
    virtuoso_engine,  # noqa: F401  (a fixture)
)

from relmark.queries import ParameterError, bind_parameters, check_classes, labels, load_catalogue
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import data_graph
from relmark.stores.remote.lookup_cache import LookupCache
from relmark.stores.remote.store import RemoteStore
from relmark.vocab import DEMO, RM

LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
GRAPH = ox.NamedNode(data_graph("labels"))
SOMEONE = ox.NamedNode(DEMO + "label-cache-someone")
NAMELESS = ox.NamedNode(DEMO + "label-cache-nameless")
#: A question whose parameter must name an rm:Person.
ANYONE = """\
# title: Anyone
# description: Whoever the parameter names.
# param: person (iri rm:Person) A person.
SELECT ?person WHERE { BIND(1 AS ?one) }
"""


@pytest.fixture(params=["oxigraph", "virtuoso"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def _open(engine: Engine, lookup_ttl: float) -> RemoteStore:
    store = open_store(engine.location, Settings.from_env(engine.env, lookup_ttl=lookup_ttl))
    assert isinstance(store, RemoteStore)
    return store


@pytest.fixture
def stores(engine: Engine) -> Iterator[tuple[RemoteStore, RemoteStore]]:
    """relmark's store (labels kept an hour) and another client's, on an emptied engine
    holding a person labelled in English and a resource with no label."""
    ours, other = _open(engine, 3600), _open(engine, 0)
    ours.restore(b"", ox.RdfFormat.N_QUADS)
    ours.add_quads(
        [
            ox.Quad(SOMEONE, RDF_TYPE, ox.NamedNode(RM + "Person"), GRAPH),
            ox.Quad(SOMEONE, LABEL, ox.Literal("Someone", language="en"), GRAPH),
            ox.Quad(NAMELESS, RDF_TYPE, ox.NamedNode(RM + "Person"), GRAPH),
        ]
    )
    yield ours, other
    ours.close()
    other.close()


def _add_italian_labels(store: RemoteStore) -> None:
    store.add_quads(
        ox.Quad(iri, LABEL, ox.Literal(text, language="it"), GRAPH)
        for iri, text in ((SOMEONE, "Qualcuno"), (NAMELESS, "Senza nome"))
    )


def test_kept_labels_are_dropped_when_relmark_writes(
    stores: tuple[RemoteStore, RemoteStore],
) -> None:
    ours, other = stores
    iris = [SOMEONE.value, NAMELESS.value]
    assert labels(ours, iris, "it") == {
        SOMEONE.value: "Someone",  # no Italian label: the English one
        NAMELESS.value: "label-cache-nameless",  # none at all: the local name
    }
    _add_italian_labels(other)
    assert labels(other, iris, "it") == {SOMEONE.value: "Qualcuno", NAMELESS.value: "Senza nome"}
    # kept, also that the second IRI had none: the other client's write is not seen
    assert labels(ours, iris, "it") == {
        SOMEONE.value: "Someone",
        NAMELESS.value: "label-cache-nameless",
    }
    assert labels(ours, iris, "en")[SOMEONE.value] == "Someone"  # every language is kept
    ours.add_quads([ox.Quad(NAMELESS, ox.NamedNode(RM + "note"), ox.Literal("x"), GRAPH)])
    assert labels(ours, iris, "it") == {SOMEONE.value: "Qualcuno", NAMELESS.value: "Senza nome"}


def test_kept_class_checks_are_dropped_when_relmark_writes(
    stores: tuple[RemoteStore, RemoteStore], tmp_path
) -> None:
    ours, other = stores
    (tmp_path / "anyone.rq").write_text(ANYONE, encoding="utf-8")
    question = load_catalogue(tmp_path)[0]
    bindings = bind_parameters(question, {"person": "demo:label-cache-nameless"})
    check_classes(ours, question, bindings)  # a Person: passes, and the verdict is kept
    typed = f"{NAMELESS} {RDF_TYPE} <{RM}Person>"
    other.update(f"DELETE DATA {{ GRAPH {GRAPH} {{ {typed} }} }}")
    with pytest.raises(ParameterError):
        check_classes(other, question, bindings)  # (nothing kept there: no Person now)
    check_classes(ours, question, bindings)  # kept: the other client's write is not seen
    ours.add_quads([ox.Quad(SOMEONE, ox.NamedNode(RM + "note"), ox.Literal("x"), GRAPH)])
    with pytest.raises(ParameterError) as raised:
        check_classes(ours, question, bindings)
    assert raised.value.name == "person"


def test_with_a_ttl_of_zero_nothing_is_kept(
    engine: Engine, stores: tuple[RemoteStore, RemoteStore]
) -> None:
    _, other = stores
    uncached = _open(engine, 0)
    try:
        assert labels(uncached, [SOMEONE.value], "it") == {SOMEONE.value: "Someone"}
        _add_italian_labels(other)
        assert labels(uncached, [SOMEONE.value], "it") == {SOMEONE.value: "Qualcuno"}
    finally:
        uncached.close()


def test_a_look_up_that_a_write_overtook_is_not_kept() -> None:
    """A write that ends while labels are being read may have changed them: what that
    read found is not kept (``known`` hands out the write count it saw)."""
    writes = [0]
    cache = LookupCache(lambda: writes[0], ttl=3600)
    found, token = cache.known(["urn:x"])
    assert found == {}
    writes[0] += 1  # a write ends while the labels are read
    cache.remember({"urn:x": {"en": "old"}}, token)
    assert cache.known(["urn:x"])[0] == {}
    found, token = cache.known(["urn:x"])
    cache.remember({"urn:x": {"en": "new"}}, token)
    assert cache.known(["urn:x"])[0] == {"urn:x": {"en": "new"}}


def test_the_oldest_labels_go_first_beyond_the_limit() -> None:
    cache = LookupCache(lambda: 0, ttl=3600, max_entries=2)
    for iri in ("urn:a", "urn:b", "urn:c"):
        cache.remember({iri: {}}, cache.known([iri])[1])
    assert set(cache.known(["urn:a", "urn:b", "urn:c"])[0]) == {"urn:b", "urn:c"}
