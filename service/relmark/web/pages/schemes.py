"""The three ordered schemes of the ontology and the live counts that go with them.

Gummesson's 30R by group, the selling steps by ``rm:stepNumber``, the loyalty ladder by
``rm:stageRank``; plus the six markets of a focal firm. Read from the store with SPARQL,
labels and definitions in the page's language.
"""

from __future__ import annotations

from collections import defaultdict

import pyoxigraph as ox

from relmark.stores.base import Store, selected
from relmark.vocab import ONTOLOGY_GRAPH, RM
from relmark.web.pages.ontology import PREFIXES, bound, labels, pick

#: The six markets, in the order of Christopher, Payne and Ballantyne's diagram.
MARKETS = (
    ("CustomerMarket", "inCustomerMarketOf"),
    ("ReferralMarket", "inReferralMarketOf"),
    ("SupplierMarket", "inSupplierMarketOf"),
    ("RecruitmentMarket", "inRecruitmentMarketOf"),
    ("InfluenceMarket", "inInfluenceMarketOf"),
    ("InternalMarket", "inInternalMarketOf"),
)


def _definitions(store: Store, iris: list[str], lang: str) -> dict[str, str]:
    found: dict[str, dict[str, str]] = defaultdict(dict)
    if iris:
        values = " ".join(str(ox.NamedNode(i)) for i in iris)
        query = (
            PREFIXES + f"SELECT ?s ?d WHERE {{ VALUES ?s {{ {values} }} ?s skos:definition ?d }}"
        )
        for row in selected(store.query(query)):
            found[row["s"].value].setdefault(row["d"].language or "", row["d"].value)
    return {iri: pick(found.get(iri, {}), lang) for iri in iris}


def thirty_r(store: Store, lang: str) -> list[dict]:
    """The four groups of the 30R in order, each with its relationships R1…R30 in order."""
    query = PREFIXES + (
        f"SELECT ?group ?r ?notation WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ "
        "?r skos:inScheme rm:ThirtyR ; skos:notation ?notation . "
        "?group a skos:Collection ; skos:member ?r } }"
    )
    members: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row in selected(store.query(query)):
        notation = row["notation"].value
        members[row["group"].value].append((int(notation[1:]), notation, row["r"].value))
    usage = (
        PREFIXES
        + "SELECT ?r (COUNT(DISTINCT ?rel) AS ?n) WHERE { ?rel rm:gummessonType ?r } GROUP BY ?r"
    )
    used = {row["r"].value: int(row["n"].value) for row in selected(store.query(usage))}
    every = [iri for items in members.values() for _, _, iri in items]
    names = labels(store, [*members, *every], lang)
    definitions = _definitions(store, [*members, *every], lang)
    groups = []
    for group, items in sorted(members.items(), key=lambda kv: min(kv[1])[0]):
        groups.append(
            {
                "iri": group,
                "label": names[group],
                "definition": definitions[group],
                "relationships": [
                    {
                        "iri": iri,
                        "notation": notation,
                        "label": names[iri],
                        "definition": definitions[iri],
                        "count": used.get(iri, 0),
                    }
                    for _, notation, iri in sorted(items)
                ],
            }
        )
    return groups


def selling_steps(store: Store, lang: str) -> list[dict]:
    """The selling steps by ``rm:stepNumber``, with the opportunities at each step now."""
    query = PREFIXES + (
        f"SELECT ?step ?n WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?step a rm:SellingStep ; "
        "rm:stepNumber ?n } }"
    )
    steps = sorted((int(row["n"].value), row["step"].value) for row in selected(store.query(query)))
    usage = PREFIXES + (
        "SELECT ?step (COUNT(DISTINCT ?o) AS ?n) WHERE { ?o rm:currentStep ?step } GROUP BY ?step"
    )
    at_step = {row["step"].value: int(row["n"].value) for row in selected(store.query(usage))}
    return _in_order(store, steps, "number", at_step, lang)


def focal_firms(store: Store, lang: str) -> list[dict]:
    """The focal firms in the data, sorted by label."""
    query = PREFIXES + "SELECT DISTINCT ?f WHERE { ?f a rm:FocalFirm }"
    firms = [
        row["f"].value for row in selected(store.query(query)) if isinstance(row["f"], ox.NamedNode)
    ]
    names = labels(store, firms, lang)
    return sorted(({"iri": f, "label": names[f]} for f in firms), key=lambda f: f["label"].lower())


def loyalty_ladder(store: Store, lang: str, firm: str | None = None) -> list[dict]:
    """The ladder's stages by ``rm:stageRank``, each with its customer relationships now
    (of ``firm`` only, when given)."""
    query = PREFIXES + (
        f"SELECT ?stage ?rank WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?stage rm:stageRank ?rank }} }}"
    )
    stages = sorted(
        (int(row["rank"].value), row["stage"].value) for row in selected(store.query(query))
    )
    where = "?rel a ?stage ." + (" ?rel rm:focalParty ?firm ." if firm else "")
    count = PREFIXES + (
        f"SELECT ?stage (COUNT(DISTINCT ?rel) AS ?n) WHERE {{ {where} }} GROUP BY ?stage"
    )
    if firm:
        count = bound(count, firm=ox.NamedNode(firm))
    counts = {row["stage"].value: int(row["n"].value) for row in selected(store.query(count))}
    return _in_order(store, stages, "rank", counts, lang)


def _in_order(
    store: Store, ordered: list[tuple[int, str]], key: str, counts: dict[str, int], lang: str
) -> list[dict]:
    """Numbered scheme members (steps, ladder stages) with label, definition and count."""
    iris = [iri for _, iri in ordered]
    names, definitions = labels(store, iris, lang), _definitions(store, iris, lang)
    return [
        {
            "iri": iri,
            key: number,
            "label": names[iri],
            "definition": definitions[iri],
            "count": counts.get(iri, 0),
        }
        for number, iri in ordered
    ]


def market_counts(store: Store, firm: str, lang: str) -> list[dict]:
    """How many stakeholders are in each of ``firm``'s six markets (inferred by the rules)."""
    query = PREFIXES + (
        "SELECT ?p (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s ?p ?firm "
        f"VALUES ?p {{ {' '.join('rm:' + prop for _, prop in MARKETS)} }} }} GROUP BY ?p"
    )
    counts = {
        row["p"].value: int(row["n"].value)
        for row in selected(store.query(bound(query, firm=ox.NamedNode(firm))))
    }
    names = labels(store, [RM + cls for cls, _ in MARKETS], lang)
    return [
        {"iri": RM + cls, "label": names[RM + cls], "count": counts.get(RM + prop, 0)}
        for cls, prop in MARKETS
    ]
