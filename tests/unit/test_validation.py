"""SHACL validation compiled to SPARQL (relmark.shacl), checked against real pySHACL.

The validator must find exactly the (focus node, path, constraint component) results pySHACL
finds: for every kind of bad record shapes.ttl rejects, for the demo data, and for the SHACL
Core constructs shapes.ttl does not use yet. It must also see types already stored, refuse at
compile time what it cannot compile, and report for people (text) and machines (JSON).

pySHACL runs as the loader's reference: ontology mixed into the data graph, no inference,
advanced SHACL on, warnings allowed. The ontology is added to the data graph rather than
passed as ``ont_graph``: pySHACL's ont_graph mixing deep-copies owl:NamedIndividuals and never
ends on thirty-r.ttl (rm:ThirtyR and R1…R30 link to each other); the union is the same graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from pyshacl import validate as pyshacl_validate
from rdflib.namespace import SH

from relmark import vocab
from relmark.shacl import (
    Shapes,
    ShapesError,
    UnsupportedShapeError,
    ValidationReport,
    validate,
    validation_store,
)
from relmark.vocab import ONTOLOGY_GRAPH

SHAPES_PATH = vocab.ONTOLOGY_DIR / vocab.SHAPES_FILE
RM = vocab.RM
DEMO = vocab.DEMO
XSD = "http://www.w3.org/2001/XMLSchema#"

PREFIXES = """\
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix demo: <https://w3id.org/relmark/demo/> .
"""

# Correctly typed parties the bad records point to; valid on their own.
SUPPORT = """\
demo:bank a rm:FocalFirm ; rdfs:label "Banca Rossi"@it .
demo:acme a rm:Organization ; rdfs:label "Acme Detergenti S.p.A." .
demo:anna a rm:Person ; rdfs:label "Anna Bianchi" .
demo:marco a rm:Person ; rdfs:label "Marco Verdi" .
demo:soap a rm:Brand ; rdfs:label "Saponetta Bianca" .
demo:youngPros a rm:Segment ; rdfs:label "Giovani professionisti"@it ;
    rm:targetingMode rm:MassSegment .
"""

RELATIONSHIP = """\
demo:rel a rm:CustomerRelationship ; rm:focalParty demo:bank ; rm:counterparty demo:anna ;
    rm:startDate "2021-02-01"^^xsd:date ; rm:endDate "2023-02-01"^^xsd:date ;
"""

PURCHASE = """\
demo:buy a rm:Purchase ; rm:interactionDate "2021-02-01"^^xsd:date ;
    rm:buyer demo:anna ; rm:seller demo:bank ;
"""

# (id, record): each breaks at least one constraint kind that shapes.ttl uses.
BAD_RECORDS = [
    ("wrong-datatype", RELATIONSHIP + ' rm:trustLevel "high" .'),
    ("ill-typed-decimal", RELATIONSHIP + ' rm:trustLevel "abc"^^xsd:decimal .'),
    (
        "ill-typed-date",
        PURCHASE + ' rm:amount 10.0 .\ndemo:buy rm:interactionDate "2021-13-01"^^xsd:date .',
    ),
    ("ill-typed-boolean", PURCHASE + ' rm:isRepeat "yes"^^xsd:boolean .'),
    ("score-above-one", RELATIONSHIP + " rm:trustLevel 1.7 ."),
    ("score-below-zero", RELATIONSHIP + " rm:satisfactionLevel -0.1 ."),
    ("negative-amount", PURCHASE + " rm:amount -5.0 ."),
    (
        "valence-out-of-range",
        """demo:love a rm:BestFriendship ; rm:focalParty demo:acme ; rm:counterparty demo:anna ;
            rm:withBrand demo:soap ; rm:valence -1.5 .""",
    ),
    (
        "missing-required-property",
        "demo:rel a rm:CustomerRelationship ; rm:counterparty demo:anna ; rm:trustLevel 0.5 .",
    ),
    ("missing-label", "demo:nameless a rm:Person ."),
    ("label-not-text", "demo:numbered a rm:Person ; rdfs:label 42 ."),
    ("too-many-values", RELATIONSHIP + " rm:focalParty demo:acme ."),
    ("two-start-dates", RELATIONSHIP + ' rm:startDate "2021-03-01"^^xsd:date .'),
    ("class-violation", "demo:anna rm:employedBy demo:marco ."),
    ("class-violation-untyped", "demo:anna rm:employedBy demo:nowhere ."),
    ("node-kind-and-class", 'demo:anna rm:knows "Marco" .'),
    (
        "or-of-classes-violation",
        "demo:rel a rm:CustomerRelationship ; rm:focalParty demo:bank ; "
        "rm:counterparty demo:youngPros .",
    ),
    ("in-violation", PURCHASE + " rm:channel rm:CarrierPigeon ."),
    ("in-violation-segment", 'demo:seg a rm:Segment ; rdfs:label "S" ; rm:targetingMode rm:Web .'),
    (
        "end-before-start",
        "demo:rel a rm:CustomerRelationship ; rm:focalParty demo:bank ; rm:counterparty demo:anna ;"
        ' rm:startDate "2023-02-01"^^xsd:date ; rm:endDate "2021-02-01"^^xsd:date .',
    ),
    ("unknown-rm-class", 'demo:press a rm:LobbyMarket ; rdfs:label "Lobby" .'),
    ("individual-as-class", 'demo:press a rm:Organization , rm:Media ; rdfs:label "Press" .'),
    ("unit-of-a-non-unit", "demo:acme rm:unitOf demo:bank ."),
    (
        "buyer-is-seller-warning",
        'demo:buy a rm:Purchase ; rm:interactionDate "2021-02-01"^^xsd:date ;'
        " rm:buyer demo:bank ; rm:seller demo:bank .",
    ),
    (
        "many-at-once",
        RELATIONSHIP + " rm:trustLevel 2.0 , 0.5 ; rm:gummessonType rm:Purchase .\n"
        "demo:anna rm:inSegment demo:bank ; rm:influencerKind rm:Plumber .\n"
        "demo:sell a rm:SalesOpportunity ; rm:currentStep rm:Closing .",
    ),
]


@pytest.fixture(scope="module")
def shapes_graph() -> rdflib.Graph:
    return rdflib.Graph().parse(SHAPES_PATH, format="turtle")


@pytest.fixture(scope="module")
def shapes(shapes_graph: rdflib.Graph) -> Shapes:
    return Shapes.from_graph(shapes_graph)


def _pyshacl(
    data: rdflib.Graph, shapes_graph: rdflib.Graph, ontology: rdflib.Graph | None = None
) -> tuple[bool, set[tuple[str, str | None, str]], str]:
    """pySHACL's verdict and its results as (focus, path, component) keys."""
    conforms, report, text = pyshacl_validate(
        data + ontology if ontology is not None else data,
        shacl_graph=shapes_graph,
        inference="none",
        advanced=True,
        allow_warnings=True,
    )
    keys = set()
    [report_node] = report.subjects(rdflib.RDF.type, SH.ValidationReport)
    for result in report.objects(report_node, SH.result):  # not the nested sh:detail ones
        path = report.value(result, SH.resultPath)
        keys.add(
            (
                str(report.value(result, SH.focusNode)),
                None
                if path is None
                else "complex"
                if isinstance(path, rdflib.BNode)
                else str(path),
                str(report.value(result, SH.sourceConstraintComponent)),
            )
        )
    return conforms, keys, text


def _keys(report: ValidationReport) -> set[tuple[str, str | None, str]]:
    return {
        (
            result.focus_node.value,
            "complex" if result.path and result.path.startswith("(") else result.path,
            result.constraint_component,
        )
        for result in report.results
    }


def _ours(text: str, shapes: Shapes, **options) -> ValidationReport:
    return validate(validation_store(text.encode(), ox.RdfFormat.TURTLE), shapes, **options)


# ------------------------------------------------------------------ agreement with pySHACL


@pytest.mark.parametrize(
    "record", [record for _, record in BAD_RECORDS], ids=[id_ for id_, _ in BAD_RECORDS]
)
def test_bad_record_results_match_pyshacl(record, shapes, shapes_graph, ontology_graph):
    text = PREFIXES + SUPPORT + record
    their_conforms, theirs, their_text = _pyshacl(
        rdflib.Graph().parse(data=text, format="turtle"), shapes_graph, ontology_graph
    )
    report = _ours(text, shapes)
    assert theirs, f"the record is not bad for pySHACL either:\n{their_text}"
    assert _keys(report) == theirs, f"ours:\n{report.text}\npySHACL:\n{their_text}"
    assert report.conforms == their_conforms


def test_supporting_records_conform(shapes, shapes_graph, ontology_graph):
    text = PREFIXES + SUPPORT
    conforms, theirs, _ = _pyshacl(
        rdflib.Graph().parse(data=text, format="turtle"), shapes_graph, ontology_graph
    )
    report = _ours(text, shapes)
    assert conforms and report.conforms, report.text
    assert theirs == _keys(report) == set()


DEMO_FILES = vocab.demo_paths()


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda p: p.name)
def test_demo_data_conforms_with_both(path: Path, shapes, shapes_graph, ontology_graph):
    conforms, theirs, their_text = _pyshacl(
        rdflib.Graph().parse(path, format="turtle"), shapes_graph, ontology_graph
    )
    report = validate(validation_store(path), shapes)
    assert conforms, their_text
    assert report.conforms, report.text
    assert _keys(report) == theirs


def test_ill_typed_for_xsd_but_not_for_rdflib_is_a_violation(shapes):
    """pyoxigraph follows the XSD lexical space; rdflib (so pySHACL) accepts "1e3" as a
    decimal. A deliberate difference: such a value would not survive a round trip."""
    report = _ours(
        PREFIXES + SUPPORT + RELATIONSHIP + ' rm:trustLevel "1e3"^^xsd:decimal .', shapes
    )
    assert (
        f"{DEMO}rel",
        f"{RM}trustLevel",
        str(SH.DatatypeConstraintComponent),
    ) in _keys(report)


# SHACL Core beyond what shapes.ttl uses today, on its own small vocabulary.
CORE_SHAPES = """\
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/> .

ex: sh:declare [ sh:prefix "ex" ; sh:namespace "http://example.org/"^^xsd:anyURI ] .

ex:PersonShape a sh:NodeShape ;
    sh:targetClass ex:Person ;
    sh:property [ sh:path ex:email ; sh:pattern "^[a-z.]+@[a-z]+\\\\.it$" ; sh:flags "i" ;
                  sh:minLength 6 ; sh:maxLength 20 ] ;
    sh:property [ sh:path ex:name ; sh:languageIn ( "en" "it" ) ; sh:uniqueLang true ] ;
    sh:property [ sh:path [ sh:inversePath ex:parentOf ] ; sh:maxCount 2 ; sh:class ex:Person ] ;
    sh:property [ sh:path ( ex:address ex:city ) ; sh:minCount 1 ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path ex:age ; sh:datatype xsd:integer ; sh:minExclusive 0 ;
                  sh:maxExclusive 150 ] ;
    sh:property [ sh:path ex:nick ; sh:equals ex:alias ] ;
    sh:property [ sh:path ex:born ; sh:lessThan ex:died ] ;
    sh:property [ sh:path ex:status ; sh:node ex:StatusShape ] ;
    sh:property [ sh:path ex:pet ; sh:xone ( [ sh:class ex:Dog ] [ sh:class ex:Cat ] ) ] ;
    sh:property [ sh:path ex:friend ; sh:not [ sh:class ex:Robot ] ] ;
    sh:property [ sh:path ex:code ; sh:in ( "a" "b" ex:C ) ] ;
    sh:property [ sh:path [ sh:alternativePath ( ex:phone ex:mobile ) ] ; sh:maxCount 1 ] ;
    sh:property [ sh:path [ sh:oneOrMorePath ex:manager ] ; sh:class ex:Person ] ;
    sh:property [ sh:path ex:title ; sh:hasValue "Dr" ; sh:severity sh:Info ] ;
    sh:property [ sh:path ex:ignored ; sh:minCount 1 ; sh:deactivated true ] ;
    sh:property [ sh:path ex:score ; sh:severity sh:Warning ;
                  sh:and ( [ sh:datatype xsd:decimal ] [ sh:minInclusive 0 ] ) ] ;
    sh:property [ sh:path ex:label ; sh:datatype rdf:langString ] ;
    sh:property [ sh:path ex:homepage ; sh:datatype xsd:anyURI ] ;
    sh:property [ sh:path ex:age ;
        sh:sparql [ sh:prefixes ex: ; sh:message "{$this} is {?value}: too young for $PATH"@en ;
                    sh:select '''SELECT $this ?value
                                 WHERE { $this $PATH ?value FILTER(?value < 18) }''' ] ] ;
    sh:sparql [ a sh:SPARQLConstraint ; sh:prefixes ex: ;
        sh:select "SELECT $this WHERE { $this ex:parentOf $this }" ] .

ex:StatusShape a sh:NodeShape ; sh:in ( ex:Active ex:Inactive ) .

ex:Robot a rdfs:Class , sh:NodeShape ; sh:property [ sh:path ex:serial ; sh:minCount 1 ] .

ex:ThingShape a sh:NodeShape ;
    sh:targetNode ex:thing , ex:missingThing ;
    sh:closed true ; sh:ignoredProperties ( rdf:type ) ;
    sh:property [ sh:path ex:ok ; sh:minCount 1 ] ;
    sh:hasValue ex:thing ;
    sh:disjoint ex:sameAs .

ex:EmployerShape a sh:NodeShape ;
    sh:targetObjectsOf ex:worksAt ;
    sh:class ex:Company ; sh:nodeKind sh:IRI .

ex:TeamShape a sh:NodeShape ;
    sh:targetSubjectsOf ex:member ;
    sh:property [ sh:path ex:member ; sh:minCount 2 ; sh:maxCount 3 ] ;
    sh:property [ sh:path ex:lead ; sh:lessThanOrEquals ex:member ] ;
    sh:property [ sh:path ex:budget ; sh:maxCount 0 ] .

ex:MinorShape a sh:NodeShape ;
    sh:target [ a sh:SPARQLTarget ; sh:prefixes ex: ;
                sh:select "SELECT ?this WHERE { ?this ex:age ?a FILTER(?a < 18) }" ] ;
    sh:property [ sh:path ex:guardian ; sh:minCount 1 ] .
"""

CORE_DATA = {
    "conforming": """
        ex:student rdfs:subClassOf ex:Person .
        ex:ann a ex:student ; ex:email "ann@x.it" ; ex:name "Ann"@en , "Anna"@it ;
            ex:address [ ex:city ex:Como ] ; ex:age 30 ; ex:nick "a" ; ex:alias "a" ;
            ex:born 1990 ; ex:died 2090 ; ex:status ex:Active ; ex:pet ex:rex ;
            ex:code "a" ; ex:phone "1" ; ex:manager ex:bob ; ex:title "Dr" ; ex:score 0.5 ;
            ex:label "hi"@en ; ex:homepage "http://ann.example"^^xsd:anyURI .
        ex:bob a ex:Person ; ex:address [ ex:city ex:Lecco ] ; ex:title "Dr" .
        ex:rex a ex:Dog .
        ex:thing ex:ok 1 .
        ex:jo ex:worksAt ex:acme . ex:acme a ex:Company .
        ex:team ex:member 1 , 2 ; ex:lead 1 .
    """,
    "strings-and-languages": """
        ex:ann a ex:Person ; ex:address [ ex:city ex:Como ] ; ex:title "Dr" ;
            ex:email "ANN@X.IT" , "a@b.com" , "x" , _:b ;
            ex:name "Ann"@en , "Annie"@EN , "Anna"@de , "plain" ;
            ex:label "no language" .
    """,
    "paths": """
        ex:ann a ex:Person ; ex:title "Dr" ; ex:address [ ex:city "Como" ] ;
            ex:phone "1" ; ex:mobile "2" ; ex:manager ex:bob .
        ex:bob ex:manager ex:carl . ex:carl a ex:Person .
        ex:p1 ex:parentOf ex:ann . ex:p2 ex:parentOf ex:ann .
        ex:p3 a ex:Person ; ex:parentOf ex:ann .
        ex:noAddress a ex:Person ; ex:title "Dr" .
    """,
    "values-and-pairs": """
        ex:ann a ex:Person ; ex:address [ ex:city ex:Como ] ; ex:title "Mr" , "Dr" ;
            ex:age 0 , 12 , "old" , 200 ; ex:nick "a" , "b" ; ex:alias "a" , "c" ;
            ex:born 2000 ; ex:died 1990 , 2050 ; ex:status ex:Gone ;
            ex:pet ex:rex , ex:felix , ex:both ; ex:friend ex:hal , ex:bob ;
            ex:code "c" , 1 , ex:C ; ex:score -1 , "x" ; ex:homepage "not a uri"^^xsd:anyURI ;
            ex:parentOf ex:ann .
        ex:rex a ex:Dog . ex:felix a ex:Cat . ex:both a ex:Dog , ex:Cat . ex:hal a ex:Robot .
    """,
    "node-targets": """
        ex:thing ex:ok 1 ; ex:extra 2 ; ex:sameAs ex:thing ; a ex:Thing .
        ex:jo ex:worksAt ex:acme , "Acme" , ex:nowhere . ex:acme a ex:Company .
        ex:team ex:member 1 ; ex:lead 5 ; ex:budget 100 .
        ex:bigTeam ex:member 1 , 2 , 3 , 4 .
        ex:kid ex:age 10 .
        ex:robby a ex:Robot .
    """,
}


@pytest.fixture(scope="module")
def core_shapes_graph() -> rdflib.Graph:
    return rdflib.Graph().parse(data=CORE_SHAPES, format="turtle")


@pytest.mark.parametrize("name", sorted(CORE_DATA))
def test_core_constructs_match_pyshacl(name, core_shapes_graph):
    text = "@prefix ex: <http://example.org/> .\n" + PREFIXES + CORE_DATA[name]
    conforms, theirs, their_text = _pyshacl(
        rdflib.Graph().parse(data=text, format="turtle"), core_shapes_graph
    )
    store = validation_store(text.encode(), ox.RdfFormat.TURTLE, ontology_paths=[])
    report = validate(store, Shapes.from_graph(core_shapes_graph))
    assert _keys(report) == theirs, f"ours:\n{report.text}\npySHACL:\n{their_text}"
    assert report.conforms == conforms
    if name == "conforming":  # a target node absent from the data is a focus node all the same
        assert {r.focus_node.value for r in report.results} == {"http://example.org/missingThing"}


def test_sparql_message_templates_are_filled(core_shapes_graph):
    text = "@prefix ex: <http://example.org/> .\n ex:kid a ex:Person ; ex:age 10 ."
    store = validation_store(text.encode(), ox.RdfFormat.TURTLE, ontology_paths=[])
    report = validate(store, Shapes.from_graph(core_shapes_graph))
    messages = [
        r.message
        for r in report.results
        if r.constraint_component.endswith("SPARQLConstraintComponent")
    ]
    assert messages == ["ex:kid is 10: too young for $PATH"]


# ------------------------------------------------------------------- types already stored


def _existing(turtle: str) -> ox.Store:
    store = ox.Store()
    store.load(
        (PREFIXES + turtle).encode(),
        format=ox.RdfFormat.TURTLE,
        to_graph=ox.NamedNode("urn:relmark:data:earlier"),
    )
    return store


def test_sh_class_is_satisfied_by_a_type_found_only_in_existing(shapes):
    record = PREFIXES + SUPPORT + "demo:anna rm:employedBy demo:oldco ."
    key = (f"{DEMO}anna", f"{RM}employedBy", str(SH.ClassConstraintComponent))
    assert key in _keys(_ours(record, shapes))
    report = _ours(record, shapes, existing=_existing("demo:oldco a rm:FocalFirm ."))
    assert report.conforms, report.text
    assert report.results == []


def test_a_type_in_existing_that_is_not_the_class_still_violates(shapes):
    record = PREFIXES + SUPPORT + "demo:anna rm:employedBy demo:oldco ."
    report = _ours(record, shapes, existing=_existing("demo:oldco a rm:Brand ."))
    assert (f"{DEMO}anna", f"{RM}employedBy", str(SH.ClassConstraintComponent)) in _keys(report)
    assert not report.conforms


def test_or_of_classes_and_node_level_class_see_existing_types(shapes):
    record = (
        PREFIXES
        + SUPPORT
        + (
            "demo:rel a rm:CustomerRelationship ; rm:focalParty demo:bank ; "
            "rm:counterparty demo:oldBrand .\ndemo:oldDesk rm:unitOf demo:bank ."
        )
    )
    assert len(_ours(record, shapes).results) == 2
    existing = _existing("demo:oldBrand a rm:Brand . demo:oldDesk a rm:SalesTeam .")
    report = _ours(record, shapes, existing=existing)
    assert report.conforms and report.results == [], report.text


def test_existing_may_be_the_relmark_store(shapes, tmp_path):
    """The loader passes its own store (union of all graphs by default), not a raw one."""
    from relmark.stores.embedded import EmbeddedStore

    record = PREFIXES + SUPPORT + "demo:anna rm:employedBy demo:oldco ."
    with EmbeddedStore(tmp_path / "store") as store:
        store.add_quads(_existing("demo:oldco a rm:Organization ."))
        report = _ours(record, shapes, existing=store)
    assert report.conforms and report.results == [], report.text


# ------------------------------------------------------------ what cannot be compiled

UNSUPPORTED = [
    (
        "qualified-value-shape",
        "ex:QShape a sh:NodeShape ; sh:targetClass ex:C ; sh:property ex:QProp .\n"
        "ex:QProp sh:path ex:p ; sh:qualifiedValueShape [ sh:class ex:D ] ;\n"
        "    sh:qualifiedMinCount 1 .",
        "ex:QProp",
    ),
    (
        "rewritten-datatype",
        "ex:IntShape a sh:NodeShape ; sh:targetClass ex:C ;\n"
        "    sh:property [ sh:path ex:n ; sh:datatype xsd:int ] .",
        "[property shape on ex:n in ex:IntShape]",
    ),
    (
        "unknown-shacl-term",
        "ex:OddShape a sh:NodeShape ; sh:targetClass ex:C ; sh:sortOf ex:p .",
        "ex:OddShape",
    ),
    (
        "property-shape-as-value-check",
        "ex:OuterShape a sh:NodeShape ; sh:targetClass ex:C ;\n"
        "    sh:property [ sh:path ex:p ; sh:node ex:InnerShape ] .\n"
        "ex:InnerShape a sh:NodeShape ; sh:property [ sh:path ex:q ; sh:minCount 1 ] .",
        "ex:InnerShape",
    ),
    (
        "custom-constraint-component",
        "ex:Even a sh:ConstraintComponent ; sh:parameter [ sh:path ex:even ] .\n"
        "ex:EvenShape a sh:NodeShape ; sh:targetClass ex:C ; ex:even true .",
        "ex:EvenShape",
    ),
    (
        "minus-in-sparql",
        "ex:SparqlShape a sh:NodeShape ; sh:targetClass ex:C ;\n"
        '    sh:sparql [ sh:select "SELECT $this WHERE { $this ?p ?o MINUS { $this a ex:D } }" ] .',
        "ex:SparqlShape",
    ),
    (
        "custom-target-type",
        "ex:TargetShape a sh:NodeShape ; sh:target [ a ex:MyTarget ] ; sh:class ex:C .",
        "ex:TargetShape",
    ),
]


@pytest.mark.parametrize(
    ("shapes_text", "named"),
    [(text, named) for _, text, named in UNSUPPORTED],
    ids=[id_ for id_, _, _ in UNSUPPORTED],
)
def test_unsupported_construct_fails_at_compile_time_naming_the_shape(shapes_text, named):
    graph = rdflib.Graph().parse(
        data="@prefix ex: <http://example.org/> .\n@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
        + PREFIXES
        + shapes_text,
        format="turtle",
    )
    with pytest.raises(NotImplementedError) as caught:
        Shapes.from_graph(graph)
    assert isinstance(caught.value, UnsupportedShapeError)
    assert named in str(caught.value)
    assert caught.value.shape == named


def test_malformed_shape_is_a_shapes_error_naming_it():
    graph = rdflib.Graph().parse(
        data="@prefix ex: <http://example.org/> .\n@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
        "ex:BadShape a sh:NodeShape ; sh:targetClass ex:C ;\n"
        '    sh:property [ sh:path ex:p ; sh:minCount "one" ] .',
        format="turtle",
    )
    with pytest.raises(ShapesError, match=r"\[property shape on ex:p in ex:BadShape\]"):
        Shapes.from_graph(graph)


# ------------------------------------------------------------------------- the report


def test_text_and_json_carry_focus_path_value_and_message(shapes):
    report = _ours(PREFIXES + SUPPORT + RELATIONSHIP + " rm:trustLevel 1.7 .", shapes)
    assert not report.conforms
    [result] = report.results
    assert result.message.startswith("Trust level (rm:trustLevel) is a score between 0 and 1")
    assert "Focus node: demo:rel" in report.text
    assert "Path: rm:trustLevel" in report.text
    assert 'Value: "1.7" (xsd:decimal)' in report.text
    assert result.message in report.text

    as_json = json.loads(json.dumps(report.to_json()))
    assert as_json["conforms"] is False and as_json["violations"] == 1
    [entry] = as_json["results"]
    assert entry["focus_node"] == f"{DEMO}rel"
    assert entry["path"] == f"{RM}trustLevel"
    assert entry["value"] == {"type": "literal", "value": "1.7", "datatype": f"{XSD}decimal"}
    assert entry["message"] == result.message
    assert entry["severity"] == str(SH.Violation)
    assert entry["constraint_component"] == str(SH.MaxInclusiveConstraintComponent)
    assert entry["source_shape"] == "https://w3id.org/relmark/shapes#Relationship-trustLevel"


def test_messages_follow_the_requested_language(shapes):
    record = PREFIXES + SUPPORT + RELATIONSHIP + " rm:trustLevel 1.7 ."
    [italian] = _ours(record, shapes, lang="it").results
    [english] = _ours(record, shapes, lang="en").results
    assert italian.message != english.message
    assert "tra 0 e 1" in italian.message


def test_warnings_are_reported_but_do_not_reject(shapes):
    record = (
        PREFIXES + SUPPORT + 'demo:buy a rm:Purchase ; rm:interactionDate "2021-02-01"^^xsd:date ;'
        " rm:buyer demo:bank ; rm:seller demo:bank ."
    )
    report = _ours(record, shapes)
    assert report.conforms
    assert [r.severity for r in report.results] == [str(SH.Warning)]
    assert report.violations == []
    assert "1 warning" in report.text


def test_results_are_sorted_and_repeatable(shapes):
    record = PREFIXES + SUPPORT + BAD_RECORDS[-1][1]
    first, second = _ours(record, shapes), _ours(record, shapes, workers=1)
    assert first.results == second.results
    assert first.text == second.text
    severities = [r.severity for r in first.results]
    assert severities == sorted(severities, key=lambda s: s != str(SH.Violation))


# --------------------------------------------------------------------- the store


def test_validation_store_keeps_data_graphs_and_puts_the_ontology_aside():
    quads = [
        ox.Quad(
            ox.NamedNode(f"{DEMO}anna"),
            ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
            ox.NamedNode(f"{RM}Person"),
            ox.NamedNode("urn:relmark:data:people"),
        )
    ]
    store = validation_store(quads)
    graphs = {g.value for g in store.named_graphs()}
    assert graphs == {"urn:relmark:data:people", ONTOLOGY_GRAPH}
    ontology = list(store.quads_for_pattern(None, None, None, ox.NamedNode(ONTOLOGY_GRAPH)))
    assert len(ontology) > 1000
