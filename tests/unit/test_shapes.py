"""The SHACL shapes (ontology/shapes.ttl): they parse, speak to a marketer in English and
Italian, reject each kind of bad record at the right node and property, and accept good
records and the demo data. Validation runs as the loader runs it: real pyshacl with the
ontology mixed into the data graph."""

from __future__ import annotations

import pytest
import rdflib
from pyshacl import validate
from rdflib.namespace import OWL, RDF, RDFS, SH

from relmark import vocab
from relmark.vocab import ONTOLOGY_DIR, demo_paths, ontology_paths

ONTOLOGY_PATHS = tuple(ontology_paths())
SHAPES_PATH = ONTOLOGY_DIR / "shapes.ttl"
DEMO_PATHS = demo_paths()

RM = rdflib.Namespace(vocab.RM)
DEMO = rdflib.Namespace(vocab.DEMO)

PREFIXES = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix demo: <https://w3id.org/relmark/demo/> .
"""

# Correctly typed parties that the bad records below point to; valid on their own.
SUPPORT = """\
demo:bank a rm:FocalFirm ; rdfs:label "Banca Rossi"@it .
demo:acme a rm:Organization ; rdfs:label "Acme Detergenti S.p.A." ; rm:ownsBrand demo:soap .
demo:anna a rm:Person ; rdfs:label "Anna Bianchi" .
demo:marco a rm:Person ; rdfs:label "Marco Verdi" .
demo:soap a rm:Brand ; rdfs:label "Saponetta Bianca" .
demo:team a rm:SalesTeam ; rdfs:label "Team Nord"@it ; rm:unitOf demo:bank .
"""

# One record of every kind a user loads, all valid: must conform with no results at all.
GOOD_RECORDS = """\
demo:anna a <http://xmlns.com/foaf/0.1/Person> ; rm:employedBy demo:acme ;
    rm:inSegment demo:youngPros ; rm:knows demo:marco .
demo:marco rm:candidateOf demo:bank .
demo:press a rm:Organization ; rdfs:label "Il Giornale del Credito" ;
    rm:influences demo:bank ; rm:influencerKind rm:Media .
demo:logistics a rm:Alliance ; rdfs:label "Alleanza Logistica Nord" ;
    rm:allianceMember demo:bank , demo:acme .
demo:acmeRole a rm:StakeholderRole ; rdfs:label "Fornitore principale"@it ;
    rm:roleOf demo:acme ; rm:roleTowards demo:bank ; rm:roleName "preferred supplier" ;
    rm:startDate "2020-01-01"^^xsd:date ; rm:endDate "2023-12-31"^^xsd:date .
demo:youngPros a rm:Segment ; rdfs:label "Giovani professionisti"@it ;
    rm:targetingMode rm:MassSegment ; rm:targetedBy demo:bank .
demo:acmeKeyAccounts a rm:Segment ; rdfs:label "Acme's key accounts" ;
    rm:targetingMode rm:IndividualCustomisation ; rm:targetedBy demo:acme .
demo:annaAtBank a rm:CustomerRelationship ;
    rm:focalParty demo:bank ; rm:counterparty demo:anna ;
    rm:startDate "2021-02-01"^^xsd:date ; rm:endDate "2021-02-01"^^xsd:date ;
    rm:trustLevel 0.8 ; rm:commitmentLevel 1.0 ; rm:satisfactionLevel 0.0 ;
    rm:lifetimeValue 12500.00 ; rm:gummessonType rm:R1 ; rm:bondType rm:ActorBond ;
    rm:counterpartyKind rm:UltimateCustomerExchange ;
    rm:trustor demo:anna ; rm:trustee demo:bank ; rm:measuredOn "2021-06-30"^^xsd:date .
demo:annaLovesSoap a rm:BestFriendship ;
    rm:focalParty demo:acme ; rm:counterparty demo:anna ; rm:withBrand demo:soap ;
    rm:isVoluntary true ; rm:isPublic true ; rm:isSymmetric true ; rm:valence -1.0 ;
    rm:intensity 0.7 ; rm:durationType rm:Enduring ; rm:selfConnection 0.9 ;
    rm:beganInChildhood false .
demo:buy1 a rm:Purchase ; rm:interactionDate "2021-02-01"^^xsd:date ;
    rm:buyer demo:anna ; rm:seller demo:bank ; rm:amount 250.00 ; rm:isRepeat false ;
    rm:channel rm:FaceToFace ; rm:partOfRelationship demo:annaAtBank .
demo:ref1 a rm:Referral ; rm:interactionDate "2021-01-15"^^xsd:date ;
    rm:referrer demo:marco ; rm:referredParty demo:anna ; rm:referredTo demo:bank ;
    rm:resultedIn demo:buy1 .
demo:ad a rm:ExternalMarketing ; rm:activityDate "2020-11-01"^^xsd:date ;
    rm:performedBy demo:bank .
demo:training a rm:InternalMarketing ; rm:performedBy demo:bank .
demo:fastMortgage a rm:Promise ; rm:promiseStatement "Mortgage decision within 48 hours" ;
    rm:promisedBy demo:bank ; rm:promisedTo demo:anna ; rm:madeIn demo:ad ;
    rm:enabledBy demo:training ; rm:keptIn demo:buy1 .
demo:acmeDeal a rm:SalesOpportunity ; rm:currentStep rm:HandlingObjections ;
    rm:stepSince "2024-01-10"^^xsd:date ; rm:sharedAccount demo:acme ;
    rm:ownedBy demo:team ; rm:sellingFirm demo:bank ; rm:opportunityValue 40000.00 .
demo:followUp a rm:SalesCall ; rm:interactionDate "2024-01-20"^^xsd:date ;
    rm:participant demo:marco ; rm:aboutOpportunity demo:acmeDeal ; rm:channel rm:Phone .
demo:annaCard a rm:LoyaltyProgramMembership ; rm:programMember demo:anna ;
    rm:hostingOrganization demo:bank ; rm:membershipNumber "FID-000123" .
"""

# A customer relationship with everything it needs, for cases that break one score.
RELATIONSHIP = """\
demo:rel a rm:CustomerRelationship ; rm:focalParty demo:bank ; rm:counterparty demo:anna ;
"""

# A brand relationship with everything it needs but its brand.
BRAND_RELATIONSHIP = """\
demo:br a rm:CommittedPartnership ; rm:focalParty demo:acme ; rm:counterparty demo:anna ;
"""

PURCHASE = """\
demo:p1 a rm:Purchase ; rm:interactionDate "2024-03-01"^^xsd:date ;
"""

OPPORTUNITY = """\
demo:opp a rm:SalesOpportunity ; rm:sharedAccount demo:acme ;
"""

BAD_RECORDS = [
    pytest.param(
        RELATIONSHIP + 'rm:trustLevel "high" .',
        {(DEMO.rel, RM.trustLevel)},
        ["trust level", "between 0 and 1"],
        id="score-written-as-a-word",
    ),
    pytest.param(
        RELATIONSHIP + "rm:satisfactionLevel 1.7 .",
        {(DEMO.rel, RM.satisfactionLevel)},
        ["satisfaction level", "between 0 and 1"],
        id="score-above-one",
    ),
    pytest.param(
        RELATIONSHIP + "rm:commitmentLevel -0.2 .",
        {(DEMO.rel, RM.commitmentLevel)},
        ["commitment level", "between 0 and 1"],
        id="negative-score",
    ),
    pytest.param(
        RELATIONSHIP + "rm:trustLevel 1 .",
        {(DEMO.rel, RM.trustLevel)},
        ["decimal number", "0.75"],
        id="score-written-as-an-integer",
    ),
    # issue 18: whose view the scores are, of whom, and when (all optional)
    pytest.param(
        RELATIONSHIP + 'rm:measuredOn "last spring" .',
        {(DEMO.rel, RM.measuredOn)},
        ["scores were measured", "YYYY-MM-DD"],
        id="scores-measured-on-a-word",
    ),
    pytest.param(
        RELATIONSHIP + 'rm:trustor "Anna" .',
        {(DEMO.rel, RM.trustor)},
        ["trustor", "stakeholder"],
        id="trustor-written-as-text",
    ),
    pytest.param(
        RELATIONSHIP + "rm:trustee demo:anna , demo:bank .",
        {(DEMO.rel, RM.trustee)},
        ["trustee", "at most one"],
        id="two-trustees",
    ),
    pytest.param(
        RELATIONSHIP + "rm:lifetimeValue -100.00 .",
        {(DEMO.rel, RM.lifetimeValue)},
        ["lifetime value", "zero or more"],
        id="negative-lifetime-value",
    ),
    pytest.param(
        PURCHASE + "rm:seller demo:bank .",
        {(DEMO.p1, RM.buyer)},
        ["exactly one buyer"],
        id="purchase-without-buyer",
    ),
    pytest.param(
        PURCHASE + "rm:buyer demo:anna ; rm:seller demo:bank , demo:acme .",
        {(DEMO.p1, RM.seller)},
        ["exactly one seller"],
        id="purchase-with-two-sellers",
    ),
    pytest.param(
        PURCHASE + "rm:buyer demo:anna ; rm:seller demo:bank ; rm:amount -10.00 .",
        {(DEMO.p1, RM.amount)},
        ["amount", "zero or more"],
        id="negative-purchase-amount",
    ),
    pytest.param(
        """demo:r1 a rm:Referral ; rm:interactionDate "2024-03-01"^^xsd:date ;
            rm:referredParty demo:anna ; rm:referredTo demo:bank .""",
        {(DEMO.r1, RM.referrer)},
        ["exactly one referrer"],
        id="referral-without-referrer",
    ),
    pytest.param(
        "demo:rel a rm:SupplierRelationship ; rm:counterparty demo:acme .",
        {(DEMO.rel, RM.focalParty)},
        ["exactly one focal party"],
        id="relationship-without-focal-party",
    ),
    pytest.param(
        RELATIONSHIP + 'rm:startDate "2023-05-01"^^xsd:date ; rm:endDate "2022-01-01"^^xsd:date .',
        {(DEMO.rel, RM.startDate)},
        ["ends before it starts", "end date"],
        id="end-date-before-start-date",
    ),
    pytest.param(
        RELATIONSHIP + 'rm:startDate "2023-05-01" .',
        {(DEMO.rel, RM.startDate)},
        ["start date", "YYYY-MM-DD"],
        id="date-written-as-plain-text",
    ),
    pytest.param(
        'demo:lobbyist a rm:LobbyMarket ; rdfs:label "Lobby dei mutui" .',
        {(DEMO.lobbyist, RDF.type)},
        ["rm:LobbyMarket", "not a category"],
        id="unknown-market-class",
    ),
    pytest.param(
        'demo:paper a rm:Media ; rdfs:label "Il Giornale del Credito" .',
        {(DEMO.paper, RDF.type)},
        ["rm:Media", "not a category"],
        id="individual-used-as-a-class",
    ),
    pytest.param(
        """demo:call a rm:SalesCall ; rm:interactionDate "2024-03-01"^^xsd:date ;
            rm:participant demo:anna ; rm:channel rm:Media .""",
        {(DEMO.call, RM.channel)},
        ["channel", "phone", "email"],
        id="channel-not-a-channel",
    ),
    pytest.param(
        "demo:visit a rm:ServiceEncounter ; rm:participant demo:anna .",
        {(DEMO.visit, RM.interactionDate)},
        ["exactly one date"],
        id="interaction-without-date",
    ),
    pytest.param(
        OPPORTUNITY + "rm:currentStep rm:R5 ; rm:ownedBy demo:team .",
        {(DEMO.opp, RM.currentStep)},
        ["current step", "selling steps"],
        id="opportunity-step-not-a-selling-step",
    ),
    pytest.param(
        OPPORTUNITY + "rm:currentStep rm:Closing ; rm:ownedBy demo:acme .",
        {(DEMO.opp, RM.ownedBy)},
        ["sales team"],
        id="opportunity-owned-by-a-company-not-a-team",
    ),
    pytest.param(
        BRAND_RELATIONSHIP + "rm:withBrand demo:soap ; rm:valence 2.0 .",
        {(DEMO.br, RM.valence)},
        ["valence", "between -1"],
        id="valence-of-two",
    ),
    pytest.param(
        BRAND_RELATIONSHIP + "rm:isVoluntary true .",
        {(DEMO.br, RM.withBrand)},
        ["exactly one brand"],
        id="brand-relationship-without-brand",
    ),
    pytest.param(
        BRAND_RELATIONSHIP + 'rm:withBrand demo:soap ; rm:isVoluntary "yes" .',
        {(DEMO.br, RM.isVoluntary)},
        ["voluntary", "true or false"],
        id="yes-no-written-as-a-word",
    ),
    pytest.param(
        """demo:br a rm:Fling ; rm:focalParty demo:acme ; rm:counterparty demo:soap ;
            rm:withBrand demo:soap .""",
        {(DEMO.br, RM.counterparty)},
        ["consumer"],
        id="brand-relationship-with-the-brand-as-consumer",
    ),
    pytest.param(
        'demo:seg a rm:Segment ; rdfs:label "Giovani professionisti"@it .',
        {(DEMO.seg, RM.targetingMode)},
        ["targeting mode"],
        id="segment-without-targeting-mode",
    ),
    pytest.param(
        "demo:luca a rm:Customer .",
        {(DEMO.luca, RDFS.label)},
        ["needs a name", "rdfs:label"],
        id="stakeholder-without-label",
    ),
    pytest.param(
        "demo:anna rm:employedBy demo:marco .",
        {(DEMO.anna, RM.employedBy)},
        ["employed by an organisation"],
        id="employer-is-a-person",
    ),
    pytest.param(
        "demo:acme rm:unitOf demo:bank .",
        {(DEMO.acme, None)},
        ["organisational units"],
        id="unit-of-on-an-organisation-that-is-not-a-unit",
    ),
    pytest.param(
        "demo:promise a rm:Promise ; rm:promisedBy demo:bank .",
        {(DEMO.promise, RM.promisedTo)},
        ["at least one party"],
        id="promise-to-nobody",
    ),
    pytest.param(
        "demo:card a rm:LoyaltyProgramMembership ; rm:hostingOrganization demo:bank .",
        {(DEMO.card, RM.programMember)},
        ["exactly one member"],
        id="membership-without-member",
    ),
]


@pytest.fixture(scope="module")
def ontology() -> rdflib.Graph:
    """rm.ttl + thirty-r.ttl, mixed into every data graph as the loader does."""
    missing = [str(path) for path in ONTOLOGY_PATHS if not path.exists()]
    if missing:
        pytest.fail(f"ontology file(s) missing: {', '.join(missing)}")
    graph = rdflib.Graph()
    for path in ONTOLOGY_PATHS:
        graph.parse(path, format="turtle")
    return graph


@pytest.fixture(scope="module")
def shapes() -> rdflib.Graph:
    return rdflib.Graph().parse(SHAPES_PATH, format="turtle")


def _validate(
    data: rdflib.Graph, shapes: rdflib.Graph, ontology: rdflib.Graph, **options
) -> tuple[bool, rdflib.Graph, str]:
    """Validate as the loader does: the ontology mixed into the data graph, no inference,
    advanced SHACL on, warnings allowed.

    The ontology is added to the data graph here rather than passed as ont_graph: pySHACL's
    ont_graph mixing deep-copies every owl:NamedIndividual ten links deep, which never ends
    on thirty-r.ttl (rm:ThirtyR links to R1…R30 and each of them back to rm:ThirtyR).
    """
    return validate(
        data + ontology,
        shacl_graph=shapes,
        inference="none",
        advanced=True,
        allow_warnings=True,
        **options,
    )


def _data(*snippets: str) -> rdflib.Graph:
    return rdflib.Graph().parse(data=PREFIXES + "\n".join(snippets), format="turtle")


def _results(report: rdflib.Graph) -> list[dict]:
    """Each validation result as focus node, path, severity and English messages."""
    results = []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        messages = list(report.objects(result, SH.resultMessage))
        results.append(
            {
                "focus": report.value(result, SH.focusNode),
                "path": report.value(result, SH.resultPath),
                "severity": report.value(result, SH.resultSeverity),
                # pySHACL drops the language tag of a SPARQL message once it fills in
                # {?variables}, so an untagged message counts as English here.
                "english": [str(m) for m in messages if m.language in ("en", None)],
                "languages": len(messages),
            }
        )
    return results


def _says(result: dict, words: list[str]) -> bool:
    """True if one English message of the result contains all the words."""
    return any(all(w.lower() in m.lower() for w in words) for m in result["english"])


def _property_shapes(shapes: rdflib.Graph) -> set[rdflib.term.Node]:
    return set(shapes.objects(None, SH.property)) | set(shapes.subjects(RDF.type, SH.PropertyShape))


def _langs(graph: rdflib.Graph, subject, predicate) -> set[str | None]:
    return {o.language for o in graph.objects(subject, predicate)}


# ---------------------------------------------------------------- the shapes file itself


def test_shapes_file_parses_and_has_shapes(shapes):
    node_shapes = set(shapes.subjects(RDF.type, SH.NodeShape))
    assert len(node_shapes) >= 20
    assert len(_property_shapes(shapes)) >= 100


def test_every_property_shape_speaks_to_a_marketer_in_english_and_italian(shapes):
    gaps = {}
    for shape in _property_shapes(shapes):
        missing = [
            what
            for what, ok in (
                ("sh:path", (shape, SH.path, None) in shapes),
                ("sh:name@en", "en" in _langs(shapes, shape, SH.name)),
                ("sh:message@en", "en" in _langs(shapes, shape, SH.message)),
                ("sh:message@it", "it" in _langs(shapes, shape, SH.message)),
                ("sh:severity", (shape, SH.severity, None) in shapes),
            )
            if not ok
        ]
        if missing:
            gaps[str(shape)] = missing
    assert not gaps, gaps


def test_every_property_shape_checks_the_kind_of_value(shapes):
    """A datatype, class, node kind or list of allowed values; shapes that only compare two
    properties (date order, "buyer is not the seller") are the exception."""
    value_checks = (SH.datatype, SH["class"], SH.nodeKind, SH["in"])
    comparisons = (SH.lessThanOrEquals, SH.disjoint)
    unchecked = [
        str(shape)
        for shape in _property_shapes(shapes)
        if not any((shape, p, None) in shapes for p in value_checks + comparisons)
    ]
    assert not unchecked


def test_the_sparql_check_and_the_node_level_check_have_messages(shapes):
    constraints = list(shapes.objects(None, SH.sparql))
    constraints += [
        s for s in shapes.subjects(RDF.type, SH.NodeShape) if (s, SH["class"], None) in shapes
    ]
    assert constraints
    for constraint in constraints:
        assert {"en", "it"} <= _langs(shapes, constraint, SH.message), constraint


def test_shapes_use_only_terms_the_ontology_declares(shapes, ontology):
    used = {
        term
        for triple in shapes
        for term in triple
        if isinstance(term, rdflib.URIRef) and term.startswith(str(RM))
    }
    declared = set(ontology.subjects(RDF.type, None))
    assert used - declared == set()


def test_target_classes_are_owl_classes(shapes, ontology):
    targets = set(shapes.objects(None, SH.targetClass))
    assert targets
    assert {t for t in targets if (t, RDF.type, OWL.Class) not in ontology} == set()


def test_value_checks_agree_with_the_ontology_property_kinds(shapes, ontology):
    """Literal checks only on datatype properties, node checks only on object properties."""
    wrong = []
    for shape in _property_shapes(shapes):
        path = shapes.value(shape, SH.path)
        if not str(path).startswith(str(RM)):
            continue
        checks_literal = (shape, SH.datatype, None) in shapes
        checks_node = any((shape, p, None) in shapes for p in (SH["class"], SH["in"], SH["or"]))
        if checks_literal and (path, RDF.type, OWL.DatatypeProperty) not in ontology:
            wrong.append((str(shape), "datatype on a non-datatype property"))
        elif checks_node and (path, RDF.type, OWL.ObjectProperty) not in ontology:
            wrong.append((str(shape), "class check on a non-object property"))
    assert not wrong


def test_shapes_graph_passes_shacl_shacl(shapes, ontology):
    conforms, _, text = _validate(_data(SUPPORT), shapes, ontology, meta_shacl=True)
    assert conforms, text


# ------------------------------------------------------------------------- good data


def test_supporting_nodes_conform(shapes, ontology):
    conforms, report, text = _validate(_data(SUPPORT), shapes, ontology)
    assert conforms, text
    assert _results(report) == []


def test_good_minimal_record_set_conforms_without_warnings(shapes, ontology):
    conforms, report, text = _validate(_data(SUPPORT, GOOD_RECORDS), shapes, ontology)
    assert conforms, text
    assert _results(report) == [], text


# -------------------------------------------------------------------------- bad data


@pytest.mark.parametrize(("record", "expected", "words"), BAD_RECORDS)
def test_bad_record_is_rejected_at_the_right_node_and_property(
    shapes, ontology, record, expected, words
):
    conforms, report, text = _validate(_data(SUPPORT, record), shapes, ontology)
    assert not conforms, text
    results = _results(report)
    assert {(r["focus"], r["path"]) for r in results} == expected, text
    for result in results:
        assert result["severity"] == SH.Violation, text
        assert _says(result, words), result["english"]
        assert result["languages"] == 2, text  # English and Italian


@pytest.mark.parametrize(
    ("record", "expected", "words"),
    [
        pytest.param(
            PURCHASE + "rm:buyer demo:bank ; rm:seller demo:bank .",
            {(DEMO.p1, RM.buyer)},
            ["buyer and the seller", "same"],
            id="buyer-is-the-seller",
        ),
        pytest.param(
            """demo:r1 a rm:Referral ; rm:interactionDate "2024-03-01"^^xsd:date ;
                rm:referrer demo:anna ; rm:referredParty demo:anna ; rm:referredTo demo:bank .""",
            {(DEMO.r1, RM.referrer)},
            ["recommended themselves"],
            id="referrer-refers-themselves",
        ),
        pytest.param(
            "demo:rel a rm:BusinessRelationship ; rm:focalParty demo:bank ; "
            "rm:counterparty demo:bank .",
            {(DEMO.rel, RM.focalParty)},
            ["same party"],
            id="firm-in-relationship-with-itself",
        ),
        pytest.param(
            RELATIONSHIP + "rm:trustor demo:anna ; rm:trustee demo:anna .",
            {(DEMO.rel, RM.trustor)},
            ["trustor and the trustee", "one party's view"],
            id="trustor-is-the-trustee",
        ),
    ],
)
def test_suspicious_record_is_a_warning_that_does_not_reject_the_load(
    shapes, ontology, record, expected, words
):
    conforms, report, text = _validate(_data(SUPPORT, record), shapes, ontology)
    assert conforms, text
    results = _results(report)
    assert {(r["focus"], r["path"]) for r in results} == expected, text
    for result in results:
        assert result["severity"] == SH.Warning
        assert _says(result, words), result["english"]


# ------------------------------------------------------------------------- demo data


@pytest.mark.parametrize("path", DEMO_PATHS, ids=lambda p: p.name)
def test_each_demo_file_conforms_on_its_own(shapes, ontology, path):
    data = rdflib.Graph().parse(path, format="turtle")
    conforms, _, text = _validate(data, shapes, ontology)
    print(text)
    assert conforms, text


def test_whole_demo_data_conforms(shapes, ontology):
    data = rdflib.Graph()
    for path in DEMO_PATHS:
        data.parse(path, format="turtle")
    conforms, _, text = _validate(data, shapes, ontology)
    print(text)
    assert conforms, text
