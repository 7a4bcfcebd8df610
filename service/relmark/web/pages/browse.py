"""The HTML pages: home, ontology, resources, pictures; they work without JavaScript and
do more with it.

Views read only through ``get_store()``; what they show is gathered by the sibling
modules of ``web/pages/`` and rendered from ``templates/browse/``. The query page and the
pictures are their own blueprints (``query.py``, ``pictures.py``), nested here, so every
page shares this one's language check and template helpers; the vendor route for the npm
libraries is here too.
"""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
from flask import (
    Blueprint,
    Response,
    abort,
    g,
    render_template,
    request,
    send_from_directory,
    url_for,
)

from relmark.formats import Format, Kind, formats_of
from relmark.reasoning.explain import NotExplained, classify, explain
from relmark.reasoning.maintain import rules_for
from relmark.reasoning.whynot import why_not
from relmark.stores.base import selected
from relmark.vocab import INFERRED_GRAPH, ONTOLOGY_GRAPH, PROVENANCE_GRAPH, RM
from relmark.web.errors import ApiError
from relmark.web.extensions import get_settings, get_store
from relmark.web.i18n import LANGUAGES, explicit_language, request_language, words
from relmark.web.negotiation import (
    choose,
    format_by_name,
    not_acceptable,
    parse_accept,
    quality,
)
from relmark.web.pages import importing as import_page
from relmark.web.pages import pictures
from relmark.web.pages import query as query_page
from relmark.web.pages.home import search_labels, store_counts
from relmark.web.pages.ontology import (
    all_properties,
    ancestors,
    bound,
    class_details,
    class_tree,
    labels,
    ontology_terms,
    property_details,
    short,
)
from relmark.web.pages.ontology_document import (
    EXTENSIONS,
    OFFERED_RDF,
    OntologyDocument,
    ontology_document,
    version_path,
)
from relmark.web.pages.resource import (
    describe,
    display_label,
    incoming,
    outgoing,
    why_not_candidates,
)
from relmark.web.pages.schemes import (
    focal_firms,
    loyalty_ladder,
    selling_steps,
    thirty_r,
)
from relmark.web.pages.shapes_text import constraints_for
from relmark.web.pages.term_usage import queries_using, rules_inferring
from relmark.web.serialization import serialize_rdf

bp = Blueprint("browse", __name__)
bp.register_blueprint(query_page.bp)
bp.register_blueprint(pictures.bp)
bp.register_blueprint(import_page.bp)

#: npm files the pages may load, relative to node_modules/ (nothing else is served); the
#: build copies the same files into the package (pyproject.toml's package-data).
VENDOR_FILES = frozenset(
    {
        "codemirror/lib/codemirror.js",
        "codemirror/lib/codemirror.css",
        "codemirror/mode/sparql/sparql.js",
        "cytoscape/dist/cytoscape.min.js",
    }
)
#: A members page lists at most this many typing statements.
MEMBERS_LIMIT = 2000
HTML_TYPES = ("text/html", "application/xhtml+xml")


def page_not_found(message: str) -> ApiError:
    """404 for a page about something the store does not have (HTML to a reader:
    ``errors.wants_html``)."""
    return ApiError(404, "not found", detail=message)


@bp.before_request
def check_language() -> None:
    """Every page, and every page nested here, refuses an unsupported ``?lang=`` alike."""
    explicit_language()


# --- shared by every template --------------------------------------------------------------
@bp.app_context_processor
def page_helpers() -> dict[str, Any]:
    """The page language, its words and link helpers, for every template."""
    if not request or not (request.blueprint or "").startswith("browse"):
        return {}
    lang = request_language(strict=False)  # (also for the error page that refused ?lang=)
    return {
        "lang": lang,
        "w": words(lang),
        "languages": LANGUAGES,
        "href": href,
        "link_for": link_for,
        "switch_language": switch_language,
        "vendor": vendor_available,
        "short": short,
    }


def href(endpoint: str, **params: Any) -> str:
    """``url_for`` that carries an explicit ``?lang=`` on to the next page."""
    lang = explicit_language(strict=False)
    if lang and "lang" not in params:
        params["lang"] = lang
    return url_for(endpoint, **params)


def switch_language(lang: str) -> str:
    """This page's URL in another language."""
    args = {**request.args.to_dict(), **(request.view_args or {}), "lang": lang}
    return url_for(request.endpoint or "browse.home", **args)


def link_for(iri: str) -> str:
    """The page of any IRI: the class or property page for ontology terms, else its
    resource page."""
    if "ontology_terms" not in g:
        g.ontology_terms = ontology_terms(get_store())
    classes, properties = g.ontology_terms
    if iri in classes:
        return href("browse.class_page", iri=iri)
    if iri in properties:
        return href("browse.property_page", iri=iri)
    return href("browse.resource", iri=iri)


def vendor_available(name: str) -> bool:
    """Whether an npm file is installed: pages leave out what is missing and still work."""
    return name in VENDOR_FILES and (get_settings().vendor_dir / name).is_file()


@bp.get("/vendor/<path:name>")
def vendor(name: str) -> Response:
    """The allow-listed npm files (``RELMARK_VENDOR_DIR``), so no library file is committed."""
    if not vendor_available(name):
        abort(404)
    response = send_from_directory(get_settings().vendor_dir, name, max_age=3600)
    return response


# --- home and search -------------------------------------------------------------------------
@bp.get("/")
def home() -> str:
    store, lang = get_store(), request_language()
    return render_template(
        "browse/home.html",
        counts=store_counts(store),
        firms=focal_firms(store, lang),
        title="relmark",
    )


@bp.get("/search")
def search() -> str:
    text = request.args.get("q", "")
    hits = search_labels(get_store(), text, request_language())
    return render_template("browse/search.html", q=text, hits=hits, title=text or "search")


# --- ontology ----------------------------------------------------------------------------------
@bp.get("/ontology")
def ontology() -> Response:
    """The ontology at its own IRI: the HTML page for browsers, the document in Turtle,
    RDF/XML, JSON-LD or N-Triples for clients that ask (Accept or ``?format=``)."""
    document = ontology_document(get_settings().ontology_dir)
    fmt = _ontology_format()
    if fmt is not None:
        return _ontology_rdf(document, fmt, download=False)
    store, lang = get_store(), request_language()
    downloads = [
        {"href": href("browse.ontology_file", ext=ext), "format": fmt, "name": ext}
        for ext, fmt in EXTENSIONS.items()
    ]
    page = render_template(
        "browse/ontology.html",
        tree=class_tree(store, lang),
        properties=all_properties(store, lang),
        document=document,
        downloads=downloads,
        title=words(lang)["ontology"],
    )
    response = Response(page, content_type="text/html; charset=utf-8")
    response.vary.add("Accept")
    response.headers["Link"] = ", ".join(
        f'<{url_for("browse.ontology_file", ext=ext)}>; rel="alternate"; type="{fmt.media_type}"'
        for ext, fmt in EXTENSIONS.items()
    )
    return response


@bp.get("/ontology.<ext>")
def ontology_file(ext: str) -> Response:
    """The ontology document as a download, its format named by the extension."""
    fmt = EXTENSIONS.get(ext)
    if fmt is None:
        raise page_not_found(f"the ontology is offered as .{', .'.join(EXTENSIONS)}, not .{ext}")
    return _ontology_rdf(ontology_document(get_settings().ontology_dir), fmt, download=True)


@bp.get("/ontology/<version>")
def ontology_version(version: str) -> Response:
    """The version IRI (``/ontology/0.2.0``, also with an extension): the current version's
    document, negotiated as at ``/ontology``; earlier versions are not kept here."""
    document = ontology_document(get_settings().ontology_dir)
    current = version_path(document)
    stem, dot, ext = version.rpartition(".")
    if current is not None and dot and stem == current and ext in EXTENSIONS:
        return _ontology_rdf(document, EXTENSIONS[ext], download=True)
    if current is None or version != current:
        raise page_not_found(
            f"version {version!r} of the ontology is not served here; "
            f"the current version is {current or document.version}"
        )
    return ontology()


def _ontology_format() -> Format | None:
    """The RDF format the client prefers to HTML among the offered ones, None for HTML;
    406 when it accepts neither."""
    overrides = [v for v in request.args.getlist("format") if v.strip()]
    if any(v.strip().lower() in ("html", "text/html") for v in overrides):
        return None
    if overrides:
        named = format_by_name(overrides, Kind.RDF)
        if named is None or named not in OFFERED_RDF:
            raise not_acceptable(OFFERED_RDF)
        return named
    accept = request.headers.get("Accept")
    ranges = parse_accept(accept)
    html = max(quality(ranges, t)[0] for t in HTML_TYPES)
    fmt = choose(accept, OFFERED_RDF)
    if fmt is None and html <= 0:
        raise not_acceptable(OFFERED_RDF)
    if fmt is None or html >= quality(ranges, fmt.media_type)[0]:
        return None
    return fmt


def _ontology_rdf(document: OntologyDocument, fmt: Format, download: bool) -> Response:
    """The document in ``fmt``, with an ETag and the name to save it under."""
    response = Response(document.serialized(fmt), content_type=fmt.content_type)
    response.vary.add("Accept")
    disposition = "attachment" if download else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{document.filename(fmt)}"'
    response.set_etag(f"{document.digest}-{fmt.name}")
    response.make_conditional(request)  # answers 304 or 412 in place
    return response


def _ontology_iri(kind: str, param: str = "iri") -> str:
    """``?iri=`` (also as ``rm:Name``) of an ontology class or property, else a 404 page."""
    iri = request.args.get(param, "").strip()
    if iri.startswith("rm:"):
        iri = RM + iri[3:]
    classes, properties = ontology_terms(get_store())
    if iri not in (classes if kind == "class" else properties):
        raise page_not_found(f"<{iri}> is not a {kind} of the relmark ontology")
    return iri


@bp.get("/ontology/class")
def class_page() -> str:
    store, lang = get_store(), request_language()
    iri = _ontology_iri("class")
    details = class_details(store, iri, lang)
    return render_template(
        "browse/class.html",
        c=details,
        constraints=constraints_for(store, ancestors(store, iri), lang),
        rules=rules_inferring(store, get_settings().ontology_dir, iri, lang),
        queries=queries_using(iri, lang),
        title=details["label"],
    )


@bp.get("/ontology/property")
def property_page() -> str:
    store, lang = get_store(), request_language()
    iri = _ontology_iri("property")
    details = property_details(store, iri, lang)
    return render_template(
        "browse/property.html",
        p=details,
        queries=queries_using(iri, lang),
        title=details["label"],
    )


@bp.get("/ontology/members")
def members() -> str:
    """The direct members of a class, asserted or inferred, each linked to its page."""
    store, lang = get_store(), request_language()
    iri = _ontology_iri("class", "class")
    rows = direct_members(iri)
    names = labels(store, [r["iri"] for r in rows] + [iri], lang)
    for row in rows:
        row["label"] = names[row["iri"]]
    rows.sort(key=lambda r: r["label"].lower())
    return render_template(
        "browse/members.html",
        iri=iri,
        label=names[iri],
        rows=rows,
        truncated=sum(len(r["status"]) for r in rows) >= MEMBERS_LIMIT,
        title=names[iri],
    )


def direct_members(iri: str) -> list[dict]:
    """The subjects typed with ``iri``, each marked asserted and/or inferred (the first
    ``MEMBERS_LIMIT`` typing statements: a page, not an export; /sparql has them all)."""
    query = (
        "SELECT ?s ?g WHERE { GRAPH ?g { ?s a ?c } "
        f"FILTER(?g NOT IN (<{PROVENANCE_GRAPH}>, <{ONTOLOGY_GRAPH}>)) }} LIMIT {MEMBERS_LIMIT}"
    )
    found: dict[str, set[str]] = {}
    for row in selected(get_store().query(bound(query, c=ox.NamedNode(iri)))):
        if isinstance(row["s"], ox.NamedNode):
            kind = "inferred" if row["g"].value == INFERRED_GRAPH else "asserted"
            found.setdefault(row["s"].value, set()).add(kind)
    return [{"iri": s, "status": sorted(kinds)} for s, kinds in found.items()]


@bp.get("/ontology/thirty-r")
def thirty_r_page() -> str:
    lang = request_language()
    return render_template(
        "browse/thirty_r.html", groups=thirty_r(get_store(), lang), title=words(lang)["thirty_r"]
    )


@bp.get("/ontology/selling-steps")
def selling_steps_page() -> str:
    lang = request_language()
    return render_template(
        "browse/selling_steps.html",
        steps=selling_steps(get_store(), lang),
        title=words(lang)["selling_steps"],
    )


@bp.get("/ontology/loyalty-ladder")
def ladder_page() -> str:
    store, lang = get_store(), request_language()
    stages = loyalty_ladder(store, lang)
    return render_template(
        "browse/ladder.html",
        stages=stages,
        funnel=pictures.funnel_geometry(stages),
        title=words(lang)["loyalty_ladder"],
    )


# --- resources -------------------------------------------------------------------------------
def _wants_rdf() -> Any:
    """The RDF format the client prefers to HTML, or None (browsers get HTML)."""
    overrides = request.args.getlist("format")
    if overrides:
        return format_by_name(overrides, Kind.RDF)
    accept = request.headers.get("Accept")
    ranges = parse_accept(accept)
    html = max(quality(ranges, t)[0] for t in HTML_TYPES)
    fmt = choose(accept, formats_of(Kind.RDF))
    if fmt is None or html >= quality(ranges, fmt.media_type)[0]:
        return None
    return fmt


def _known_iri() -> str:
    iri = request.args.get("iri", "").strip()
    try:
        node = ox.NamedNode(iri)
    except ValueError:
        raise page_not_found(f"{iri!r} is not an IRI") from None
    used = "ASK { { ?s ?p ?o } UNION { ?o ?p ?s } UNION { ?o ?s ?p } }"  # subject, object, property
    if not get_store().query(bound(used, s=node)):
        raise page_not_found(f"the store has no statement about <{iri}>")
    return iri


@bp.get("/resource")
def resource() -> Response | str:
    """One IRI's page; the same URL answers Turtle or JSON-LD to clients that ask for it."""
    store, lang = get_store(), request_language()
    iri = _known_iri()
    fmt = _wants_rdf()
    if fmt is not None:
        response = Response(serialize_rdf(describe(store, iri), fmt), content_type=fmt.content_type)
        response.vary.add("Accept")
        return response
    types = classify(store, iri, lang) if _has_subject(iri) else []
    held = {t["class"] for t in types}
    name = display_label(store, iri, lang)
    alternates = {
        "turtle": url_for("browse.resource", iri=iri, format="turtle"),
        "jsonld": url_for("browse.resource", iri=iri, format="jsonld"),
    }
    page = render_template(
        "browse/resource.html",
        iri=iri,
        label=name,
        types=types,
        why_not=why_not_candidates(store, iri, held, lang),
        outgoing=outgoing(store, iri, lang),
        incoming=incoming(store, iri, lang),
        alternates=alternates,
        title=name,
    )
    response = Response(page, content_type="text/html; charset=utf-8")
    response.vary.add("Accept")
    response.headers["Link"] = (
        f'<{alternates["turtle"]}>; rel="alternate"; type="text/turtle", '
        f'<{alternates["jsonld"]}>; rel="alternate"; type="application/ld+json"'
    )
    return response


def _has_subject(iri: str) -> bool:
    return bool(get_store().query(bound("ASK { ?s ?p ?o }", s=ox.NamedNode(iri))))


@bp.get("/explain")
def explanation() -> str:
    """The "why?" tree of one classification, or with ``why=not`` the conditions each rule
    for the class misses, rendered on the server (the pages' answer without JavaScript)."""
    store, lang = get_store(), request_language()
    iri = _known_iri()
    class_iri = _ontology_iri("class", "class")
    names = {**labels(store, [class_iri], lang), iri: display_label(store, iri, lang)}
    title = f"{names[iri]}: {names[class_iri]}"
    if request.args.get("why") == "not":
        _, rules = rules_for(get_settings().ontology_dir)
        answer = why_not(store, rules, iri, class_iri, lang)
        return render_template(
            "browse/why_not.html",
            iri=iri,
            class_iri=class_iri,
            names=names,
            answer=answer,
            title=title,
        )
    try:
        tree = explain(store, iri, class_iri, lang)
    except NotExplained:
        raise page_not_found(f"<{iri}> is not known to be in <{class_iri}>") from None
    return render_template(
        "browse/explain.html", iri=iri, class_iri=class_iri, names=names, tree=tree, title=title
    )
