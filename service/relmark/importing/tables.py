"""Reading the user's files: CSV (any of the usual encodings and delimiters) and Excel.

A CRM export or a spreadsheet saved on Windows comes in cp1252 as often as in UTF-8, and
with ``;`` as often as ``,`` (Excel in an Italian locale writes ``;``), so both are
detected rather than asked for; when detection cannot decide, the error says what was tried.
Every table becomes rows of strings numbered as a spreadsheet numbers them (the header is
row 1), which is what the user sees when an error names a row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

#: Tried in this order; latin-1 decodes any bytes, so it is the last resort.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = ",;\t|"
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_SNIFF_BYTES = 64 * 1024


class SourceError(Exception):
    """A file that cannot be read as a table; ``where`` names the file (and row)."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


@dataclass
class Table:
    """One source as read: its header and rows of stripped strings ("" for an empty cell)."""

    name: str
    columns: list[str]
    rows: list[list[str]]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    warnings: list[str] = field(default_factory=list)

    @staticmethod
    def row_number(index: int) -> int:
        """The spreadsheet row of data row ``index`` (0-based): the header is row 1."""
        return index + 2

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(spreadsheet row, {column: value}) for every row."""
        for index, row in enumerate(self.rows):
            yield self.row_number(index), dict(zip(self.columns, row, strict=False))

    def write_csv(self, path: Path) -> None:
        """The table as UTF-8, comma-separated CSV: the one dialect the engine is given."""
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(self.columns)
            writer.writerows(self.rows)


def read_table(path: Path | str, name: str | None = None) -> Table:
    """Read a CSV or Excel file; raises ``SourceError`` for an unreadable or empty one."""
    path = Path(path)
    shown = name or path.name
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror}", shown) from error
    if path.suffix.lower() in EXCEL_SUFFIXES or raw[:4] == b"PK\x03\x04":
        return _read_excel(raw, shown)
    return _read_csv(raw, shown)


def decode(raw: bytes, name: str) -> tuple[str, str]:
    """The text and the first encoding of ``ENCODINGS`` that decodes it strictly."""
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SourceError(f"{name}: cannot decode the file as {', '.join(ENCODINGS)}", name)


def sniff_delimiter(text: str, name: str) -> str:
    """The delimiter of ``text``: csv.Sniffer on a sample, else the candidate that splits the
    header into the most columns. Raises ``SourceError`` when none splits it at all."""
    sample = text[:_SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    header = sample.splitlines()[0] if sample else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best]:
        return best
    if header and not _looks_single_column(header):
        shown = ", ".join(repr(d) for d in DELIMITERS)
        raise SourceError(
            f"{name}: cannot tell the delimiter; the header {header[:80]!r} is not split by "
            f"any of {shown}. Save the file as CSV with commas or semicolons",
            f"{name}:1",
        )
    return ","


def _looks_single_column(header: str) -> bool:
    return header.replace("_", "").replace(" ", "").isalnum()


def _read_csv(raw: bytes, name: str) -> Table:
    text, encoding = decode(raw, name)
    if not text.strip():
        raise SourceError(f"{name} is empty: it needs a header row and at least one data row", name)
    delimiter = sniff_delimiter(text, name)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        rows = [[cell.strip() for cell in row] for row in reader]
    except csv.Error as error:
        raise SourceError(f"{name}: not a readable CSV file: {error}", name) from error
    return _table(name, header, rows, encoding=encoding, delimiter=delimiter)


def _read_excel(raw: bytes, name: str) -> Table:
    import zipfile

    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as error:
        raise SourceError(f"{name}: not a readable Excel (.xlsx) file: {error}", name) from error
    sheet = book.worksheets[0]
    cells = sheet.iter_rows(values_only=True)
    header = next(cells, None)
    if header is None:
        raise SourceError(f"{name} is empty: its first sheet has no header row", name)
    rows = [[_cell_text(value) for value in row] for row in cells]
    book.close()
    return _table(name, [_cell_text(h) for h in header], rows, sheet=sheet.title)


def _cell_text(value: object) -> str:
    """An Excel cell as the text a CSV export of it would hold (dates as ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class _How(TypedDict, total=False):
    """How a source was read (``Table``'s fields of the same names)."""

    encoding: str | None
    delimiter: str | None
    sheet: str | None


def _table(name: str, header: list[str], rows: list[list[str]], **how: Unpack[_How]) -> Table:
    columns = [h.strip() for h in header]
    while columns and not columns[-1]:
        columns.pop()
    if not columns:
        raise SourceError(f"{name} is empty: it has no header row", name)
    width = len(columns)
    kept: list[list[str]] = []
    for row in rows:
        row = (row + [""] * width)[:width] if len(row) != width else row
        kept.append(row)
    while kept and not any(kept[-1]):
        kept.pop()  # trailing blank lines, common at the end of an export
    if not kept:
        raise SourceError(f"{name} has a header but no data rows", name)
    return Table(name, columns, kept, **how)
