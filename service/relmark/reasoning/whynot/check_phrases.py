"""Comparisons and FILTER NOT EXISTS guards in words, with the values that decide them."""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from relmark.reasoning.rules.model import Pattern
from relmark.reasoning.whynot.conditions import (
    COMPARISON,
    VARIABLE,
    Condition,
    as_number,
    compare_numbers,
    is_distinctness,
    is_type,
    pattern_terms,
    pattern_text,
)
from relmark.reasoning.whynot.phrases import Phrases
from relmark.reasoning.whynot.wording import VERBS, humane, plain_number


def compare_words(ph: Phrases, condition: Condition, met: bool) -> dict:
    match = COMPARISON.match(condition.expression)
    if match is None:
        return {"text": condition.expression}
    sides = []
    values: dict[str, str | None] = {}
    for side in ("left", "right"):
        token = match[side]
        names = VARIABLE.findall(token)
        if names:
            found = ph.search.values(names[0])
            value = found[0] if found else None
            values[names[0]] = ph.label(value) if value is not None else None
            sides.append((names[0], value, ph.variable_words(names[0], value)))
        else:
            sides.append((None, token, token))
    verb = VERBS[ph.lang][match["op"]][0 if met else 1]
    text = f"{sides[0][2]} {verb} {sides[1][2]}"
    entry: dict = {"text": text, "expression": condition.expression, "values": values}
    thresholds = [ph.short(ph.roles.lookups[n].value) for n, _, _ in sides if n in ph.roles.lookups]
    if thresholds:
        entry["threshold"] = thresholds[0]
    if not met:
        counted = [n for n, _, _ in sides if n in ph.roles.counts]
        left, right = as_number(sides[0][1]), as_number(sides[1][1])
        if counted and left is not None and right is not None and match["op"] in (">=", ">"):
            missing = right - left + (1 if match["op"] == ">" else 0)
            counted_var = ph.roles.counts[counted[0]]
            noun = (
                ph.label(ox.NamedNode(ph.roles.noun_of[counted_var]))
                if counted_var in ph.roles.noun_of
                else humane(counted_var)
            )
            key = "one_more" if missing == 1 else "n_more"
            entry["suggestion"] = ph.words[key].format(
                missing=plain_number(missing),
                noun=noun,
                focus=ph.focus_noun(),
                cls=ph.cls(),
            )
            entry["text"] = f"{text}: {entry['suggestion']}"
    return entry


def absent_words(ph: Phrases, condition: Condition, blocked: bool) -> str:
    inner_vars = sorted(
        {
            t.value
            for p in condition.patterns
            for t in pattern_terms(p)
            if isinstance(t, ox.Variable)
        }
        - ph.search.bound
    )
    inner_sparql = condition.sparql[len("FILTER NOT EXISTS ") :].strip()[1:-1]
    facts = []
    if blocked:
        rows = ph.search.select(inner_vars, [inner_sparql], limit=5)
        row = rows[0] if rows else {}
        by_subject: dict[str, list[Pattern]] = {}
        for pattern in condition.patterns:
            by_subject.setdefault(str(pattern.subject), []).append(pattern)
        for patterns in by_subject.values():
            facts.append(facts_words(ph, patterns, row))
        description = "; ".join(facts)
        checks = []
        for expression in condition.inner_filters:
            if is_distinctness(expression):
                continue
            shown = with_values(ph, expression, row)
            if shown:
                checks.append(shown)
        if checks:
            description += " (" + ph.words["and"].join(checks) + ")"
        return ph.words["absent_blocked"].format(description=description)
    by_subject = {}
    for pattern in condition.patterns:
        by_subject.setdefault(str(pattern.subject), []).append(pattern)
    for patterns in by_subject.values():
        subject = patterns[0].subject
        if isinstance(subject, ox.Variable) and subject.value not in ph.search.bound:
            noun, detail = ph.describe_group(patterns, subject.value)
            facts.append(f"{noun}{detail}")
        elif all(isinstance(p.object, ox.Variable) for p in patterns):
            facts.append(
                ph.words["missing"].format(
                    subject=ph.subject_prefix(subject),
                    property=", ".join(ph.label(p.predicate) for p in patterns),
                )
            )
        else:
            facts.append(facts_words(ph, patterns, {}))
    description = "; ".join(facts)
    if condition.inner_filters:
        description = inner_checks(ph, condition, inner_sparql) or description
    return ph.words["absent_ok"].format(description=description)


def inner_checks(ph: Phrases, condition: Condition, inner_sparql: str) -> str:
    """A guard's comparisons with the values its patterns find (which fail: it is met)."""
    patterns_only = " ".join(pattern_text(p) for p in condition.patterns)
    names = sorted(
        {
            t.value
            for p in condition.patterns
            for t in pattern_terms(p)
            if isinstance(t, ox.Variable)
        }
        - ph.search.bound
    )
    rows = ph.search.select(names, [patterns_only], limit=1)
    if not rows:
        return ""
    row = rows[0]
    checks = []
    for expression in condition.inner_filters:
        match = COMPARISON.match(expression)
        if match is None or is_distinctness(expression):
            continue
        sides = []
        numbers = []
        for side in ("left", "right"):
            found = VARIABLE.findall(match[side])
            if found:
                value = row.get(found[0])
                if value is None:
                    values = ph.search.values(found[0])
                    value = values[0] if values else None
                sides.append(ph.variable_words(found[0], value))
                numbers.append(as_number(value))
            else:
                sides.append(match[side])
                numbers.append(as_number(match[side]))
        truth = compare_numbers(match["op"], *numbers)
        verb = VERBS[ph.lang][match["op"]][0 if truth else 1]
        checks.append(f"{sides[0]} {verb} {sides[1]}")
    return ph.words["and"].join(checks)


def facts_words(ph: Phrases, patterns: Sequence[Pattern], row: dict) -> str:
    """Patterns about one subject, in words, with a guard solution's values."""

    def shown(term: object) -> str:
        if isinstance(term, ox.Variable):
            if term.value in row:
                return ph.label(row[term.value])
            return ph.term_words(term)
        return ph.label(term)

    subject = patterns[0].subject
    kinds = [
        f"{ph.label(p.object)} ({ph.short(p.object.value)})"
        for p in patterns
        if is_type(p) and isinstance(p.object, ox.NamedNode)
    ]
    rest = [f"{ph.label(p.predicate)} {shown(p.object)}" for p in patterns if not is_type(p)]
    if subject == ox.Variable(ph.focus) and not kinds:
        return ", ".join(rest)
    head = shown(subject)
    if kinds:
        head = f"{' '.join(kinds)} {head}"
    return f"{head}: {', '.join(rest)}" if rest else head


def with_values(ph: Phrases, expression: str, row: dict) -> str:
    match = COMPARISON.match(expression)
    if match is None:
        return expression
    sides = []
    for side in ("left", "right"):
        names = VARIABLE.findall(match[side])
        if names:
            name = names[0]
            value = row.get(name)
            if value is None:
                found = ph.search.values(name)
                value = found[0] if found else None
            sides.append(ph.variable_words(name, value))
        else:
            sides.append(match[side])
    return f"{sides[0]} {VERBS[ph.lang][match['op']][0]} {sides[1]}"
