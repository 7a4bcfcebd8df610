"""What relmark reads from a YARRRML mapping: its sources, subject templates and columns.

The engine (morph-kgc) executes the mapping; relmark reads it too, for three things the
engine cannot give: which columns a file must have (the header check, before anything
runs), which type each column must hold (a bad number or date found at its row and column),
and where each minted IRI came from (a SHACL result on a focus node minted from a row is
reported as that row: subject templates are matched back to the key columns' values, and a
result's path to the column its predicate is filled from).

relmark's own hints live under a top-level ``relmark:`` key (default graph, required
columns, allowed values), which is taken out of the copy given to the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD = "http://www.w3.org/2001/XMLSchema#"
_REFERENCE = re.compile(r"\$\(([^)]+)\)")


class MappingError(Exception):
    """A mapping relmark cannot use; ``where`` names the file and, if known, the entry."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


@dataclass(frozen=True)
class ObjectSpec:
    """One predicate-object of a triples map: the columns it reads and the term it makes."""

    predicate: str
    template: str
    columns: tuple[str, ...]
    datatype: str | None
    is_iri: bool


@dataclass
class TriplesMap:
    """One entry under ``mappings:``: rows of ``source`` become subjects ``subject``."""

    name: str
    source: str
    subject: str
    key_columns: tuple[str, ...]
    objects: list[ObjectSpec]
    pattern: re.Pattern[str]

    def key_of(self, iri: str) -> tuple[str, ...] | None:
        """The key columns' values an IRI was minted from (None: not minted here)."""
        match = self.pattern.fullmatch(iri)
        return tuple(unquote(g) for g in match.groups()) if match else None

    def columns_for(self, predicate: str) -> tuple[str, ...]:
        """The columns a predicate's values are made from in this map."""
        return tuple(
            c for spec in self.objects if spec.predicate == predicate for c in spec.columns
        )


@dataclass
class Mapping:
    """A YARRRML mapping as relmark reads it (``load_mapping``)."""

    path: Path
    document: dict[str, Any]
    prefixes: dict[str, str]
    maps: list[TriplesMap]
    graph: str | None = None
    required: dict[str, set[str]] = field(default_factory=dict)
    choices: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name.split(".")[0]

    @property
    def sources(self) -> list[str]:
        """The source file names the mapping reads, in order of first use."""
        return list(dict.fromkeys(m.source for m in self.maps))

    def columns(self, source: str) -> set[str]:
        """Every column of ``source`` the mapping reads."""
        used = {c for m in self.maps if m.source == source for c in m.key_columns}
        used |= {c for m in self.maps if m.source == source for o in m.objects for c in o.columns}
        return used

    def required_columns(self, source: str) -> list[str]:
        """Columns that must be there and filled: the keys of the source's first triples map
        (its records; later maps mint a thing only when their columns are filled), and
        those ``relmark: required`` names."""
        first = next((m for m in self.maps if m.source == source), None)
        keys = list(first.key_columns) if first else []
        return list(dict.fromkeys([*keys, *sorted(self.required.get(source, set()))]))

    def datatypes(self, source: str) -> dict[str, str]:
        """column → XSD datatype IRI, for the columns whose literals are typed."""
        types: dict[str, str] = {}
        for m in self.maps:
            if m.source != source:
                continue
            for spec in m.objects:
                if spec.datatype and len(spec.columns) == 1:
                    types.setdefault(spec.columns[0], spec.datatype)
        return types

    def engine_document(self, files: dict[str, Path]) -> str:
        """The mapping as given to the engine: sources pointed at ``files`` (normalised CSV)
        and relmark's own ``relmark:`` key removed."""
        document = {k: v for k, v in self.document.items() if k != "relmark"}
        mappings = {}
        for name, body in _entries(self.document).items():
            body = dict(body)
            source = next(m.source for m in self.maps if m.name == name)
            body["sources"] = [[f"{files[source]}~csv"]]
            mappings[name] = body
        document["mappings"] = mappings
        return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def load_mapping(path: Path | str) -> Mapping:
    """Read a YARRRML file; raises ``MappingError`` for one relmark cannot follow."""
    path = Path(path)
    where = path.name
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MappingError(f"cannot read the mapping {path}: {error.strerror}", where) from error
    except yaml.YAMLError as error:
        raise MappingError(f"{where} is not valid YAML: {error}", where) from error
    if not isinstance(document, dict) or not isinstance(document.get("mappings"), dict):
        raise MappingError(f"{where} is not a YARRRML mapping: it has no 'mappings:'", where)
    prefixes = {str(k): str(v) for k, v in (document.get("prefixes") or {}).items()}
    maps = [_triples_map(name, body, prefixes, where) for name, body in _entries(document).items()]
    hints = document.get("relmark") or {}
    return Mapping(
        path=path,
        document=document,
        prefixes=prefixes,
        maps=maps,
        graph=hints.get("graph"),
        required={s: set(cols) for s, cols in (hints.get("required") or {}).items()},
        choices={s: dict(c) for s, c in (hints.get("choices") or {}).items()},
    )


def _entries(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return document["mappings"]


def expand(term: str, prefixes: dict[str, str]) -> str:
    """A prefixed name (``rm:Person``) as its IRI; ``a`` is rdf:type."""
    if term == "a":
        return RDF_TYPE
    prefix, colon, rest = term.partition(":")
    if colon and prefix in prefixes and not rest.startswith("//"):
        return prefixes[prefix] + rest
    return term


def _source_name(body: dict[str, Any], where: str) -> str:
    sources = body.get("sources", body.get("source"))
    while isinstance(sources, list) and sources:
        if len(sources) > 1 and not isinstance(sources[0], list | dict):
            break
        sources = sources[0]
    if isinstance(sources, list) and sources:
        sources = sources[0]
    if isinstance(sources, dict):
        sources = sources.get("access")
    if not isinstance(sources, str) or not sources:
        raise MappingError(f"{where}: every mapping needs one CSV or Excel source", where)
    return Path(sources.split("~")[0]).name


def _triples_map(name: str, body: Any, prefixes: dict[str, str], file: str) -> TriplesMap:
    where = f"{file}: mappings.{name}"
    if not isinstance(body, dict):
        raise MappingError(f"{where} is not a mapping", where)
    subject = body.get("s", body.get("subject", body.get("subjects")))
    if isinstance(subject, list) and len(subject) == 1:
        subject = subject[0]
    if not isinstance(subject, str):
        raise MappingError(f"{where}: needs one subject template (s:)", where)
    keys = tuple(_REFERENCE.findall(subject))
    if not keys:
        raise MappingError(
            f"{where}: the subject {subject!r} reads no column, so re-importing would "
            "duplicate its records; mint it from a key column, e.g. ex:contact-$(id)",
            where,
        )
    objects = [
        spec
        for entry in body.get("po", body.get("predicateobjects", [])) or []
        for spec in _object_specs(entry, prefixes, where)
    ]
    return TriplesMap(
        name=name,
        source=_source_name(body, where),
        subject=subject,
        key_columns=keys,
        objects=objects,
        pattern=_pattern(expand(subject, prefixes)),
    )


def _object_specs(entry: Any, prefixes: dict[str, str], where: str) -> list[ObjectSpec]:
    if isinstance(entry, list) and len(entry) in (2, 3):
        predicates, objects = entry[0], entry[1]
        datatype = entry[2] if len(entry) == 3 else None
    elif isinstance(entry, dict):
        predicates = entry.get("p", entry.get("predicates"))
        objects = entry.get("o", entry.get("objects"))
        datatype = None
    else:
        raise MappingError(f"{where}: cannot read the predicate-object {entry!r}", where)
    specs = []
    for predicate in predicates if isinstance(predicates, list) else [predicates]:
        for obj in objects if isinstance(objects, list) else [objects]:
            kind = datatype
            if isinstance(obj, dict):
                kind = obj.get("datatype", kind)
                is_iri = obj.get("type") == "iri"
                obj = obj.get("value", "")
            else:
                is_iri = str(obj).endswith("~iri") or str(predicate) == "a"
            text = str(obj).removesuffix("~iri")
            if kind and str(kind).endswith("~lang"):
                kind = None
            specs.append(
                ObjectSpec(
                    predicate=expand(str(predicate), prefixes),
                    template=text,
                    columns=tuple(_REFERENCE.findall(text)),
                    datatype=expand(str(kind), prefixes) if kind else None,
                    is_iri=is_iri,
                )
            )
    return specs


def _pattern(template: str) -> re.Pattern[str]:
    parts = _REFERENCE.split(template)
    regex = "".join(re.escape(p) if i % 2 == 0 else "(.+?)" for i, p in enumerate(parts))
    return re.compile(regex)


def find_mapping(name: str, ontology_dir: Path) -> Path:
    """A mapping file: ``name`` as a path, else a ready mapping by name (``contacts`` is
    ``ontology/mappings/contacts.yml``)."""
    path = Path(name)
    if path.is_file():
        return path
    ready = ontology_dir / "mappings" / f"{name.removesuffix('.yml')}.yml"
    if ready.is_file():
        return ready
    known = sorted(p.stem for p in (ontology_dir / "mappings").glob("*.yml"))
    raise MappingError(
        f"no mapping {name!r}: give a YARRRML file or one of the ready mappings: "
        f"{', '.join(known)}",
        name,
    )
