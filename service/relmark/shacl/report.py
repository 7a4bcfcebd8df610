"""A validation's outcome: results as data for machines and as text for people.

The rows the queries return (``Hit``: which check, which focus node, value and path) become
``ValidationResult``s, SHACL's sh:ValidationResult with the message worded in the language
asked for (``relmark.shacl.messages``); a ``ValidationReport`` holds them sorted, most
severe first, and shows them as the CLI's text or the JSON of ``--report json`` and of an
HTTP 422 body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox
from rdflib.namespace import XSD

from relmark.shacl.messages import (
    DEFAULT_MESSAGES,
    Term,
    compact,
    fill,
    local_name,
    pick,
    show,
    words,
)
from relmark.shacl.plan import Check
from relmark.shacl.shapes import INFO, VIOLATION, WARNING

_SEVERITY_RANK = {VIOLATION: 0, WARNING: 2, INFO: 3}


@dataclass(frozen=True)
class ValidationResult:
    """One sh:ValidationResult: which node broke which constraint, and what to tell the user."""

    focus_node: Term
    path: str | None
    value: Term | None
    message: str
    severity: str
    source_shape: str
    constraint_component: str
    path_name: str | None = None
    source_shape_name: str = ""

    @property
    def is_violation(self) -> bool:
        """Warnings and infos are reported but do not reject a load."""
        return self.severity not in (WARNING, INFO)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of a validation, as data for machines and as text for people."""

    conforms: bool
    results: list[ValidationResult]
    prefixes: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def violations(self) -> list[ValidationResult]:
        """The results that reject a load."""
        return [result for result in self.results if result.is_violation]

    @property
    def text(self) -> str:
        """A readable report, one block per result, like pySHACL's but for a marketer."""
        counts = _severity_counts(self.results)
        summary = ", ".join(
            f"{n} {label if n > 1 else label[:-1]}" for label, n in counts.items() if n
        )
        lines = [f"Conforms: {'yes' if self.conforms else 'no'} ({summary or 'no problems'})"]
        total = len(self.results)
        for number, result in enumerate(self.results, 1):
            severity = local_name(result.severity)
            path = compact(result.path, self.prefixes) if result.path else None
            if path and result.path_name:
                path = f"{path} ({result.path_name})"
            lines.append("")
            shape = result.source_shape_name or compact(result.source_shape, self.prefixes)
            lines.append(f"{severity} {number} of {total}: {shape}")
            lines.append(f"  Focus node: {show(result.focus_node, self.prefixes)}")
            if path:
                lines.append(f"  Path: {path}")
            if result.value is not None:
                lines.append(f"  Value: {show(result.value, self.prefixes)}")
            lines.append(f"  Message: {result.message}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for ``--report json`` and HTTP 422 bodies.

        ``focus_node`` is the IRI (``_:id`` for a blank node); ``value`` is a term object in
        the SPARQL 1.1 JSON results format, so a literal keeps its datatype or language.
        """
        counts = _severity_counts(self.results)
        return {
            "conforms": self.conforms,
            "violations": counts["violations"],
            "warnings": counts["warnings"],
            "infos": counts["infos"],
            "results": [
                {
                    "focus_node": _plain(result.focus_node),
                    "path": result.path,
                    "path_name": result.path_name,
                    "value": _term_json(result.value) if result.value is not None else None,
                    "message": result.message,
                    "severity": result.severity,
                    "source_shape": result.source_shape,
                    "source_shape_name": result.source_shape_name,
                    "constraint_component": result.constraint_component,
                }
                for result in self.results
            ],
        }


@dataclass(frozen=True)
class Hit:
    """One row of a query: the check it breaks, for which focus node, value and path."""

    check: Check
    focus: Term
    value: Term | None
    path: str | None
    bindings: Mapping[str, Term] | None = None


def report(hits: Iterable[Hit], lang: str, prefixes: Mapping[str, str]) -> ValidationReport:
    """The report of ``hits``: one result per distinct hit, most severe first, with
    messages in ``lang`` where the shapes give one."""
    results = sorted({_result(hit, lang, prefixes) for hit in hits}, key=_sort_key)
    return ValidationReport(
        conforms=not any(result.is_violation for result in results),
        results=results,
        prefixes=prefixes,
    )


def _result(hit: Hit, lang: str, prefixes: Mapping[str, str]) -> ValidationResult:
    check = hit.check
    values = {key: value for key, value in check.params.items()}
    values["this"] = values["focusNode"] = words(hit.focus, prefixes)
    values["path"] = compact(hit.path, prefixes) if hit.path else "the node"
    values["value"] = words(hit.value, prefixes) if hit.value is not None else ""
    for name, term in (hit.bindings or {}).items():
        values[name] = words(term, prefixes)
    template = pick(check.messages, lang)
    if template is None:
        default = fill(DEFAULT_MESSAGES[check.parameter], values)
        message = default[:1].upper() + default[1:]
    else:
        message = fill(template, values)
    return ValidationResult(
        focus_node=hit.focus,
        path=hit.path,
        value=hit.value,
        message=message,
        severity=check.severity,
        source_shape=check.shape.id_,
        constraint_component=check.component,
        path_name=pick(check.shape.path_names, lang),
        source_shape_name=check.shape.name,
    )


def _sort_key(result: ValidationResult) -> tuple[Any, ...]:
    return (
        _SEVERITY_RANK.get(result.severity, 1),
        str(result.focus_node),
        result.path or "",
        result.source_shape,
        result.constraint_component,
        str(result.value) if result.value is not None else "",
        result.message,
    )


def _severity_counts(results: Iterable[ValidationResult]) -> dict[str, int]:
    counts = {"violations": 0, "warnings": 0, "infos": 0}
    for result in results:
        key = {WARNING: "warnings", INFO: "infos"}.get(result.severity, "violations")
        counts[key] += 1
    return counts


def _plain(term: Term) -> str:
    return f"_:{term.value}" if isinstance(term, ox.BlankNode) else term.value


def _term_json(term: Term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    encoded = {"type": "literal", "value": term.value}
    if term.language:
        encoded["xml:lang"] = term.language
    elif term.datatype.value != str(XSD.string):
        encoded["datatype"] = term.datatype.value
    return encoded
