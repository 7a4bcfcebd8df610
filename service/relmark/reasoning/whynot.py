"""Why not: which conditions of each rule concluding a class hold for a resource, and which not.

GraphDB and RDFox explain what *was* inferred; a marketer also asks why a customer is *not*
an Advocate and what would change that. For every rule concluding the class, the rule's
WHERE is split into conditions (the triple patterns about the resource one by one, each
other thing the rule needs as one group, the comparisons of its FILTERs, its FILTER NOT
EXISTS guards and its counting sub-selects) and they are tried in order, each together
with every condition already met (a greedy search, through ``store.query`` with the
resource bound as the rule's focus). A condition that fails is reported with the numbers
behind it ("satisfaction level 0.45 is below the threshold 0.6 (rm:SatisfactionThreshold)")
and, where it is a missing fact, what one more of it would do ("one referral more would make
this customer relationship advocate"). Conditions that depend on a failed one are listed as
not checked, so nothing is claimed about them.

The greedy order is the rule's own (the resource's facts first, then the facts linked to
them, then comparisons, guards and counts), so "the nearest unmet condition" is the first
one the rule would stumble on; candidates are sorted by how few conditions they miss.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyoxigraph as ox

from relmark.reasoning.rules import (
    NOT_RULE_INPUT,
    SHARED_FACTS,
    Pattern,
    Rule,
    distinct_workspace,
    rule_inputs,
)
from relmark.stores.base import Store
from relmark.vocab import INFERRED_GRAPH, RM

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
THRESHOLD_VALUE = RM + "thresholdValue"

#: The comparisons a FILTER conjunct may make, with the words for "holds" and "fails".
_VERBS = {
    "en": {
        ">=": ("is at or above", "is below"),
        ">": ("is above", "is not above"),
        "<=": ("is at or below", "is above"),
        "<": ("is below", "is not below"),
        "=": ("equals", "differs from"),
        "!=": ("differs from", "equals"),
    },
    "it": {
        ">=": ("è pari o superiore a", "è inferiore a"),
        ">": ("è superiore a", "non è superiore a"),
        "<=": ("è pari o inferiore a", "è superiore a"),
        "<": ("è inferiore a", "non è inferiore a"),
        "=": ("è uguale a", "è diverso da"),
        "!=": ("è diverso da", "è uguale a"),
    },
}

_WORDS = {
    "en": {
        "is_a": "is a {noun} ({short})",
        "not_a": "is not a {noun} ({short})",
        "has": "{subject}{property} {value}",
        "missing": "{subject}no {property} recorded",
        "needs_value": "{subject}{property} is {actual}, the rule needs {wanted}",
        "link_missing": "{subject}{property} is not {wanted}",
        "found": "{noun} {names}{detail}",
        "none_found": "no {noun}{detail}",
        "with": " with ",
        "one_more": "one {noun} more would make this {focus} {cls}",
        "nth": "a {ordinal} {noun} would make this {focus} {cls}",
        "n_more": "{missing} more {noun} would make this {focus} {cls}",
        "have": "{count} {noun}{detail}, the rule needs {needed}",
        "threshold": "the threshold {value} ({short})",
        "absent_ok": "none: {description}",
        "absent_blocked": "{description} rules it out",
        "not_checked": "not checked: it depends on {what}, which is missing",
        "of": "{property} {value} of {subject}",
        "count_of": "number of {noun} {value}",
        "any": "any",
        "and": " and ",
        "resource": "resource",
        "no_rule": "no rule concludes this class: it can only be asserted",
    },
    "it": {
        "is_a": "è {noun} ({short})",
        "not_a": "non è {noun} ({short})",
        "has": "{subject}{property} {value}",
        "missing": "{subject}{property} non registrato",
        "needs_value": "{subject}{property} è {actual}, la regola richiede {wanted}",
        "link_missing": "{subject}{property} non è {wanted}",
        "found": "{noun} {names}{detail}",
        "none_found": "nessun {noun}{detail}",
        "with": " con ",
        "one_more": "con 1 {noun} in più ({focus}) sarebbe {cls}",
        "nth": "con 1 {noun} in più ({focus}) sarebbe {cls}",
        "n_more": "con {missing} {noun} in più ({focus}) sarebbe {cls}",
        "have": "{count} {noun}{detail}, la regola ne richiede {needed}",
        "threshold": "la soglia {value} ({short})",
        "absent_ok": "nessuno: {description}",
        "absent_blocked": "{description} lo esclude",
        "not_checked": "non verificata: dipende da {what}, che manca",
        "of": "{property} {value} di {subject}",
        "count_of": "numero di {noun} {value}",
        "any": "qualsiasi",
        "and": " e ",
        "resource": "risorsa",
        "no_rule": "nessuna regola conclude questa classe: può solo essere asserita",
    },
}

_ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}

_VARIABLE = re.compile(r"[?$]([A-Za-z0-9_]+)")
_COMPARISON = re.compile(
    r"^\s*(?P<left>STR\s*\(\s*[?$]\w+\s*\)|[?$]\w+|[-+]?\d+(?:\.\d+)?|true|false)\s*"
    r"(?P<op>>=|<=|!=|=|<|>)\s*"
    r"(?P<right>STR\s*\(\s*[?$]\w+\s*\)|[?$]\w+|[-+]?\d+(?:\.\d+)?|true|false)\s*$",
    re.IGNORECASE,
)
_COUNT = re.compile(
    r"\(\s*COUNT\s*\(\s*(?:DISTINCT\s+)?[?$](\w+)\s*\)\s+AS\s+[?$](\w+)\s*\)", re.IGNORECASE
)


# --- the conditions of a rule -----------------------------------------------------------


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
        found = {t.value for p in self.patterns for t in _terms(p) if isinstance(t, ox.Variable)}
        found |= set(_VARIABLE.findall(self.expression))
        for text in self.attached:
            found |= set(_VARIABLE.findall(text))
        if self.kind == "count":
            found |= set(_VARIABLE.findall(_projection(self.sparql)))
        return found


def _terms(pattern: Pattern) -> tuple:
    return (pattern.subject, pattern.predicate, pattern.object)


def _pattern_text(pattern: Pattern) -> str:
    return f"{pattern.subject} {pattern.predicate} {pattern.object} ."


def prologue_of(rule: Rule) -> str:
    """The PREFIX/BASE lines (and comments) before the rule's CONSTRUCT."""
    match = re.search(r"^\s*CONSTRUCT\b", rule.sparql, re.IGNORECASE | re.MULTILINE)
    return rule.sparql[: match.start()] if match else ""


def _mask(text: str) -> str:
    """``text`` with comments, strings and IRIs blanked out (positions kept)."""
    out = list(text)
    pattern = re.compile(r"#[^\n]*|<[^<>\"{}|^`\\\s]*>|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'")
    for match in pattern.finditer(text):
        if match.group(0).startswith("<") and not re.match(r"<[^\s>]*[:/#]", match.group(0)):
            continue  # a less-than sign, not an IRI
        for i in range(match.start(), match.end()):
            out[i] = " "
    return "".join(out)


def _closing(masked: str, start: int) -> int:
    """Position after the bracket that closes the one at ``start``."""
    depth = 0
    for position in range(start, len(masked)):
        if masked[position] in "({[":
            depth += 1
        elif masked[position] in ")}]":
            depth -= 1
            if depth == 0:
                return position + 1
    return len(masked)


def _top_level_parts(rule: Rule) -> tuple[list[str], list[str]]:
    """The top-level FILTER expressions (not EXISTS) and sub-select texts of the WHERE."""
    text = rule.sparql
    masked = _mask(text)
    construct = re.search(r"\bCONSTRUCT\b", masked, re.IGNORECASE)
    template = masked.index("{", construct.end())
    after = _closing(masked, template)
    body = masked.index("{", after)
    end = _closing(masked, body) - 1
    filters: list[str] = []
    subselects: list[str] = []
    position = body + 1
    while position < end:
        char = masked[position]
        keyword = re.compile(r"FILTER\b\s*", re.IGNORECASE).match(masked, position)
        if keyword and (position == 0 or not re.match(r"[\w:?$]", masked[position - 1])):
            after_keyword = keyword.end()
            exists = re.compile(r"(NOT\s+)?EXISTS\s*", re.IGNORECASE).match(masked, after_keyword)
            if exists:
                position = _closing(masked, exists.end())
                continue
            close = _closing(masked, after_keyword)
            filters.append(text[after_keyword + 1 : close - 1].strip())
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
    masked = _mask(expression)
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
    while len(parts) == 1 and parts[0].startswith("(") and _closing(parts[0], 0) == len(parts[0]):
        inner = parts[0][1:-1].strip()
        return _conjuncts(inner)
    return [p for p in parts if p]


def _is_distinctness(expression: str) -> bool:
    """``?a != ?b`` or ``STR(?a) < STR(?b)``: two resources must differ, not a measure."""
    match = _COMPARISON.match(expression)
    if not match:
        return False
    left, op, right = match["left"], match["op"], match["right"]
    both_vars = left[0] in "?$Ss" and right[0] in "?$Ss"
    stringified = left.upper().startswith("STR") and right.upper().startswith("STR")
    return both_vars and (op == "!=" or (stringified and op in "<>"))


def _projection(subselect: str) -> str:
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
            lookups.append(Condition("lookup", _pattern_text(pattern), (pattern,)))
            continue
        groups.setdefault(key, []).append(pattern)
    pending = dict(groups)
    while pending:
        chosen = None
        for subject, patterns in pending.items():
            variables = {t.value for p in patterns for t in _terms(p) if isinstance(t, ox.Variable)}
            if subject in bound or variables & bound:
                chosen = subject
                break
        if chosen is None:
            chosen = next(iter(pending))
        patterns = pending.pop(chosen)
        if chosen in bound:
            for pattern in patterns:
                kind = "type" if _is_type(pattern) else "value"
                if isinstance(pattern.object, ox.Variable) and pattern.object.value in bound:
                    kind = "link"
                ordered.append(Condition(kind, _pattern_text(pattern), (pattern,)))
                bound |= {t.value for t in _terms(pattern) if isinstance(t, ox.Variable)}
        else:
            text = " ".join(_pattern_text(p) for p in patterns)
            ordered.append(Condition("group", text, tuple(patterns)))
            bound |= {t.value for p in patterns for t in _terms(p) if isinstance(t, ox.Variable)}
    filters, subselects = _top_level_parts(rule)
    for text in subselects:
        counts = {alias: counted for counted, alias in _COUNT.findall(_projection(text))}
        patterns = tuple(p for s in rule.subselects for p in s.patterns if _in_text(p, text))
        ordered.append(Condition("count", text, patterns, counts=counts))
    comparisons: list[Condition] = []
    for expression in filters:
        for conjunct in _conjuncts(expression):
            if _is_distinctness(conjunct):
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
    names = {t.value for t in _terms(pattern) if isinstance(t, ox.Variable)}
    return all(f"?{name}" in text or f"${name}" in text for name in names)


def _is_type(pattern: Pattern) -> bool:
    return isinstance(pattern.predicate, ox.NamedNode) and pattern.predicate.value == RDF_TYPE


def _attach(ordered: list[Condition], expression: str) -> None:
    """Check a distinctness filter with the condition that binds the last of its variables."""
    needed = set(_VARIABLE.findall(expression))
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
    end = _closing(_mask(text), start)
    return text[start + 1 : end - 1]


def _inner_filters(inner: str) -> list[str]:
    masked = _mask(inner)
    found = []
    for match in re.finditer(r"\bFILTER\s*\(", masked, re.IGNORECASE):
        start = match.end() - 1
        found.append(inner[start + 1 : _closing(masked, start) - 1].strip())
    return found


# --- evaluating them --------------------------------------------------------------------


class _Evaluator:
    """Evaluates one rule's conditions for one resource, greedily, and words the outcome."""

    def __init__(
        self, store: Store, rule: Rule, iri: str, class_iri: str, lang: str, labels: dict
    ) -> None:
        self.store = store
        self.rule = rule
        self.focus = rule.focus
        self.node = ox.NamedNode(iri)
        self.class_iri = class_iri
        self.lang = lang if lang in _WORDS else "en"
        self.words = _WORDS[self.lang]
        self.labels = labels
        self.prologue = prologue_of(rule)
        self.graphs = [None, *(g for g in store.graph_names() if g not in NOT_RULE_INPUT)]
        if INFERRED_GRAPH in store.graph_names():
            self.graphs.append(INFERRED_GRAPH)
        self.accepted: list[str] = []
        self.bound: set[str] = {self.focus}
        self.failed: set[str] = set()
        self.lookups: dict[str, ox.NamedNode] = {}  # variable -> threshold individual
        self.objects_of: dict[str, tuple[ox.Term, ox.NamedNode]] = {}  # var -> (subject, p)
        self.counts: dict[str, str] = {}
        self.noun_of: dict[str, str] = {}  # variable -> class IRI from "?v a C"
        self._focus_noun: str | None = None

    # --- queries ----------------------------------------------------------------------
    def _where(self, extra: Iterable[str] = ()) -> str:
        # VALUES … UNDEF puts the focus in scope, so it can be substituted in every query
        return "\n".join([f"VALUES ?{self.focus} {{ UNDEF }}", *self.accepted, *extra])

    def ask(self, extra: Iterable[str]) -> bool:
        query = f"{self.prologue}\nASK {{\n{self._where(extra)}\n}}"
        return bool(
            self.store.query(
                query, default_graph=self.graphs, substitutions={self.focus: self.node}
            )
        )

    def select(self, variables: Sequence[str], extra: Iterable[str] = (), limit: int = 20) -> list:
        names = sorted(set(variables) | {self.focus})
        projection = " ".join(f"?{n}" for n in names)
        query = (
            f"{self.prologue}\nSELECT DISTINCT {projection} WHERE {{\n{self._where(extra)}\n}}"
            f" ORDER BY {projection} LIMIT {limit}"
        )
        solutions = self.store.query(
            query, default_graph=self.graphs, substitutions={self.focus: self.node}
        )
        return [{n: s[n] for n in names if s[n] is not None} for s in solutions]

    def values(self, variable: str, extra: Iterable[str] = (), limit: int = 20) -> list:
        found = []
        for row in self.select([variable], extra, limit):
            if variable in row and row[variable] not in found:
                found.append(row[variable])
        return found

    # --- words ------------------------------------------------------------------------
    def label(self, term: object) -> str:
        if isinstance(term, ox.Literal):
            return term.value
        if not isinstance(term, ox.NamedNode):
            return str(term)
        key = (term.value, self.lang)
        if key not in self.labels:
            found: dict[str, str] = {}
            for solution in self.store.query(
                f"SELECT ?label ?s WHERE {{ ?s <{RDFS}label> ?label }}",
                substitutions={"s": term},
            ):
                literal = solution["label"]
                if isinstance(literal, ox.Literal):
                    found.setdefault(literal.language or "", literal.value)
            local = term.value.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
            self.labels[key] = found.get(self.lang) or found.get("en") or found.get("") or local
        return self.labels[key]

    def short(self, iri: str) -> str:
        return "rm:" + iri[len(RM) :] if iri.startswith(RM) else f"<{iri}>"

    def names(self, terms: Sequence) -> str:
        return ", ".join(self.label(t) for t in terms) if terms else self.words["any"]

    def subject_prefix(self, term: object) -> str:
        """``"Elisa Mariani: "`` for another resource; nothing for the resource asked about."""
        if isinstance(term, ox.Variable) and term.value == self.focus:
            return ""
        return self.term_words(term) + ": "

    def term_words(self, term: object) -> str:
        """A pattern position in words: a constant's label, a bound variable's value(s)."""
        if isinstance(term, ox.Variable):
            if term.value in self.bound and term.value not in self.failed:
                return self.names(self.values(term.value))
            return self.words["any"]
        return self.label(term)

    def focus_noun(self) -> str:
        """What the resource is, in words: the rule's type for it, else its own rm: type."""
        if self._focus_noun is None:
            self._focus_noun = self._find_focus_noun()
        return self._focus_noun

    def _find_focus_noun(self) -> str:
        focus = ox.Variable(self.focus)
        for condition in self.conditions:
            for pattern in condition.patterns:
                if (
                    condition.kind == "type"
                    and pattern.subject == focus
                    and isinstance(pattern.object, ox.NamedNode)
                ):
                    return self.label(pattern.object)
        types = sorted(
            solution["c"].value
            for solution in self.store.query(
                f"SELECT ?c ?s WHERE {{ ?s <{RDF_TYPE}> ?c }}", substitutions={"s": self.node}
            )
            if isinstance(solution["c"], ox.NamedNode) and solution["c"].value.startswith(RM)
        )
        return self.label(ox.NamedNode(types[0])) if types else self.words["resource"]

    def describe_group(self, patterns: Sequence[Pattern], subject: str) -> tuple[str, str]:
        """(noun, " with p1 v1, p2 v2") for the patterns about one fresh variable."""
        noun = ""
        details = []
        for pattern in patterns:
            if _is_type(pattern) and isinstance(pattern.object, ox.NamedNode):
                noun = f"{self.label(pattern.object)} ({self.short(pattern.object.value)})"
                self.noun_of[subject] = pattern.object.value
            elif isinstance(pattern.subject, ox.Variable) and pattern.subject.value == subject:
                details.append(f"{self.label(pattern.predicate)} {self.term_words(pattern.object)}")
            else:
                details.append(
                    f"{self.term_words(pattern.subject)} {self.label(pattern.predicate)} "
                    f"{self.term_words(pattern.object)}"
                )
        noun = noun or _humane(subject)
        detail = (self.words["with"] + ", ".join(details)) if details else ""
        return noun, detail

    def variable_words(self, variable: str, value: object) -> str:
        """What a variable in a comparison stands for, with its value."""
        shown = self.label(value) if value is not None else "?"
        if variable in self.lookups:
            return self.words["threshold"].format(
                value=shown, short=self.short(self.lookups[variable].value)
            )
        if variable in self.counts:
            counted = self.counts[variable]
            noun = (
                self.label(ox.NamedNode(self.noun_of[counted]))
                if counted in self.noun_of
                else (_humane(counted))
            )
            return self.words["count_of"].format(noun=noun, value=shown)
        if variable in self.objects_of:
            subject, predicate = self.objects_of[variable]
            if isinstance(subject, ox.NamedNode):
                return self.words["of"].format(
                    property=self.label(predicate), value=shown, subject=self.label(subject)
                )
            return f"{self.label(predicate)} {shown}"
        return f"{_humane(variable)} {shown}"

    # --- the search -------------------------------------------------------------------
    def italian(self, text: str) -> str:
        """Italian articulated prepositions: "inferiore a la soglia" → "inferiore alla soglia"."""
        if self.lang != "it":
            return text
        return text.replace(" a la ", " alla ").replace(" da la ", " dalla ")

    def run(self) -> dict:
        self.conditions = conditions_of(self.rule)
        self._learn_roles()
        met: list[dict] = []
        unmet: list[dict] = []
        unchecked: list[dict] = []
        for condition in self.conditions:
            variables = condition.variables
            depends = sorted(variables & self.failed)
            if depends:
                unchecked.append(self._unchecked(condition, depends))
                continue
            parts = [condition.sparql, *(f"FILTER ({a})" for a in condition.attached)]
            if self.ask(parts):
                entry = self._met(condition)
                self.accepted += parts
                self.bound |= variables
                if entry is not None:
                    entry["condition"] = _compact(" ".join(parts))
                    met.append(entry)
            else:
                unmet.append(self._unmet(condition))
                if condition.kind != "compare":
                    self.failed |= variables - self.bound
        for entry in met + unmet + unchecked:
            entry["text"] = self.italian(entry["text"])
            if "suggestion" in entry:
                entry["suggestion"] = self.italian(entry["suggestion"])
        return {
            "rule": self.rule.name,
            "label": self.rule.label_it if self.lang == "it" else self.rule.label,
            "why": (self.rule.why_it or self.rule.why) if self.lang == "it" else self.rule.why,
            "applies": not unmet and not unchecked,
            "unmet": unmet + unchecked,
            "met": met,
        }

    def _learn_roles(self) -> None:
        for condition in self.conditions:
            for pattern in condition.patterns:
                if isinstance(pattern.object, ox.Variable):
                    name = pattern.object.value
                    if (
                        isinstance(pattern.predicate, ox.NamedNode)
                        and pattern.predicate.value == THRESHOLD_VALUE
                        and isinstance(pattern.subject, ox.NamedNode)
                    ):
                        self.lookups[name] = pattern.subject
                    elif isinstance(pattern.predicate, ox.NamedNode) and not _is_type(pattern):
                        self.objects_of.setdefault(name, (pattern.subject, pattern.predicate))
                if (
                    _is_type(pattern)
                    and isinstance(pattern.subject, ox.Variable)
                    and isinstance(pattern.object, ox.NamedNode)
                ):
                    self.noun_of.setdefault(pattern.subject.value, pattern.object.value)
            self.counts.update(condition.counts)

    def _cls(self) -> str:
        return self.label(ox.NamedNode(self.class_iri))

    # --- met --------------------------------------------------------------------------
    def _met(self, condition: Condition) -> dict | None:
        kind = condition.kind
        if kind == "lookup":
            pattern = condition.patterns[0]
            if not isinstance(pattern.object, ox.Variable):
                return None
            value = self.values(pattern.object.value, [condition.sparql])
            shown = self.label(value[0]) if value else "?"
            text = f"{self.label(pattern.subject)} = {shown} ({self.short(pattern.subject.value)})"
            return {"text": text, "kind": kind}
        if kind in ("type", "value", "link"):
            return {"text": self._triple_words(condition, met=True), "kind": kind}
        if kind == "group":
            return {"text": self._group_words(condition, met=True), "kind": kind}
        if kind == "count":
            return {"text": self._count_words(condition), "kind": kind}
        if kind == "compare":
            return {**self._compare_words(condition, met=True), "kind": kind}
        return {"text": self._absent_words(condition, blocked=False), "kind": kind}

    def _triple_words(self, condition: Condition, met: bool) -> str:
        pattern = condition.patterns[0]
        subject = self.subject_prefix(pattern.subject)
        if condition.kind == "type" and isinstance(pattern.object, ox.NamedNode):
            key = "is_a" if met else "not_a"
            text = self.words[key].format(
                noun=self.label(pattern.object), short=self.short(pattern.object.value)
            )
            return subject + text
        prop = self.label(pattern.predicate)
        if met:
            extra = [condition.sparql, *(f"FILTER ({a})" for a in condition.attached)]
            if isinstance(pattern.object, ox.Variable):
                value = self.names(self.values(pattern.object.value, extra))
            else:
                value = self.label(pattern.object)
            return self.words["has"].format(subject=subject, property=prop, value=value)
        actual = self._actual_values(pattern)
        if isinstance(pattern.object, ox.Variable) and condition.kind != "link":
            return self.words["missing"].format(subject=subject, property=prop)
        wanted = self.term_words(pattern.object)
        if actual:
            return self.words["needs_value"].format(
                subject=subject, property=prop, actual=self.names(actual), wanted=wanted
            )
        if condition.kind == "link":
            return self.words["link_missing"].format(subject=subject, property=prop, wanted=wanted)
        return self.words["missing"].format(subject=subject, property=prop)

    def _actual_values(self, pattern: Pattern) -> list:
        """The values the subject has for the pattern's property (whatever they are)."""
        if not isinstance(pattern.predicate, ox.NamedNode):
            return []
        probe = Pattern(pattern.subject, pattern.predicate, ox.Variable("whynot_actual"))
        return self.values("whynot_actual", [_pattern_text(probe)])

    def _group_subject(self, condition: Condition) -> str:
        subject = condition.patterns[0].subject
        return subject.value if isinstance(subject, ox.Variable) else ""

    def _group_words(self, condition: Condition, met: bool) -> str:
        subject = self._group_subject(condition)
        noun, detail = self.describe_group(condition.patterns, subject)
        if met:
            extra = [condition.sparql, *(f"FILTER ({a})" for a in condition.attached)]
            found = self.values(subject, extra)
            return self.words["found"].format(noun=noun, names=self.names(found), detail=detail)
        return self.words["none_found"].format(noun=noun, detail=detail)

    def _count_words(self, condition: Condition) -> str:
        parts = []
        for alias, counted in condition.counts.items():
            value = self.values(alias, [condition.sparql])
            self.bound.add(alias)
            if counted not in self.noun_of:
                continue
            parts.append(self.variable_words(alias, value[0] if value else None))
        return "; ".join(parts) or _projection(condition.sparql)

    # --- unmet ------------------------------------------------------------------------
    def _unmet(self, condition: Condition) -> dict:
        kind = condition.kind
        entry: dict = {"kind": kind, "condition": _compact(condition.sparql)}
        if kind in ("type", "value", "link", "lookup"):
            entry["text"] = self._triple_words(condition, met=False)
        elif kind == "group":
            entry.update(self._missing_group(condition))
        elif kind == "count":
            entry["text"] = self.words["none_found"].format(
                noun=", ".join(
                    self.label(ox.NamedNode(self.noun_of[c]))
                    for c in condition.counts.values()
                    if c in self.noun_of
                )
                or _projection(condition.sparql),
                detail="",
            )
        elif kind == "compare":
            entry.update(self._compare_words(condition, met=False))
        else:
            entry["text"] = self._absent_words(condition, blocked=True)
        return entry

    def _missing_group(self, condition: Condition) -> dict:
        """A missing fact: how many there are, how many the rule needs, what one more does."""
        subject = self._group_subject(condition)
        noun, detail = self.describe_group(condition.patterns, subject)
        plain_noun = (
            self.label(ox.NamedNode(self.noun_of[subject]))
            if subject in self.noun_of
            else (_humane(subject))
        )
        shape = _shape(condition.patterns, subject)
        copies = [
            c
            for c in self.conditions
            if c.kind == "group" and _shape(c.patterns, self._group_subject(c)) == shape
        ]
        needed = len(copies)
        have = len(self.values(subject, [condition.sparql], limit=needed + 5))
        if not condition.attached and needed == 1:
            have = 0
        missing = max(needed - have, 1)
        focus, cls = self.focus_noun(), self._cls()
        if missing == 1 and needed == 1:
            suggestion = self.words["one_more"].format(noun=plain_noun, focus=focus, cls=cls)
        elif missing == 1 and self.lang == "en" and needed in _ORDINALS:
            suggestion = self.words["nth"].format(
                ordinal=_ORDINALS[needed], noun=plain_noun, focus=focus, cls=cls
            )
        else:
            suggestion = self.words["n_more"].format(
                missing=missing, noun=plain_noun, focus=focus, cls=cls
            )
        if needed > 1:
            state = self.words["have"].format(count=have, noun=noun, detail=detail, needed=needed)
        else:
            state = self.words["none_found"].format(noun=noun, detail=detail)
        return {
            "text": f"{suggestion} ({state})",
            "suggestion": suggestion,
            "have": have,
            "needed": needed,
        }

    def _compare_words(self, condition: Condition, met: bool) -> dict:
        match = _COMPARISON.match(condition.expression)
        if match is None:
            return {"text": condition.expression}
        sides = []
        values: dict[str, str] = {}
        for side in ("left", "right"):
            token = match[side]
            names = _VARIABLE.findall(token)
            if names:
                found = self.values(names[0])
                value = found[0] if found else None
                values[names[0]] = self.label(value) if value is not None else None
                sides.append((names[0], value, self.variable_words(names[0], value)))
            else:
                sides.append((None, token, token))
        verb = _VERBS[self.lang][match["op"]][0 if met else 1]
        text = f"{sides[0][2]} {verb} {sides[1][2]}"
        entry: dict = {"text": text, "expression": condition.expression, "values": values}
        thresholds = [self.short(self.lookups[n].value) for n, _, _ in sides if n in self.lookups]
        if thresholds:
            entry["threshold"] = thresholds[0]
        if not met:
            counted = [n for n, _, _ in sides if n in self.counts]
            left, right = _number(sides[0][1]), _number(sides[1][1])
            if counted and left is not None and right is not None and match["op"] in (">=", ">"):
                missing = right - left + (1 if match["op"] == ">" else 0)
                counted_var = self.counts[counted[0]]
                noun = (
                    self.label(ox.NamedNode(self.noun_of[counted_var]))
                    if counted_var in self.noun_of
                    else _humane(counted_var)
                )
                key = "one_more" if missing == 1 else "n_more"
                entry["suggestion"] = self.words[key].format(
                    missing=_plain_number(missing),
                    noun=noun,
                    focus=self.focus_noun(),
                    cls=self._cls(),
                )
                entry["text"] = f"{text}: {entry['suggestion']}"
        return entry

    def _absent_words(self, condition: Condition, blocked: bool) -> str:
        inner_vars = sorted(
            {t.value for p in condition.patterns for t in _terms(p) if isinstance(t, ox.Variable)}
            - self.bound
        )
        inner_sparql = condition.sparql[len("FILTER NOT EXISTS ") :].strip()[1:-1]
        facts = []
        if blocked:
            rows = self.select(inner_vars, [inner_sparql], limit=5)
            row = rows[0] if rows else {}
            by_subject: dict[str, list[Pattern]] = {}
            for pattern in condition.patterns:
                by_subject.setdefault(str(pattern.subject), []).append(pattern)
            for patterns in by_subject.values():
                facts.append(self._facts_words(patterns, row))
            description = "; ".join(facts)
            checks = []
            for expression in condition.inner_filters:
                if _is_distinctness(expression):
                    continue
                shown = self._with_values(expression, row)
                if shown:
                    checks.append(shown)
            if checks:
                description += " (" + self.words["and"].join(checks) + ")"
            return self.words["absent_blocked"].format(description=description)
        by_subject = {}
        for pattern in condition.patterns:
            by_subject.setdefault(str(pattern.subject), []).append(pattern)
        for patterns in by_subject.values():
            subject = patterns[0].subject
            if isinstance(subject, ox.Variable) and subject.value not in self.bound:
                noun, detail = self.describe_group(patterns, subject.value)
                facts.append(f"{noun}{detail}")
            elif all(isinstance(p.object, ox.Variable) for p in patterns):
                facts.append(
                    self.words["missing"].format(
                        subject=self.subject_prefix(subject),
                        property=", ".join(self.label(p.predicate) for p in patterns),
                    )
                )
            else:
                facts.append(self._facts_words(patterns, {}))
        description = "; ".join(facts)
        if condition.inner_filters:
            description = self._inner_checks(condition, inner_sparql) or description
        return self.words["absent_ok"].format(description=description)

    def _inner_checks(self, condition: Condition, inner_sparql: str) -> str:
        """A guard's comparisons with the values its patterns find (which fail: it is met)."""
        patterns_only = " ".join(_pattern_text(p) for p in condition.patterns)
        names = sorted(
            {t.value for p in condition.patterns for t in _terms(p) if isinstance(t, ox.Variable)}
            - self.bound
        )
        rows = self.select(names, [patterns_only], limit=1)
        if not rows:
            return ""
        row = rows[0]
        checks = []
        for expression in condition.inner_filters:
            match = _COMPARISON.match(expression)
            if match is None or _is_distinctness(expression):
                continue
            sides = []
            numbers = []
            for side in ("left", "right"):
                found = _VARIABLE.findall(match[side])
                if found:
                    value = row.get(found[0])
                    if value is None:
                        values = self.values(found[0])
                        value = values[0] if values else None
                    sides.append(self.variable_words(found[0], value))
                    numbers.append(_number(value))
                else:
                    sides.append(match[side])
                    numbers.append(_number(match[side]))
            truth = _compare(match["op"], *numbers)
            verb = _VERBS[self.lang][match["op"]][0 if truth else 1]
            checks.append(f"{sides[0]} {verb} {sides[1]}")
        return self.words["and"].join(checks)

    def _facts_words(self, patterns: Sequence[Pattern], row: dict) -> str:
        """Patterns about one subject, in words, with a guard solution's values."""

        def shown(term: object) -> str:
            if isinstance(term, ox.Variable):
                if term.value in row:
                    return self.label(row[term.value])
                return self.term_words(term)
            return self.label(term)

        subject = patterns[0].subject
        kinds = [
            f"{self.label(p.object)} ({self.short(p.object.value)})"
            for p in patterns
            if _is_type(p) and isinstance(p.object, ox.NamedNode)
        ]
        rest = [f"{self.label(p.predicate)} {shown(p.object)}" for p in patterns if not _is_type(p)]
        if subject == ox.Variable(self.focus) and not kinds:
            return ", ".join(rest)
        head = shown(subject)
        if kinds:
            head = f"{' '.join(kinds)} {head}"
        return f"{head}: {', '.join(rest)}" if rest else head

    def _with_values(self, expression: str, row: dict) -> str:
        match = _COMPARISON.match(expression)
        if match is None:
            return expression
        sides = []
        for side in ("left", "right"):
            names = _VARIABLE.findall(match[side])
            if names:
                name = names[0]
                value = row.get(name)
                if value is None:
                    found = self.values(name)
                    value = found[0] if found else None
                sides.append(self.variable_words(name, value))
            else:
                sides.append(match[side])
        return f"{sides[0]} {_VERBS[self.lang][match['op']][0]} {sides[1]}"

    def _unchecked(self, condition: Condition, depends: list[str]) -> dict:
        what = ", ".join(_humane(name) for name in depends)
        return {
            "kind": "unchecked",
            "condition": _compact(condition.sparql),
            "text": self.words["not_checked"].format(what=what),
        }


def _shape(patterns: Sequence[Pattern], subject: str) -> tuple:
    """A group's patterns with its own variable renamed: equal shapes count the same thing."""

    def name(term: object) -> str:
        if isinstance(term, ox.Variable) and term.value == subject:
            return "?_"
        return str(term)

    return tuple(sorted((name(p.subject), name(p.predicate), name(p.object)) for p in patterns))


def _humane(variable: str) -> str:
    """``otherBrand`` → ``other brand``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", variable).lower()


def _compact(sparql: str) -> str:
    return re.sub(r"\s+", " ", sparql).strip()


def _number(term: object) -> Decimal | None:
    text = term.value if isinstance(term, ox.Literal) else term
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _compare(op: str, left: Decimal | None, right: Decimal | None) -> bool:
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


def _plain_number(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


# --- the entry point --------------------------------------------------------------------


def rules_concluding(rules: Iterable[Rule], class_iri: str) -> list[Rule]:
    """The rules whose template types their focus as ``class_iri``."""
    found = []
    for rule in rules:
        for pattern in rule.conclusions:
            if (
                _is_type(pattern)
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
    words = _WORDS[lang if lang in _WORDS else "en"]
    node, cls = ox.NamedNode(iri), ox.NamedNode(class_iri)
    holds = bool(
        store.query(
            f"ASK {{ ?s <{RDF_TYPE}> ?c }}",
            substitutions={"s": node, "c": cls},
        )
    )
    labels: dict = {}
    concluding = rules_concluding(rules, class_iri)
    facts = _DistinctFacts.of(store) if concluding else store
    candidates = [
        _Evaluator(facts, rule, iri, class_iri, lang, labels).run() for rule in concluding
    ]
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


class _DistinctFacts:
    """The rule inputs with each fact once, and the inferences, for the evaluator's queries.

    Over the store's graphs a condition of k patterns about facts stated in N graphs finds
    N^k solutions (Elisa's "why not an Advocate" on the demo under 6 graph names: 3.6 s,
    0.02 s under one). Used only while the store's graphs share a fact
    (``rules.SHARED_FACTS``); a copy of the inputs per question is the price then.
    """

    def __init__(self, work: ox.Store) -> None:
        self.work = work

    @classmethod
    def of(cls, store: Store) -> Store | _DistinctFacts:
        from relmark.reasoning.incremental import _shares_facts  # (imports this module's kin)

        shared = SHARED_FACTS.get(store)
        if shared is None:
            shared = _shares_facts(store, rule_inputs(store))
            with contextlib.suppress(TypeError):
                SHARED_FACTS[store] = shared
        return cls(distinct_workspace(store, with_inferred=True)) if shared else store

    def graph_names(self) -> list[str]:
        return [INFERRED_GRAPH]  # the facts are the default graph: the evaluator's [None, …]

    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: dict | None = None,
    ) -> object:
        """Every query over the facts and the inferences (all the copy holds)."""
        bound = {ox.Variable(k): v for k, v in (substitutions or {}).items()}
        return self.work.query(sparql, use_default_graph_as_union=True, substitutions=bound)


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
