"""Terms, resources and variables in words: labels, nouns, values of bound variables."""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from relmark.reasoning.rules.model import Pattern
from relmark.reasoning.whynot.conditions import RDF_TYPE, Condition, is_type
from relmark.reasoning.whynot.roles import Roles
from relmark.reasoning.whynot.search import Search
from relmark.reasoning.whynot.wording import WORDS, humane
from relmark.stores.base import selected
from relmark.vocab import RM

RDFS = "http://www.w3.org/2000/01/rdf-schema#"


class Phrases:
    """Words for one rule's conditions about one resource, in one language.

    ``labels`` is shared by the rules of one question: a label is looked up once.
    """

    def __init__(
        self,
        search: Search,
        roles: Roles,
        conditions: list[Condition],
        class_iri: str,
        lang: str,
        labels: dict,
    ) -> None:
        self.search = search
        self.store = search.store
        self.node = search.node
        self.focus = search.focus
        self.roles = roles
        self.conditions = conditions
        self.class_iri = class_iri
        self.lang = lang if lang in WORDS else "en"
        self.words = WORDS[self.lang]
        self.labels = labels
        self._focus_noun: str | None = None

    def label(self, term: object) -> str:
        if isinstance(term, ox.Literal):
            return term.value
        if not isinstance(term, ox.NamedNode):
            return str(term)
        key = (term.value, self.lang)
        if key not in self.labels:
            found: dict[str, str] = {}
            for solution in selected(
                self.store.query(
                    f"SELECT ?label ?s WHERE {{ ?s <{RDFS}label> ?label }}",
                    substitutions={"s": term},
                )
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
            if term.value in self.search.bound and term.value not in self.search.failed:
                return self.names(self.search.values(term.value))
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
            for solution in selected(
                self.store.query(
                    f"SELECT ?c ?s WHERE {{ ?s <{RDF_TYPE}> ?c }}", substitutions={"s": self.node}
                )
            )
            if isinstance(solution["c"], ox.NamedNode) and solution["c"].value.startswith(RM)
        )
        return self.label(ox.NamedNode(types[0])) if types else self.words["resource"]

    def describe_group(self, patterns: Sequence[Pattern], subject: str) -> tuple[str, str]:
        """(noun, " with p1 v1, p2 v2") for the patterns about one fresh variable."""
        noun = ""
        details = []
        for pattern in patterns:
            if is_type(pattern) and isinstance(pattern.object, ox.NamedNode):
                noun = f"{self.label(pattern.object)} ({self.short(pattern.object.value)})"
                self.roles.noun_of[subject] = pattern.object.value
            elif isinstance(pattern.subject, ox.Variable) and pattern.subject.value == subject:
                details.append(f"{self.label(pattern.predicate)} {self.term_words(pattern.object)}")
            else:
                details.append(
                    f"{self.term_words(pattern.subject)} {self.label(pattern.predicate)} "
                    f"{self.term_words(pattern.object)}"
                )
        noun = noun or humane(subject)
        detail = (self.words["with"] + ", ".join(details)) if details else ""
        return noun, detail

    def variable_words(self, variable: str, value: object) -> str:
        """What a variable in a comparison stands for, with its value."""
        shown = self.label(value) if value is not None else "?"
        if variable in self.roles.lookups:
            return self.words["threshold"].format(
                value=shown, short=self.short(self.roles.lookups[variable].value)
            )
        if variable in self.roles.counts:
            counted = self.roles.counts[variable]
            noun = (
                self.label(ox.NamedNode(self.roles.noun_of[counted]))
                if counted in self.roles.noun_of
                else (humane(counted))
            )
            return self.words["count_of"].format(noun=noun, value=shown)
        if variable in self.roles.objects_of:
            subject, predicate = self.roles.objects_of[variable]
            if isinstance(subject, ox.NamedNode):
                return self.words["of"].format(
                    property=self.label(predicate), value=shown, subject=self.label(subject)
                )
            return f"{self.label(predicate)} {shown}"
        return f"{humane(variable)} {shown}"

    def italian(self, text: str) -> str:
        """Italian articulated prepositions: "inferiore a la soglia" → "inferiore alla soglia"."""
        if self.lang != "it":
            return text
        return text.replace(" a la ", " alla ").replace(" da la ", " dalla ")

    def cls(self) -> str:
        return self.label(ox.NamedNode(self.class_iri))
