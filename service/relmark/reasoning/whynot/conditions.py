"""A rule's WHERE as an ordered list of conditions about its focus.

The triple patterns about the resource one by one, each other thing the rule needs as one
group, the comparisons of its FILTERs, its FILTER NOT EXISTS guards and its counting
sub-selects. The order is the rule's own (the resource's facts first, then the facts
linked to them, then comparisons, guards and counts), so "the nearest unmet condition" is
the first one the rule would stumble on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyoxigraph as ox

from relmark.reasoning.rules.model import Pattern, Rule
from relmark.sparql import lexer

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

_CONSTRUCT = lexer.keyword("CONSTRUCT")
_FILTER = lexer.keyword("FILTER")
_EXISTS = re.compile(r"(NOT\s+)?EXISTS\s*", re.IGNORECASE)
_SPACE = re.compile(r"\s*")
_CALL = re.compile(r"[\w:]*\s*")

VARIABLE = re.compile(r"[?$]([A-Za-z0-9_]+)")


COMPARISON = re.compile(
    r"^\s*(?P<left>STR\s*\(\s*[?$]\w+\s*\)|[?$]\w+|[-+]?\d+(?:\.\d+)?|true|false)\s*"
    r"(?P<op>>=|<=|!=|=|<|>)\s*"
    r"(?P<right>STR\s*\(\s*[?$]\w+\s*\)|[?$]\w+|[-+]?\d+(?:\.\d+)?|true|false)\s*$",
    re.IGNORECASE,
)


_COUNT = re.compile(
    r"\(\s*COUNT\s*\(\s*(?:DISTINCT\s+)?[?$](\w+)\s*\)\s+AS\s+[?$](\w+)\s*\)", re.IGNORECASE
)


@dataclass
class Condition:
    """One thing a rule needs: SPARQL to join with the conditions met so far, and its parts."""

    kind: str  # "type", "value", "link", "group", "lookup", "compare", "absent", "count"
    sparql: str
    patterns: tuple[Pattern, ...] = ()
    expression: str = ""
    attached: list[str] = field(default_factory=list)  # distinctness filters checked with it
    inner_filters: tuple[str, ...] = ()
    counts: dict[str, str] = field(default_factory=dict)  # alias -> counted variable

    @property
    def variables(self) -> set[str]:
        found = {
            t.value for p in self.patterns for t in pattern_terms(p) if isinstance(t, ox.Variable)
        }
        found |= set(VARIABLE.findall(self.expression))
        for text in self.attached:
            found |= set(VARIABLE.findall(text))
        if self.kind == "count":
            found |= set(VARIABLE.findall(projection_of(self.sparql)))
        return found


def pattern_terms(pattern: Pattern) -> tuple:
    return (pattern.subject, pattern.predicate, pattern.object)


def pattern_text(pattern: Pattern) -> str:
    return f"{pattern.subject} {pattern.predicate} {pattern.object} ."


def prologue_of(rule: Rule) -> str:
    """The PREFIX/BASE lines (and comments) before the rule's CONSTRUCT."""
    match = _CONSTRUCT.search(lexer.masked(rule.sparql))
    return rule.sparql[: match.start()] if match else ""


def _closing(masked: str, start: int) -> int:
    """Position after the bracket that closes the one at ``start``, in masked text."""
    return lexer.closing(masked, start) + 1


def _match_end(pattern: re.Pattern[str], text: str, position: int) -> int:
    """Where ``pattern``, which also matches the empty string, ends from ``position``."""
    found = pattern.match(text, position)
    assert found is not None, "the pattern matches the empty string"
    return found.end()


def _top_level_parts(rule: Rule) -> tuple[list[str], list[str]]:
    """The top-level FILTER expressions (not EXISTS) and sub-select texts of the WHERE."""
    text = rule.sparql
    masked = lexer.masked(text)
    construct = _CONSTRUCT.search(masked)
    assert construct is not None, "a parsed rule is a CONSTRUCT"
    template = masked.index("{", construct.end())
    after = _closing(masked, template)
    body = masked.index("{", after)
    end = _closing(masked, body) - 1
    filters: list[str] = []
    subselects: list[str] = []
    position = body + 1
    while position < end:
        char = masked[position]
        keyword = _FILTER.match(masked, position)
        if keyword:
            after_keyword = _match_end(_SPACE, masked, keyword.end())
            exists = _EXISTS.match(masked, after_keyword)
            if exists:
                position = _closing(masked, exists.end())
                continue
            if masked[after_keyword : after_keyword + 1] == "(":
                close = _closing(masked, after_keyword)
                filters.append(text[after_keyword + 1 : close - 1].strip())
            else:  # a function call, as FILTER isIRI(?x): the call is the expression
                close = _closing(masked, _match_end(_CALL, masked, after_keyword))
                filters.append(text[after_keyword:close].strip())
            position = close
            continue
        if char == "{":
            close = _closing(masked, position)
            if re.match(r"\s*SELECT\b", masked[position + 1 : close], re.IGNORECASE):
                subselects.append(text[position:close])
            position = close
            continue
        position += 1
    return filters, subselects


def _conjuncts(expression: str) -> list[str]:
    """``a && b && c`` split at its top level (parentheses respected)."""
    parts, depth, last = [], 0, 0
    masked = lexer.masked(expression)
    i = 0
    while i < len(masked):
        if masked[i] == "(":
            depth += 1
        elif masked[i] == ")":
            depth -= 1
        elif masked.startswith("&&", i) and depth == 0:
            parts.append(expression[last:i].strip())
            last = i + 2
            i += 1
        i += 1
    parts.append(expression[last:].strip())
    while (
        len(parts) == 1
        and parts[0].startswith("(")
        and _closing(lexer.masked(parts[0]), 0) == len(parts[0])
    ):
        inner = parts[0][1:-1].strip()
        return _conjuncts(inner)
    return [p for p in parts if p]


def is_distinctness(expression: str) -> bool:
    """``?a != ?b`` or ``STR(?a) < STR(?b)``: two resources must differ, not a measure."""
    match = COMPARISON.match(expression)
    if not match:
        return False
    left, op, right = match["left"], match["op"], match["right"]
    both_vars = left[0] in "?$Ss" and right[0] in "?$Ss"
    stringified = left.upper().startswith("STR") and right.upper().startswith("STR")
    return both_vars and (op == "!=" or (stringified and op in "<>"))


def projection_of(subselect: str) -> str:
    match = re.search(r"SELECT\s+(.*?)\s*(WHERE\s*)?\{", subselect, re.IGNORECASE | re.DOTALL)
    return match.group(1) if match else ""


def conditions_of(rule: Rule) -> list[Condition]:
    """The rule's WHERE as an ordered list of conditions about its focus."""
    focus = rule.focus
    lookups: list[Condition] = []
    ordered: list[Condition] = []
    bound = {focus}
    groups: dict[str, list[Pattern]] = {}
    for pattern in rule.premises:
        key = pattern.subject.value if isinstance(pattern.subject, ox.Variable) else None
        if key is None:
            lookups.append(Condition("lookup", pattern_text(pattern), (pattern,)))
            continue
        groups.setdefault(key, []).append(pattern)
    pending = dict(groups)
    while pending:
        chosen = None
        for subject, patterns in pending.items():
            variables = {
                t.value for p in patterns for t in pattern_terms(p) if isinstance(t, ox.Variable)
            }
            if subject in bound or variables & bound:
                chosen = subject
                break
        if chosen is None:
            chosen = next(iter(pending))
        patterns = pending.pop(chosen)
        if chosen in bound:
            for pattern in patterns:
                kind = "type" if is_type(pattern) else "value"
                if isinstance(pattern.object, ox.Variable) and pattern.object.value in bound:
                    kind = "link"
                ordered.append(Condition(kind, pattern_text(pattern), (pattern,)))
                bound |= {t.value for t in pattern_terms(pattern) if isinstance(t, ox.Variable)}
        else:
            text = " ".join(pattern_text(p) for p in patterns)
            ordered.append(Condition("group", text, tuple(patterns)))
            bound |= {
                t.value for p in patterns for t in pattern_terms(p) if isinstance(t, ox.Variable)
            }
    filters, subselects = _top_level_parts(rule)
    for text in subselects:
        counts = {alias: counted for counted, alias in _COUNT.findall(projection_of(text))}
        counted_over = tuple(p for s in rule.subselects for p in s.patterns if _in_text(p, text))
        ordered.append(Condition("count", text, counted_over, counts=counts))
    comparisons: list[Condition] = []
    for expression in filters:
        for conjunct in _conjuncts(expression):
            if is_distinctness(conjunct):
                _attach(ordered, conjunct)
            else:
                comparisons.append(Condition("compare", f"FILTER ({conjunct})", (), conjunct))
    absents = []
    for guard in rule.guards:
        inner = _guard_inner(guard.ask_sparql, prologue_of(rule))
        inner_filters = tuple(c for text in _inner_filters(inner) for c in _conjuncts(text))
        absents.append(
            Condition(
                "absent",
                f"FILTER NOT EXISTS {{{inner}}}",
                tuple(guard.patterns),
                inner_filters=inner_filters,
            )
        )
    return lookups + ordered + comparisons + absents


def _in_text(pattern: Pattern, text: str) -> bool:
    names = {t.value for t in pattern_terms(pattern) if isinstance(t, ox.Variable)}
    return all(f"?{name}" in text or f"${name}" in text for name in names)


def is_type(pattern: Pattern) -> bool:
    return isinstance(pattern.predicate, ox.NamedNode) and pattern.predicate.value == RDF_TYPE


def _attach(ordered: list[Condition], expression: str) -> None:
    """Check a distinctness filter with the condition that binds the last of its variables."""
    needed = set(VARIABLE.findall(expression))
    seen: set[str] = set()
    for condition in ordered:
        seen |= condition.variables
        if needed <= seen:
            condition.attached.append(expression)
            return
    if ordered:
        ordered[-1].attached.append(expression)


def _guard_inner(ask_sparql: str, prologue: str) -> str:
    text = ask_sparql[len(prologue) :] if ask_sparql.startswith(prologue) else ask_sparql
    start = text.index("{")
    end = _closing(lexer.masked(text), start)
    return text[start + 1 : end - 1]


def _inner_filters(inner: str) -> list[str]:
    masked = lexer.masked(inner)
    found = []
    for match in re.finditer(r"\bFILTER\s*\(", masked, re.IGNORECASE):
        start = match.end() - 1
        found.append(inner[start + 1 : _closing(masked, start) - 1].strip())
    return found


def as_number(term: object) -> Decimal | None:
    text = term.value if isinstance(term, ox.Literal) else term
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError, TypeError):
        return None


def compare_numbers(op: str, left: Decimal | None, right: Decimal | None) -> bool:
    if left is None or right is None:
        return op == "!="
    return {
        ">=": left >= right,
        ">": left > right,
        "<=": left <= right,
        "<": left < right,
        "=": left == right,
        "!=": left != right,
    }[op]
