"""A why-not question answered: every rule concluding the class, nearest first."""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox

from relmark.reasoning.rules.model import Rule
from relmark.reasoning.whynot.conditions import RDF_TYPE, is_type
from relmark.reasoning.whynot.evaluator import evaluate_rule
from relmark.reasoning.whynot.facts import DistinctFacts
from relmark.reasoning.whynot.wording import WORDS
from relmark.stores.base import Store


def rules_concluding(rules: Iterable[Rule], class_iri: str) -> list[Rule]:
    """The rules whose template types their focus as ``class_iri``."""
    found = []
    for rule in rules:
        for pattern in rule.conclusions:
            if (
                is_type(pattern)
                and isinstance(pattern.object, ox.NamedNode)
                and pattern.object.value == class_iri
                and isinstance(pattern.subject, ox.Variable)
                and pattern.subject.value == rule.focus
            ):
                found.append(rule)
                break
    return found


def why_not(
    store: Store, rules: Iterable[Rule], iri: str, class_iri: str, lang: str = "en"
) -> dict:
    """For each rule concluding ``class_iri``: its conditions met and unmet for ``iri``.

    ``holds`` says whether the store asserts or infers the class already; candidates come
    nearest first (fewest unmet conditions), and ``nearest`` is the first unmet condition
    of the nearest one, in words.
    """
    words = WORDS[lang if lang in WORDS else "en"]
    node, cls = ox.NamedNode(iri), ox.NamedNode(class_iri)
    holds = bool(
        store.query(
            f"ASK {{ ?s <{RDF_TYPE}> ?c }}",
            substitutions={"s": node, "c": cls},
        )
    )
    labels: dict = {}
    concluding = rules_concluding(rules, class_iri)
    facts = DistinctFacts.of(store) if concluding else store
    candidates = [evaluate_rule(facts, rule, iri, class_iri, lang, labels) for rule in concluding]
    candidates.sort(key=lambda c: (len(c["unmet"]), c["rule"]))
    nearest = None
    if not holds:
        for candidate in candidates:
            if candidate["unmet"]:
                first = candidate["unmet"][0]
                nearest = first.get("suggestion") or first["text"]
                break
    result = {
        "iri": iri,
        "class": class_iri,
        "lang": lang,
        "holds": holds,
        "nearest": nearest,
        "candidates": candidates,
    }
    if not candidates:
        result["detail"] = words["no_rule"]
    return result


def why_not_text(answer: dict) -> str:
    """The answer as indented text for a terminal."""
    italian = answer.get("lang") == "it"
    verdict = (
        ("È" if answer["holds"] else "NON è")
        if italian
        else ("IS" if answer["holds"] else "is NOT")
    )
    nearest, rule, why = (
        ("più vicina", "regola", "perché") if italian else ("nearest", "rule", "why")
    )
    lines = [f"{answer['iri']}  {verdict}  {answer['class']}"]
    if answer.get("detail"):
        lines.append(f"  {answer['detail']}")
    if answer.get("nearest"):
        lines.append(f"  {nearest}: {answer['nearest']}")
    for candidate in answer["candidates"]:
        lines.append(f"  {rule} {candidate['rule']}: {candidate['label']}")
        lines.append(f"    {why}: {candidate['why']}")
        for entry in candidate["unmet"]:
            lines.append(f"    ✗ {entry['text']}")
        for entry in candidate["met"]:
            lines.append(f"    ✓ {entry['text']}")
    return "\n".join(lines)
