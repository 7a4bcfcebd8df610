"""One rule's conditions tried for one resource, greedily, and the outcome in words.

Each condition is tried together with every condition already met. A condition that
fails is reported with the numbers behind it and, where it is a missing fact, what one
more of it would do; conditions that depend on a failed one are listed as not checked.
"""

from __future__ import annotations

from relmark.reasoning.rules.model import Rule
from relmark.reasoning.whynot.conditions import conditions_of
from relmark.reasoning.whynot.facts import Facts
from relmark.reasoning.whynot.outcome import met, unchecked, unmet
from relmark.reasoning.whynot.phrases import Phrases
from relmark.reasoning.whynot.roles import learn_roles
from relmark.reasoning.whynot.search import Search
from relmark.reasoning.whynot.wording import compact


def evaluate_rule(
    store: Facts, rule: Rule, iri: str, class_iri: str, lang: str, labels: dict
) -> dict:
    """The rule's conditions for ``iri``: met, unmet and not checked, in words."""
    conditions = conditions_of(rule)
    search = Search(store, rule, iri)
    ph = Phrases(search, learn_roles(conditions), conditions, class_iri, lang, labels)
    met_entries: list[dict] = []
    unmet_entries: list[dict] = []
    unchecked_entries: list[dict] = []
    for condition in conditions:
        variables = condition.variables
        depends = sorted(variables & search.failed)
        if depends:
            unchecked_entries.append(unchecked(ph, condition, depends))
            continue
        parts = [condition.sparql, *(f"FILTER ({a})" for a in condition.attached)]
        if search.ask(parts):
            entry = met(ph, condition)
            search.accepted += parts
            search.bound |= variables
            if entry is not None:
                entry["condition"] = compact(" ".join(parts))
                met_entries.append(entry)
        else:
            unmet_entries.append(unmet(ph, condition))
            if condition.kind != "compare":
                search.failed |= variables - search.bound
    for entry in met_entries + unmet_entries + unchecked_entries:
        entry["text"] = ph.italian(entry["text"])
        if "suggestion" in entry:
            entry["suggestion"] = ph.italian(entry["suggestion"])
    italian = ph.lang == "it"
    return {
        "rule": rule.name,
        "label": rule.label_it if italian else rule.label,
        "why": (rule.why_it or rule.why) if italian else rule.why,
        "applies": not unmet_entries and not unchecked_entries,
        "unmet": unmet_entries + unchecked_entries,
        "met": met_entries,
    }
