"""How validation results are worded for people: terms shown short, messages filled in.

A marketer reads these, in the CLI's report and in a 422's body, so an IRI in a known
namespace is shown as ``rm:trustLevel``, a literal as its text, and a shape without its
own ``sh:message`` gets an English sentence from ``DEFAULT_MESSAGES``. A shape's
``sh:message`` may come in several languages; ``pick`` chooses the one asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pyoxigraph as ox
from rdflib.namespace import XSD

Term = ox.NamedNode | ox.BlankNode | ox.Literal

#: English fallbacks for shapes without sh:message, by constraint parameter; {…} are
#: filled from the result (``fill``).
DEFAULT_MESSAGES = {
    "class": "The value {value} must be typed as {class} (or one of its subclasses).",
    "datatype": "The value {value} must be a well-formed {datatype} literal.",
    "nodeKind": "The value {value} must be of node kind {nodeKind}.",
    "minCount": "{path} needs at least {minCount} value(s).",
    "maxCount": "{path} can have at most {maxCount} value(s).",
    "minInclusive": "The value {value} must be at least {minInclusive}.",
    "minExclusive": "The value {value} must be greater than {minExclusive}.",
    "maxInclusive": "The value {value} must be at most {maxInclusive}.",
    "maxExclusive": "The value {value} must be less than {maxExclusive}.",
    "minLength": "The value {value} must be at least {minLength} characters long.",
    "maxLength": "The value {value} must be at most {maxLength} characters long.",
    "pattern": "The value {value} does not match the pattern {pattern}.",
    "languageIn": "The value {value} must be in one of the languages {languageIn}.",
    "uniqueLang": "{path} has more than one value in the same language.",
    "equals": "The values of {path} must be the same as those of {equals}.",
    "disjoint": "The value {value} of {path} must not also be a value of {disjoint}.",
    "lessThan": "The value {value} of {path} must be less than every value of {lessThan}.",
    "lessThanOrEquals": "The value {value} of {path} must not be greater than {lessThanOrEquals}.",
    "not": "The value {value} must not match the shape {not}.",
    "and": "The value {value} must match all the shapes in the list.",
    "or": "The value {value} matches none of the allowed alternatives.",
    "xone": "The value {value} must match exactly one of the alternatives.",
    "node": "The value {value} does not match the shape {node}.",
    "hasValue": "{path} must include the value {hasValue}.",
    "in": "The value {value} is not one of the allowed values.",
    "closed": "{path} is not one of the properties allowed here.",
    "sparql": "The value {value} breaks the rule {shape}.",
}


def local_name(iri: str) -> str:
    """The part of an IRI after its last ``#`` or ``/`` (``Violation`` for sh:Violation)."""
    return re.split(r"[#/]", iri)[-1]


def compact(iri: str, prefixes: Mapping[str, str]) -> str:
    """rm:trustLevel for an IRI in a known namespace; IRIs inside SPARQL paths likewise."""
    if iri.startswith("_:"):
        return iri
    if iri[:1] in "(^<":
        return re.sub(r"<([^<>\s]*)>", lambda m: compact(m.group(1), prefixes), iri)
    best: str | None = None
    for prefix, namespace in prefixes.items():
        local = iri[len(namespace) :]
        longer = best is None or len(namespace) > len(prefixes[best])
        if iri.startswith(namespace) and re.fullmatch(r"[A-Za-z_][\w-]*", local) and longer:
            best = prefix
    return f"{best}:{iri[len(prefixes[best]) :]}" if best is not None else f"<{iri}>"


def show(term: Term, prefixes: Mapping[str, str]) -> str:
    """A term as a report shows it: IRIs compacted, a literal quoted with its datatype."""
    if isinstance(term, ox.NamedNode):
        return compact(term.value, prefixes)
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if term.language:
        return f'"{term.value}"@{term.language}'
    if term.datatype.value == str(XSD.string):
        return f'"{term.value}"'
    return f'"{term.value}" ({compact(term.datatype.value, prefixes)})'


def words(term: Term, prefixes: Mapping[str, str]) -> str:
    """A term as a message says it: a literal's text alone, other terms as ``show``."""
    if isinstance(term, ox.Literal):
        return term.value
    return show(term, prefixes)


def pick(texts: Mapping[str, str], lang: str) -> str | None:
    """The text in ``lang``, else its primary language, else untagged, else English."""
    if not texts:
        return None
    lang = lang.lower()
    primary = lang.split("-")[0]
    for key in (lang, primary):
        if key in texts:
            return texts[key]
    for key, text in sorted(texts.items()):
        if key.split("-")[0] == primary:
            return text
    for key in ("", "en"):
        if key in texts:
            return texts[key]
    return texts[min(texts)]


def fill(template: str, values: Mapping[str, str]) -> str:
    """Substitute {?var}, {$var} (SHACL message templates) and {name} from ``values``."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return re.sub(r"\{[?$]?(\w+)\}", replace, template)
