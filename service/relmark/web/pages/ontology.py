"""What the ontology pages show, read live from the store with SPARQL.

Every function takes the store (``get_store()`` in a view) and a language, and returns
plain dicts and lists for the templates: labels in the language asked for, the class tree,
one class or property, the three ordered schemes (30R, selling steps, loyalty ladder) and
the live counts of members. Nothing here reads the Turtle files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

import pyoxigraph as ox

from relmark.citations import cited
from relmark.stores.base import Store, Term, selected
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_GRAPH, PROVENANCE_GRAPH, RM
from relmark.web.serialization import PREFIXES as PREFIX_NAMES

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
DCTERMS = "http://purl.org/dc/terms/"

PREFIXES = f"""PREFIX rdf: <{RDF}>
PREFIX rdfs: <{RDFS}>
PREFIX owl: <{OWL}>
PREFIX skos: <{SKOS}>
PREFIX dcterms: <{DCTERMS}>
PREFIX rm: <{RM}>
"""

PROPERTY_KINDS = {
    OWL + "ObjectProperty": "object property",
    OWL + "DatatypeProperty": "datatype property",
    OWL + "AnnotationProperty": "annotation property",
}


def local_name(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def short(iri: str) -> str:
    """``rm:Name``, ``rdfs:label``, … for IRIs in a known namespace, else the IRI itself."""
    for prefix, namespace in PREFIX_NAMES.items():
        if iri.startswith(namespace) and len(iri) > len(namespace):
            return f"{prefix}:{iri[len(namespace) :]}"
    return iri


def pick(values: dict[str, str], lang: str, fallback: str = "") -> str:
    """The value in ``lang``, else untagged, else English, else any, else ``fallback``."""
    for wanted in (lang, "", "en"):
        if wanted in values:
            return values[wanted]
    return next(iter(values.values()), fallback)


def bound(query: str, **terms: Term) -> str:
    """``query`` with each ``?name`` replaced by its term, written in SPARQL syntax.

    pyoxigraph's ``substitutions`` only bind projected variables; the terms here are
    pyoxigraph terms (an IRI it accepted, a literal it escapes), so writing them is safe.
    """
    for name, term in terms.items():
        # Backslashes doubled: re.sub reads them in a replacement, and a literal may hold them.
        written = str(term).replace("\\", "\\\\")
        query = re.sub(r"\?" + re.escape(name) + r"\b", written, query)
    return query


def _values(iris: Iterable[str]) -> str:
    return " ".join(str(ox.NamedNode(iri)) for iri in iris)


def labels(store: Store, iris: Iterable[str], lang: str) -> dict[str, str]:
    """One label per IRI in ``lang`` (rdfs:label, then skos:prefLabel, then local name)."""
    iris = sorted(set(iris))
    found: dict[str, dict[str, str]] = defaultdict(dict)
    if iris:
        query = PREFIXES + (
            f"SELECT ?s ?l WHERE {{ VALUES ?s {{ {_values(iris)} }} "
            "?s rdfs:label|skos:prefLabel ?l FILTER(isLiteral(?l)) }"
        )
        for row in selected(store.query(query)):
            found[row["s"].value].setdefault(row["l"].language or "", row["l"].value)
    return {iri: pick(found.get(iri, {}), lang, local_name(iri)) for iri in iris}


def ontology_terms(store: Store) -> tuple[set[str], set[str]]:
    """The rm: classes and rm: properties the ontology declares."""
    query = PREFIXES + (
        f"SELECT ?t ?k WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?t a ?k . "
        "VALUES ?k { owl:Class owl:ObjectProperty owl:DatatypeProperty owl:AnnotationProperty } "
        f'FILTER(STRSTARTS(STR(?t), "{RM}")) }} }}'
    )
    classes: set[str] = set()
    properties: set[str] = set()
    for row in selected(store.query(query)):
        (classes if row["k"].value == OWL + "Class" else properties).add(row["t"].value)
    return classes, properties


def member_counts(store: Store) -> dict[str, dict[str, int]]:
    """Per rm: class, how many subjects are typed with it: asserted and inferred."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"asserted": 0, "inferred": 0})
    asserted = (
        "SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE { GRAPH ?g { ?s a ?c } "
        f"FILTER(?g NOT IN (<{INFERRED_GRAPH}>, <{PROVENANCE_GRAPH}>, <{ONTOLOGY_GRAPH}>)) "
        f'FILTER(STRSTARTS(STR(?c), "{RM}")) }} GROUP BY ?c'
    )
    inferred = (
        f"SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE {{ GRAPH <{INFERRED_GRAPH}> {{ ?s a ?c }} "
        f'FILTER(STRSTARTS(STR(?c), "{RM}")) }} GROUP BY ?c'
    )
    for kind, query in (("asserted", asserted), ("inferred", inferred)):
        for row in selected(store.query(query)):
            counts[row["c"].value][kind] = int(row["n"].value)
    return counts


def class_tree(store: Store, lang: str) -> list[dict]:
    """The rm: classes as a forest under their rm: superclasses, sorted by label.

    A class with two rm: superclasses appears under both, as in Protégé.
    """
    query = PREFIXES + (
        f"SELECT ?c ?super WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?c a owl:Class "
        f'FILTER(STRSTARTS(STR(?c), "{RM}")) '
        "OPTIONAL { ?c rdfs:subClassOf ?super "
        f'FILTER(isIRI(?super) && STRSTARTS(STR(?super), "{RM}")) }} }} }}'
    )
    children: dict[str, set[str]] = defaultdict(set)
    classes: set[str] = set()
    has_parent: set[str] = set()
    for row in selected(store.query(query)):
        classes.add(row["c"].value)
        if row["super"] is not None:
            children[row["super"].value].add(row["c"].value)
            has_parent.add(row["c"].value)
    names = labels(store, classes, lang)
    counts = member_counts(store)

    def node(iri: str, seen: frozenset[str]) -> dict:
        kids = sorted(children.get(iri, set()) - seen, key=lambda c: names[c].lower())
        return {
            "iri": iri,
            "label": names[iri],
            "counts": counts.get(iri, {"asserted": 0, "inferred": 0}),
            "children": [node(kid, seen | {kid}) for kid in kids],
        }

    roots = sorted(classes - has_parent, key=lambda c: names[c].lower())
    return [node(root, frozenset({root})) for root in roots]


def _describe(store: Store, iri: str) -> dict[str, list[Term]]:
    """All values of ``iri``'s properties in the ontology graph, by property IRI."""
    query = f"SELECT ?p ?o WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?s ?p ?o }} }}"
    found: dict[str, list[Term]] = defaultdict(list)
    for row in selected(store.query(bound(query, s=ox.NamedNode(iri)))):
        found[row["p"].value].append(row["o"])
    return found


def _texts(terms: list[Term]) -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = defaultdict(list)
    for term in terms:
        if isinstance(term, ox.Literal):
            by_lang[term.language or ""].append(term.value)
    return by_lang


def _text(terms: list[Term], lang: str) -> list[str]:
    """The literals in ``lang``, else untagged, else English."""
    by_lang = _texts(terms)
    for wanted in (lang, "", "en"):
        if by_lang.get(wanted):
            return by_lang[wanted]
    return []


def _iris(terms: list[Term], rm_only: bool = False) -> list[str]:
    return sorted(
        t.value
        for t in terms
        if isinstance(t, ox.NamedNode) and (not rm_only or t.value.startswith(RM))
    )


def _annotations(store: Store, iri: str, lang: str) -> dict:
    """Labels, definition, comments, notes and sources: what every term page shows."""
    facts = _describe(store, iri)
    all_labels = sorted(
        (t.language or "", t.value)
        for t in facts.get(RDFS + "label", [])
        if isinstance(t, ox.Literal)
    )
    sources = facts.get(DCTERMS + "source", [])
    return {
        "iri": iri,
        "short": short(iri),
        "label": labels(store, [iri], lang)[iri],
        "labels": all_labels,
        "alt_labels": _text(facts.get(SKOS + "altLabel", []), lang),
        "definitions": _text(facts.get(SKOS + "definition", []), lang),
        "comments": _text(facts.get(RDFS + "comment", []), lang),
        "notes": _text(facts.get(SKOS + "note", []), lang),
        "sources": cited(store, sources),
        "facts": facts,
    }


def class_details(store: Store, iri: str, lang: str) -> dict:
    """One class: annotations, neighbours in the hierarchy, properties, member counts."""
    page = _annotations(store, iri, lang)
    facts = page.pop("facts")
    supers = _iris(facts.get(RDFS + "subClassOf", []))
    query = f"SELECT ?sub WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?sub <{RDFS}subClassOf> ?c }} }}"
    subs = sorted(
        row["sub"].value
        for row in selected(store.query(bound(query, c=ox.NamedNode(iri))))
        if isinstance(row["sub"], ox.NamedNode)
    )
    union = PREFIXES + (
        f"SELECT ?p ?which WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ "
        "{ ?p rdfs:domain/(owl:unionOf/rdf:rest*/rdf:first)? ?c BIND('domain' AS ?which) } UNION "
        "{ ?p rdfs:range/(owl:unionOf/rdf:rest*/rdf:first)? ?c BIND('range' AS ?which) } } }"
    )
    domain_of: list[str] = []
    range_of: list[str] = []
    for row in selected(store.query(bound(union, c=ox.NamedNode(iri)))):
        (domain_of if row["which"].value == "domain" else range_of).append(row["p"].value)
    names = labels(store, [*supers, *subs, *domain_of, *range_of], lang)

    def listed(iris: Iterable[str]) -> list[dict]:
        return sorted(
            ({"iri": i, "label": names[i], "short": short(i)} for i in set(iris)),
            key=lambda item: item["label"].lower(),
        )

    counts = member_counts(store).get(iri, {"asserted": 0, "inferred": 0})
    return {
        **page,
        "superclasses": listed(supers),
        "subclasses": listed(subs),
        "domain_of": listed(domain_of),
        "range_of": listed(range_of),
        "counts": counts,
    }


def ancestors(store: Store, iri: str) -> list[str]:
    """``iri`` and every rm: class above it, nearest first."""
    query = PREFIXES + (
        f"SELECT DISTINCT ?a WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?c rdfs:subClassOf+ ?a "
        f'FILTER(STRSTARTS(STR(?a), "{RM}")) }} }}'
    )
    found = [row["a"].value for row in selected(store.query(bound(query, c=ox.NamedNode(iri))))]
    return [iri, *sorted(set(found) - {iri})]


def property_details(store: Store, iri: str, lang: str) -> dict:
    """One property: annotations, kind, domain and range, its hierarchy, its usage."""
    page = _annotations(store, iri, lang)
    facts = page.pop("facts")
    kinds = [PROPERTY_KINDS[t] for t in _iris(facts.get(RDF + "type", [])) if t in PROPERTY_KINDS]
    query = PREFIXES + (
        f"SELECT ?x ?which WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ "
        "{ ?p rdfs:domain/(owl:unionOf/rdf:rest*/rdf:first)? ?x BIND('domain' AS ?which) } UNION "
        "{ ?p rdfs:range/(owl:unionOf/rdf:rest*/rdf:first)? ?x BIND('range' AS ?which) } UNION "
        "{ ?x rdfs:subPropertyOf ?p BIND('sub' AS ?which) } UNION "
        "{ ?p rdfs:subPropertyOf ?x BIND('super' AS ?which) } UNION "
        "{ { ?p owl:inverseOf ?x } UNION { ?x owl:inverseOf ?p } BIND('inverse' AS ?which) } "
        "FILTER(isIRI(?x)) } }"
    )
    related: dict[str, set[str]] = defaultdict(set)
    for row in selected(store.query(bound(query, p=ox.NamedNode(iri)))):
        related[row["which"].value].add(row["x"].value)
    names = labels(store, set().union(*related.values()) if related else set(), lang)
    usage = (
        "SELECT ?kind (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } "
        f"FILTER(?g NOT IN (<{PROVENANCE_GRAPH}>, <{ONTOLOGY_GRAPH}>)) "
        f"BIND(IF(?g = <{INFERRED_GRAPH}>, 'inferred', 'asserted') AS ?kind) }} GROUP BY ?kind"
    )
    counts = {"asserted": 0, "inferred": 0}
    for row in selected(store.query(bound(usage, p=ox.NamedNode(iri)))):
        counts[row["kind"].value] = int(row["n"].value)
    return {
        **page,
        "kinds": kinds,
        **{
            which: sorted(
                ({"iri": i, "label": names[i], "short": short(i)} for i in related.get(which, ())),
                key=lambda item: item["label"].lower(),
            )
            for which in ("domain", "range", "sub", "super", "inverse")
        },
        "counts": counts,
    }


def all_properties(store: Store, lang: str) -> list[dict]:
    """The rm: properties, sorted by label, with their kind."""
    query = PREFIXES + (
        f"SELECT ?p ?k WHERE {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?p a ?k "
        "VALUES ?k { owl:ObjectProperty owl:DatatypeProperty owl:AnnotationProperty } "
        f'FILTER(STRSTARTS(STR(?p), "{RM}")) }} }}'
    )
    kinds = {row["p"].value: PROPERTY_KINDS[row["k"].value] for row in selected(store.query(query))}
    names = labels(store, kinds, lang)
    return sorted(
        ({"iri": p, "label": names[p], "short": short(p), "kind": k} for p, k in kinds.items()),
        key=lambda item: item["label"].lower(),
    )
