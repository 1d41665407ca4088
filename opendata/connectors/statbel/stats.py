"""Write Statbel figures into MunicipalityStatistic / SectorStatistic, one group of columns per connector.

Population and income come from different files (often for different years) but share one row per
municipality (or sector) and year. Each connector writes only its own columns and records in the row's
``provenance`` which source and vintage gave them (``{"population": {"source": ..., "vintage": ...}}``);
``source`` / ``vintage`` name the last writer. A new file makes the connector's figures for the years it
covers equal to the file: rows it no longer has get those columns cleared, and rows left with no figures
from any source are deleted. All of it runs in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from opendata.connectors.base import stage_create
from opendata.copy import copy_rows
from opendata.models import Municipality, MunicipalityCrosswalk


@dataclass
class StatCounts:
    inserted: int = 0
    updated: int = 0
    cleared: int = 0
    deleted: int = 0
    unchanged: int = 0
    touched_keys: list[int] = field(default_factory=list)

    def as_counts(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix}_inserted": self.inserted,
            f"{prefix}_updated": self.updated,
            f"{prefix}_cleared": self.cleared,
            f"{prefix}_deleted": self.deleted,
            f"{prefix}_unchanged": self.unchanged,
        }


def statistics_upsert(
    *,
    table: str,
    key: str,
    part: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    source: str,
    vintage: str,
) -> StatCounts:
    """Upsert ``rows`` = (key id, year, *columns) into ``table`` for the ``part`` of the figures."""
    q = '"{}"'.format
    stage_columns = [key, "year", *columns]
    stage = stage_create(f"{table}_{part}", stage_columns, like=table)
    copy_rows(stage, stage_columns, rows)
    provenance = json.dumps({part: {"source": source, "vintage": vintage}})
    mine = json.dumps({"source": source, "vintage": vintage})
    on = f"t.{q(key)} = s.{q(key)} AND t.year = s.year"
    differ = " OR ".join(f"t.{q(c)} IS DISTINCT FROM s.{q(c)}" for c in columns)
    sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in columns)
    counts = StatCounts()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT year FROM {q(stage)}")  # noqa: S608
        years = [row[0] for row in cursor.fetchall()]
        nulls = ", ".join(f"{q(c)} = NULL" for c in columns)
        cursor.execute(
            f"UPDATE {q(table)} t SET {nulls}, "  # noqa: S608
            f"provenance = t.provenance - %s WHERE t.year = ANY(%s) AND t.provenance -> %s ->> 'source' = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {q(stage)} s WHERE {on}) RETURNING t.{q(key)}",
            [part, years, part, source],
        )
        cleared = [row[0] for row in cursor.fetchall()]
        counts.cleared = len(cleared)
        cursor.execute(
            f"DELETE FROM {q(table)} t WHERE t.year = ANY(%s) AND t.provenance = '{{}}'::jsonb",  # noqa: S608
            [years],
        )
        counts.deleted = cursor.rowcount
        cursor.execute(
            f"UPDATE {q(table)} t SET {sets}, source = %s, vintage = %s, "  # noqa: S608
            f"provenance = COALESCE(t.provenance, '{{}}'::jsonb) || %s::jsonb FROM {q(stage)} s "
            f"WHERE {on} AND ({differ} OR (t.provenance -> %s) IS DISTINCT FROM %s::jsonb) "
            f"RETURNING t.{q(key)}",
            [source, vintage, provenance, part, mine],
        )
        updated = [row[0] for row in cursor.fetchall()]
        counts.updated = len(updated)
        cols = ", ".join(q(c) for c in stage_columns)
        picked = ", ".join(f"s.{q(c)}" for c in stage_columns)
        cursor.execute(
            f"INSERT INTO {q(table)} ({cols}, source, vintage, provenance) "  # noqa: S608
            f"SELECT {picked}, %s, %s, %s::jsonb FROM {q(stage)} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {q(table)} t WHERE {on}) RETURNING {q(key)}",
            [source, vintage, provenance],
        )
        inserted = [row[0] for row in cursor.fetchall()]
        counts.inserted = len(inserted)
    counts.unchanged = len(rows) - counts.inserted - counts.updated
    counts.touched_keys = sorted(set(cleared + updated + inserted))
    return counts


def municipality_resolver() -> Callable[[str], int | None]:
    """Map a NIS code as a Statbel file writes it (current, or pre-2025 / pre-2019) to a Municipality id.

    Old codes go through :class:`~opendata.models.MunicipalityCrosswalk`; a code it does not know is looked
    up among the current municipalities; ``None`` when neither knows it.
    """
    crosswalk = dict(MunicipalityCrosswalk.objects.values_list("old_nis_code", "municipality_id"))
    current = dict(Municipality.objects.filter(valid_to__isnull=True).values_list("nis_code", "id"))

    def resolve(code: str) -> int | None:
        return crosswalk.get(code) or current.get(code)

    return resolve


def parcels_of(column: str, ids: Sequence[int]) -> list[int]:
    """Ids of the parcels whose ``column`` (municipality_id or sector_id) is one of ``ids``."""
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT id FROM opendata_parcel WHERE "{column}" = ANY(%s) ORDER BY id',  # noqa: S608
            [list(ids)],
        )
        return [row[0] for row in cursor.fetchall()]
