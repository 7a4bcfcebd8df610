"""What a resource page shows (as LodView does): its statements, asserted or inferred.

Outgoing and incoming links with the graphs they come from, literals with their language,
and which other ladder stages or markets a "why not?" can be asked about. The same
statements, as triples, are what the page serves as Turtle or JSON-LD.
"""

from __future__ import annotations

from collections import defaultdict

import pyoxigraph as ox

from relmark.stores.base import Store, Term, selected
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_GRAPH, PROVENANCE_GRAPH, RM
from relmark.web.pages.ontology import PREFIXES, bound, labels, short
from relmark.web.pages.schemes import MARKETS

#: Incoming links listed on a page at most (a popular IRI can have thousands).
INCOMING_LIMIT = 500


def term_view(term: Term | ox.Triple, names: dict[str, str]) -> dict:
    """A term as the templates print it: IRIs with a label, literals with language."""
    if isinstance(term, ox.NamedNode):
        return {"type": "iri", "value": term.value, "label": names.get(term.value, term.value)}
    if isinstance(term, ox.Literal):
        datatype = None if term.language else term.datatype.value
        if datatype == "http://www.w3.org/2001/XMLSchema#string":
            datatype = None
        return {
            "type": "literal",
            "value": term.value,
            "lang": term.language,
            "datatype": short(datatype).replace("http://www.w3.org/2001/XMLSchema#", "xsd:")
            if datatype
            else None,
        }
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    return {"type": "other", "value": str(term)}


def _status(graphs: list[str]) -> str:
    return "inferred" if graphs == [INFERRED_GRAPH] else "asserted"


def outgoing(store: Store, iri: str, lang: str) -> list[dict]:
    """The statements with ``iri`` as subject, grouped by property, each with its graphs."""
    query = (
        f"SELECT ?p ?o ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != <{PROVENANCE_GRAPH}>) }}"
    )
    found: dict[tuple[str, Term | ox.Triple], list[str]] = defaultdict(list)
    for row in selected(store.query(bound(query, s=ox.NamedNode(iri)))):
        found[(row["p"].value, row["o"])].append(row["g"].value)
    iris = {p for p, _ in found} | {o.value for _, o in found if isinstance(o, ox.NamedNode)}
    names = labels(store, iris, lang)
    rows = [
        {
            "property": {"iri": p, "label": names[p], "short": short(p)},
            "value": term_view(o, names),
            "graphs": sorted(graphs),
            "status": _status(sorted(graphs)),
        }
        for (p, o), graphs in found.items()
    ]
    return sorted(rows, key=lambda r: (r["property"]["label"].lower(), str(r["value"]["value"])))


def incoming(store: Store, iri: str, lang: str) -> list[dict]:
    """The statements with ``iri`` as object (at most ``INCOMING_LIMIT``)."""
    query = (
        "SELECT ?s ?p ?g WHERE { GRAPH ?g { ?s ?p ?o } "
        f"FILTER(?g NOT IN (<{PROVENANCE_GRAPH}>)) }} LIMIT {INCOMING_LIMIT}"
    )
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in selected(store.query(bound(query, o=ox.NamedNode(iri)))):
        if isinstance(row["s"], ox.NamedNode):
            found[(row["s"].value, row["p"].value)].append(row["g"].value)
    names = labels(store, {s for s, _ in found} | {p for _, p in found}, lang)
    rows = [
        {
            "subject": {"iri": s, "label": names[s]},
            "property": {"iri": p, "label": names[p], "short": short(p)},
            "graphs": sorted(graphs),
            "status": _status(sorted(graphs)),
        }
        for (s, p), graphs in found.items()
    ]
    return sorted(rows, key=lambda r: (r["property"]["label"].lower(), r["subject"]["label"]))


def display_label(store: Store, iri: str, lang: str) -> str:
    """The resource's label; for an unlabelled relationship, "counterparty – focal party"."""
    query = PREFIXES + (
        "SELECT ?label ?cp ?focal WHERE { OPTIONAL { ?s rdfs:label|skos:prefLabel ?label } "
        "OPTIONAL { ?s rm:counterparty ?cp ; rm:focalParty ?focal } } LIMIT 1"
    )
    row = next(iter(selected(store.query(bound(query, s=ox.NamedNode(iri))))), None)
    if row is not None and row["label"] is None and row["cp"] is not None:
        names = labels(store, [row["cp"].value, row["focal"].value], lang)
        return f"{names[row['cp'].value]} – {names[row['focal'].value]}"
    return labels(store, [iri], lang)[iri]


def describe(store: Store, iri: str) -> list[ox.Triple]:
    """The statements about ``iri`` (asserted and inferred, not provenance), for Turtle/JSON-LD."""
    query = (
        "SELECT DISTINCT ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } "
        f"FILTER(?g != <{PROVENANCE_GRAPH}>) }}"
    )
    subject = ox.NamedNode(iri)
    return [
        ox.Triple(subject, row["p"], row["o"])
        for row in selected(store.query(bound(query, s=subject)))
    ]


def why_not_candidates(store: Store, iri: str, held: set[str], lang: str) -> list[dict]:
    """The ladder stages (for a customer relationship) or markets (for a stakeholder) that
    ``iri`` is not in: each can be asked "why not?"."""
    query = PREFIXES + (
        "SELECT ?what WHERE { "
        "{ ?s a rm:CustomerRelationship BIND('ladder' AS ?what) } UNION "
        f"{{ ?s a ?c . GRAPH <{ONTOLOGY_GRAPH}> {{ ?c rdfs:subClassOf* rm:Stakeholder }} "
        "BIND('market' AS ?what) } }"
    )
    kinds = {row["what"].value for row in selected(store.query(bound(query, s=ox.NamedNode(iri))))}
    candidates: list[str] = []
    if "ladder" in kinds:
        stages = PREFIXES + (
            f"SELECT ?c ?r WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?c rm:stageRank ?r }} }} "
            "ORDER BY ?r"
        )
        candidates += [row["c"].value for row in selected(store.query(stages))]
    if "market" in kinds:
        candidates += [RM + cls for cls, _ in MARKETS]
    missing = [c for c in candidates if c not in held]
    names = labels(store, missing, lang)
    return [{"class": c, "label": names[c], "short": short(c)} for c in missing]
