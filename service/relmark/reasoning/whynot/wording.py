"""The words of a why-not answer, in English and Italian, and small helpers to write them.

Kept apart from the logic so that a translator changes one table and nothing else.
"""

from __future__ import annotations

import re
from decimal import Decimal

#: The comparisons a FILTER conjunct may make, with the words for "holds" and "fails".
VERBS = {
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


WORDS = {
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


ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def humane(variable: str) -> str:
    """``otherBrand`` → ``other brand``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", variable).lower()


def compact(sparql: str) -> str:
    return re.sub(r"\s+", " ", sparql).strip()


def plain_number(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)
