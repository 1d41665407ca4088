"""`import_sales` speed: generate a synthetic canonical sales CSV, import it, then import it again.

Target: 1,000,000 rows in under a minute on the 2-core machine. Uses whatever database Django is
configured with; the sales it writes (source ``bench-<random>``) are deleted afterwards.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import connection

from benchmarks import ROUNDS, Figure, median, runs
from valuation.models import Sale
from valuation.sales_import import SalesImportResult, sales_import


def write_canonical_csv(path: Path, rows: int, *, seed: int = 0) -> int:
    """Write ``rows`` sales spread over Belgium, one in a thousand with a negative price; return the valid."""
    rng = np.random.default_rng(seed)
    price = rng.integers(50_000, 900_000, rows)
    price[::1000] = -5
    frame = pd.DataFrame(
        {
            "sale_id": np.char.add("S", np.arange(rows).astype(str)),
            "sale_date": (np.datetime64("2015-01-01") + rng.integers(0, 3650, rows)).astype(str),
            "price_eur": price,
            "latitude": rng.uniform(49.5, 51.5, rows).round(6),
            "longitude": rng.uniform(2.6, 6.4, rows).round(6),
            "property_type": rng.choice(["house", "apartment", "other"], rows),
            "living_area_m2": rng.uniform(30, 300, rows).round(1),
            "land_area_m2": rng.integers(0, 2000, rows),
            "rooms": rng.integers(1, 10, rows),
            "bedrooms": rng.integers(0, 6, rows),
            "year_built": rng.integers(1850, 2024, rows),
            "epc_kwh_m2": rng.integers(50, 600, rows),
            "capakey": "",
            "address": np.char.add("Rue de la Loi ", (np.arange(rows) % 200 + 1).astype(str)),
        }
    )
    frame.to_csv(path, index=False)
    return rows - len(price[::1000])


def run(rows: int = 1_000_000) -> list[Figure]:
    label = f"import_sales {rows:,} rows"
    firsts: list[SalesImportResult] = []
    agains: list[SalesImportResult] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sales.csv"
        started = time.perf_counter()
        valid = write_canonical_csv(path, rows)
        generated = f"{path.stat().st_size / 1e6:.0f} MB CSV written in {time.perf_counter() - started:.0f} s"
        for _ in range(ROUNDS):
            source = f"bench-{uuid.uuid4().hex[:8]}"
            try:
                firsts.append(sales_import(path=path, source=source))
                agains.append(sales_import(path=path, source=source))
            finally:
                with connection.cursor() as cursor:  # plain SQL: the ORM's delete would fetch every row first
                    cursor.execute(f"DELETE FROM {Sale._meta.db_table} WHERE source = %s", [source])  # noqa: S608
    for first, again in zip(firsts, agains, strict=True):
        assert (first.inserted, again.unchanged) == (valid, valid), (first.summary(), again.summary())
    first_s = [r.seconds for r in firsts]
    again_s = [r.seconds for r in agains]
    return [
        Figure(f"{label}: first import, all new", median(first_s), "s", runs(first_s) + " s", "< 60 s"),
        Figure(f"{label}: first import, throughput", rows / median(first_s), "rows/s", generated),
        Figure(f"{label}: re-import, all unchanged", median(again_s), "s", runs(again_s) + " s"),
    ]


def _counts(result: SalesImportResult) -> str:
    return (
        f"{result.read / result.seconds:,.0f} rows/s; inserted {result.inserted:,}, "
        f"unchanged {result.unchanged:,}, rejected {result.rejected:,}"
    )
