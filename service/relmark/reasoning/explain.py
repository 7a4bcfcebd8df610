"""Explanations: why a resource has a class, as a tree whose leaves are asserted facts.

Reads only the store: the provenance graph that ``rules.materialise`` wrote (a node per
derivation with its rule, bindings and premises) and the rule metadata stored with it.
Trees come back as plain dicts for machines (terms as in SPARQL JSON results) and as text
for people (``explanation_text``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyoxigraph as ox

from relmark.citations import cited
from relmark.reasoning.rules.inputs import NOT_RULE_INPUT
from relmark.reasoning.rules.model import RULE_IRI_PREFIX
from relmark.reasoning.rules.provenance import DCTERMS, PROV, RDF, RDFS, VARIABLE_IRI_PREFIX
from relmark.stores.base import Store
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_GRAPH, PROVENANCE_GRAPH, RM

RDF_TYPE = ox.NamedNode(RDF + "type")
OWL_CLASS = "http://www.w3.org/2002/07/owl#Class"
THRESHOLD_VALUE = RM + "thresholdValue"

_PREFIXES = f"""\
PREFIX rdf: <{RDF}>
PREFIX rdfs: <{RDFS}>
PREFIX prov: <{PROV}>
PREFIX dcterms: <{DCTERMS}>
"""


class NotExplained(LookupError):
    """The store neither asserts nor infers the triple to explain."""


class UnknownResource(LookupError):
    """No triple has the IRI as its subject."""


class NotAnOntologyClass(ValueError):
    """The IRI is not an rm: class declared in the ontology."""


def check_resource(store: Store, iri: str) -> str:
    """``iri`` if some triple has it as subject, else ``UnknownResource``."""
    try:
        node = ox.NamedNode(iri)
    except ValueError as error:
        raise UnknownResource(f"{iri!r} is not an IRI: {error}") from None
    if not store.query("ASK { ?s ?p ?o }", substitutions={"s": node}):
        raise UnknownResource(f"the store has no statement about <{iri}>")
    return iri


def check_class(store: Store, iri: str) -> str:
    """``iri`` if it is an rm: class of the ontology graph, else ``NotAnOntologyClass``."""
    if iri.startswith("rm:"):
        iri = RM + iri[3:]
    declared = False
    if iri.startswith(RM):
        declared = bool(
            store.query(
                f"ASK {{ GRAPH <{ONTOLOGY_GRAPH}> {{ ?c a <{OWL_CLASS}> }} }}",
                substitutions={"c": ox.NamedNode(iri)},
            )
        )
    if not declared:
        raise NotAnOntologyClass(f"<{iri}> is not a class of the relmark ontology ({RM}…)")
    return iri


def explain(store: Store, iri: str, class_iri: str, lang: str = "en") -> dict:
    """Why ``iri`` is an instance of ``class_iri``: the rule, its facts, down to assertions."""
    return explain_triple(
        store, ox.Triple(ox.NamedNode(iri), RDF_TYPE, ox.NamedNode(class_iri)), lang
    )


def explain_triple(store: Store, triple: ox.Triple, lang: str = "en") -> dict:
    """The explanation tree of any asserted or inferred triple."""
    tree = _explain(store, triple, lang, ancestors=frozenset(), labels={})
    if tree is None:
        raise NotExplained(f"no asserted fact and no recorded derivation for {triple}")
    return tree


def classify(store: Store, iri: str, lang: str = "en") -> list[dict]:
    """The classes of ``iri``, each asserted (with its graphs) or inferred (with its rules)."""
    subject = ox.NamedNode(iri)
    asserted: dict[str, list[str | None]] = {}
    for graph in _asserted_graphs(store):
        query = "SELECT ?c ?s WHERE { ?s a ?c }"
        for solution in store.query(query, default_graph=[graph], substitutions={"s": subject}):
            if isinstance(solution["c"], ox.NamedNode):
                asserted.setdefault(solution["c"].value, []).append(graph)
    inferred = sorted(
        solution["c"].value
        for solution in store.query(
            "SELECT ?c ?s WHERE { ?s a ?c }",
            default_graph=[INFERRED_GRAPH],
            substitutions={"s": subject},
        )
    )
    labels: dict[tuple[str, str], str] = {}
    entries = [
        {
            "class": class_iri,
            "label": _label(store, class_iri, lang, labels),
            "status": "asserted",
            "graphs": graphs,
        }
        for class_iri, graphs in sorted(asserted.items())
    ]
    for class_iri in inferred:
        triple = ox.Triple(subject, RDF_TYPE, ox.NamedNode(class_iri))
        rules = {}
        for _, rule in _derivations(store, triple):
            if rule not in rules:
                meta = _rule_meta(store, rule, lang)
                rules[rule] = {"rule": meta["rule"], "label": meta["label"], "why": meta["why"]}
        entries.append(
            {
                "class": class_iri,
                "label": _label(store, class_iri, lang, labels),
                "status": "inferred",
                "rules": list(rules.values()),
            }
        )
    return entries


def leaves(tree: Mapping) -> list[dict]:
    """The facts at the bottom of an explanation tree (all asserted, by construction)."""
    if tree["status"] == "asserted":
        return [dict(tree)]
    found = []
    for premise in tree["premises"]:
        found += leaves(premise)
    return found


def explanation_text(tree: Mapping, indent: str = "") -> str:
    """The tree as indented text, for a terminal or a log."""
    triple = " ".join(_short(tree["triple"][k]) for k in ("subject", "predicate", "object"))
    if tree["status"] == "asserted":
        where = ", ".join(g or "default graph" for g in tree["graphs"])
        return f"{indent}{triple}   [asserted in {where}]"
    lines = [
        f"{indent}{triple}   [inferred by {tree['rule']}: {tree['label']}]",
        f"{indent}  why: {tree['why']}",
    ]
    if tree.get("source"):
        lines.append(f"{indent}  source: {tree['source']}")
    for threshold in tree["thresholds"]:
        value = threshold["value"]["value"]
        lines.append(f"{indent}  threshold: {threshold['label']} = {value}")
    for premise in tree["premises"]:
        lines.append(explanation_text(premise, indent + "    "))
    return "\n".join(lines)


# --- building the tree ------------------------------------------------------------------


def _explain(
    store: Store,
    triple: ox.Triple,
    lang: str,
    ancestors: frozenset[ox.Triple],
    labels: dict[tuple[str, str], str],
) -> dict | None:
    graphs = _graphs_holding(store, triple)
    asserted = [g for g in graphs if g != INFERRED_GRAPH]
    if asserted:
        return {"triple": _triple_json(triple), "status": "asserted", "graphs": asserted}
    if INFERRED_GRAPH not in graphs:
        return None
    derivations = _derivations(store, triple)
    for derivation, rule in derivations:
        node = _explain_derivation(store, triple, derivation, rule, lang, ancestors, labels)
        if node is not None:
            node["derivations"] = len(derivations)
            return node
    return None


def _explain_derivation(
    store: Store,
    triple: ox.Triple,
    derivation: ox.NamedNode,
    rule: ox.NamedNode,
    lang: str,
    ancestors: frozenset[ox.Triple],
    labels: dict[tuple[str, str], str],
) -> dict | None:
    """One derivation as a tree node; None if it leans on a triple it helps to explain."""
    premises = []
    thresholds = []
    below = ancestors | {triple}
    # a fact stated in several graphs is one premise, with every graph stating it
    by_premise: dict[ox.Triple, list[str | None]] = {}
    for premise, graph in _premises(store, derivation):
        by_premise.setdefault(premise, []).append(graph)
    for premise, graphs in by_premise.items():
        asserted = [g for g in graphs if g != INFERRED_GRAPH]
        if not asserted:
            if premise in below:
                return None
            subtree = _explain(store, premise, lang, below, labels)
            if subtree is None:
                return None
            premises.append(subtree)
        else:
            premises.append(
                {
                    "triple": _triple_json(premise),
                    "status": "asserted",
                    "graphs": sorted(set(asserted), key=lambda g: g or ""),
                }
            )
        if premise.predicate.value == THRESHOLD_VALUE:
            thresholds.append(
                {
                    "iri": premise.subject.value,
                    "label": _label(store, premise.subject.value, lang, labels),
                    "value": _term_json(premise.object),
                }
            )
    meta = _rule_meta(store, rule, lang)
    return {
        "triple": _triple_json(triple),
        "status": "inferred",
        "graphs": [INFERRED_GRAPH],
        **meta,
        "derivation": derivation.value,
        "bindings": _bindings(store, derivation),
        "thresholds": thresholds,
        "premises": premises,
    }


def _asserted_graphs(store: Store) -> list[str | None]:
    hidden = NOT_RULE_INPUT
    return [None, *(g for g in store.graph_names() if g not in hidden)]


def _graphs_holding(store: Store, triple: ox.Triple) -> list[str | None]:
    terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
    found: list[str | None] = []
    if store.query("ASK { ?s ?p ?o }", default_graph=[None], substitutions=terms):
        found.append(None)
    solutions = store.query(
        "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }",
        default_graph=[None],
        named_graphs=[g for g in store.graph_names() if g != PROVENANCE_GRAPH],
        substitutions=terms,
    )
    found += sorted(solution["g"].value for solution in solutions)
    return found


def _derivations(store: Store, triple: ox.Triple) -> list[tuple[ox.NamedNode, ox.NamedNode]]:
    """The derivations that generated ``triple``, in a stable order (rule, then IRI)."""
    query = (
        _PREFIXES
        + f"""
        SELECT ?derivation ?rule ?s ?p ?o WHERE {{ GRAPH <{PROVENANCE_GRAPH}> {{
            ?statement rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o ;
                prov:atLocation <{INFERRED_GRAPH}> .
            ?derivation prov:generated ?statement ; prov:used ?rule .
            ?rule a prov:Plan .
        }} }} ORDER BY ?rule ?derivation"""
    )
    terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
    return [
        (solution["derivation"], solution["rule"])
        for solution in store.query(query, substitutions=terms)
    ]


def _premises(store: Store, derivation: ox.NamedNode) -> list[tuple[ox.Triple, str | None]]:
    query = (
        _PREFIXES
        + f"""
        SELECT ?s ?p ?o ?g ?d WHERE {{ GRAPH <{PROVENANCE_GRAPH}> {{
            ?d prov:used ?statement .
            ?statement rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o .
            OPTIONAL {{ ?statement prov:atLocation ?g }}
        }} }}"""
    )
    found = [
        (
            ox.Triple(solution["s"], solution["p"], solution["o"]),
            solution["g"].value if solution["g"] is not None else None,
        )
        for solution in store.query(query, substitutions={"d": derivation})
    ]
    return sorted(
        found, key=lambda item: (str(item[0].subject), str(item[0].predicate), str(item[0].object))
    )


def _bindings(store: Store, derivation: ox.NamedNode) -> dict[str, dict]:
    query = (
        _PREFIXES
        + f"""
        SELECT ?variable ?value ?d WHERE {{ GRAPH <{PROVENANCE_GRAPH}> {{
            ?d ?variable ?value .
            FILTER (STRSTARTS(STR(?variable), "{VARIABLE_IRI_PREFIX}"))
        }} }} ORDER BY ?variable"""
    )
    return {
        solution["variable"].value[len(VARIABLE_IRI_PREFIX) :]: _term_json(solution["value"])
        for solution in store.query(query, substitutions={"d": derivation})
    }


def _rule_meta(store: Store, rule: ox.NamedNode, lang: str) -> dict:
    """A rule's name, label, why and source, as the run recorded them."""
    query = (
        _PREFIXES
        + f"""
        SELECT ?p ?value ?rule WHERE {{ GRAPH <{PROVENANCE_GRAPH}> {{
            ?rule ?p ?value .
            FILTER (?p IN (rdfs:label, rdfs:comment, dcterms:source))
        }} }}"""
    )
    values: dict[tuple[str, str], str] = {}
    sources: list[ox.Term] = []
    for solution in store.query(query, substitutions={"rule": rule}):
        value = solution["value"]
        if solution["p"].value == DCTERMS + "source":
            sources.append(value)
        elif isinstance(value, ox.Literal):
            values[(solution["p"].value, value.language or "")] = value.value

    def pick(predicate: str) -> str:
        for wanted in (lang, "en", ""):
            if (predicate, wanted) in values:
                return values[(predicate, wanted)]
        return ""

    shown = cited(store, sources)
    name = rule.value
    return {
        "rule": name[len(RULE_IRI_PREFIX) :] if name.startswith(RULE_IRI_PREFIX) else name,
        "rule_iri": name,
        "label": pick(RDFS + "label"),
        "why": pick(RDFS + "comment"),
        "source": "; ".join(item["text"] for item in shown),
        "sources": shown,
    }


def _label(store: Store, iri: str, lang: str, cache: dict[tuple[str, str], str]) -> str:
    """An IRI's rdfs:label in ``lang`` (else English, else its local name)."""
    if (iri, lang) not in cache:
        found: dict[str, str] = {}
        for solution in store.query(
            f"SELECT ?label ?s WHERE {{ ?s <{RDFS}label> ?label }}",
            substitutions={"s": ox.NamedNode(iri)},
        ):
            literal = solution["label"]
            if isinstance(literal, ox.Literal):
                found.setdefault(literal.language or "", literal.value)
        local = iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        cache[(iri, lang)] = found.get(lang) or found.get("en") or found.get("") or local
    return cache[(iri, lang)]


def _term_json(term: object) -> dict:
    """A term as in SPARQL 1.1 JSON results (RDF 1.2 triple terms as nested triples)."""
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        result = {"type": "literal", "value": term.value}
        if term.language:
            result["xml:lang"] = term.language
        else:
            result["datatype"] = term.datatype.value
        return result
    if isinstance(term, ox.Triple):
        return {"type": "triple", "value": _triple_json(term)}
    raise TypeError(f"not an RDF term: {term!r}")


def _triple_json(triple: ox.Triple) -> dict:
    return {
        "subject": _term_json(triple.subject),
        "predicate": _term_json(triple.predicate),
        "object": _term_json(triple.object),
    }


def short_iri(iri: str) -> str:
    """``rm:Name`` for an ontology IRI, ``a`` for rdf:type, else ``<iri>``."""
    if iri.startswith(RM):
        return "rm:" + iri[len(RM) :]
    if iri == RDF + "type":
        return "a"
    return f"<{iri}>"


def _short(term: Mapping) -> str:
    value = term["value"]
    if term["type"] == "uri":
        return short_iri(value)
    if term["type"] == "literal":
        return (
            repr(value) if "datatype" not in term or term["datatype"].endswith("string") else value
        )
    return str(value)
