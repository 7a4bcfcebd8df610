"""Which rules infer an ontology class and which named questions use a term.

Both read the knowledge files through their own parsers (``reasoning.maintain.rules_for``,
``relmark.queries``), cached until a file changes: the store records which rule made each
triple, but not which class a rule that has not fired yet would infer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyoxigraph as ox

from relmark.citations import citations
from relmark.reasoning.maintain import rules_for
from relmark.stores.base import Store
from relmark.vocab import RM
from relmark.web.pages import query as query_page

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")


def rules_inferring(store: Store, ontology_dir: Path, class_iri: str, lang: str) -> list[dict]:
    """The rules whose conclusion types a resource with ``class_iri``, with their why and
    the works they cite (``# source:``), as citations."""
    _, rules = rules_for(ontology_dir)
    found = []
    for rule in rules:
        if any(
            c.predicate == RDF_TYPE
            and isinstance(c.object, ox.NamedNode)
            and c.object.value == class_iri
            for c in rule.conclusions
        ):
            found.append(
                {
                    "name": rule.name,
                    "label": rule.label_it if lang == "it" and rule.label_it else rule.label,
                    "why": rule.why_it if lang == "it" and rule.why_it else rule.why,
                    "source": rule.source,
                    "sources": _cited_by(store, rule.references, rule.source),
                    "sparql": rule.sparql,
                }
            )
    return found


def _cited_by(store: Store, references: tuple[str, ...], source: str) -> list[dict]:
    """A rule's sources in the order its header gives them, else its header's text."""
    if not references:
        return [{"text": source}]
    found = citations(store, references)
    return [found[iri] for iri in references]


def queries_using(iri: str, lang: str) -> list[dict]:
    """The named questions whose text names ``iri`` or whose parameter takes its instances."""
    catalogue = query_page.catalogue()
    if catalogue is None:
        return []
    local = re.compile(r"\brm:" + re.escape(iri[len(RM) :]) + r"\b") if iri.startswith(RM) else None
    found = []
    for query in catalogue:
        uses = f"<{iri}>" in query.text or (local is not None and local.search(query.text))
        uses = uses or any(p.class_iri == iri for p in query.parameters)
        if uses:
            found.append({"name": query.name, "title": query_page.text_in(query.title, lang)})
    return found
