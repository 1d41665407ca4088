"""Validate sales given in the canonical fields, column by column, for files and the API alike.

Every row is checked whole: one rejection per bad row, naming each bad column and its value
("price_eur '-5' must be a number greater than 0"). The checks run column-wise over plain lists,
which measured faster here than pandas on 1M rows (float() over a list 0.12 s, pd.to_numeric 0.34 s;
csv.reader 1.8 s, pd.read_csv(dtype=str) 4.1 s).

Coordinates are only checked for WGS84 validity, not for Belgium: foreign files (French DVF sales)
are imported too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from django.utils import timezone

from opendata.capakey import InvalidCapaKey, normalise_capakey
from valuation.models import SALE_FACTS, PropertyType, Sale

REQUIRED_COLUMNS = ("sale_id", "sale_date", "price_eur", "latitude", "longitude")
OPTIONAL_COLUMNS = (*SALE_FACTS, "capakey", "address")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

SALE_ID_MAX = Sale._meta.get_field("external_id").max_length or 64
ADDRESS_MAX = Sale._meta.get_field("address").max_length or 300
DEFAULT_PROPERTY_TYPE = str(Sale._meta.get_field("property_type").default)
PROPERTY_TYPES = frozenset(PropertyType.values)
_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")
_QUOTED_VALUE = re.compile(r"^'[^']*' ")
_Reject = Callable[[int, str, str, str], None]  # (row index, column, value, rule)


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class _Number:
    column: str
    low: float
    high: float
    whole: bool = False
    rule: str = ""  # the allowed range in words, when "from low to high" reads badly

    def explain(self, value: float, raw: str) -> str:
        kind = "a whole number" if self.whole else "a number"
        allowed = f"must be {kind} {self.rule or f'from {self.low:g} to {self.high:g}'}"
        if not math.isfinite(value):
            return allowed + (" (use a dot for decimals)" if "," in raw else "")
        if value > self.high:
            return f"is implausibly large (more than {self.high:,.0f})" if self.high >= 1e5 else allowed
        if value < self.low:
            return allowed if value <= 0 or not self.rule else f"must be at least {self.low:g}"
        return f"must be {kind}"


_PRICE = _Number("price_eur", 1, 9_999_999_999, rule="greater than 0")
_NUMBERS = (
    _Number("latitude", -90, 90),
    _Number("longitude", -180, 180),
    _Number("living_area_m2", 1, 1e6, rule="of at least 1 (leave it empty when unknown)"),
    _Number("land_area_m2", 0, 1e9, rule="of at least 0"),
    _Number("rooms", 0, 1000, whole=True),
    _Number("bedrooms", 0, 1000, whole=True),
    _Number("epc_kwh_m2", 0, 1e5, rule="of at least 0"),
)


@dataclass(slots=True)
class ValidSales:
    """The valid rows, column by column, typed; ``rows()`` gives them in ``FIELDS`` order."""

    FIELDS = (
        "line",
        "external_id",
        "sale_date",
        "price_eur",
        *SALE_FACTS,
        "longitude",
        "latitude",
        "capakey",
        "address",
    )
    columns: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns.get("line", ()))

    def rows(self) -> Iterator[tuple]:
        return zip(*(self.columns[name] for name in self.FIELDS), strict=True)


def validate_sale_rows(
    rows: Iterable[Mapping[str, object]], *, first_line: int = 1
) -> tuple[ValidSales, list[Rejection]]:
    """Validate sales given as mappings (the API's JSON objects); row i is reported as first_line + i."""
    rows = list(rows)
    columns = {name: [_text(row.get(name)) for row in rows] for name in COLUMNS}
    lines = list(range(first_line, first_line + len(rows)))
    return validate_sale_columns(columns, lines=lines, seen_ids={})


def validate_sale_columns(
    columns: Mapping[str, Sequence[str]], *, lines: Sequence[int], seen_ids: dict[str, int]
) -> tuple[ValidSales, list[Rejection]]:
    """Validate one batch of rows given column by column as text; absent optional columns are empty.

    ``seen_ids`` maps each sale_id met so far (in earlier batches too) to its line; a later row with
    the same id is rejected and the first kept. It is updated in place.
    """
    n = len(lines)
    problems: dict[int, list[str]] = {}

    def reject(i: int, column: str, value: str, rule: str) -> None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        problems.setdefault(i, []).append(f"{column} '{shown}' {rule}" if value else f"{column} {rule}")

    def text(name: str) -> list[str]:
        values = columns.get(name)
        return [v.strip() for v in values] if values is not None else [""] * n

    out: dict[str, list] = {"line": list(lines)}

    ids = out["external_id"] = text("sale_id")
    _check_ids(ids, lines, seen_ids, reject)
    out["sale_date"] = _dates(text("sale_date"), reject)

    this_year = timezone.localdate().year
    specs = (_PRICE, *_NUMBERS, _Number("year_built", 1000, this_year + 5, whole=True))
    numbers = {spec.column: _numbers(columns, spec, n, reject) for spec in specs}
    for i in np.flatnonzero((numbers["latitude"] == 0) & (numbers["longitude"] == 0)).tolist():
        reject(i, "latitude/longitude", "0, 0", "is not a real location (missing coordinates?)")

    kinds = out["property_type"] = [v.lower() or DEFAULT_PROPERTY_TYPE for v in text("property_type")]
    for i, kind in enumerate(kinds):
        if kind not in PROPERTY_TYPES:
            reject(i, "property_type", kind, f"must be one of {', '.join(sorted(PROPERTY_TYPES))} or empty")

    capakeys: list[str | None] = [None] * n
    for i, raw in enumerate(text("capakey")):
        if raw:
            try:
                capakeys[i] = normalise_capakey(raw)
            except InvalidCapaKey as exc:  # "'NOTAKEY' is not a CaPaKey: ...": name the value as given
                reject(i, "capakey", raw, _QUOTED_VALUE.sub("", str(exc), count=1))
    out["capakey"] = capakeys

    addresses = out["address"] = text("address")
    for i, address in enumerate(addresses):
        if len(address) > ADDRESS_MAX:
            reject(i, "address", address, f"is longer than {ADDRESS_MAX} characters")

    rejections = [Rejection(lines[i], "; ".join(reasons)) for i, reasons in sorted(problems.items())]
    if problems:
        keep = [i for i in range(n) if i not in problems]
        out = {name: [values[i] for i in keep] for name, values in out.items()}
        numbers = {name: values[keep] for name, values in numbers.items()}
    for spec in specs:  # NaN (empty) becomes None: NULL in the database
        values = numbers[spec.column].tolist()
        if spec.whole:
            out[spec.column] = [None if x != x else int(x) for x in values]
        else:
            out[spec.column] = [None if x != x else x for x in values]
    return ValidSales(out), rejections


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _check_ids(ids: list[str], lines: Sequence[int], seen_ids: dict[str, int], reject: _Reject) -> None:
    new = dict(zip(ids, lines, strict=True))
    fine = len(new) == len(ids) and "" not in new and max(map(len, ids), default=0) <= SALE_ID_MAX
    if fine and seen_ids.keys().isdisjoint(new):  # the usual case, without a Python loop
        seen_ids.update(new)
        return
    for i, sale_id in enumerate(ids):
        if not sale_id:
            reject(i, "sale_id", "", "is empty; every sale needs an id")
        elif len(sale_id) > SALE_ID_MAX:
            reject(i, "sale_id", sale_id, f"is longer than {SALE_ID_MAX} characters")
        elif (first := seen_ids.setdefault(sale_id, lines[i])) != lines[i]:
            reject(i, "sale_id", sale_id, f"already appears on line {first} (the first one is kept)")


def _numbers(columns: Mapping[str, Sequence[str]], spec: _Number, n: int, reject: _Reject) -> np.ndarray:
    """Parse one numeric column: NaN for empty (and the text "nan"), -inf for text that is no number."""
    values = columns.get(spec.column)
    if values is None:
        return np.full(n, np.nan)
    try:  # the fast path: every value a number or empty
        parsed = np.array([float(v) if v else math.nan for v in values], dtype=float)
    except ValueError:
        parsed = np.array([_float_or_marker(v) for v in values], dtype=float)
    empty = np.isnan(parsed)
    bad = ~empty & ~((parsed >= spec.low) & (parsed <= spec.high))
    if spec.whole:
        bad |= np.isfinite(parsed) & (parsed != np.floor(parsed))
    for i in np.flatnonzero(bad).tolist():
        raw = values[i].strip()
        reject(i, spec.column, raw, spec.explain(float(parsed[i]), raw))
    if spec.column in REQUIRED_COLUMNS:
        for i in np.flatnonzero(empty).tolist():
            raw = values[i].strip()
            reject(i, spec.column, raw, spec.explain(math.nan, raw) if raw else "is empty; it is required")
    return parsed


def _float_or_marker(value: str) -> float:
    if not value.strip():
        return math.nan
    try:
        return float(value)
    except ValueError:
        return -math.inf


def _dates(values: list[str], reject: _Reject) -> list[date | None]:
    today = timezone.localdate()
    try:  # the fast path: every value a YYYY-MM-DD date up to today
        days = [date.fromisoformat(v) for v in values]
        if all(len(v) == 10 and v[7] == "-" for v in values) and max(days, default=today) <= today:
            return list(days)
    except ValueError:
        pass
    parsed: list[date | None] = []
    for i, value in enumerate(values):
        day: date | None = None
        if not value:
            reject(i, "sale_date", "", "is empty; it is required")
        elif not _DATE_SHAPE.fullmatch(value):
            reject(i, "sale_date", value, "must be a date written YYYY-MM-DD")
        else:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                reject(i, "sale_date", value, "is not a date that exists")
            else:
                if day > today:
                    reject(i, "sale_date", value, "is in the future")
        parsed.append(day)
    return parsed
