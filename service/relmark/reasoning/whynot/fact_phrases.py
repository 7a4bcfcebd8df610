"""Conditions about facts in words: a triple, a group of facts about another resource, a
count; for a missing fact, how many there are and what one more would do."""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from relmark.reasoning.rules.model import Pattern
from relmark.reasoning.whynot.conditions import Condition, pattern_text, projection_of
from relmark.reasoning.whynot.phrases import Phrases
from relmark.reasoning.whynot.wording import ORDINALS, humane


def triple_words(ph: Phrases, condition: Condition, met: bool) -> str:
    pattern = condition.patterns[0]
    subject = ph.subject_prefix(pattern.subject)
    if condition.kind == "type" and isinstance(pattern.object, ox.NamedNode):
        key = "is_a" if met else "not_a"
        text = ph.words[key].format(
            noun=ph.label(pattern.object), short=ph.short(pattern.object.value)
        )
        return subject + text
    prop = ph.label(pattern.predicate)
    if met:
        extra = [condition.sparql, *(f"FILTER ({a})" for a in condition.attached)]
        if isinstance(pattern.object, ox.Variable):
            value = ph.names(ph.search.values(pattern.object.value, extra))
        else:
            value = ph.label(pattern.object)
        return ph.words["has"].format(subject=subject, property=prop, value=value)
    actual = actual_values(ph, pattern)
    if isinstance(pattern.object, ox.Variable) and condition.kind != "link":
        return ph.words["missing"].format(subject=subject, property=prop)
    wanted = ph.term_words(pattern.object)
    if actual:
        return ph.words["needs_value"].format(
            subject=subject, property=prop, actual=ph.names(actual), wanted=wanted
        )
    if condition.kind == "link":
        return ph.words["link_missing"].format(subject=subject, property=prop, wanted=wanted)
    return ph.words["missing"].format(subject=subject, property=prop)


def actual_values(ph: Phrases, pattern: Pattern) -> list:
    """The values the subject has for the pattern's property (whatever they are)."""
    if not isinstance(pattern.predicate, ox.NamedNode):
        return []
    probe = Pattern(pattern.subject, pattern.predicate, ox.Variable("whynot_actual"))
    return ph.search.values("whynot_actual", [pattern_text(probe)])


def group_subject(ph: Phrases, condition: Condition) -> str:
    subject = condition.patterns[0].subject
    return subject.value if isinstance(subject, ox.Variable) else ""


def group_words(ph: Phrases, condition: Condition, met: bool) -> str:
    subject = group_subject(ph, condition)
    noun, detail = ph.describe_group(condition.patterns, subject)
    if met:
        extra = [condition.sparql, *(f"FILTER ({a})" for a in condition.attached)]
        found = ph.search.values(subject, extra)
        return ph.words["found"].format(noun=noun, names=ph.names(found), detail=detail)
    return ph.words["none_found"].format(noun=noun, detail=detail)


def missing_group(ph: Phrases, condition: Condition) -> dict:
    """A missing fact: how many there are, how many the rule needs, what one more does."""
    subject = group_subject(ph, condition)
    noun, detail = ph.describe_group(condition.patterns, subject)
    plain_noun = (
        ph.label(ox.NamedNode(ph.roles.noun_of[subject]))
        if subject in ph.roles.noun_of
        else (humane(subject))
    )
    shape = group_shape(condition.patterns, subject)
    copies = [
        c
        for c in ph.conditions
        if c.kind == "group" and group_shape(c.patterns, group_subject(ph, c)) == shape
    ]
    needed = len(copies)
    have = len(ph.search.values(subject, [condition.sparql], limit=needed + 5))
    if not condition.attached and needed == 1:
        have = 0
    missing = max(needed - have, 1)
    focus, cls = ph.focus_noun(), ph.cls()
    if missing == 1 and needed == 1:
        suggestion = ph.words["one_more"].format(noun=plain_noun, focus=focus, cls=cls)
    elif missing == 1 and ph.lang == "en" and needed in ORDINALS:
        suggestion = ph.words["nth"].format(
            ordinal=ORDINALS[needed], noun=plain_noun, focus=focus, cls=cls
        )
    else:
        suggestion = ph.words["n_more"].format(
            missing=missing, noun=plain_noun, focus=focus, cls=cls
        )
    if needed > 1:
        state = ph.words["have"].format(count=have, noun=noun, detail=detail, needed=needed)
    else:
        state = ph.words["none_found"].format(noun=noun, detail=detail)
    return {
        "text": f"{suggestion} ({state})",
        "suggestion": suggestion,
        "have": have,
        "needed": needed,
    }


def count_words(ph: Phrases, condition: Condition) -> str:
    parts = []
    for alias, counted in condition.counts.items():
        value = ph.search.values(alias, [condition.sparql])
        ph.search.bound.add(alias)
        if counted not in ph.roles.noun_of:
            continue
        parts.append(ph.variable_words(alias, value[0] if value else None))
    return "; ".join(parts) or projection_of(condition.sparql)


def group_shape(patterns: Sequence[Pattern], subject: str) -> tuple:
    """A group's patterns with its own variable renamed: equal shapes count the same thing."""

    def name(term: object) -> str:
        if isinstance(term, ox.Variable) and term.value == subject:
            return "?_"
        return str(term)

    return tuple(sorted((name(p.subject), name(p.predicate), name(p.object)) for p in patterns))
