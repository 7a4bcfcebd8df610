"""The ontology files: they parse, every term is documented in EN and IT, the SKOS schemes
are complete and ordered, the vocabulary is closed, and HermiT finds it all consistent."""

from __future__ import annotations

import re
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS

from relmark.reasoning.owl_reasoner import check_consistency
from relmark.vocab import ONTOLOGY_DIR, QUERIES_DIR, RM, demo_paths, ontology_paths

TURTLE_FILES = sorted(ONTOLOGY_DIR.rglob("*.ttl"))
RMNS = rdflib.Namespace(RM)


def _rel(path: Path) -> str:
    return str(path.relative_to(ONTOLOGY_DIR.parent))


def test_the_knowledge_files_are_there():
    names = {_rel(p) for p in TURTLE_FILES}
    for expected in ("rm.ttl", "thirty-r.ttl", "shapes.ttl", "config.ttl"):
        assert f"ontology/{expected}" in names
    assert len(demo_paths()) >= 3


@pytest.mark.parametrize("path", TURTLE_FILES, ids=_rel)
def test_turtle_parses_with_rdflib_and_pyoxigraph(path: Path):
    graph = rdflib.Graph().parse(path, format="turtle")
    triples = list(pyoxigraph.parse(path=str(path), format=pyoxigraph.RdfFormat.TURTLE))
    assert len(graph) > 0
    # rdflib keeps a set; pyoxigraph streams every statement, duplicates included.
    assert len({str(t) for t in triples}) == len(graph)


def _declared(graph: rdflib.Graph) -> set[rdflib.URIRef]:
    return {s for s in graph.subjects(RDF.type, None) if str(s).startswith(RM)}


def _has_lang(graph: rdflib.Graph, subject, predicate, lang: str) -> bool:
    return any(
        isinstance(o, rdflib.Literal) and o.language == lang
        for o in graph.objects(subject, predicate)
    )


def test_every_term_has_labels_definition_and_source(ontology_graph, config_graph):
    graph = ontology_graph + config_graph
    terms = _declared(graph)
    assert len(terms) > 150
    missing = {}
    for term in sorted(terms):
        gaps = [
            name
            for name, ok in (
                ("label@en", _has_lang(graph, term, RDFS.label, "en")),
                ("label@it", _has_lang(graph, term, RDFS.label, "it")),
                ("definition@en", _has_lang(graph, term, SKOS.definition, "en")),
                ("source", (term, DCTERMS.source, None) in graph),
            )
            if not ok
        ]
        if gaps:
            missing[str(term)] = gaps
    assert not missing, missing


def test_ontology_header(ontology_graph):
    onto = rdflib.URIRef("https://w3id.org/relmark/ontology")
    assert (onto, RDF.type, OWL.Ontology) in ontology_graph
    assert ontology_graph.value(onto, OWL.versionIRI) is not None
    for predicate in (DCTERMS.title, DCTERMS.description):
        assert _has_lang(ontology_graph, onto, predicate, "en")
        assert _has_lang(ontology_graph, onto, predicate, "it")
    assert ontology_graph.value(onto, DCTERMS.license) is not None
    creator = ontology_graph.value(onto, DCTERMS.creator)
    assert creator is not None
    assert not isinstance(creator, rdflib.Literal), "the creator is a role, not a name string"


GROUPS = {
    "ClassicMarketRelationship": (range(1, 4), "MarketRelationship"),
    "SpecialMarketRelationship": (range(4, 18), "MarketRelationship"),
    "MegaRelationship": (range(18, 24), "NonMarketRelationship"),
    "NanoRelationship": (range(24, 31), "NonMarketRelationship"),
}


def test_thirty_relationships_in_four_groups(ontology_graph):
    in_scheme = set(ontology_graph.subjects(SKOS.inScheme, RMNS.ThirtyR))
    assert in_scheme == {RMNS[f"R{n}"] for n in range(1, 31)}
    for group, (numbers, split) in GROUPS.items():
        members = {s for s in in_scheme if (s, RDF.type, RMNS[group]) in ontology_graph}
        assert members == {RMNS[f"R{n}"] for n in numbers}, group
        assert (RMNS[group], RDFS.subClassOf, RMNS[split]) in ontology_graph
    for n in range(1, 31):
        assert str(ontology_graph.value(RMNS[f"R{n}"], SKOS.notation)) == f"R{n}"


SELLING_STEPS = [
    "ProspectingAndQualifying",
    "PreApproach",
    "Approach",
    "PresentationAndDemonstration",
    "HandlingObjections",
    "Closing",
    "FollowUpAndMaintenance",
]


def test_seven_selling_steps_in_order(ontology_graph):
    steps = set(ontology_graph.subjects(SKOS.inScheme, RMNS.SellingProcess))
    assert steps == {RMNS[name] for name in SELLING_STEPS}
    for number, name in enumerate(SELLING_STEPS, start=1):
        step = RMNS[name]
        assert ontology_graph.value(step, RMNS.stepNumber).toPython() == number
        following = ontology_graph.value(step, RMNS.nextStep)
        expected = RMNS[SELLING_STEPS[number]] if number < len(SELLING_STEPS) else None
        assert following == expected, name


LADDER = ["Prospect", "Purchaser", "Client", "Supporter", "Advocate", "Partner"]


def test_loyalty_ladder_ranked(ontology_graph):
    for rank, name in enumerate(LADDER, start=1):
        assert ontology_graph.value(RMNS[name], RMNS.stageRank).toPython() == rank
    member_list = ontology_graph.value(RMNS.LoyaltyLadder, SKOS.memberList)
    assert list(rdflib.collection.Collection(ontology_graph, member_list)) == [
        RMNS[name] for name in LADDER
    ]


RM_NAME = re.compile(r"(?:\brm:|<" + re.escape(RM) + r")([A-Za-z_][\w-]*)")


def _used_terms(path: Path) -> set[str]:
    """rm: local names a file uses; for config.ttl only what it uses, not what it defines."""
    if path.suffix == ".rq":
        return set(RM_NAME.findall(path.read_text(encoding="utf-8")))
    graph = rdflib.Graph().parse(path, format="turtle")
    defined = _declared(graph) if path.name == "config.ttl" else set()
    return {
        str(term)[len(RM) :]
        for triple in graph
        for term in triple
        if isinstance(term, rdflib.URIRef) and str(term).startswith(RM) and term not in defined
    }


VOCABULARY_USERS = [
    ONTOLOGY_DIR / "shapes.ttl",
    ONTOLOGY_DIR / "config.ttl",
    *demo_paths(),
    *sorted((ONTOLOGY_DIR / "rules").glob("*.rq")),
    *sorted(QUERIES_DIR.glob("*.rq")),
]


@pytest.mark.parametrize("path", VOCABULARY_USERS, ids=_rel)
def test_closed_vocabulary(path: Path, ontology_graph, config_graph):
    declared = {str(t)[len(RM) :] for t in _declared(ontology_graph + config_graph)}
    unknown = _used_terms(path) - declared
    assert not unknown, f"{_rel(path)} uses undeclared rm: terms {sorted(unknown)}"


def test_closed_vocabulary_check_catches_an_undeclared_term(tmp_path, ontology_graph):
    stray = tmp_path / "stray.ttl"
    stray.write_text(f"<urn:x> a <{RM}LobbyMarket> .\n", encoding="utf-8")
    declared = {str(t)[len(RM) :] for t in _declared(ontology_graph)}
    assert _used_terms(stray) - declared == {"LobbyMarket"}


def _ontology_with(*extra: Path) -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in [*ontology_paths(), ONTOLOGY_DIR / "config.ttl", *extra]:
        graph.parse(path, format="turtle")
    return graph


def test_hermit_finds_the_ontology_consistent():
    report = check_consistency(_ontology_with())
    assert report.ok, report.text


def test_hermit_finds_the_ontology_with_demo_data_consistent():
    report = check_consistency(_ontology_with(*demo_paths()))
    assert report.ok, report.text


def test_hermit_detects_an_inconsistency():
    """The check can fail: an individual asserted to be owl:Nothing makes the ABox inconsistent."""
    graph = _ontology_with()
    bad = rdflib.URIRef("urn:relmark:test:thing")
    graph.add((bad, RDF.type, RMNS.Person))
    graph.add((bad, RDF.type, OWL.Nothing))
    report = check_consistency(graph)
    assert not report.consistent
    assert "INCONSISTENT" in report.text
