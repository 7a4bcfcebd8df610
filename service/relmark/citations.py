"""Sources as readers see them: a reference of references.ttl by its citation, linked.

The ontology's terms (``dcterms:source``) and the rules (their ``# source:`` header, kept
on each rule's node in the provenance graph) cite the same ``ref:`` nodes; the pages, the
explanations and the CLI show each as its ``dcterms:bibliographicCitation``, linked to its
DOI, or else its address, where references.ttl gives one.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox

from relmark.stores.base import Store

DCTERMS = "http://purl.org/dc/terms/"
BIBO = "http://purl.org/ontology/bibo/"

_QUERY = (
    f"SELECT ?s ?citation ?doi ?uri WHERE {{ VALUES ?s {{ %s }} "
    f"?s <{DCTERMS}bibliographicCitation> ?citation "
    f"OPTIONAL {{ ?s <{BIBO}doi> ?doi }} OPTIONAL {{ ?s <{BIBO}uri> ?uri }} }}"
)


def citations(store: Store, iris: Iterable[str]) -> dict[str, dict]:
    """Each IRI's citation ``{"text", "iri"?, "reference"}``: ``iri`` is the link to follow
    (``https://doi.org/…`` or the work's address), ``reference`` the ``ref:`` node. An IRI
    that is no reference in the store is shown as itself, linked to itself."""
    wanted = sorted(set(iris))
    found: dict[str, dict] = {}
    if wanted:
        values = " ".join(str(ox.NamedNode(iri)) for iri in wanted)
        for row in store.query(_QUERY % values):
            iri = row["s"].value
            if iri in found:
                continue
            link = {"iri": "https://doi.org/" + row["doi"].value} if row["doi"] else {}
            link = link or ({"iri": row["uri"].value} if row["uri"] else {})
            found[iri] = {**link, "text": row["citation"].value, "reference": iri}
    return {iri: found.get(iri, {"iri": iri, "text": iri, "reference": iri}) for iri in wanted}


def cited(store: Store, sources: Iterable[ox.Term]) -> list[dict]:
    """``dcterms:source`` values as citations: references and other IRIs through
    ``citations``, literals as their text; the references first, in citation order."""
    sources = list(sources)
    by_iri = citations(store, (s.value for s in sources if isinstance(s, ox.NamedNode)))
    items = list(by_iri.values())
    items += [{"text": s.value} for s in sources if isinstance(s, ox.Literal)]
    return sorted(items, key=lambda item: ("reference" not in item, item["text"]))
