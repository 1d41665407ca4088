"""Statbel statistical sectors: the ~20,000 neighbourhoods under the municipalities, with their polygons.

Source: ``https://statbel.fgov.be/sites/default/files/files/opendata/Statistische%20sectoren/
sh_statbel_statistical_sectors_31370_{YYYY}0101.shp.zip`` (also ``_3812_`` and ``.geojson`` / ``.sqlite``
zips). Licence: Statbel open data licence (free, commercial use allowed; cite "Statbel" and the date).
Cadence: yearly (boundaries on 1 January). CRS: EPSG:31370 or EPSG:3812, stored in EPSG:31370.

Columns are read case-insensitively (their case differs by vintage): ``cd_sector`` (9 characters,
``44021A00-``), ``cd_munty_refnis`` (the municipality), ``tx_sector_descr_nl`` / ``_fr``. Since 2019 a
sector code no longer tells its municipality (merged municipalities keep their old prefixes), so the
municipality is joined on ``cd_munty_refnis``, through the crosswalk when the file uses pre-2025 codes.

A names table without polygons is a valid input too (a ``;``-separated CSV such as the provinciesincijfers
``statsec;deelgemeente;gemeente;statsec_naam;...`` file): it adds the sectors that are missing and fills
missing names, never removing a polygon or a sector.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import shapely
from django.db import connection, transaction

from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    check_rejections,
    register,
    stage_create,
    staged_swap,
)
from opendata.connectors.statbel.geo import as_multipolygon, column_map, ewkb, read_layer, vector_source
from opendata.connectors.statbel.stats import municipality_resolver, parcels_of
from opendata.connectors.statbel.tables import TABLE_SUFFIXES, cells, nis_code, read_table, year_in_name
from opendata.copy import copy_rows

SECTOR_CODE = re.compile(r"^\d{5}[A-Z0-9]{3}[A-Z0-9-]$")
CODE_COLUMNS = ("cd_sector", "statsec", "cd_stat_sector", "nis9")
MUNICIPALITY_COLUMNS = (
    "cd_munty_refnis",
    "cd_munty_r",
    "cd_refnis",
    "gemeente",
    "nis5",
)  # cd_munty_r: shapefile-truncated
NAME_NL_COLUMNS = ("tx_sector_descr_nl", "statsec_naam", "tx_sector_descr")
NAME_FR_COLUMNS = ("tx_sector_descr_fr",)
SECTOR_COLUMNS = ["code", "municipality_id", "name_nl", "name_fr", "geometry", "vintage", "source"]


@register
class StatbelSectorsConnector(Connector):
    name = "statbel-sectors"
    title = "Statistical sectors (Statbel)"
    url = (
        "https://statbel.fgov.be/sites/default/files/files/opendata/Statistische%20sectoren/"
        "sh_statbel_statistical_sectors_31370_{year}0101.shp.zip"
    )
    credit = "Statbel (Directorate-general Statistics - Statistics Belgium)"
    schedule = ("30", "4", "*", "15", "1")  # 15 January, after the 1 January edition
    suffix = ".zip"

    def live_url(self, options: dict[str, Any]) -> str | None:
        return str(self.url).format(year=options.get("year") or datetime.date.today().year)

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        # The year: given, or in the file name, or in the zip member's name (a live download is renamed).
        year = int(ctx.options.get("year") or year_in_name(path.name) or year_in_name(_member(path)) or 0)
        if not year:
            raise SourceError(
                f"The vintage of {path.name} is not in its name (e.g. _20250101); give it with "
                "--option year=YYYY."
            )
        names_only = path.suffix.lower() in TABLE_SUFFIXES
        records = _table_records(path) if names_only else _vector_records(path)
        resolve = municipality_resolver()
        rejections: list[Rejection] = []
        rows: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        for number, code, munty, name_nl, name_fr, geom in records:
            if not SECTOR_CODE.match(code):
                rejections.append(
                    Rejection(number, f"sector code {code!r} is not 9 characters like 44021A00-")
                )
                continue
            if code in seen:
                rejections.append(Rejection(number, f"sector {code} appears twice"))
                continue
            municipality_id = resolve(munty)
            if municipality_id is None:
                rejections.append(
                    Rejection(
                        number,
                        f"sector {code}: municipality {munty!r} is unknown (load municipalities first)",
                    )
                )
                continue
            polygons = None
            if geom is not None:
                polygons = as_multipolygon(geom if geom.is_valid else shapely.make_valid(geom))
                if polygons is None or polygons.is_empty:
                    rejections.append(Rejection(number, f"sector {code} has no usable polygon"))
                    continue
            seen.add(code)
            rows.append(
                (
                    code,
                    municipality_id,
                    name_nl[:150],
                    name_fr[:150],
                    ewkb(polygons) if polygons else None,
                    year,
                    self.name,
                )
            )
        rows_read = len(rows) + len(rejections)
        check_rejections(rows_read, rejections, what="sectors")
        if not rows:
            raise SourceError(f"{path.name} holds no statistical sector. Nothing was loaded.")
        with transaction.atomic():
            stage = stage_create("statisticalsector", SECTOR_COLUMNS, like="opendata_statisticalsector")
            copy_rows(stage, SECTOR_COLUMNS, rows)
            if names_only:
                _keep_existing(stage)
            counts = staged_swap(
                target="opendata_statisticalsector",
                stage=stage,
                key=["code"],
                columns=SECTOR_COLUMNS,
                scope="source = %s",
                scope_params=[self.name],
                delete_missing=not names_only,
            )
        return LoadResult(
            rows_read=rows_read,
            counts=counts.as_counts("sectors"),
            rejections=rejections,
            vintage=f"{year}-01-01" + (" (names only)" if names_only else ""),
            touched_parcels=parcels_of("sector_id", counts.touched_ids),
        )


def _member(path: Path) -> str:
    if path.suffix.lower() in TABLE_SUFFIXES:
        return path.name
    try:
        return vector_source(path)
    except SourceError:
        return ""


def _keep_existing(stage: str) -> None:
    """A names-only input keeps the polygons, vintage, source and names of the sectors already loaded."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{stage}" s SET geometry = t.geometry, vintage = t.vintage, source = t.source, '  # noqa: S608
            "name_nl = CASE WHEN t.name_nl <> '' THEN t.name_nl ELSE s.name_nl END, "
            "name_fr = CASE WHEN t.name_fr <> '' THEN t.name_fr ELSE s.name_fr END "
            "FROM opendata_statisticalsector t WHERE t.code = s.code"
        )


Record = tuple[int, str, str, str, str, Any]  # row number, sector code, NIS code, name nl, name fr, geometry


def _vector_records(path: Path) -> list[Record]:
    frame = read_layer(path, what="statistical sectors")
    columns = column_map(frame.columns)
    picked = {}
    for label, names in (("code", CODE_COLUMNS), ("munty", MUNICIPALITY_COLUMNS)):
        found = next((columns[n] for n in names if n in columns), None)
        if found is None:
            raise SourceError(
                f"{path.name} has no {names[0]} column; it has "
                f"{', '.join(c for c in frame.columns if c != 'geometry')}. Nothing was loaded."
            )
        picked[label] = found
    nl = next((columns[n] for n in NAME_NL_COLUMNS if n in columns), None)
    fr = next((columns[n] for n in NAME_FR_COLUMNS if n in columns), None)
    records = []
    for number, values in enumerate(frame.to_dict("records"), start=1):
        records.append(
            (
                number,
                str(values[picked["code"]] or "").strip().upper(),
                nis_code(str(values[picked["munty"]] or "")),
                str(values[nl] or "").strip() if nl else "",
                str(values[fr] or "").strip() if fr else "",
                values["geometry"],
            )
        )
    return records


def _table_records(path: Path) -> list[Record]:
    table = read_table(path)
    code = table.column(*CODE_COLUMNS)
    munty = table.column(*MUNICIPALITY_COLUMNS)
    nl = table.index(*NAME_NL_COLUMNS, required=False)
    fr = table.index(*NAME_FR_COLUMNS, required=False)
    return [
        (
            table.first_line + i,
            cells(row, code).strip().upper(),
            nis_code(cells(row, munty)),
            cells(row, nl).strip(),
            cells(row, fr).strip(),
            None,
        )
        for i, row in enumerate(table.rows)
    ]
