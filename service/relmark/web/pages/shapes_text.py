"""The SHACL constraints on a class, in plain words (EN/IT), read from the shapes graph.

A class page lists what data about its instances must satisfy: the property shapes of
every node shape whose ``sh:targetClass`` is the class or one of its superclasses (the
shapes reach subclasses, see shapes.ttl), each as one sentence built from its
constraint components, next to the shape's own ``sh:message`` written for marketers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from relmark.stores.base import Store, Term, selected
from relmark.vocab import SHAPES_GRAPH
from relmark.web.pages.ontology import labels, local_name, pick, short

SH = "http://www.w3.org/ns/shacl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDF_LANG_STRING = RDF + "langString"

DATATYPES = {
    XSD + "date": ("a date", "una data"),
    XSD + "dateTime": ("a date and time", "una data e ora"),
    XSD + "decimal": ("a decimal number", "un numero decimale"),
    XSD + "integer": ("a whole number", "un numero intero"),
    XSD + "boolean": ("true or false", "vero o falso"),
    XSD + "string": ("a text", "un testo"),
    XSD + "anyURI": ("a web address", "un indirizzo web"),
    RDF_LANG_STRING: ("a text with a language tag", "un testo con tag di lingua"),
}
NODE_KINDS = {
    SH + "IRI": ("a resource (IRI)", "una risorsa (IRI)"),
    SH + "BlankNodeOrIRI": ("a resource", "una risorsa"),
    SH + "Literal": ("a value (literal)", "un valore (letterale)"),
}

PHRASES = {
    "en": {
        "exactly": "exactly {n} value(s)",
        "at_least": "at least {n} value(s)",
        "at_most": "at most {n} value(s)",
        "between": "between {a} and {b} values",
        "any": "optional",
        "each": "each {what}",
        "instance": "an instance of {what}",
        "one_of": "one of {what}",
        "or": " or ",
        "from_to": "from {a} to {b}",
        "min": "at least {a}",
        "max": "at most {b}",
        "disjoint": "never the same as {what}",
        "before": "not later than {what}",
        "Violation": "a violation rejects the data",
        "Warning": "a warning only",
        "Info": "information only",
    },
    "it": {
        "exactly": "esattamente {n} valore/i",
        "at_least": "almeno {n} valore/i",
        "at_most": "al più {n} valore/i",
        "between": "tra {a} e {b} valori",
        "any": "facoltativo",
        "each": "ciascuno {what}",
        "instance": "un'istanza di {what}",
        "one_of": "uno tra {what}",
        "or": " o ",
        "from_to": "da {a} a {b}",
        "min": "almeno {a}",
        "max": "al più {b}",
        "disjoint": "mai uguale a {what}",
        "before": "non successivo a {what}",
        "Violation": "una violazione rifiuta i dati",
        "Warning": "solo un avvertimento",
        "Info": "solo un'informazione",
    },
}


def constraints_for(store: Store, classes: Sequence[str], lang: str) -> list[dict]:
    """The property shapes that apply to instances of ``classes[0]``, nearest class first.

    ``classes`` is the class followed by its superclasses (``ontology_view.ancestors``).
    """
    if not classes:
        return []
    values = " ".join(str(ox.NamedNode(c)) for c in classes)
    query = (
        f"SELECT ?target ?shape ?ps ?p ?o WHERE {{ GRAPH <{SHAPES_GRAPH}> {{ "
        f"VALUES ?target {{ {values} }} ?shape <{SH}targetClass> ?target ; "
        f"<{SH}property> ?ps . ?ps ?p ?o }} }}"
    )
    shapes: dict[str, dict] = {}
    for row in selected(store.query(query)):
        ps = row["ps"].value
        entry = shapes.setdefault(
            ps,
            {
                "node": row["ps"],
                "target": row["target"].value,
                "shape": row["shape"].value,
                "facts": {},
            },
        )
        entry["facts"].setdefault(row["p"].value, []).append(row["o"])
    items = _list_items(store, shapes)
    iris: set[str] = set(classes)
    for entry in shapes.values():
        for p in (SH + "path", SH + "class", SH + "disjoint", SH + "lessThanOrEquals"):
            iris |= {t.value for t in entry["facts"].get(p, []) if isinstance(t, ox.NamedNode)}
    for found in items.values():
        iris |= set(found)
    names = labels(store, iris, lang)
    rank = {c: i for i, c in enumerate(classes)}
    result = []
    for ps, entry in shapes.items():
        facts = entry["facts"]
        path = _first(facts, SH + "path")
        severity = _first(facts, SH + "severity")
        result.append(
            {
                "shape": ps,
                "target": entry["target"],
                "target_label": names[entry["target"]],
                "inherited": entry["target"] != classes[0],
                "path": path.value if isinstance(path, ox.NamedNode) else None,
                "path_short": short(path.value) if isinstance(path, ox.NamedNode) else "",
                "name": _literal(facts.get(SH + "name", []), lang)
                or (names.get(path.value) if isinstance(path, ox.NamedNode) else ""),
                "text": sentence(facts, items, ps, names, lang),
                "message": _literal(facts.get(SH + "message", []), lang),
                "severity": local_name(severity.value) if severity is not None else "Violation",
            }
        )
    return sorted(result, key=lambda c: (rank[c["target"]], c["name"].lower()))


def _list_items(store: Store, shapes: dict[str, dict]) -> dict[tuple[str, str], list[str]]:
    """The members of each shape's ``sh:in`` and ``sh:or`` lists, in list order.

    The list cells of the shapes graph come back in one plain query and are walked here:
    property paths (``rdf:rest*``) over them took several times longer.
    """
    query = (
        f"SELECT ?ps ?kind ?list WHERE {{ GRAPH <{SHAPES_GRAPH}> {{ "
        f"{{ ?ps <{SH}in> ?list BIND('in' AS ?kind) }} UNION "
        f"{{ ?ps <{SH}or> ?list BIND('or' AS ?kind) }} }} }}"
    )
    heads = {
        (row["ps"].value, row["kind"].value): row["list"]
        for row in selected(store.query(query))
        if row["ps"].value in shapes
    }
    query = (
        f"SELECT ?node ?first ?next ?inner WHERE {{ GRAPH <{SHAPES_GRAPH}> {{ "
        f"?node <{RDF}first> ?first ; <{RDF}rest> ?next . "
        f"OPTIONAL {{ ?first <{SH}datatype>|<{SH}class> ?inner }} }} }}"
    )
    cells: dict[Term, tuple[Term, Term]] = {
        row["node"]: (row["inner"] if row["inner"] is not None else row["first"], row["next"])
        for row in selected(store.query(query))
    }
    items: dict[tuple[str, str], list[str]] = {}
    for key, node in heads.items():
        found: list[str] = []
        while node in cells and len(found) <= len(cells):
            item, node = cells[node]
            if isinstance(item, ox.NamedNode):
                found.append(item.value)
        items[key] = found
    return items


def sentence(
    facts: dict[str, list[Term]],
    items: dict[tuple[str, str], list[str]],
    ps: str,
    names: dict[str, str],
    lang: str,
) -> str:
    """One property shape's constraint components as a sentence in ``lang``."""
    words = PHRASES.get(lang, PHRASES["en"])
    index = 1 if lang == "it" else 0
    parts = [_cardinality(facts, words)]
    kinds = []
    datatype = _first(facts, SH + "datatype")
    if datatype is not None:
        kinds.append(DATATYPES.get(datatype.value, (local_name(datatype.value),) * 2)[index])
    cls = _first(facts, SH + "class")
    if cls is not None:
        kinds.append(words["instance"].format(what=names.get(cls.value, short(cls.value))))
    alternatives = items.get((ps, "or"), [])
    if alternatives:
        kinds.append(
            words["or"].join(
                DATATYPES.get(a, (names.get(a, local_name(a)),) * 2)[index] for a in alternatives
            )
        )
    allowed = items.get((ps, "in"), [])
    if allowed:
        kinds.append(
            words["one_of"].format(what=", ".join(names.get(a, short(a)) for a in allowed))
        )
    kind = _first(facts, SH + "nodeKind")
    if not kinds and kind is not None and kind.value in NODE_KINDS:
        kinds.append(NODE_KINDS[kind.value][index])
    if kinds:
        parts.append(words["each"].format(what="; ".join(kinds)))
    low, high = _first(facts, SH + "minInclusive"), _first(facts, SH + "maxInclusive")
    if low is not None and high is not None:
        parts.append(words["from_to"].format(a=low.value, b=high.value))
    elif low is not None:
        parts.append(words["min"].format(a=low.value))
    elif high is not None:
        parts.append(words["max"].format(b=high.value))
    for predicate, phrase in ((SH + "disjoint", "disjoint"), (SH + "lessThanOrEquals", "before")):
        other = _first(facts, predicate)
        if other is not None:
            parts.append(words[phrase].format(what=names.get(other.value, short(other.value))))
    severity = _first(facts, SH + "severity")
    parts.append(words.get(local_name(severity.value) if severity else "Violation", ""))
    return "; ".join(p for p in parts if p) + "."


def _cardinality(facts: dict[str, list[Term]], words: dict[str, str]) -> str:
    low, high = _first(facts, SH + "minCount"), _first(facts, SH + "maxCount")
    a = int(low.value) if low is not None else 0
    b = int(high.value) if high is not None else None
    if b is not None and a == b:
        return words["exactly"].format(n=a)
    if a and b is not None:
        return words["between"].format(a=a, b=b)
    if a:
        return words["at_least"].format(n=a)
    if b is not None:
        return words["at_most"].format(n=b)
    return words["any"]


def _first(facts: dict[str, list[Term]], predicate: str) -> Term | None:
    values = facts.get(predicate)
    return values[0] if values else None


def _literal(terms: list[Term], lang: str) -> str:
    return pick({t.language or "": t.value for t in terms if isinstance(t, ox.Literal)}, lang)
