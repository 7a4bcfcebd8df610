"""Ontology quality: an OOPS!-style pitfall suite and HermiT over the ontology and the demo.

The pitfalls are those of the OOPS! catalogue (Poveda-Villalón et al. 2014, ref:oops in
references.ttl) that can be checked mechanically on relmark, each written as SPARQL over
every file of the ontology graph (relmark.vocab.ONTOLOGY_FILES, so the Italian definitions
kept in their own file count), and each with a test proving it can fail on a bad
ontology. HermiT checks consistency and the satisfiability of every class on the ontology
alone and with each demo file, and finds the disjointness axioms do their work.
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.namespace import OWL, RDF

from relmark.reasoning.owl_reasoner import check_consistency
from relmark.vocab import CONFIG_FILE, ONTOLOGY_DIR, RM, demo_paths, ontology_paths

ONTOLOGY_IRI = "https://w3id.org/relmark/ontology"
PREFIXES = f"""PREFIX rm: <{RM}>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX dcterms: <http://purl.org/dc/terms/>
"""
#: The rm: terms: every IRI of the namespace typed in the ontology, deprecated ones aside.
TERMS = f"""
  ?term a ?kind .
  FILTER(STRSTARTS(STR(?term), "{RM}"))
  FILTER NOT EXISTS {{ ?term owl:deprecated true }}
"""

#: Properties users follow both ways: each must have an owl:inverseOf (either direction).
INVERSE_NEEDED = {
    "employedBy",
    "unitOf",
    "allianceMember",
    "ownsBrand",
    "roleOf",
    "inSegment",
    "nextStep",
    "resultedIn",
    "keptIn",
    "brokenIn",
    "replaces",
    "managesTeam",
    "teamMember",
    "listsCustomer",
}


def load(paths: list[Path]) -> ox.Store:
    store = ox.Store()
    for path in paths:
        store.load(path=str(path), format=ox.RdfFormat.TURTLE)
    return store


@pytest.fixture(scope="module")
def ontology() -> ox.Store:
    return load(ontology_paths())


def select(store: ox.Store, where: str) -> list[str]:
    """The ?term values of a SELECT over ``where``, as sorted strings."""
    rows = store.query(PREFIXES + f"SELECT DISTINCT ?term WHERE {{ {where} }}")
    return sorted(row["term"].value for row in rows)


# --- the pitfalls, each a query that lists the offending terms ---------------------------------
PITFALLS = {
    # P04: a class or property no axiom connects to the rest of the ontology.
    "unconnected terms": TERMS
    + """
  VALUES ?kind { owl:Class owl:ObjectProperty owl:DatatypeProperty }
  FILTER NOT EXISTS { ?term rdfs:subClassOf|rdfs:subPropertyOf|owl:equivalentClass ?other }
  FILTER NOT EXISTS { ?other rdfs:subClassOf|rdfs:subPropertyOf ?term }
  FILTER NOT EXISTS { ?term rdfs:domain|rdfs:range ?other }
  FILTER NOT EXISTS { ?p rdfs:domain|rdfs:range ?term }
  FILTER NOT EXISTS { ?p (rdfs:domain|rdfs:range)/owl:unionOf/rdf:rest*/rdf:first ?term }
  FILTER NOT EXISTS { ?individual a ?term }
""",
    # P08: a term without an English or an Italian label.
    "missing label in English": TERMS
    + 'FILTER NOT EXISTS { ?term rdfs:label ?l FILTER(LANGMATCHES(LANG(?l), "en")) }',
    "missing label in Italian": TERMS
    + 'FILTER NOT EXISTS { ?term rdfs:label ?l FILTER(LANGMATCHES(LANG(?l), "it")) }',
    # P08: a term without a definition.
    "missing definition in English": TERMS
    + 'FILTER NOT EXISTS { ?term skos:definition ?d FILTER(LANGMATCHES(LANG(?d), "en")) }',
    # P11: a property without a domain or without a range.
    "missing domain or range": TERMS
    + """
  VALUES ?kind { owl:ObjectProperty owl:DatatypeProperty }
  FILTER (NOT EXISTS { ?term rdfs:domain ?d } || NOT EXISTS { ?term rdfs:range ?r })
""",
    # Sources: every term cites a bibliographic resource, never a bare text or web page.
    "missing or untyped source": TERMS
    + """
  FILTER (NOT EXISTS { ?term dcterms:source ?s }
      || EXISTS { ?term dcterms:source ?s
                  FILTER NOT EXISTS { ?s a dcterms:BibliographicResource } })
""",
    # A modelling choice says why.
    "modelling choice without a reason": TERMS
    + """
  ?term dcterms:source <https://w3id.org/relmark/references#relmark-modelling-choice> .
  FILTER NOT EXISTS { ?term rdfs:comment ?c FILTER(CONTAINS(?c, "relmark modelling choice")) }
""",
    # Every term says which ontology defines it.
    "missing rdfs:isDefinedBy": TERMS
    + f"FILTER NOT EXISTS {{ ?term rdfs:isDefinedBy <{ONTOLOGY_IRI}> }}",
    # Pattern 2 of the header: a value list's members are SKOS concepts in a scheme.
    "value-list member outside a concept scheme": f"""
  ?term a owl:NamedIndividual , ?list .
  ?list rdfs:subClassOf+ skos:Concept .
  FILTER(STRSTARTS(STR(?term), "{RM}"))
  FILTER NOT EXISTS {{ ?term skos:inScheme ?scheme }}
""",
    "enumeration class that is not a SKOS value list": f"""
  ?individual a owl:NamedIndividual , ?term .
  ?term a owl:Class .
  FILTER(STRSTARTS(STR(?term), "{RM}"))
  FILTER NOT EXISTS {{ ?term rdfs:subClassOf+ skos:Concept }}
""",
}


@pytest.mark.parametrize("pitfall", sorted(PITFALLS))
def test_no_pitfall(ontology: ox.Store, pitfall: str) -> None:
    found = set(select(ontology, PITFALLS[pitfall]))
    assert not found, f"{pitfall}: {sorted(found)}"


def test_no_missing_definition_in_italian(ontology: ox.Store) -> None:
    where = TERMS + (
        'FILTER NOT EXISTS { ?term skos:definition ?d FILTER(LANGMATCHES(LANG(?d), "it")) }'
    )
    missing = select(ontology, where)
    assert not missing, f"{len(missing)} terms lack an Italian definition: {missing}"


def test_terms_added_in_this_version_have_italian_definitions(ontology: ox.Store) -> None:
    """Not waiting for the Italian branch: what 0.2.0 adds comes with both languages."""
    added = [
        "RelatedPractice", "usesPractice", "DatabaseMarketing", "delights", "RelationshipPhase",
        "inPhase", "Maintenance", "ValueCoCreation", "organisationalAlignment",
        "mutualInterdependence", "SalesManager", "SalesGoal", "SalesMeasure", "CompensationPlan",
        "SalesTraining", "CustomerDatabase", "respondsProfitably", "CustomerReferrer",
        "ContactConsent", "SalesProfessionalism", "employs", "resultedFrom",
    ]  # fmt: skip
    for name in added:
        rows = ontology.query(
            PREFIXES + f'ASK {{ rm:{name} skos:definition ?d FILTER(LANG(?d) = "it") }}'
        )
        assert bool(rows), name


def test_inverses_where_users_navigate_both_ways(ontology: ox.Store) -> None:
    missing = [
        name
        for name in sorted(INVERSE_NEEDED)
        if not bool(
            ontology.query(PREFIXES + f"ASK {{ {{ rm:{name} owl:inverseOf ?i }} UNION "
                           f"{{ ?i owl:inverseOf rm:{name} }} }}")
        )
    ]  # fmt: skip
    assert not missing, missing


def test_licence_creators_publisher_and_version(ontology: ox.Store) -> None:
    """P41 (no licence), and the header facts a published vocabulary needs."""
    query = (
        PREFIXES
        + f"""SELECT ?licence ?creator ?creatorName ?publisher ?modified ?version
        ?prior WHERE {{
        <{ONTOLOGY_IRI}> dcterms:license ?licence ; dcterms:creator ?creator ;
            dcterms:publisher ?publisher ; dcterms:modified ?modified ;
            owl:versionIRI ?version ; owl:priorVersion ?prior .
        ?creator <http://xmlns.com/foaf/0.1/name> ?creatorName .
        ?publisher a <http://xmlns.com/foaf/0.1/Organization> .
    }}"""
    )
    rows = list(ontology.query(query))
    assert len(rows) == 1, "licence, creator (named), publisher, modified, version or prior"
    row = rows[0]
    assert isinstance(row["licence"], ox.NamedNode)
    assert isinstance(row["creator"], ox.NamedNode), "the creator is an entity, not a blank node"
    assert row["version"].value != row["prior"].value


def test_references_are_complete(ontology: ox.Store) -> None:
    """Every cited work has a title and a one-line citation; articles have venue and year."""
    incomplete = select(
        ontology,
        """
        ?term a dcterms:BibliographicResource .
        FILTER (NOT EXISTS { ?term dcterms:title ?t }
            || NOT EXISTS { ?term dcterms:bibliographicCitation ?c }
            || EXISTS { ?term a <http://purl.org/ontology/bibo/AcademicArticle>
                FILTER NOT EXISTS { ?term dcterms:isPartOf ?venue ; dcterms:issued ?year } })
        """,
    )
    assert not incomplete, incomplete


OUTSIDE_TAGS = ("domain.md", "seeds/", "[W", "[S0", "[S1", "[S2", "[D]")


def test_no_text_points_outside_the_repository() -> None:
    """No tag such as [W6], [S1] or 'domain.md §4' in any literal users see."""
    for path in ontology_paths():
        graph = rdflib.Graph().parse(path, format="turtle")
        stray = sorted(
            f"{s} {o}"
            for s, _, o in graph
            if isinstance(o, rdflib.Literal)
            and any(tag in str(o) for tag in OUTSIDE_TAGS)
        )  # fmt: skip
        assert not stray, f"{path.name}: {stray[:5]}"


# --- each pitfall query can fail -----------------------------------------------------------------
BAD = f"""
@prefix rm: <{RM}> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
rm:Lonely a owl:Class ; rdfs:label "lonely"@en ; dcterms:source "[W6] somewhere" .
rm:halfProperty a owl:ObjectProperty ; rdfs:domain rm:Lonely .
rm:Colour a owl:Class .
rm:Red a owl:NamedIndividual , rm:Colour .
rm:Shade a owl:Class ; rdfs:subClassOf skos:Concept .
rm:Dark a owl:NamedIndividual , rm:Shade .
rm:guess a owl:DatatypeProperty ; rdfs:domain rm:Lonely ; rdfs:range rm:Lonely ;
    dcterms:source <https://w3id.org/relmark/references#relmark-modelling-choice> .
"""
CAUGHT = {
    "missing label in Italian": {"Lonely", "halfProperty", "Colour", "Red"},
    "missing definition in English": {"Lonely", "halfProperty"},
    "missing domain or range": {"halfProperty"},
    "missing or untyped source": {"Lonely", "halfProperty"},
    "modelling choice without a reason": {"guess"},
    "missing rdfs:isDefinedBy": {"Lonely", "Red"},
    "value-list member outside a concept scheme": {"Dark"},
    "enumeration class that is not a SKOS value list": {"Colour"},
}


@pytest.mark.parametrize("pitfall", sorted(CAUGHT))
def test_each_pitfall_catches_a_bad_ontology(tmp_path: Path, pitfall: str) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD, encoding="utf-8")
    found = {term[len(RM) :] for term in select(load([bad]), PITFALLS[pitfall])}
    assert CAUGHT[pitfall] <= found, (pitfall, found)
    assert found, pitfall


def test_unconnected_terms_are_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD + "rm:Orphan a owl:Class .\n", encoding="utf-8")
    found = select(load([bad]), PITFALLS["unconnected terms"])
    assert found == [RM + "Orphan"]


# --- HermiT: consistency and satisfiability ------------------------------------------------------
def _graph(*paths: Path) -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in [*ontology_paths(), ONTOLOGY_DIR / CONFIG_FILE, *paths]:
        graph.parse(path, format="turtle")
    return graph


def test_hermit_ontology_consistent_and_every_class_satisfiable() -> None:
    report = check_consistency(_graph())
    assert report.ok, report.text


@pytest.mark.parametrize("demo", demo_paths(), ids=lambda p: p.name)
def test_hermit_each_demo_file_consistent(demo: Path) -> None:
    report = check_consistency(_graph(demo))
    assert report.ok, report.text


@pytest.mark.parametrize(
    ("first", "second"),
    [("Person", "Organization"), ("Stakeholder", "Brand"), ("Client", "Advocate"),
     ("KeptPromise", "BrokenPromise"), ("MegaRelationship", "NanoRelationship")],
)  # fmt: skip
def test_hermit_enforces_the_disjointness(first: str, second: str) -> None:
    graph = _graph()
    both = rdflib.URIRef("urn:relmark:test:both")
    graph.add((both, RDF.type, OWL.NamedIndividual))
    graph.add((both, RDF.type, rdflib.URIRef(RM + first)))
    graph.add((both, RDF.type, rdflib.URIRef(RM + second)))
    report = check_consistency(graph)
    assert not report.consistent, f"{first} and {second} are not disjoint"
