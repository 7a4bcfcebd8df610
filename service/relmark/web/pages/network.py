"""The relationship network of a focal firm, as nodes and edges for a picture and a table.

Nodes: the firm, every stakeholder in one of its six markets (inferred by the rules) and
every counterparty of a relationship the firm is the focal party of. Edges: relationship
records (kind = their asserted relationship class), purchases and referrals, and the
asserted rm: links between two nodes (employed by, supplies to, unit of, …). The same
dict is served by ``/api/network`` and drawn by cytoscape.js, so the test can compare.
"""

from __future__ import annotations

from collections import defaultdict

import pyoxigraph as ox

from relmark.stores.base import Store, selected
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_GRAPH, PROVENANCE_GRAPH, RM
from relmark.web.pages.ontology import PREFIXES, bound, labels, local_name
from relmark.web.pages.schemes import MARKETS

#: Links that are market memberships, drawn as node colours rather than as edges.
MEMBERSHIP_LINKS = {RM + "inMarketOf", *(RM + prop for _, prop in MARKETS)}


def network(store: Store, firm: str, lang: str) -> dict:
    """``{"firm", "nodes": [...], "edges": [...]}`` for one focal firm."""
    node = ox.NamedNode(firm)
    markets: dict[str, list[str]] = defaultdict(list)
    memberships = PREFIXES + (
        "SELECT ?s ?p WHERE { ?s ?p ?firm "
        f"VALUES ?p {{ {' '.join('rm:' + prop for _, prop in MARKETS)} }} }}"
    )
    order = {RM + prop: i for i, (_, prop) in enumerate(MARKETS)}
    by_prop = {RM + prop: RM + cls for cls, prop in MARKETS}
    for row in selected(store.query(bound(memberships, firm=node))):
        if isinstance(row["s"], ox.NamedNode):
            markets[row["s"].value].append(row["p"].value)
    edges: dict[tuple[str, str, str], None] = {}
    relationships = PREFIXES + (
        "SELECT ?cp ?kind WHERE { ?rel rm:focalParty ?firm ; rm:counterparty ?cp . "
        f"GRAPH ?g {{ ?rel a ?kind }} FILTER(?g NOT IN (<{INFERRED_GRAPH}>, <{PROVENANCE_GRAPH}>)) "
        f'FILTER(STRSTARTS(STR(?kind), "{RM}")) }}'
    )
    members = {firm, *markets}
    units = PREFIXES + "SELECT ?u WHERE { ?u rm:unitOf+ ?firm }"
    members |= {row["u"].value for row in selected(store.query(bound(units, firm=node)))}
    for row in selected(store.query(bound(relationships, firm=node))):
        if isinstance(row["cp"], ox.NamedNode):
            members.add(row["cp"].value)
            edges[(firm, row["cp"].value, row["kind"].value)] = None
    values = " ".join(str(ox.NamedNode(m)) for m in sorted(members))
    links = PREFIXES + (
        f"SELECT ?a ?b ?kind WHERE {{ VALUES ?a {{ {values} }} VALUES ?b {{ {values} }} "
        "{ GRAPH ?g { ?a ?kind ?b } "
        f"FILTER(?g NOT IN (<{INFERRED_GRAPH}>, <{PROVENANCE_GRAPH}>, <{ONTOLOGY_GRAPH}>)) "
        f'FILTER(STRSTARTS(STR(?kind), "{RM}")) }} UNION '
        "{ ?x a rm:Purchase ; rm:buyer ?a ; rm:seller ?b BIND(rm:Purchase AS ?kind) } UNION "
        "{ ?x a rm:Referral ; rm:referrer ?a ; rm:referredTo ?b BIND(rm:Referral AS ?kind) } "
        "FILTER(?a != ?b) }"
    )
    for row in selected(store.query(links)):
        if row["kind"].value not in MEMBERSHIP_LINKS:
            edges[(row["a"].value, row["b"].value, row["kind"].value)] = None
    kinds = {kind for _, _, kind in edges}
    names = labels(store, members | kinds | set(by_prop.values()), lang)
    nodes = []
    for iri in sorted(members, key=lambda m: (m != firm, names[m].lower())):
        props = sorted(markets.get(iri, []), key=order.__getitem__)
        in_markets = [by_prop[p] for p in props]
        nodes.append(
            {
                "id": iri,
                "label": names[iri],
                "focal": iri == firm,
                "market": local_name(in_markets[0]) if in_markets else None,
                "markets": [{"iri": m, "label": names[m]} for m in in_markets],
            }
        )
    return {
        "firm": firm,
        "label": names[firm],
        "nodes": nodes,
        "edges": [
            {"source": a, "target": b, "kind": local_name(kind), "label": names[kind]}
            for a, b, kind in sorted(edges)
        ],
    }
