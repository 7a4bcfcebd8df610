"""One condition's entry in the answer: met, unmet, or not checked (it depends on a
failed one, so nothing is claimed about it)."""

from __future__ import annotations

import pyoxigraph as ox

from relmark.reasoning.whynot.check_phrases import absent_words, compare_words
from relmark.reasoning.whynot.conditions import Condition, projection_of
from relmark.reasoning.whynot.fact_phrases import (
    count_words,
    group_words,
    missing_group,
    triple_words,
)
from relmark.reasoning.whynot.phrases import Phrases
from relmark.reasoning.whynot.wording import compact, humane


def met(ph: Phrases, condition: Condition) -> dict | None:
    kind = condition.kind
    if kind == "lookup":
        pattern = condition.patterns[0]
        if not isinstance(pattern.object, ox.Variable):
            return None
        value = ph.search.values(pattern.object.value, [condition.sparql])
        shown = ph.label(value[0]) if value else "?"
        text = f"{ph.label(pattern.subject)} = {shown} ({ph.short(pattern.subject.value)})"
        return {"text": text, "kind": kind}
    if kind in ("type", "value", "link"):
        return {"text": triple_words(ph, condition, met=True), "kind": kind}
    if kind == "group":
        return {"text": group_words(ph, condition, met=True), "kind": kind}
    if kind == "count":
        return {"text": count_words(ph, condition), "kind": kind}
    if kind == "compare":
        return {**compare_words(ph, condition, met=True), "kind": kind}
    return {"text": absent_words(ph, condition, blocked=False), "kind": kind}


def unmet(ph: Phrases, condition: Condition) -> dict:
    kind = condition.kind
    entry: dict = {"kind": kind, "condition": compact(condition.sparql)}
    if kind in ("type", "value", "link", "lookup"):
        entry["text"] = triple_words(ph, condition, met=False)
    elif kind == "group":
        entry.update(missing_group(ph, condition))
    elif kind == "count":
        entry["text"] = ph.words["none_found"].format(
            noun=", ".join(
                ph.label(ox.NamedNode(ph.roles.noun_of[c]))
                for c in condition.counts.values()
                if c in ph.roles.noun_of
            )
            or projection_of(condition.sparql),
            detail="",
        )
    elif kind == "compare":
        entry.update(compare_words(ph, condition, met=False))
    else:
        entry["text"] = absent_words(ph, condition, blocked=True)
    return entry


def unchecked(ph: Phrases, condition: Condition, depends: list[str]) -> dict:
    what = ", ".join(humane(name) for name in depends)
    return {
        "kind": "unchecked",
        "condition": compact(condition.sparql),
        "text": ph.words["not_checked"].format(what=what),
    }
