"""owlready2 as an independent oracle (docs/architecture.md, "Rules and explanations"):
classified by OWL (HermiT, with the world closed where the rules negate or count), the demo
data must fall into exactly the classes the rule engine puts it in.

The rule engine's answer is read as the store holds it after materialise: the members of a
class in urn:relmark:inferred plus those asserted in the data, ontology and config graphs.
OWL's answer comes from oracles.owl_classifier.classify_with_owl on the same files, parsed
with rdflib. One rule run and one OWL classification serve the whole module.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from oracles.owl_classifier import EXPRESSIBLE, NOT_COMPARED, classify_with_owl

from relmark.reasoning.rules import load_rules, materialise
from relmark.reasoning.rules.provenance import RDF
from relmark.stores.base import data_graph
from relmark.stores.embedded import EmbeddedStore
from relmark.stores.system_graphs import sync_file_graph
from relmark.vocab import (
    CONFIG_FILE,
    CONFIG_GRAPH,
    DEMO,
    INFERRED_GRAPH,
    ONTOLOGY_DIR,
    ONTOLOGY_GRAPH,
    RM,
    demo_paths,
    ontology_paths,
)

CONFIG_PATH = ONTOLOGY_DIR / CONFIG_FILE
DATA_GRAPHS = [data_graph("demo-" + path.stem) for path in demo_paths()]
#: Where a class's members are read: what the rules inferred, and what is asserted.
ANSWER_GRAPHS = [INFERRED_GRAPH, ONTOLOGY_GRAPH, CONFIG_GRAPH, *DATA_GRAPHS]

#: The threshold the last test moves, the class it decides, and the value it moves it to.
MOVED_THRESHOLD = RM + "TrustThreshold"
MOVED_CLASS = RM + "CommittedTrustingRelationship"
MOVED_VALUE = Decimal("0.8")


def local(iri: str) -> str:
    return iri.removeprefix(RM)


# --- the rule engine's answer -------------------------------------------------------------


def open_demo_store(path: Path, config_path: Path = CONFIG_PATH) -> EmbeddedStore:
    """A store laid out as relmark lays it out: ontology, config, one graph per demo file."""
    store = EmbeddedStore(path)
    sync_file_graph(store, ONTOLOGY_GRAPH, ontology_paths())
    sync_file_graph(store, CONFIG_GRAPH, [config_path])
    store.bulk_replace_graphs(
        {
            data_graph("demo-" + p.stem): [(ox.RdfFormat.TURTLE, p.read_bytes(), p.name)]
            for p in demo_paths()
        }
    )
    return store


def rule_answers(path: Path, classes: tuple[str, ...], config_path: Path = CONFIG_PATH) -> dict:
    """Materialise the demo store with every rule; the members of each class, by IRI."""
    store = open_demo_store(path, config_path)
    try:
        materialise(store, load_rules())
        answers = {}
        for cls in classes:
            solutions = store.query(
                f"SELECT DISTINCT ?member WHERE {{ ?member a <{cls}> }}",
                default_graph=ANSWER_GRAPHS,
            )
            answers[cls] = {
                s["member"].value for s in solutions if isinstance(s["member"], ox.NamedNode)
            }
        return answers
    finally:
        store.close()


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knowledge() -> rdflib.Graph:
    """The ontology (rm.ttl, thirty-r.ttl) and the demo data, as classify_with_owl takes them."""
    graph = rdflib.Graph()
    for path in [*ontology_paths(), *demo_paths()]:
        graph.parse(path, format="turtle")
    return graph


@pytest.fixture(scope="module")
def config() -> rdflib.Graph:
    return rdflib.Graph().parse(CONFIG_PATH, format="turtle")


@pytest.fixture(scope="module")
def by_rules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    return rule_answers(tmp_path_factory.mktemp("owl-agreement") / "store", EXPRESSIBLE)


@pytest.fixture(scope="module")
def by_owl(knowledge: rdflib.Graph, config: rdflib.Graph) -> dict[str, set[str]]:
    return classify_with_owl(knowledge, config)


# --- the comparison -----------------------------------------------------------------------


def test_every_class_a_rule_concludes_is_compared():
    """A new rule's class must get an OWL definition (or a reason in NOT_COMPARED)."""
    concluded = set()
    for rule in load_rules():
        for pattern in rule.conclusions:
            if (
                isinstance(pattern.predicate, ox.NamedNode)
                and pattern.predicate.value == RDF + "type"
            ):
                concluded.add(pattern.object.value)
            elif isinstance(pattern.predicate, ox.NamedNode):
                concluded.add(pattern.predicate.value)
    assert concluded - set(EXPRESSIBLE) - set(NOT_COMPARED) == set()
    assert set(EXPRESSIBLE) <= concluded
    assert set(NOT_COMPARED) <= concluded


def test_owl_answers_every_compared_class(by_owl: dict[str, set[str]]):
    assert list(by_owl) == list(EXPRESSIBLE)


@pytest.mark.parametrize("cls", EXPRESSIBLE, ids=local)
def test_owl_agrees_with_the_rules(
    cls: str, by_rules: dict[str, set[str]], by_owl: dict[str, set[str]]
):
    rules, owl = by_rules[cls], by_owl[cls]
    assert rules, f"the rules put no demo individual in {local(cls)}: nothing to compare"
    only_rules = sorted(rules - owl)
    only_owl = sorted(owl - rules)
    assert not only_rules and not only_owl, (
        f"{local(cls)}: only the rules say {only_rules}; only OWL says {only_owl}"
    )


def test_a_changed_threshold_changes_owls_answer_as_it_changes_the_rules(
    tmp_path: Path,
    knowledge: rdflib.Graph,
    config: rdflib.Graph,
    by_owl: dict[str, set[str]],
    by_rules: dict[str, set[str]],
):
    """Thresholds are read from the config on both sides: raising θ_trust drops the
    relationships trusted less than the new value from the committed-trusting class."""
    threshold = rdflib.URIRef(MOVED_THRESHOLD)
    value = rdflib.URIRef(RM + "thresholdValue")
    assert Decimal(str(config.value(threshold, value))) < MOVED_VALUE
    moved = rdflib.Graph()
    for triple in config:
        moved.add(triple)
    moved.set((threshold, value, rdflib.Literal(MOVED_VALUE)))
    moved_path = tmp_path / CONFIG_FILE
    moved.serialize(moved_path, format="turtle")

    owl_after = classify_with_owl(knowledge, moved, [MOVED_CLASS])[MOVED_CLASS]
    rules_after = rule_answers(tmp_path / "store", (MOVED_CLASS,), moved_path)[MOVED_CLASS]

    assert owl_after, "raised too far: the comparison could not fail"
    assert owl_after < by_owl[MOVED_CLASS]
    assert rules_after < by_rules[MOVED_CLASS]
    assert owl_after == rules_after


def test_a_shorter_loyalty_period_changes_owls_answer_as_it_changes_the_rules(
    tmp_path: Path,
    knowledge: rdflib.Graph,
    config: rdflib.Graph,
    by_owl: dict[str, set[str]],
    by_rules: dict[str, set[str]],
):
    """Issue 18: rm:LoyalCustomer asks for purchases rm:LoyaltyPeriodMonths apart, which
    OWL reads through date facets grounded on the purchase dates (owl.py). At 12 months
    Fabio Greco (a supporter buying for ten months) and Laura Colombo (an advocate, nine)
    are not loyal; at 9 months both are, on both sides."""
    cls = RM + "LoyalCustomer"
    threshold = rdflib.URIRef(RM + "LoyaltyPeriodMonths")
    value = rdflib.URIRef(RM + "thresholdValue")
    assert Decimal(str(config.value(threshold, value))) == 12
    shorter = rdflib.Graph()
    for triple in config:
        shorter.add(triple)
    shorter.set((threshold, value, rdflib.Literal(Decimal("9"))))
    shorter_path = tmp_path / CONFIG_FILE
    shorter.serialize(shorter_path, format="turtle")

    owl_after = classify_with_owl(knowledge, shorter, [cls])[cls]
    rules_after = rule_answers(tmp_path / "store", (cls,), shorter_path)[cls]

    newly_loyal = {DEMO + "cr-fabio-greco", DEMO + "cr-laura-colombo"}
    assert not newly_loyal & by_owl[cls] and not newly_loyal & by_rules[cls]
    assert owl_after == by_owl[cls] | newly_loyal
    assert owl_after == rules_after
