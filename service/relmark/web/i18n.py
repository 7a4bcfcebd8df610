"""The language of an answer, chosen one way for every page and API, and the page words.

``?lang=`` wins (400 naming the supported languages when it names another), then
``Accept-Language``, then English. Labels of ontology terms and data come from the store
in the chosen language; only the words the templates themselves print live here.
"""

from __future__ import annotations

from flask import request

from relmark.i18n import DEFAULT_LANGUAGE, LANGUAGES
from relmark.web.errors import ApiError

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "home": "Home",
        "ontology": "Ontology",
        "thirty_r": "30R",
        "selling_steps": "Selling steps",
        "loyalty_ladder": "Loyalty ladder",
        "query": "Query",
        "pictures": "Pictures",
        "search": "Search",
        "search_placeholder": "a label, in English or Italian",
        "search_results": "Search results",
        "no_results": "Nothing found.",
        "store_holds": "What this store holds",
        "stakeholders": "stakeholders",
        "relationships": "relationships",
        "interactions": "interactions",
        "inferred_classifications": "inferred classifications",
        "focal_firms": "Focal firms",
        "class_tree": "Class tree",
        "classes": "Classes",
        "properties": "Properties",
        "expand_all": "Expand all",
        "collapse_all": "Collapse all",
        "labels": "Labels",
        "alt_labels": "Other names",
        "definition": "Definition",
        "comment": "Comment",
        "note": "Note",
        "sources": "Sources",
        "download_ontology": "Download the ontology",
        "ontology_version": "Version",
        "superclasses": "Superclasses",
        "subclasses": "Subclasses",
        "domain_of": "Properties whose domain it is",
        "range_of": "Properties whose range it is",
        "constraints": "Constraints on the data (SHACL)",
        "from_shape": "shape",
        "inferring_rules": "Rules that infer it",
        "named_queries_using": "Named queries that use it",
        "members": "Members",
        "asserted": "asserted",
        "inferred": "inferred",
        "see_members": "see the members",
        "none": "none",
        "kind": "Kind",
        "domain": "Domain",
        "range": "Range",
        "superproperties": "Superproperties",
        "subproperties": "Subproperties",
        "inverse_of": "Inverse of",
        "usage": "Statements using it",
        "group": "Group",
        "notation": "Notation",
        "label": "Label",
        "step": "Step",
        "rank": "Rank",
        "stage": "Stage",
        "open_opportunities": "Sales opportunities at this step",
        "relationships_at_stage": "Customer relationships at this stage",
        "relationships_of_kind": "Relationships of this kind",
        "types": "Types",
        "why": "why?",
        "why_not": "why not?",
        "not_in": "Not in",
        "explanation": "Explanation",
        "outgoing": "Outgoing links and values",
        "incoming": "Incoming links",
        "property": "Property",
        "value": "Value",
        "subject": "Subject",
        "graph": "Graph",
        "language": "Language",
        "by_rule": "by rule",
        "in_graph": "in",
        "threshold": "threshold",
        "see_explanation": "see the explanation",
        "see_why_not": "see what is missing",
        "download": "Download",
        "sparql_editor": "SPARQL editor",
        "run": "Run",
        "examples": "Examples",
        "results": "Results",
        "rows": "rows",
        "named_queries": "Named questions",
        "csv": "CSV",
        "no_named_queries": "This server has no named questions (queries/ holds none).",
        "required": "required",
        "network": "Relationship network",
        "network_text": "The network as a table",
        "funnel": "Loyalty ladder funnel",
        "markets": "The six markets",
        "firm": "Focal firm",
        "show": "Show",
        "count": "Count",
        "market": "Market",
        "source": "From",
        "target": "To",
        "node": "Stakeholder",
        "edges": "links",
        "nodes": "stakeholders",
        "error": "Error",
        "truncated": "only the first rows are shown",
        "inherited_from": "inherited from",
        "severity": "severity",
        "turtle": "Turtle",
        "jsonld": "JSON-LD",
        "no_js": "Works without JavaScript; with it, the page does more.",
        "holds": "holds",
        "unmet": "missing",
        "met": "met",
    },
    "it": {
        "home": "Inizio",
        "ontology": "Ontologia",
        "thirty_r": "30R",
        "selling_steps": "Fasi della vendita",
        "loyalty_ladder": "Scala della fedeltà",
        "query": "Interrogazioni",
        "pictures": "Immagini",
        "search": "Cerca",
        "search_placeholder": "un'etichetta, in inglese o in italiano",
        "search_results": "Risultati della ricerca",
        "no_results": "Nessun risultato.",
        "store_holds": "Che cosa contiene questo archivio",
        "stakeholders": "portatori di interesse",
        "relationships": "relazioni",
        "interactions": "interazioni",
        "inferred_classifications": "classificazioni inferite",
        "focal_firms": "Imprese focali",
        "class_tree": "Albero delle classi",
        "classes": "Classi",
        "properties": "Proprietà",
        "expand_all": "Espandi tutto",
        "collapse_all": "Comprimi tutto",
        "labels": "Etichette",
        "alt_labels": "Altri nomi",
        "definition": "Definizione",
        "comment": "Commento",
        "note": "Nota",
        "sources": "Fonti",
        "download_ontology": "Scarica l'ontologia",
        "ontology_version": "Versione",
        "superclasses": "Superclassi",
        "subclasses": "Sottoclassi",
        "domain_of": "Proprietà di cui è dominio",
        "range_of": "Proprietà di cui è codominio",
        "constraints": "Vincoli sui dati (SHACL)",
        "from_shape": "forma",
        "inferring_rules": "Regole che la inferiscono",
        "named_queries_using": "Interrogazioni con nome che la usano",
        "members": "Membri",
        "asserted": "asserito",
        "inferred": "inferito",
        "see_members": "vedi i membri",
        "none": "nessuno",
        "kind": "Tipo",
        "domain": "Dominio",
        "range": "Codominio",
        "superproperties": "Superproprietà",
        "subproperties": "Sottoproprietà",
        "inverse_of": "Inversa di",
        "usage": "Asserzioni che la usano",
        "group": "Gruppo",
        "notation": "Notazione",
        "label": "Etichetta",
        "step": "Fase",
        "rank": "Rango",
        "stage": "Stadio",
        "open_opportunities": "Opportunità di vendita in questa fase",
        "relationships_at_stage": "Relazioni con i clienti in questo stadio",
        "relationships_of_kind": "Relazioni di questo tipo",
        "types": "Tipi",
        "why": "perché?",
        "why_not": "perché no?",
        "not_in": "Non in",
        "explanation": "Spiegazione",
        "outgoing": "Collegamenti e valori in uscita",
        "incoming": "Collegamenti in entrata",
        "property": "Proprietà",
        "value": "Valore",
        "subject": "Soggetto",
        "graph": "Grafo",
        "language": "Lingua",
        "by_rule": "dalla regola",
        "in_graph": "in",
        "threshold": "soglia",
        "see_explanation": "vedi la spiegazione",
        "see_why_not": "vedi che cosa manca",
        "download": "Scarica",
        "sparql_editor": "Editor SPARQL",
        "run": "Esegui",
        "examples": "Esempi",
        "results": "Risultati",
        "rows": "righe",
        "named_queries": "Domande con nome",
        "csv": "CSV",
        "no_named_queries": "Questo server non ha domande con nome (queries/ non ne contiene).",
        "required": "obbligatorio",
        "network": "Rete delle relazioni",
        "network_text": "La rete come tabella",
        "funnel": "Imbuto della scala della fedeltà",
        "markets": "I sei mercati",
        "firm": "Impresa focale",
        "show": "Mostra",
        "count": "Numero",
        "market": "Mercato",
        "source": "Da",
        "target": "A",
        "node": "Portatore di interesse",
        "edges": "collegamenti",
        "nodes": "portatori di interesse",
        "error": "Errore",
        "truncated": "sono mostrate solo le prime righe",
        "inherited_from": "ereditato da",
        "severity": "gravità",
        "turtle": "Turtle",
        "jsonld": "JSON-LD",
        "no_js": "Funziona senza JavaScript; con JavaScript la pagina fa di più.",
        "holds": "vale",
        "unmet": "mancanti",
        "met": "soddisfatte",
    },
}


def request_language(*, strict: bool = True) -> str:
    """The language this request asked for: ``?lang=``, else ``Accept-Language``, else
    English.

    An unsupported ``?lang=`` is a 400 (``strict``); not strict (the chrome of the error
    page that says so) it falls back as if not given.
    """
    return explicit_language(strict=strict) or (
        request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE
    )


def explicit_language(*, strict: bool = True) -> str | None:
    """The language the URL asked for, which links must carry on; None when not asked
    (no ``?lang=``, or an empty one)."""
    raw = request.args.get("lang")
    wanted = (raw or "").strip().lower()
    if not wanted:
        return None
    if wanted in LANGUAGES:
        return wanted
    if strict:
        raise unsupported_language(raw or "")
    return None


def unsupported_language(value: str) -> ApiError:
    """400 for a ``?lang=`` relmark does not speak, in the shape of a bad parameter."""
    expected = "one of " + ", ".join(LANGUAGES)
    return ApiError(
        400,
        "unsupported value of parameter 'lang'",
        detail=f"lang: got {value!r}, expected {expected}",
        where="lang",
        extra={"parameter": "lang", "value": value, "expected": expected},
    )


def words(lang: str) -> dict[str, str]:
    """The page chrome's words in ``lang`` (English for anything else)."""
    return WORDS.get(lang, WORDS[DEFAULT_LANGUAGE])
