"""Plan an import (read, check, map, validate) and apply it (write all or nothing).

``plan_import`` does everything but the write and returns an ``ImportPlan``: the tables as
read, the triples the mapping makes, and every problem by source, row and column. A page
shows it as a preview; ``apply_import`` writes it into its named graph, replacing what an
earlier import of the same export put there (the IRIs come from the source's own keys, so
a re-import replaces, never duplicates), and refreshes the inferences.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from relmark import loading, shacl
from relmark.importing import engine, messages
from relmark.importing.mapping import (
    XSD,
    Mapping,
    MappingError,
    TriplesMap,
    find_mapping,
    load_mapping,
)
from relmark.importing.tables import SourceError, Table, read_table
from relmark.stores.base import Store, data_graph
from relmark.vocab import ONTOLOGY_DIR, SHAPES_FILE, ontology_paths

#: (stage, done, total): "read" counts rows; "map" and "validate" report start (0) and end;
#: "write" counts bytes of N-Triples written.
ProgressCallback = Callable[[str, int, int], None]

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_INTEGER = re.compile(r"[+-]?\d+")
_BOOLEANS = {"true", "false", "1", "0"}


class ImportInputError(Exception):
    """A file, mapping or engine problem that stops the import before any check.

    ``engine`` is true when the RML engine is missing or failed (the set-up's fault, not
    the user's files).
    """

    def __init__(
        self, message: str, where: str | None = None, detail: str = "", *, engine: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.detail = detail
        self.engine = engine


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) with the data, where the user can find it."""

    severity: str  # "error" rejects the import; "warning" does not
    code: str  # "missing_column", "bad_date", …, or "shacl"
    message: str
    source: str | None = None
    row: int | None = None  # as a spreadsheet numbers it: the header is row 1
    column: str | None = None
    value: str | None = None
    focus_node: str | None = None  # the IRI a SHACL result is about
    property_name: str | None = None  # a SHACL result's path, named in the user's language

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def text(self) -> str:
        place = [self.source or self.focus_node or "import"]
        if self.row is not None:
            place.append(f"row {self.row}")
        if self.column:
            place.append(f"column {self.column}")
        elif self.property_name:
            place.append(f"property {self.property_name}")
        shown = f" = {self.value!r}" if self.value not in (None, "") else ""
        return f"{self.severity}: {', '.join(place)}{shown}: {self.message}"


@dataclass
class SourceSummary:
    """One source file as read: how it was decoded, its columns and its first rows."""

    name: str  # the source name in the mapping (e.g. contacts.csv)
    file: str  # the file that was read
    columns: list[str]
    rows: int
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    preview: list[dict[str, str]]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ImportPlan:
    """What an import would do: see ``plan_import``. ``ok`` when it can be applied."""

    mapping: Mapping
    graph: str
    lang: str
    sources: list[SourceSummary]
    ntriples: bytes
    triples: int
    problems: list[Problem]
    validated: bool
    seconds: dict[str, float] = field(default_factory=dict)
    _locator: _Locator | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_input(self) -> bool:
        """The files do not fit the mapping at all (a required column is missing)."""
        return any(p.code == "missing_column" for p in self.errors)

    def preview_triples(self, rows: int = 10) -> list[dict[str, Any]]:
        """The triples minted from the first ``rows`` rows of each source, per row:
        ``[{"source", "row", "subject", "triples": [N-Triples line, …]}, …]``."""
        if self._locator is None or not self.ntriples:
            return []
        wanted: dict[str, dict[str, Any]] = {}
        for triple in ox.parse(self.ntriples, format=ox.RdfFormat.N_TRIPLES):
            subject = triple.subject
            if not isinstance(subject, ox.NamedNode):
                continue
            entry = wanted.get(subject.value)
            if entry is None:
                found = self._locator.locate(subject.value)
                if found is None or found[2] - 2 >= rows:
                    continue
                entry = {
                    "source": found[1],
                    "row": found[2],
                    "subject": subject.value,
                    "triples": [],
                }
                wanted[subject.value] = entry
            entry["triples"].append(f"{triple} .")
        return sorted(wanted.values(), key=lambda e: (e["source"], e["row"], e["subject"]))

    def to_json(self) -> dict[str, Any]:
        """The plan as ``--report json`` prints it (and an HTTP API would return it)."""
        return {
            "ok": self.ok,
            "mapping": self.mapping.path.name,
            "graph": self.graph,
            "rows": self.rows,
            "triples": self.triples,
            "validated": self.validated,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "sources": [s.to_json() for s in self.sources],
            "problems": [p.to_json() for p in self.problems],
            "seconds": {stage: round(t, 3) for stage, t in self.seconds.items()},
        }


@dataclass(frozen=True)
class ImportSummary:
    """What ``apply_import`` wrote."""

    graph: str
    rows: int
    triples: int
    seconds: float

    @property
    def text(self) -> str:
        rate = self.rows / self.seconds if self.seconds else float("inf")
        return (
            f"imported {self.rows:,} rows as {self.triples:,} triples into <{self.graph}> "
            f"in {self.seconds:.2f} s ({rate:,.0f} rows/s)"
        )


class ImportRejected(Exception):
    """The data does not pass the checks; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        errors = sum(p.severity == "error" for p in problems)
        super().__init__(f"{errors} error(s): nothing was imported")
        self.problems = problems


SourceArg = Path | str | tuple[str, Path | str]


def plan_import(
    sources: Sequence[SourceArg],
    mapping: Mapping | Path | str,
    store: Store | None,
    *,
    graph: str | None = None,
    lang: str = "en",
    validate: bool = True,
    ontology_dir: Path | None = None,
    rml_python: Path | str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportPlan:
    """Read ``sources``, check them against ``mapping``, run the RML engine and (with
    ``validate``) check the triples against the shapes in the context of ``store``, as it
    would be after the import replaced its graph. Nothing is written.

    ``mapping``: a ``Mapping``, a YARRRML file, or a ready mapping's name (``contacts``).
    ``sources``: paths, or ``(mapping source name, path)`` pairs; a path is matched to the
    mapping's source of the same file name or stem (``accounts.xlsx`` fits
    ``accounts.csv``), or, when one source is left, to that one. ``graph``: a name under
    ``urn:relmark:data:`` or an IRI (default: the mapping's ``relmark: graph``, else its
    file name). Raises ``ImportInputError`` for unreadable files or mappings, and for a
    missing engine; every data problem is in ``plan.problems`` instead.
    """
    report = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        if not isinstance(mapping, Mapping):
            mapping = load_mapping(find_mapping(str(mapping), ontology_dir or ONTOLOGY_DIR))
        files = _match_sources(mapping, sources)
        tables = {name: read_table(path, name) for name, path in files.items()}
        target = data_graph(graph or mapping.graph or mapping.name)
    except (MappingError, SourceError) as error:
        raise ImportInputError(error.message, error.where) from error
    except ValueError as error:  # a graph name data_graph refuses
        raise ImportInputError(str(error), "--graph") from error
    summaries = [
        SourceSummary(
            name=name,
            file=str(files[name]),
            columns=list(t.columns),
            rows=len(t.rows),
            encoding=t.encoding,
            delimiter=t.delimiter,
            sheet=t.sheet,
            preview=[dict(zip(t.columns, r, strict=False)) for r in t.rows[:20]],
        )
        for name, t in tables.items()
    ]
    problems = [p for name, t in tables.items() for p in _header_problems(mapping, name, t, lang)]
    plan = ImportPlan(mapping, target, lang, summaries, b"", 0, problems, False, timings)
    if any(p.code == "missing_column" for p in problems):
        return plan
    locator = _Locator(mapping, tables)
    total = plan.rows
    for name, table in tables.items():
        problems.extend(locator.check(name, table, lang, report, total))
    plan._locator = locator
    timings["read"] = time.perf_counter() - started

    report("map", 0, 0)
    started = time.perf_counter()
    plan.ntriples = _run_engine(mapping, tables, rml_python)
    plan.triples = plan.ntriples.count(b"\n")
    timings["map"] = time.perf_counter() - started
    report("map", 1, 1)

    if validate:
        report("validate", 0, 0)
        started = time.perf_counter()
        result = _validate(plan, store, ontology_dir)
        # a cell already reported (a bad date, say) is not reported again as the shapes'
        # "missing value" that blanking it caused
        reported = {(p.source, p.row, p.column) for p in problems}
        problems.extend(
            p for p in locator.from_report(result) if (p.source, p.row, p.column) not in reported
        )
        plan.validated = True
        timings["validate"] = time.perf_counter() - started
        report("validate", 1, 1)
    return plan


def apply_import(
    plan: ImportPlan,
    store: Store,
    *,
    revalidate: bool = True,
    ontology_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Write ``plan`` into its graph, replacing the graph's earlier content, all or nothing,
    then bring the inferences up to date (``loading.load_sources``'s path).

    ``revalidate``: check the shapes again against the store as it is now (a page's preview
    may be minutes old); a caller that validated in this same open store may skip it.
    Raises ``ImportRejected`` (nothing written) when the plan or the new check has errors.
    """
    if not plan.ok:
        raise ImportRejected(plan.problems)
    started = time.perf_counter()
    if revalidate or not plan.validated:
        result = _validate(plan, store, ontology_dir)
        found = plan._locator.from_report(result) if plan._locator else []
        if not result.conforms:
            raise ImportRejected(found)
    source = loading.Source(f"{plan.mapping.name}.nt", plan.ntriples, ox.RdfFormat.N_TRIPLES)
    total = len(plan.ntriples)
    written = [0]

    def advance(n: int) -> None:
        written[0] += n
        if progress:
            progress("write", written[0], total)

    summary = loading.load_sources(
        store,
        [source],
        graph=plan.graph,
        validate=False,
        ontology_dir=ontology_dir,
        progress=advance,
    )
    return ImportSummary(plan.graph, plan.rows, summary.triples, time.perf_counter() - started)


def _match_sources(mapping: Mapping, given: Sequence[SourceArg]) -> dict[str, Path]:
    """mapping source name → file, by name, then stem, then the one source left."""
    wanted = mapping.sources
    matched: dict[str, Path] = {}
    loose: list[Path] = []
    for item in given:
        if isinstance(item, tuple):
            name, path = item
            if name not in wanted:
                raise MappingError(
                    f"the mapping has no source {name!r}; its sources: {', '.join(wanted)}",
                    mapping.path.name,
                )
            matched[name] = Path(path)
            continue
        path = Path(item)
        by_name = [w for w in wanted if w == path.name]
        by_stem = [w for w in wanted if Path(w).stem == path.name.split(".")[0]]
        hit = next(iter(by_name or by_stem), None)
        if hit is not None and hit not in matched:
            matched[hit] = path
        else:
            loose.append(path)
    left = [w for w in wanted if w not in matched]
    if len(loose) == 1 and len(left) == 1:
        matched[left[0]] = loose[0]
        loose, left = [], []
    if loose:
        raise MappingError(
            f"{', '.join(str(p) for p in loose)}: not a source of the mapping "
            f"{mapping.path.name} (its sources: {', '.join(wanted)}); name the file like the "
            "source it fills",
            str(loose[0]),
        )
    if left:
        raise MappingError(
            f"the mapping {mapping.path.name} also reads {', '.join(left)}: give that file too",
            mapping.path.name,
        )
    return matched


def _header_problems(mapping: Mapping, name: str, table: Table, lang: str) -> list[Problem]:
    found = set(table.columns)
    problems = [
        Problem(
            "error",
            "missing_column",
            messages.message("missing_column", lang, column=c),
            source=name,
            row=1,
            column=c,
        )
        for c in mapping.required_columns(name)
        if c not in found
    ]
    used = mapping.columns(name)
    problems += [
        Problem(
            "warning",
            "unknown_column",
            messages.message("unknown_column", lang, column=c),
            source=name,
            row=1,
            column=c,
        )
        for c in table.columns
        if c and c not in used
    ]
    if len(table.columns) == 1 and len(used) > 1:
        problems.append(
            Problem(
                "error",
                "missing_column",
                f"the header reads as one column ({table.columns[0][:60]!r}): is the "
                f"delimiter {table.delimiter!r} right?",
                source=name,
                row=1,
            )
        )
    return problems


class _Locator:
    """Finds the row an IRI was minted from, and checks cells (types, keys, choices).

    A source's first triples map mints its records, so a key repeated there is a duplicate;
    later maps of the same source may mint shared things (a brand, a sales team) that many
    rows name, and repeat freely.
    """

    def __init__(self, mapping: Mapping, tables: dict[str, Table]) -> None:
        self.mapping = mapping
        self.tables = tables
        self.index: dict[str, dict[tuple[str, ...], int]] = {m.name: {} for m in mapping.maps}

    def check(
        self, name: str, table: Table, lang: str, report: ProgressCallback, total: int
    ) -> list[Problem]:
        problems: list[Problem] = []
        mapping = self.mapping
        types = mapping.datatypes(name)
        choices = mapping.choices.get(name, {})
        required = mapping.required_columns(name)
        for column in mapping.columns(name):
            if column not in table.columns:  # optional and left out: empty for the engine
                table.columns.append(column)
                for row in table.rows:
                    row.append("")
        position = {c: i for i, c in enumerate(table.columns)}
        maps = [m for m in mapping.maps if m.source == name]
        checks = [
            (position[c], c, check)
            for c, t in types.items()
            if (check := _check_for(t)) is not None
        ]
        allowed = [(position[c], c, set(v), v) for c, v in choices.items() if c in position]
        needed = [(position[c], c) for c in required]
        for index, row in enumerate(table.rows):
            number = index + 2
            if not any(row):
                continue
            for at, column in needed:
                if not row[at]:
                    problems.append(
                        Problem(
                            "error",
                            "missing_value",
                            messages.message("missing_value", lang, column=column),
                            source=name,
                            row=number,
                            column=column,
                            value="",
                        )
                    )
            for at, column, (code, test) in checks:
                value = row[at]
                if value and not test(value):
                    problems.append(
                        Problem(
                            "error",
                            code,
                            messages.message(code, lang, value=repr(value)),
                            source=name,
                            row=number,
                            column=column,
                            value=value,
                        )
                    )
                    row[at] = ""  # the engine must not write an ill-typed literal
            for at, column, values, shown in allowed:
                value = row[at]
                if value and value not in values:
                    problems.append(
                        Problem(
                            "error",
                            "bad_choice",
                            messages.message(
                                "bad_choice", lang, value=repr(value), allowed=", ".join(shown)
                            ),
                            source=name,
                            row=number,
                            column=column,
                            value=value,
                        )
                    )
                    row[at] = ""
            for m in maps:
                key = tuple(row[position[c]] for c in m.key_columns)
                if not all(key):
                    continue
                seen = self.index[m.name].setdefault(key, number)
                if seen != number and m is maps[0]:
                    key_text = "/".join(key)
                    problems.append(
                        Problem(
                            "error",
                            "duplicate_key",
                            messages.message(
                                "duplicate_key", lang, value=repr(key_text), other=seen
                            ),
                            source=name,
                            row=number,
                            column=m.key_columns[0],
                            value=key_text,
                        )
                    )
                    for column in m.key_columns:  # the engine must not merge it into `seen`
                        row[position[column]] = ""
            if number % 5000 == 0:
                report("read", number - 1, total)
        report("read", len(table.rows), total)
        return problems

    def locate(self, iri: str) -> tuple[TriplesMap, str, int] | None:
        """(triples map, source, row) an IRI was minted from, or None."""
        for m in self.mapping.maps:
            key = m.key_of(iri)
            if key is not None and key in self.index[m.name]:
                return m, m.source, self.index[m.name][key]
        return None

    def cell(self, source: str, row: int, column: str) -> str | None:
        table = self.tables[source]
        try:
            return table.rows[row - 2][table.columns.index(column)]
        except (IndexError, ValueError):
            return None

    def from_report(self, report: shacl.ValidationReport) -> list[Problem]:
        """SHACL results as problems at the row and column they came from."""
        problems = []
        for result in report.results:
            severity = "error" if result.is_violation else "warning"
            focus = result.focus_node.value if hasattr(result.focus_node, "value") else None
            found = self.locate(focus) if focus else None
            shown = None if result.value is None else getattr(result.value, "value", None)
            if found is None:
                problems.append(
                    Problem(
                        severity,
                        "shacl",
                        result.message,
                        value=shown,
                        focus_node=focus,
                        property_name=result.path_name or result.path,
                    )
                )
                continue
            triples_map, source, row = found
            columns = triples_map.columns_for(result.path) if result.path else ()
            # of the columns a predicate reads (buyer_contact_id, buyer_account_id), the one
            # this row filled
            filled = [c for c in columns if self.cell(source, row, c)]
            column = next(iter(filled or columns), None)
            value = self.cell(source, row, column) if column else shown
            problems.append(
                Problem(
                    severity,
                    "shacl",
                    result.message,
                    source=source,
                    row=row,
                    column=column,
                    value=value,
                    focus_node=focus,
                    property_name=result.path_name or result.path,
                )
            )
        return problems


def _check_for(datatype: str) -> tuple[str, Callable[[str], bool]] | None:
    local = datatype.removeprefix(XSD)
    if local in ("decimal", "double", "float"):
        return "bad_decimal", lambda v: bool(_DECIMAL.fullmatch(v))
    if local in ("integer", "int", "long", "nonNegativeInteger", "positiveInteger"):
        return "bad_integer", lambda v: bool(_INTEGER.fullmatch(v))
    if local == "boolean":
        return "bad_boolean", lambda v: v in _BOOLEANS
    if local == "date":
        return "bad_date", _is_date
    if local == "dateTime":
        return "bad_datetime", _is_datetime
    return None


def _is_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value


def _run_engine(mapping: Mapping, tables: dict[str, Table], rml_python: Path | str | None) -> bytes:
    with tempfile.TemporaryDirectory(prefix="relmark-import-") as work:
        folder = Path(work)
        files: dict[str, Path] = {}
        for number, (name, table) in enumerate(tables.items()):
            files[name] = folder / f"source{number}.csv"
            table.write_csv(files[name])
        document = folder / "mapping.yml"
        document.write_text(mapping.engine_document(files), encoding="utf-8")
        output = folder / "output.nt"
        try:
            engine.run_engine(document, output, python=rml_python)
        except engine.EngineError as error:
            raise ImportInputError(
                error.message, mapping.path.name, error.detail, engine=True
            ) from error
        return output.read_bytes()


def _validate(
    plan: ImportPlan, store: Store | None, ontology_dir: Path | None
) -> shacl.ValidationReport:
    """The shapes' verdict on the store as it would be with ``plan.graph`` replaced."""
    directory = ontology_dir or ONTOLOGY_DIR
    data = shacl.validation_store([], None, ontology_paths(directory))
    data.bulk_load(plan.ntriples, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(plan.graph))
    replaced = frozenset({plan.graph}) if store is not None else frozenset()
    change = shacl.Change(data, replaced=replaced)
    shapes = loading.compiled_shapes(directory / SHAPES_FILE)
    return shacl.validate_change(change, shapes, store, lang=plan.lang)


def problems_text(problems: Iterable[Problem]) -> str:
    """One line per problem, errors first, for a terminal."""
    ordered = sorted(problems, key=lambda p: (p.severity != "error", p.source or "", p.row or 0))
    return "\n".join(p.text for p in ordered)
