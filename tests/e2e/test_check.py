"""``relmark check``: HermiT on the ontology and the store's data, with the clash explained.

Real reasoner runs (owlready2 + HermiT in a JVM, a few seconds each): the demo is
consistent, a value outside its property's datatype is found and named, and a class made
empty in a copy of the ontology is named with the axioms that empty it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support.cli import run_relmark

from relmark.vocab import ONTOLOGY_DIR

INCONSISTENT = """\
@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix demo: <https://w3id.org/relmark/demo/> .

# a survey answer pasted as text where the ontology wants a score (xsd:decimal)
demo:cr-elisa-mariani rm:satisfactionLevel "very high" .
"""

EMPTY_CLASS = """
# test: a class below two classes declared disjoint can have no member
rm:PersonAndOrganization a owl:Class ;
    rdfs:subClassOf rm:Person , rm:Organization .
rm:Person owl:disjointWith rm:Organization .
"""


def test_the_demo_is_consistent(loaded_store: Path):
    result = run_relmark("--store", str(loaded_store), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("hermit: consistent, every class satisfiable (")


def test_a_text_where_a_score_belongs_is_named(loaded_store: Path, tmp_path: Path):
    extra = tmp_path / "survey.ttl"
    extra.write_text(INCONSISTENT)
    result = run_relmark("--store", str(loaded_store), "check", str(extra))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "hermit: the data is INCONSISTENT with the ontology"
    assert lines[1] == (
        "  clash (datatype): <https://w3id.org/relmark/demo/cr-elisa-mariani>: "
        'rm:satisfactionLevel takes xsd:decimal values (rdfs:range), but "very high" is '
        "a plain string"
    )
    assert "  confirmed by the reasoner: without these statements the data is consistent" in lines
    as_json = run_relmark("--store", str(loaded_store), "check", str(extra), "--format", "json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["consistent"] is False
    assert report["ontology_consistent"] is True and report["confirmed"] is True
    assert [c["kind"] for c in report["clashes"]] == ["datatype"]
    assert report["clashes"][0]["statements"][0] == [
        "<https://w3id.org/relmark/demo/cr-elisa-mariani>",
        "rm:satisfactionLevel",
        '"very high"',
    ]


NO_RESULT_ALLOWED = """
# test: a referral may not lead to a purchase (no pattern check covers cardinalities)
rm:Referral rdfs:subClassOf [ a owl:Restriction ;
    owl:onProperty rm:resultedIn ; owl:maxCardinality 0 ] .
"""

REFERRAL_WITH_RESULT = """@prefix rm: <https://w3id.org/relmark/ontology#> .
@prefix ex: <https://example.org/> .

ex:referral a rm:Referral ; rm:referrer ex:ada ; rm:referredTo ex:firm ;
    rm:resultedIn ex:purchase .
ex:ada a rm:Person .
ex:purchase a rm:Purchase ; rm:buyer ex:bob ; rm:seller ex:firm .
"""


def _ontology_copy(tmp_path: Path, extra: str) -> dict[str, str]:
    ontology = tmp_path / "ontology"
    shutil.copytree(ONTOLOGY_DIR, ontology, ignore=shutil.ignore_patterns("demo", "rules"))
    with (ontology / "rm.ttl").open("a", encoding="utf-8") as rm:
        rm.write(extra)
    return {"RELMARK_ONTOLOGY": str(ontology)}


def test_a_clash_no_pattern_covers_is_narrowed_to_one_statement(tmp_path: Path):
    data = tmp_path / "referral.ttl"
    data.write_text(REFERRAL_WITH_RESULT)
    env = _ontology_copy(tmp_path, NO_RESULT_ALLOWED)
    result = run_relmark(
        "--store", str(tmp_path / "store"), "check", "--no-store", str(data), env=env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("  clash (individuals): these statements about ")
    assert lines[2:4] == [
        "      <https://example.org/referral> rm:resultedIn <https://example.org/purchase> .",
        "  confirmed by the reasoner: these statements alone clash with it",
    ]


def test_an_unsatisfiable_class_in_a_copy_of_the_ontology_is_named(tmp_path: Path):
    env = _ontology_copy(tmp_path, EMPTY_CLASS)
    result = run_relmark(
        "--store", str(tmp_path / "store"), "check", "--no-store", "--format", "json", env=env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["consistent"] is True
    assert report["unsatisfiable"] == [
        {
            "class": "https://w3id.org/relmark/ontology#PersonAndOrganization",
            "reason": "it is a subclass of both rm:Organization and rm:Person, which are disjoint",
            "axioms": [
                "rm:PersonAndOrganization ⊑ rm:Organization",
                "rm:PersonAndOrganization ⊑ rm:Person",
                "rm:Organization owl:disjointWith rm:Person",
            ],
        }
    ]
