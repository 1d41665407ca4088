"""Read Statbel's tables (xlsx, or ``|``/``;``/``,``-separated text, plain or in a zip) by column name.

Statbel renamed and re-cased columns between vintages, so columns are found case-insensitively among a
few known spellings. Suppressed cells (``C``, ``*``, empty) are unknown (``None``), never zero.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opendata.connectors.base import SourceError, check_archive

TABLE_SUFFIXES = (".xlsx", ".txt", ".csv")
SUPPRESSED = {"", "c", "*", "-", "x", "nan", "none"}
NIS5 = re.compile(r"^\d{5}$")
# Aggregates in Statbel municipality tables: the country (01000), regions (02000-04000), provinces
# (10000, 20001 Flemish Brabant, 20002 Walloon Brabant, 30000...) and arrondissements (11000, 21000...).
AGGREGATE = re.compile(r"^(\d{2}000|2000[12])$")


@dataclass
class Table:
    name: str  # file (or zip member) name, for messages
    columns: list[str]  # as the file spells them
    rows: list[list[str]]  # cells as text, one list per data row
    first_line: int = 2  # line number of rows[0] as a person counts (after the header)

    def find(self, *names: str) -> int | None:
        """Position of the first column called one of ``names`` (case-insensitive), or None."""
        lowered = [c.strip().lower() for c in self.columns]
        return next((lowered.index(n.lower()) for n in names if n.lower() in lowered), None)

    def column(self, *names: str) -> int:
        """Like :meth:`find`, but the file is refused when it has none of ``names``."""
        found = self.find(*names)
        if found is None:
            raise SourceError(
                f"{self.name} has no column {' or '.join(n.upper() for n in names)}; it has: "
                f"{', '.join(self.columns)}. Is this the right file? Nothing was loaded."
            )
        return found

    def index(self, *names: str, required: bool = True) -> int | None:
        return self.column(*names) if required else self.find(*names)


def read_table(path: Path) -> Table:
    """The first table in ``path``: an xlsx sheet or a delimited text file, plain or inside a zip."""
    if path.suffix.lower() != ".xlsx" and zipfile.is_zipfile(path):  # an xlsx is a zip too
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path.name)
            members = [n for n in archive.namelist() if n.lower().endswith(TABLE_SUFFIXES)]
            if not members:
                raise SourceError(f"{path.name} holds no .xlsx, .txt or .csv file.")
            member = max(members, key=lambda n: archive.getinfo(n).file_size)
            data = archive.read(member)
        return _parse(member, data)
    return _parse(path.name, path.read_bytes())


def _parse(name: str, data: bytes) -> Table:
    if name.lower().endswith(".xlsx") or data[:2] == b"PK":
        return _parse_xlsx(name, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # older Statbel text files are Windows-1252
        text = data.decode("cp1252", errors="replace")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SourceError(f"{name} is empty.")
    header = lines[0]
    delimiter = max("|;,\t", key=header.count)
    if header.count(delimiter) == 0:
        raise SourceError(f"{name} has a single column; expected a '|', ';' or ',' separated table.")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns = [c.strip() for c in next(reader)]
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    return Table(name=name, columns=columns, rows=rows)


def _parse_xlsx(name: str, data: bytes) -> Table:
    from openpyxl import load_workbook  # parses through defusedxml (a dependency) when it is installed

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_archive(archive, name)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{name} is not a readable xlsx workbook ({exc}).") from exc
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise SourceError(f"{name} is not a readable xlsx workbook ({exc}).") from exc
    sheet = book.worksheets[0]
    rows_iter = sheet.iter_rows(values_only=True)
    columns: list[str] = []
    first_line = 1
    for line, values in enumerate(rows_iter, start=1):
        if any(v not in (None, "") for v in values):
            columns = ["" if v is None else str(v).strip() for v in values]
            first_line = line + 1
            break
    rows = [
        ["" if v is None else _cell_text(v) for v in values]
        for values in rows_iter
        if any(v not in (None, "") for v in values)
    ]
    book.close()
    if not columns:
        raise SourceError(f"{name} has an empty first sheet.")
    return Table(name=name, columns=columns, rows=rows, first_line=first_line)


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def number(cell: str | None) -> float | None:
    """A figure from a Statbel cell; ``None`` for a suppressed or empty cell; ValueError if not a number."""
    if cell is None:
        return None
    text = cell.strip().replace("\u00a0", "").replace(" ", "")
    if text.lower() in SUPPRESSED:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def nis_code(cell: str) -> str:
    """A 5-digit NIS code from a cell (xlsx may have dropped the leading zero: 1000 -> 01000)."""
    text = cell.strip()
    if text.endswith(".0"):
        text = text[:-2]
    if text.isdigit() and len(text) == 4:
        text = "0" + text
    return text


def year_in_name(name: str) -> int | None:
    """The vintage year a Statbel file name states (``..._2024``, ``..._20240101``), if any."""
    found = re.findall(r"(?<!\d)((?:19|20)\d{2})(?:0101)?(?!\d)", name)
    return int(found[-1]) if found else None


def cells(row: Sequence[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    return row[index]


def distinct(values: Iterable[str]) -> list[str]:
    return sorted(set(values))
