"""Named competency questions: ``queries/*.rq`` with a metadata header, run with typed parameters.

A file is a SPARQL SELECT whose header comment says what it answers and which parameters it
takes (saved queries are files with metadata, as Datasette's canned queries are)::

    # title: Referral market: ...
    # title@it: Mercato delle segnalazioni: ...
    # description: What a marketer learns from it.
    # description@it: ...
    # question: 1
    # param: firm (iri rm:FocalFirm, required, example demo:banca-lariana) The firm whose ...
    # param@it: firm L'impresa di cui ...
    # param: asOf (date, default today) The day the answer is computed for.

Parameter values are parsed to typed RDF terms and bound by the engine (pyoxigraph
``substitutions``), never pasted into the query text, so a value can only ever match or not
match. (The class check of an IRI value writes the parsed IRI in its N-Triples form into
its VALUES block, as a remote store does with every substitution: see ``answer``.)
Three facts about pyoxigraph 0.5's ``substitutions`` shape the ``.rq`` files:

- it binds only variables of the top-level SELECT projection (and not inside subqueries):
  every parameter is projected, and dropped from the answer's columns;
- it binds after planning, like a VALUES join, so a query joined on ``?firm`` is planned as
  if the firm were unknown (two orders of magnitude slower at 100k triples, see
  benchmarks/README.md): the questions start from
  ``?firm a rm:FocalFirm`` and evaluate the rest ``LATERAL``, once per firm, with the IRI;
- ``BOUND(?param)`` is folded to false (no pattern binds it): an optional parameter is
  tested with ``COALESCE(sameTerm(?p, ?p), false)``; the catalogue refuses ``BOUND(?param)``.

Adding a question is adding a file: the catalogue, the REST endpoint, the OpenAPI document
and the CLI all read it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from relmark.stores.base import Remote, Store, Term, asked, selected
from relmark.vocab import DEMO, QUERIES_DIR, RM

XSD = "http://www.w3.org/2001/XMLSchema#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
RDFS_SUBCLASS_OF = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
#: Where a remote store's class checks run while the question runs (``answer``).
_CHECKS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="relmark-check")

#: The parameter types a header may declare, with what a value of each must look like.
PARAMETER_TYPES: dict[str, str] = {
    "iri": "an absolute IRI (or rm:Name / demo:name)",
    "date": "a date as YYYY-MM-DD (xsd:date) or 'today'",
    "integer": "a whole number (xsd:integer)",
    "decimal": "a decimal number such as 0.8 (xsd:decimal)",
    "string": "text (xsd:string)",
    "language": "a language tag such as en or it (BCP 47)",
}
#: Query-string names the HTTP layer uses itself: no parameter may take them.
RESERVED_NAMES = frozenset({"limit", "offset", "lang", "format"})
#: Prefixes accepted in IRI values, so ``rm:FocalFirm`` and ``demo:banca-lariana`` work.
IRI_PREFIXES = {"rm": RM, "demo": DEMO}

_HEADER = re.compile(r"^#\s*(?P<key>[A-Za-z]+)(?:@(?P<lang>[a-z]{2,3}))?\s*:\s*(?P<value>.*)$")
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<spec>[^)]*)\)\s*(?P<text>.+)$")
_PARAM_TEXT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<text>.+)$")
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PROJECTION = re.compile(r"\bSELECT\b(?P<vars>.*?)\bWHERE\b", re.IGNORECASE | re.DOTALL)
_TRAILING_SLICE = re.compile(r"\b(LIMIT|OFFSET)\s+\d+\s*$", re.IGNORECASE)
# ASCII digits only: ``\d`` alone also matches "٣", which int() would then accept
_DATE = re.compile(r"^-?\d{4,}-\d{2}-\d{2}$", re.ASCII)
_INTEGER = re.compile(r"^[+-]?\d{1,18}$", re.ASCII)
_DECIMAL = re.compile(r"^[+-]?(?:\d{1,18}(?:\.\d{0,18})?|\.\d{1,18})$", re.ASCII)
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
MAX_STRING = 1000


class CatalogueError(ValueError):
    """A ``.rq`` file whose header is incomplete or malformed; the message names file:line."""


class ParameterError(ValueError):
    """A parameter value the question cannot take: missing, ill-typed or unknown."""

    def __init__(self, name: str, value: str | None, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        shown = "nothing" if value is None else repr(value)
        super().__init__(f"parameter {name!r}: got {shown}, expected {expected}")


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: its type decides how a value is parsed into an RDF term."""

    name: str
    type: str
    class_iri: str | None
    required: bool
    default: str | None
    description: dict[str, str]
    #: A value that answers on the demo data (documentation and the OpenAPI examples).
    example: str | None = None

    @property
    def expected(self) -> str:
        """What a value must be, in words (used in error messages and the OpenAPI document)."""
        if self.type == "iri" and self.class_iri:
            return f"the IRI of an {_curie(self.class_iri)}"
        return PARAMETER_TYPES[self.type]


@dataclass(frozen=True)
class NamedQuery:
    """A competency question: its metadata from the header and its SPARQL text."""

    name: str
    title: dict[str, str]
    description: dict[str, str]
    parameters: list[Parameter]
    text: str
    path: Path
    question: int | None = None

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


@dataclass
class NamedResult:
    """One page of answers: the columns (parameters dropped), rows of terms, more to come?"""

    query: NamedQuery
    columns: list[str]
    rows: list[dict[str, Term | None]]
    has_more: bool
    limit: int | None
    offset: int
    bindings: dict[str, Term] = field(default_factory=dict)


# --- the catalogue ---------------------------------------------------------------------------
_CACHE: dict[str, tuple[tuple, list[NamedQuery]]] = {}
_CACHE_LOCK = threading.Lock()


def load_catalogue(directory: Path = QUERIES_DIR) -> list[NamedQuery]:
    """Every ``*.rq`` of ``directory``, sorted by name; re-read only when a file changes.

    Raises ``CatalogueError`` naming the file and line of the first bad header, so a broken
    question is found when the catalogue is read, not when a user runs it.
    """
    directory = Path(directory)
    signature = _signature(directory)
    with _CACHE_LOCK:
        cached = _CACHE.get(str(directory))
        if cached is not None and cached[0] == signature:
            return cached[1]
    queries = [parse_query_file(directory / name) for name, _, _ in signature]
    with _CACHE_LOCK:
        _CACHE[str(directory)] = (signature, queries)
    return queries


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of each ``*.rq`` file, by name: the catalogue's key.

    Read on every request, so one ``scandir`` and one ``stat`` per file (``glob`` and
    ``Path.stat`` twice per file took 0.17 ms per request).
    """
    try:
        with os.scandir(directory) as entries:
            found = [(entry.name, entry.stat()) for entry in entries if entry.name.endswith(".rq")]
    except FileNotFoundError:
        return ()
    return tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in found))


def find_query(name: str, directory: Path = QUERIES_DIR) -> NamedQuery | None:
    """The question called ``name``, or None."""
    return next((q for q in load_catalogue(directory) if q.name == name), None)


def parse_query_file(path: Path) -> NamedQuery:
    """A ``NamedQuery`` from one file; ``CatalogueError`` (file:line) if its header is wrong."""
    text = path.read_text(encoding="utf-8")
    name = path.stem
    if not _NAME.match(name):
        raise CatalogueError(f"{path}:1: the file name must be lower-case words joined by '-'")
    title: dict[str, str] = {}
    description: dict[str, str] = {}
    question: int | None = None
    specs: list[tuple[int, str, str, str]] = []  # line, name, spec, English text
    texts: dict[tuple[str, str], str] = {}
    header_end = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("#"):
            header_end = number
            break
        found = _HEADER.match(line)
        if found is None:
            continue  # free comment
        key, lang, value = found["key"], found["lang"] or "en", found["value"].strip()
        where = f"{path}:{number}"
        if not value:
            raise CatalogueError(f"{where}: '{key}' has no text")
        if key == "title":
            title[lang] = value
        elif key == "description":
            description[lang] = value
        elif key == "question":
            if not value.isdigit():
                raise CatalogueError(
                    f"{where}: 'question' is the competency question's number (1 to 20)"
                )
            question = int(value)
        elif key == "param" and lang == "en":
            param = _PARAM.match(value)
            if param is None:
                raise CatalogueError(
                    f"{where}: a parameter is '# param: name (type[, required|default V]) "
                    "description'"
                )
            specs.append((number, param["name"], param["spec"], param["text"].strip()))
        elif key == "param":
            param = _PARAM_TEXT.match(value)
            if param is None:
                raise CatalogueError(f"{where}: a translation is '# param@{lang}: name text'")
            texts[(param["name"], lang)] = param["text"].strip()
    first = f"{path}:1"
    if "en" not in title:
        raise CatalogueError(f"{first}: the header has no '# title:' line")
    if "en" not in description:
        raise CatalogueError(f"{first}: the header has no '# description:' line")
    parameters = [_parameter(path, *spec, texts) for spec in specs]
    seen = [p.name for p in parameters]
    for (param_name, lang), _ in texts.items():
        if param_name not in seen:
            raise CatalogueError(
                f"{first}: '# param@{lang}: {param_name}' translates an undeclared parameter"
            )
    if len(set(seen)) != len(seen):
        raise CatalogueError(f"{first}: a parameter is declared twice")
    body = "\n".join(text.splitlines()[header_end - 1 :]) if header_end else ""
    _check_body(path, header_end, body, parameters)
    return NamedQuery(name, title, description, parameters, text, path, question)


def _parameter(
    path: Path, line: int, name: str, spec: str, text: str, texts: Mapping[tuple[str, str], str]
) -> Parameter:
    where = f"{path}:{line}"
    if name in RESERVED_NAMES:
        raise CatalogueError(f"{where}: '{name}' is reserved for the HTTP layer")
    parts = [part.strip() for part in spec.split(",")]
    type_words = parts[0].split()
    if not type_words or type_words[0] not in PARAMETER_TYPES:
        raise CatalogueError(
            f"{where}: parameter '{name}' needs a type, one of {', '.join(PARAMETER_TYPES)}"
        )
    type_ = type_words[0]
    class_iri = None
    if len(type_words) == 2 and type_ == "iri":
        class_iri = _expand(type_words[1])
        if class_iri is None:
            raise CatalogueError(f"{where}: '{type_words[1]}' is not an IRI or rm:Name")
    elif len(type_words) != 1:
        raise CatalogueError(f"{where}: only an iri parameter names a class: '{parts[0]}'")
    required, default, example = False, None, None
    for option in parts[1:]:
        if option == "required":
            required = True
        elif option.startswith("default "):
            default = option[len("default ") :].strip()
        elif option.startswith("example "):
            example = option[len("example ") :].strip()
        else:
            raise CatalogueError(
                f"{where}: unknown option '{option}' (required, default V, example V)"
            )
    if required and default is not None:
        raise CatalogueError(f"{where}: parameter '{name}' is required and has a default")
    description = {"en": text}
    description.update({lang: t for (n, lang), t in texts.items() if n == name})
    parameter = Parameter(name, type_, class_iri, required, default, description, example)
    for what, value in (("default", default), ("example", example)):
        if value is not None:
            try:
                parse_value(parameter, value)
            except ParameterError as error:
                raise CatalogueError(f"{where}: the {what} is wrong: {error}") from None
    return parameter


def _check_body(path: Path, line: int, body: str, parameters: Sequence[Parameter]) -> None:
    """The parts of the SPARQL text the runner relies on: a SELECT projecting every parameter."""
    where = f"{path}:{line or 1}"
    projection = _PROJECTION.search(_strip_comments(body))
    if projection is None:
        raise CatalogueError(f"{where}: a named question is a SELECT ... WHERE query")
    projected = set(re.findall(r"[?$]([A-Za-z_][A-Za-z0-9_]*)", projection["vars"]))
    for parameter in parameters:
        if parameter.name not in projected:
            raise CatalogueError(
                f"{where}: parameter '{parameter.name}' must be in the SELECT projection "
                "(pyoxigraph binds only projected variables)"
            )
    for offset, code in enumerate(body.splitlines()):
        for parameter in parameters:
            if re.search(rf"\bBOUND\s*\(\s*[?$]{parameter.name}\s*\)", code, re.IGNORECASE):
                raise CatalogueError(
                    f"{path}:{line + offset}: BOUND(?{parameter.name}) is always false here: "
                    "pyoxigraph's optimiser folds BOUND of a variable no pattern binds, even "
                    f"when it is substituted; test COALESCE(sameTerm(?{parameter.name}, "
                    f"?{parameter.name}), false) instead"
                )
    if _TRAILING_SLICE.search(_strip_comments(body).strip()):
        raise CatalogueError(f"{where}: end without LIMIT/OFFSET: the runner pages the answers")


def _strip_comments(text: str) -> str:
    """The text without whole-line comments (enough for the checks above)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


# --- parameter values ---------------------------------------------------------------------------
def _expand(value: str) -> str | None:
    """An absolute IRI from ``value``; known prefixes (rm:, demo:) are expanded first."""
    prefix, colon, local = value.partition(":")
    if colon and prefix in IRI_PREFIXES and not local.startswith("//"):
        value = IRI_PREFIXES[prefix] + local
    try:
        ox.NamedNode(value)
    except ValueError:
        return None
    return value if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value) else None


def _literal(value: str, datatype: str) -> ox.Literal:
    return ox.Literal(value, datatype=ox.NamedNode(XSD + datatype))


def parse_value(parameter: Parameter, raw: str) -> Term:
    """The RDF term for one textual value; ``ParameterError`` says what was expected."""
    value = raw.strip()
    wrong = ParameterError(parameter.name, raw, parameter.expected)
    kind = parameter.type
    if kind == "iri":
        iri = _expand(value)
        if iri is None or any(c in iri for c in '<>"{}|^`\\ '):
            raise wrong
        return ox.NamedNode(iri)
    if kind == "date":
        if value.lower() == "today":
            return _literal(dt.date.today().isoformat(), "date")
        if not _DATE.match(value):
            raise wrong
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise wrong from None
        return _literal(value, "date")
    if kind == "integer":
        if not _INTEGER.match(value):
            raise wrong
        return _literal(str(int(value)), "integer")
    if kind == "decimal":
        if not _DECIMAL.match(value):
            raise wrong
        return _literal(value, "decimal")
    if kind == "language":
        if not _LANGUAGE.match(value):
            raise wrong
        return ox.Literal(value.lower())
    if kind == "string":
        if len(raw) > MAX_STRING or "\x00" in raw:
            raise ParameterError(parameter.name, raw, f"text of at most {MAX_STRING} characters")
        return ox.Literal(raw)
    raise wrong  # pragma: no cover - the catalogue admits only the types above


def bind_parameters(query: NamedQuery, params: Mapping[str, str]) -> dict[str, Term]:
    """The substitutions for one run: given values parsed, defaults filled, the rest refused.

    An empty value counts as not given. Optional parameters without a default stay unbound,
    which each query treats as "no restriction" or "use the configured threshold".
    """
    for name, given in params.items():
        if query.parameter(name) is None:
            declared = ", ".join(p.name for p in query.parameters) or "none"
            raise ParameterError(
                name, given, f"no such parameter in '{query.name}' (its parameters: {declared})"
            )
    bindings: dict[str, Term] = {}
    for parameter in query.parameters:
        value = params.get(parameter.name)
        if value is None or not value.strip():
            if parameter.required:
                raise ParameterError(parameter.name, None, f"{parameter.expected} (required)")
            value = parameter.default
        if value is not None:
            bindings[parameter.name] = parse_value(parameter, value)
    return bindings


def class_checks(
    query: NamedQuery, bindings: Mapping[str, Term]
) -> list[tuple[Parameter, ox.NamedNode]]:
    """The IRI values bound for parameters that declare a class, in declaration order."""
    return [
        (parameter, value)
        for parameter in query.parameters
        if parameter.class_iri is not None
        and isinstance(value := bindings.get(parameter.name), ox.NamedNode)
    ]


def check_classes(
    store: Store,
    query: NamedQuery,
    bindings: Mapping[str, Term],
    given: Mapping[str, str] | None = None,
) -> None:
    """Each IRI value is a resource of its declared class (asserted or inferred, or a subclass).

    A firm misspelt as a brand would otherwise give an empty answer that looks like "none".
    One query for all the parameters. Raises ``ParameterError`` for the first value (in
    declaration order) that is not; ``given`` holds the values as the caller spelt them. A
    remote store keeps the verdicts (``relmark.stores.remote.lookup_cache``).
    """
    _verify_classes(store, class_checks(query, bindings), given)


def _verify_classes(
    store: Store,
    checks: Sequence[tuple[Parameter, ox.NamedNode]],
    given: Mapping[str, str] | None = None,
) -> None:
    """``check_classes`` of the ``class_checks`` already taken from a question's bindings."""
    if not checks:
        return
    keys = _check_keys(checks)
    cache = store.check_cache if isinstance(store, Remote) else None
    verdicts: dict[str, bool] = {}
    token = 0
    if cache is not None:
        verdicts, token = cache.known(keys)
    todo = [n for n, key in enumerate(keys) if key not in verdicts]
    if todo:
        # Values parsed by parse_value (an IRI without any of <>"{}|^`\ or space), written
        # in their N-Triples form, as a remote store writes substitutions (bind_values).
        # One check per query, the direct type apart from the subclass path: Virtuoso 7.2
        # drops matches of a transitive path evaluated for several VALUES rows at once, and
        # of a zero-length one (tests/e2e/test_remote_backends.py runs every question there).
        # Subclasses are read from every graph: users may extend the ontology in their data.
        looked_up = {}
        for n in todo:
            text = (
                f"ASK {{ VALUES (?value ?class) {{ ({keys[n]}) }} {{ ?value a ?class }} UNION "
                f"{{ ?value a ?type . ?type <{RDFS_SUBCLASS_OF}>+ ?class }} }}"
            )
            looked_up[keys[n]] = asked(store.query(text))
        if cache is not None:
            cache.remember(looked_up, token)
        verdicts.update(looked_up)
    for (parameter, value), key in zip(checks, keys, strict=True):
        if not verdicts[key]:
            raw = (given or {}).get(parameter.name) or value.value
            raise ParameterError(
                parameter.name, raw, f"{parameter.expected} (no such resource here)"
            )


def _check_keys(checks: Sequence[tuple[Parameter, ox.NamedNode]]) -> list[str]:
    """Each check as ``<value> <class>``: its key in a remote store's ``check_cache``, and
    its row of the check query."""
    return [f"{value} <{p.class_iri}>" for p, value in checks]


def _checked_lately(store: Store, checks: Sequence[tuple[Parameter, ox.NamedNode]]) -> bool:
    """Whether a remote store kept the verdicts of all of ``checks``."""
    keys = _check_keys(checks)
    return isinstance(store, Remote) and len(store.check_cache.known(keys)[0]) == len(keys)


# --- running ------------------------------------------------------------------------------------
def paged_text(query: NamedQuery, limit: int | None, offset: int) -> str:
    """The query text with the page's slice appended (validated integers, never user text)."""
    text = query.text
    if limit is not None:
        text += f"\nLIMIT {int(limit) + 1}"
    if offset:
        text += f"\nOFFSET {int(offset)}"
    return text


def run_named(
    store: Store,
    query: NamedQuery,
    params: Mapping[str, str],
    limit: int | None = None,
    offset: int = 0,
) -> NamedResult:
    """Run a question with textual parameter values; one page of ``limit`` rows from ``offset``.

    Raises ``ParameterError`` for a missing, ill-typed or unknown parameter, or an IRI not of
    its declared class. The rows are plain dicts of terms, so they may leave the thread that
    ran the query.
    """
    return answer(store, query, params, limit, offset)[0]


def answer(
    store: Store,
    query: NamedQuery,
    params: Mapping[str, str],
    limit: int | None = None,
    offset: int = 0,
    lang: str | None = None,
) -> tuple[NamedResult, dict[str, str]]:
    """``run_named``, and with ``lang`` the labels of the page's IRIs too.

    The class checks of the IRI parameters answer as if they ran first: a value of the
    wrong class raises ``ParameterError``, also when the question itself failed (a
    timeout, an engine error), and the page is discarded (reads have no effects). On a
    remote store each query is a round trip (the HTTP client alone costs ~0.5 ms, the
    engine's time comes on top), so there the check runs on another thread while the
    question runs, and adds no time of its own; the labels and checks a remote store
    keeps (``relmark.stores.remote.lookup_cache``) cost no query at all.
    """
    if limit is not None and limit < 0:
        raise ParameterError("limit", str(limit), "a whole number of at least 0")
    if offset < 0:
        raise ParameterError("offset", str(offset), "a whole number of at least 0")
    bindings = bind_parameters(query, params)
    check: Future[None] | None = None
    checks = class_checks(query, bindings)
    if checks and isinstance(store, Remote) and not _checked_lately(store, checks):
        check = _CHECKS.submit(_verify_classes, store, checks, params)
    else:  # microseconds on the embedded store; no query when the verdicts were kept
        _verify_classes(store, checks, params)
    try:
        result = _evaluate(store, query, bindings, limit, offset)
    except Exception:
        if check is not None:
            check.result()  # a wrong-class value is what is reported
        raise
    if check is not None:
        check.result()
    return result, ({} if lang is None else labels(store, result_iris(result), lang))


def _evaluate(
    store: Store,
    query: NamedQuery,
    bindings: dict[str, Term],
    limit: int | None,
    offset: int,
) -> NamedResult:
    solutions = store.query(paged_text(query, limit, offset), substitutions=bindings)
    if not isinstance(solutions, ox.QuerySolutions):
        raise CatalogueError(f"{query.path}: a named question must be a SELECT query")
    names = [v.value for v in solutions.variables]
    kept = [(i, n) for i, n in enumerate(names) if query.parameter(n) is None]
    columns = [n for _, n in kept]
    # by position: a tenth of the time of look-ups by name, which add up over a page
    rows = [{name: solution[i] for i, name in kept} for solution in solutions]
    has_more = limit is not None and len(rows) > limit
    if has_more:
        rows = rows[:limit]
    return NamedResult(query, columns, rows, has_more, limit, offset, bindings)


# --- results as data -------------------------------------------------------------------------
def labels(store: Store, iris: Iterable[str], lang: str = "en") -> dict[str, str]:
    """A label for each IRI: its rdfs:label in ``lang``, else untagged, else English, else
    any, else the IRI's local name. One query for the whole page, for the IRIs a remote
    store has not given labels of lately (``stores.remote.lookup_cache``). (The ontology gives every
    SKOS concept an rdfs:label equal to its skos:prefLabel, so one property is enough.)"""
    wanted = sorted(set(iris))
    cache = store.label_cache if isinstance(store, Remote) else None
    found: dict[str, dict[str, str]] = {}
    token = 0
    if cache is not None:
        found, token = cache.known(wanted)
    unknown = [iri for iri in wanted if iri not in found]
    if unknown:
        looked_up: dict[str, dict[str, str]] = {iri: {} for iri in unknown}
        # The IRIs come from query answers (already valid IRIs), not from the request.
        prologue, values = _compact_iris(unknown)
        # LATERAL: one index lookup per IRI (a plain join scanned every label in the store).
        text = (
            f"{prologue}SELECT ?s ?label WHERE {{ VALUES ?s {{ {values} }} "
            f"LATERAL {{ ?s <{RDFS_LABEL}> ?label }} }}"
        )
        for solution in selected(store.query(text)):
            literal = solution["label"]
            if isinstance(literal, ox.Literal):
                looked_up[solution["s"].value].setdefault(
                    (literal.language or "").lower(), literal.value
                )
        if cache is not None:
            cache.remember(looked_up, token)
        found.update(looked_up)
    return _chosen_labels(wanted, found, lang)


def _chosen_labels(
    iris: Iterable[str], by_iri: Mapping[str, dict[str, str]], lang: str
) -> dict[str, str]:
    """Each IRI's label in ``lang``, else untagged, else English, else any, else its local
    name, from its labels by lowercased language tag."""
    result = {}
    for iri in iris:
        by_lang = by_iri.get(iri, {})
        result[iri] = (
            by_lang.get(lang)
            or by_lang.get("")
            or by_lang.get("en")
            or next(iter(by_lang.values()), None)
            or _local_name(iri)
        )
    return result


#: A local name that follows a prefix as it is: a subset of SPARQL's PN_LOCAL, no escapes.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")


def _compact_iris(iris: Iterable[str]) -> tuple[str, str]:
    """IRIs for a VALUES block, as prefixed names where they can be: ``(prologue, terms)``.

    A page's IRIs share a few namespaces (the text up to the last ``/`` or ``#``), so a
    look-up of 200 IRIs shrinks from 10 KB to 2 KB: the engine parses it ~0.5 ms sooner
    and the HTTP client encodes it ~0.3 ms sooner (Oxigraph server, 1M triples). The
    prefixed names stand for exactly the same IRIs; an IRI whose last segment is not a
    plain local name is written whole.
    """
    prefixes: dict[str, str] = {}
    terms = []
    for iri in iris:
        cut = max(iri.rfind("/"), iri.rfind("#")) + 1
        if cut and _PLAIN_LOCAL.fullmatch(iri, cut):
            prefix = prefixes.setdefault(iri[:cut], f"n{len(prefixes)}")
            terms.append(f"{prefix}:{iri[cut:]}")
        else:
            terms.append(str(ox.NamedNode(iri)))
    prologue = "".join(f"PREFIX {p}: {ox.NamedNode(ns)}\n" for ns, p in prefixes.items())
    return prologue, " ".join(terms)


def _local_name(iri: str) -> str:
    return re.split(r"[#/:]", iri.rstrip("/#"))[-1] or iri


def _curie(iri: str) -> str:
    for prefix, namespace in IRI_PREFIXES.items():
        if iri.startswith(namespace):
            return f"{prefix}:{iri[len(namespace) :]}"
    return f"<{iri}>"


def result_iris(result: NamedResult) -> set[str]:
    return {t.value for row in result.rows for t in row.values() if isinstance(t, ox.NamedNode)}


def term_json(term: Term | None, label: str | None = None) -> dict | None:
    """A cell of the JSON output: value, type (iri/literal/bnode), label for IRIs."""
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return {"value": term.value, "type": "iri", "label": label or _local_name(term.value)}
    if isinstance(term, ox.BlankNode):
        return {"value": term.value, "type": "bnode"}
    cell: dict = {"value": term.value, "type": "literal"}
    if term.language:
        cell["lang"] = term.language
    else:
        cell["datatype"] = term.datatype.value
    return cell


def rows_json(result: NamedResult, names: Mapping[str, str]) -> list[dict]:
    """Rows as objects keyed by column, IRIs with their labels from ``names``."""
    return [
        {
            col: term_json(term, names.get(term.value) if isinstance(term, ox.NamedNode) else None)
            for col, term in row.items()
        }
        for row in result.rows
    ]


def sparql_json(result: NamedResult, links: Sequence[str] = ()) -> dict:
    """The page as SPARQL 1.1 Query Results JSON (https://www.w3.org/TR/sparql11-results-json/)."""
    bindings = []
    for row in result.rows:
        binding = {}
        for col, term in row.items():
            if term is None:
                continue
            if isinstance(term, ox.NamedNode):
                binding[col] = {"type": "uri", "value": term.value}
            elif isinstance(term, ox.BlankNode):
                binding[col] = {"type": "bnode", "value": term.value}
            else:
                cell = {"type": "literal", "value": term.value}
                if term.language:
                    cell["xml:lang"] = term.language
                elif term.datatype.value != XSD + "string":
                    cell["datatype"] = term.datatype.value
                binding[col] = cell
        bindings.append(binding)
    head: dict = {"vars": result.columns}
    if links:
        head["link"] = list(links)
    return {"head": head, "results": {"bindings": bindings}}


def to_csv(result: NamedResult) -> str:
    """The page as SPARQL 1.1 CSV (https://www.w3.org/TR/sparql11-results-csv-tsv/): a header
    row, then plain values (IRIs unbracketed, literals by their lexical form), CRLF lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(
            [
                ""
                if term is None
                else (f"_:{term.value}" if isinstance(term, ox.BlankNode) else term.value)
                for term in row.values()
            ]
        )
    return out.getvalue()


def binding_text(term: Term) -> str:
    """A bound parameter value as the user would write it back (for links and echoes)."""
    return term.value
