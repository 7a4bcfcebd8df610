"""The home page's figures and the label search over the ontology and the data."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyoxigraph as ox

from relmark.stores.base import Store, selected
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_GRAPH
from relmark.web.pages.ontology import PREFIXES, bound, pick, short

#: Search answers at most this many resources.
SEARCH_LIMIT = 100


def store_counts(store: Store) -> dict[str, int]:
    """How many stakeholders, relationships and interactions the data holds (direct or via
    a subclass), and how many classifications the rules inferred."""
    counts = {}
    for name, cls in (
        ("stakeholders", "rm:Stakeholder"),
        ("relationships", "rm:Relationship"),
        ("interactions", "rm:Interaction"),
    ):
        query = PREFIXES + (
            f"SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE {{ ?s a ?c . "
            f"GRAPH <{ONTOLOGY_GRAPH}> {{ ?c rdfs:subClassOf* {cls} }} "
            f"FILTER NOT EXISTS {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?s a ?any }} }} }}"
        )
        counts[name] = int(next(iter(selected(store.query(query))))["n"].value)
    inferred = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{INFERRED_GRAPH}> {{ ?s a ?c }} }}"
    counts["inferred_classifications"] = int(next(iter(selected(store.query(inferred))))["n"].value)
    return counts


def search_labels(store: Store, text: str, lang: str) -> list[dict]:
    """Resources whose label (any language) contains ``text``, case-insensitively.

    Each hit says whether it is an ontology term, so the page can link to the right view.
    """
    text = text.strip()
    if not text:
        return []
    query = PREFIXES + (
        "SELECT ?s ?l ?term WHERE { ?s rdfs:label|skos:prefLabel ?l "
        "FILTER(isIRI(?s) && isLiteral(?l) && CONTAINS(LCASE(STR(?l)), LCASE(STR(?q)))) "
        f"BIND(EXISTS {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?s ?p ?o }} }} AS ?term) }}"
    )
    found: dict[str, dict[str, str]] = defaultdict(dict)
    terms: dict[str, bool] = {}
    for row in selected(store.query(bound(query, q=ox.Literal(text)))):
        iri = row["s"].value
        found[iri].setdefault(row["l"].language or "", row["l"].value)
        terms[iri] = row["term"].value == "true"
    hits: list[dict[str, Any]] = [
        {
            "iri": iri,
            "short": short(iri),
            "label": pick(values, lang),
            "matched": sorted({v for v in values.values() if text.lower() in v.lower()}),
            "ontology": terms[iri],
        }
        for iri, values in found.items()
    ]
    hits.sort(key=lambda h: (not h["ontology"], h["label"].lower()))
    return hits[:SEARCH_LIMIT]
