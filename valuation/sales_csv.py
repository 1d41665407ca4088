"""Read a canonical sales CSV file in batches of columns, with the file's line number of every row.

UTF-8 with or without BOM, comma-separated, a header row; columns in any order, unknown ones ignored.
A file that cannot be one (empty, binary, not UTF-8, a header without the required columns) raises
:class:`SalesImportError` with a sentence for a person; a row with the wrong number of fields is
rejected on its own.
"""

from __future__ import annotations

import csv
import gc
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from valuation.sale_rows import COLUMNS, REQUIRED_COLUMNS, Rejection

BATCH_ROWS = 100_000

Batch = tuple[list[int], dict[str, list[str]], list[Rejection]]


class SalesImportError(Exception):
    """The file is refused as a whole; the message says why, for a person. Nothing was written."""


def check_file(path: Path) -> None:
    """Refuse at once a file that cannot be a sales CSV: missing, empty, binary, not UTF-8, a bad header."""
    for _ in read_batches(path, batch_rows=0):
        pass


def read_batches(path: Path, *, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """Yield (line numbers, {column: values} of the well-formed rows, rejections of the malformed ones).

    Line numbers are the file's (header = line 1) and blank lines are skipped. The header is checked
    before the first batch is yielded.
    """
    _refuse_binary(path)
    line = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next((row for row in reader if row), None)
            if header is None:
                raise SalesImportError(f"{path.name} is empty; it needs a header row and sales")
            line = reader.line_num
            positions = check_header(header)
            width = len(header)
            while batch_rows:
                lines: list[int] = []
                rows: list[list[str]] = []
                malformed: list[Rejection] = []
                with _gc_paused():  # 1M rows: 4.4 s with the collector running, 1.8 s without
                    for row in itertools.islice(reader, batch_rows):
                        first, line = line + 1, reader.line_num
                        if len(row) == width:
                            rows.append(row)
                            lines.append(first)
                        elif row:
                            reason = f"has {len(row)} fields where the header has {width}"
                            malformed.append(Rejection(first, reason))
                    if not rows and not malformed:
                        return
                    by_column = list(zip(*rows, strict=True)) if rows else [()] * width
                    columns = {name: list(by_column[i]) for name, i in positions.items()}
                yield lines, columns, malformed
    except UnicodeDecodeError as exc:
        raise SalesImportError(_not_utf8(path, exc)) from exc
    except csv.Error as exc:
        raise SalesImportError(f"{path.name} is not a readable CSV file (line {line + 1}: {exc})") from exc
    except OSError as exc:
        raise SalesImportError(f"cannot read {path}: {exc.strerror or exc}") from exc


def check_header(header: list[str]) -> dict[str, int]:
    """Map each known column to its position; refuse a header without the required columns."""
    names = [name.strip().lower() for name in header]
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in COLUMNS:
            if name in positions:
                raise SalesImportError(f"the column {name} appears twice in the header")
            positions[name] = i
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        hint = ""
        if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
            hint = "; the file seems separated by ';' or tabs, the format needs commas"
        raise SalesImportError(
            f"the header lacks the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            f" (it has: {', '.join(n for n in names if n) or 'nothing'}){hint}; nothing was imported"
        )
    return positions


def count_lines(path: Path) -> int | None:
    """The number of data rows, for a progress bar (line breaks inside quotes make it an overestimate)."""
    try:
        with open(path, "rb") as handle:
            breaks = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return max(breaks - 1, 0)


def _refuse_binary(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            start = handle.read(8192)
    except OSError as exc:
        raise SalesImportError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if start.startswith(b"PK\x03\x04"):
        raise SalesImportError(f"{path.name} is a ZIP or Excel (.xlsx) file, not CSV; save it as CSV UTF-8")
    if b"\x00" in start:
        raise SalesImportError(f"{path.name} is not a CSV text file (it holds binary data)")


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as line_exc:
                return (
                    f"{path.name} is not UTF-8 text: line {number} holds the byte 0x{raw[line_exc.start]:02x}"
                    " (Windows-1252 or Latin-1?); save the file as CSV UTF-8; nothing was imported"
                )
    return f"{path.name} is not UTF-8 text ({exc.reason}); save the file as CSV UTF-8; nothing was imported"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small lists it would scan for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
