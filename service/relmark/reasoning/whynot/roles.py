"""What each variable of a rule stands for, read from its patterns, to word a comparison."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox

from relmark.reasoning.whynot.conditions import Condition, is_type
from relmark.vocab import RM

THRESHOLD_VALUE = RM + "thresholdValue"


@dataclass
class Roles:
    """Variables that are thresholds, property values, counts and typed resources."""

    lookups: dict[str, ox.NamedNode] = field(default_factory=dict)  # var -> threshold
    #: var -> (the subject, the property) of the pattern whose object it is
    objects_of: dict[str, tuple[ox.NamedNode | ox.Literal | ox.Variable, ox.NamedNode]] = field(
        default_factory=dict
    )
    counts: dict[str, str] = field(default_factory=dict)  # alias -> counted variable
    noun_of: dict[str, str] = field(default_factory=dict)  # var -> class IRI from "?v a C"


def learn_roles(conditions: list[Condition]) -> Roles:
    """The roles the conditions' patterns give their variables."""
    roles = Roles()
    for condition in conditions:
        for pattern in condition.patterns:
            if isinstance(pattern.object, ox.Variable):
                name = pattern.object.value
                if (
                    isinstance(pattern.predicate, ox.NamedNode)
                    and pattern.predicate.value == THRESHOLD_VALUE
                    and isinstance(pattern.subject, ox.NamedNode)
                ):
                    roles.lookups[name] = pattern.subject
                elif isinstance(pattern.predicate, ox.NamedNode) and not is_type(pattern):
                    roles.objects_of.setdefault(name, (pattern.subject, pattern.predicate))
            if (
                is_type(pattern)
                and isinstance(pattern.subject, ox.Variable)
                and isinstance(pattern.object, ox.NamedNode)
            ):
                roles.noun_of.setdefault(pattern.subject.value, pattern.object.value)
        roles.counts.update(condition.counts)
    return roles
