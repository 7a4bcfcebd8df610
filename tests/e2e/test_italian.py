"""The Italian side of the ontology: every term has exactly one Italian definition, the
Italian definitions live in ontology/rm-it.ttl (in rm.ttl's order) and reach the served
ontology graph, and the mistranslated wordings the review replaced do not come back.

Expected values come from the Turtle files (rdflib); the page check goes through a real
``relmark serve`` (the browse pages' server).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import rdflib
import requests
from rdflib.namespace import OWL, RDF, SKOS
from support.server import RelmarkServer

from relmark.vocab import ONTOLOGY_DIR, QUERIES_DIR, RM, ontology_paths

pytest_plugins = ("support.browse_fixtures",)

ITALIAN_FILE = ONTOLOGY_DIR / "rm-it.ttl"
#: The kinds of term a user looks up; each must be defined in both languages.
TERM_KINDS = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, SKOS.Concept)

#: Italian wordings the review found to be calques or mistranslations, each with the
#: wording that replaced it. None may reappear in the ontology, the rules or the queries.
REPLACED_WORDINGS = {
    r"amicizia casuale": "amicizia occasionale",
    r"migliori amicizie": "migliore amicizia",
    r"\breferenza\b": "segnalazione",
    r"\bmanutenzione\b": "mantenimento",
    r"superamento di obiezioni": "gestione delle obiezioni",
    r"\bprospezione\b": "ricerca dei potenziali clienti",
    r"promess[ae] non abilitat[ae]": "promessa non supportata",
    r"attività ripetut[ae]": "vendite da riacquisto",
    r"quota ripetuta": "vendite da riacquisto",
    r"premi reciproci": "benefici reciproci",
    r"vincolo tra risorse": "legame tra risorse",
}


def _definitions(graph: rdflib.Graph, term: rdflib.term.Node, lang: str) -> list[str]:
    return [
        str(o)
        for o in graph.objects(term, SKOS.definition)
        if isinstance(o, rdflib.Literal) and o.language == lang
    ]


def _italian_gaps(graph: rdflib.Graph, terms: set) -> dict[str, int]:
    """Terms with an English definition and not exactly one Italian one, with the count."""
    return {
        str(term): len(_definitions(graph, term, "it"))
        for term in sorted(terms)
        if _definitions(graph, term, "en") and len(_definitions(graph, term, "it")) != 1
    }


def _rm_terms(graph: rdflib.Graph, kinds=None) -> set:
    return {
        s
        for s, kind in graph.subject_objects(RDF.type)
        if isinstance(s, rdflib.URIRef)
        and str(s).startswith(RM)
        and (kinds is None or kind in kinds)
    }


def _replaced_wordings_in(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for pattern in REPLACED_WORDINGS:
            for match in re.finditer(pattern, text, re.IGNORECASE):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.name}:{line}: {match[0]!r}")
    return sorted(found)


def _knowledge_files() -> list[Path]:
    return sorted(
        [*ONTOLOGY_DIR.rglob("*.ttl"), *ONTOLOGY_DIR.rglob("*.rq"), *QUERIES_DIR.glob("*.rq")]
    )


# --- every term defined in Italian, once ---------------------------------------------------
def test_the_italian_file_is_part_of_the_ontology():
    assert ITALIAN_FILE in ontology_paths()


def test_every_class_property_and_concept_has_one_italian_definition(ontology_graph):
    terms = _rm_terms(ontology_graph, TERM_KINDS)
    defined = {t for t in terms if _definitions(ontology_graph, t, "en")}
    assert len(defined) > 200
    assert _italian_gaps(ontology_graph, terms) == {}


def test_every_other_term_has_one_italian_definition_too(ontology_graph):
    """Named individuals, schemes, collections and annotation properties as well."""
    assert _italian_gaps(ontology_graph, _rm_terms(ontology_graph)) == {}


def test_every_threshold_has_one_italian_definition(config_graph):
    """The thresholds live in config.ttl (the configuration graph), Italian included."""
    thresholds = set(config_graph.subjects(RDF.type, rdflib.URIRef(RM + "Threshold")))
    assert len(thresholds) >= 15
    assert _italian_gaps(config_graph, thresholds) == {}


def test_the_check_catches_a_missing_and_a_second_italian_definition(ontology_graph):
    graph = rdflib.Graph()
    for triple in ontology_graph:
        graph.add(triple)
    client, supporter = rdflib.URIRef(RM + "Client"), rdflib.URIRef(RM + "Supporter")
    for italian in _definitions(graph, client, "it"):
        graph.remove((client, SKOS.definition, rdflib.Literal(italian, lang="it")))
    graph.add((supporter, SKOS.definition, rdflib.Literal("Un'altra definizione.", lang="it")))
    assert _italian_gaps(graph, _rm_terms(graph, TERM_KINDS)) == {str(client): 0, str(supporter): 2}


def test_italian_definitions_are_not_the_english_ones(ontology_graph):
    same = sorted(
        str(t)
        for t in _rm_terms(ontology_graph)
        if set(_definitions(ontology_graph, t, "it")) & set(_definitions(ontology_graph, t, "en"))
    )
    assert same == []


# --- the Italian file itself ---------------------------------------------------------------
def test_the_italian_file_holds_only_italian_definitions_of_declared_terms():
    italian = rdflib.Graph().parse(ITALIAN_FILE, format="turtle")
    rest = rdflib.Graph()
    for path in ontology_paths():
        if path != ITALIAN_FILE:
            rest.parse(path, format="turtle")
    assert len(italian) > 250
    assert {p for _, p, _ in italian} == {SKOS.definition}
    assert all(isinstance(o, rdflib.Literal) and o.language == "it" for o in italian.objects())
    # a misspelt IRI would define a term nobody declared
    undeclared = sorted(str(s) for s in set(italian.subjects()) if (s, RDF.type, None) not in rest)
    assert undeclared == []


def test_the_italian_file_follows_the_order_of_the_ontology_files():
    def order(path: Path) -> list[str]:
        return re.findall(r"^rm:(\w+) ", path.read_text(encoding="utf-8"), re.M)

    declared = [
        name for path in ontology_paths() if path != ITALIAN_FILE for name in order(path) if name
    ]
    position = {name: i for i, name in reversed(list(enumerate(declared)))}
    italian = order(ITALIAN_FILE)
    assert len(italian) == len(set(italian)), "a term defined twice in rm-it.ttl"
    ranks = [position[name] for name in italian]
    assert ranks == sorted(ranks)


# --- the wordings the review replaced --------------------------------------------------------
def test_no_replaced_italian_wording_remains():
    files = _knowledge_files()
    assert ONTOLOGY_DIR / "rules" / "fournier-best-friendship.rq" in files
    assert _replaced_wordings_in(files) == []


def test_the_wording_check_finds_a_planted_calque(tmp_path: Path):
    planted = tmp_path / "planted.ttl"
    planted.write_text(
        'rm:X rdfs:label "Promessa non abilitata"@it .\n'
        "# follow-up e manutenzione\n"
        'rm:Y rdfs:label "referenze"@it .\n',  # the plural of another word: not flagged
        encoding="utf-8",
    )
    assert _replaced_wordings_in([planted]) == [
        "planted.ttl:1: 'Promessa non abilitata'",
        "planted.ttl:2: 'manutenzione'",
    ]


# --- what the pages show ------------------------------------------------------------------
def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


@pytest.mark.parametrize(
    ("path", "term"),
    [
        ("/ontology/class", "Supporter"),
        ("/ontology/class", "CasualFriendship"),
        ("/ontology/property", "repeatShare"),
        ("/ontology/selling-steps", "HandlingObjections"),
    ],
)
def test_the_italian_page_shows_the_definition_from_the_italian_file(
    browse_server: RelmarkServer, path: str, term: str
):
    italian = rdflib.Graph().parse(ITALIAN_FILE, format="turtle")
    (expected,) = _definitions(italian, rdflib.URIRef(RM + term), "it")
    page = requests.get(
        browse_server.url + path, params={"iri": RM + term, "lang": "it"}, timeout=30
    )
    assert page.status_code == 200
    assert expected in _text(page.text)
