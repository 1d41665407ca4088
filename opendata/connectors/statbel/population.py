"""Statbel population on 1 January, by municipality and by statistical sector.

Sources: municipality ``TF_SOC_POP_STRUCT_{YYYY}`` (zip of a ``|``-separated txt, or xlsx) on
``https://statbel.fgov.be/nl/open-data`` ("Bevolking naar woonplaats, nationaliteit, burgerlijke staat,
leeftijd en geslacht"); sector ``OPENDATA_SECTOREN_{YYYY}`` ("Bevolking per statistische sector"); and
tables of the same shape, such as Statbel's population by NIS code (``NIS code,Woonplaats,...,Totaal``,
which also lists the country, regions, provinces and arrondissements: only municipalities are kept).
Licence: Statbel open data licence (free, commercial use allowed; cite "Statbel" and the date).
Cadence: yearly. No geometry.

Columns by name, case-insensitive: the code (``CD_REFNIS``, or ``CD_SECTOR`` for sectors) and the count
(``TOTAL``, older ``POPULATION`` / ``MS_POPULATION``, Dutch ``Totaal``); detail rows (by age, sex...)
are summed. Where the sector file gives an area (``OPPERVLAKTE IN HM²``, ``MS_AREA_HA``), it is stored
too (1 hm² = 1 ha = 0.01 km²). Figures on pre-2025 (or pre-2019) codes go through the crosswalk and are
summed for merged municipalities.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.db import transaction

from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    check_rejections,
    register,
)
from opendata.connectors.statbel.stats import municipality_resolver, parcels_of, statistics_upsert
from opendata.connectors.statbel.tables import (
    AGGREGATE,
    NIS5,
    cells,
    nis_code,
    number,
    read_table,
    year_in_name,
)
from opendata.models import StatisticalSector

MUNICIPALITY_CODE = ("cd_refnis", "cd_munty_refnis", "nis code", "niscode", "nis_code", "refnis")
SECTOR_CODE = ("cd_sector", "cd_stat_sector")
COUNT = ("total", "ms_population", "population", "totaal", "ms_tot_population")
YEAR = ("cd_year", "year", "jaar")
AREA_HA = ("ms_area_ha", "oppervlakte in hm²", "oppervlakkte in hm²", "oppervlakte in hm2", "area_ha")


def sum_or_unknown(values: list[float | None]) -> float | None:
    """The sum, unknown when any part is unknown (a suppressed part is not zero)."""
    return None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)


@register
class StatbelPopulationConnector(Connector):
    name = "statbel-population"
    title = "Population by municipality and statistical sector (Statbel)"
    url = (
        "https://statbel.fgov.be/sites/default/files/files/opendata/bevolking%20naar%20woonplaats%2C%20"
        "nationaliteit%20burgelijke%20staat%20%2C%20leeftijd%20en%20geslacht/TF_SOC_POP_STRUCT_{year}.zip"
    )
    credit = "Statbel (Directorate-general Statistics - Statistics Belgium)"
    schedule = ("0", "5", "*", "1", "7")  # 1 July: Statbel publishes the 1 January figures in spring
    suffix = ".zip"

    def live_url(self, options: dict[str, Any]) -> str | None:
        return str(self.url).format(year=options.get("year") or datetime.date.today().year)

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        table = read_table(path)
        sector_column = table.index(*SECTOR_CODE, required=False)
        count_column = table.column(*COUNT)
        year_column = table.index(*YEAR, required=False)
        # The year: given, or in the file name, or in the zip member's name (a live download is renamed).
        file_year = int(ctx.options.get("year") or year_in_name(path.name) or year_in_name(table.name) or 0)
        if year_column is None and not file_year:
            raise SourceError(
                f"{table.name} has no year column and no year in its name; give it with --option year=YYYY."
            )
        if sector_column is not None:
            return self._sectors(table, sector_column, count_column, year_column, file_year)
        code_column = table.column(*MUNICIPALITY_CODE)
        resolve = municipality_resolver()
        rejections: list[Rejection] = []
        parts: dict[tuple[int, int], list[float | None]] = defaultdict(list)
        aggregates = 0
        for line, row in enumerate(table.rows, start=table.first_line):
            code = nis_code(cells(row, code_column))
            if not NIS5.match(code):
                rejections.append(Rejection(line, f"NIS code {code!r} does not have 5 digits"))
                continue
            if AGGREGATE.match(code):
                aggregates += 1  # country, region, province or arrondissement
                continue
            try:
                count = number(cells(row, count_column))
                year = (
                    int(number(cells(row, year_column)) or file_year)
                    if year_column is not None
                    else file_year
                )
            except ValueError:
                rejections.append(Rejection(line, f"municipality {code}: the population is not a number"))
                continue
            municipality_id = resolve(code)
            if municipality_id is None:
                rejections.append(
                    Rejection(line, f"municipality {code} is unknown (load municipalities first)")
                )
                continue
            parts[(municipality_id, year)].append(count)
        rows_read = len(table.rows)
        check_rejections(rows_read - aggregates, rejections, what="municipality rows")
        if not parts:
            raise SourceError(f"{table.name} holds no municipality figures. Nothing was loaded.")
        rows = [(mid, year, _round(sum_or_unknown(values))) for (mid, year), values in sorted(parts.items())]
        years = sorted({year for _, year in parts})
        with transaction.atomic():
            counts = statistics_upsert(
                table="opendata_municipalitystatistic",
                key="municipality_id",
                part="population",
                columns=["population"],
                rows=rows,
                source=self.name,
                vintage=", ".join(map(str, years)),
            )
        result = counts.as_counts("municipality_statistics")
        result["aggregate_rows_skipped"] = aggregates
        return LoadResult(
            rows_read=rows_read,
            counts=result,
            rejections=rejections,
            vintage=", ".join(map(str, years)),
            touched_parcels=parcels_of("municipality_id", counts.touched_keys),
        )

    def _sectors(
        self, table: Any, sector_column: int, count_column: int, year_column: int | None, file_year: int
    ) -> LoadResult:
        area_column = table.index(*AREA_HA, required=False)
        sectors = dict(StatisticalSector.objects.values_list("code", "id"))
        rejections: list[Rejection] = []
        parts: dict[tuple[int, int], list[float | None]] = defaultdict(list)
        areas: dict[tuple[int, int], float | None] = {}
        for line, row in enumerate(table.rows, start=table.first_line):
            code = cells(row, sector_column).strip().upper()
            sector_id = sectors.get(code)
            if sector_id is None:
                rejections.append(Rejection(line, f"sector {code!r} is unknown (load statbel-sectors first)"))
                continue
            try:
                count = number(cells(row, count_column))
                area = number(cells(row, area_column)) if area_column is not None else None
                year = (
                    int(number(cells(row, year_column)) or file_year)
                    if year_column is not None
                    else file_year
                )
            except ValueError:
                rejections.append(Rejection(line, f"sector {code}: the population or area is not a number"))
                continue
            parts[(sector_id, year)].append(count)
            areas[(sector_id, year)] = None if area is None else round(area / 100, 4)
        rows_read = len(table.rows)
        check_rejections(rows_read, rejections, what="sector rows")
        if not parts:
            raise SourceError(f"{table.name} holds no sector figures. Nothing was loaded.")
        rows = [
            (sid, year, _round(sum_or_unknown(values)), areas[(sid, year)])
            for (sid, year), values in sorted(parts.items())
        ]
        years = sorted({year for _, year in parts})
        with transaction.atomic():
            counts = statistics_upsert(
                table="opendata_sectorstatistic",
                key="sector_id",
                part="population",
                columns=["population", "area_km2"],
                rows=rows,
                source=self.name,
                vintage=", ".join(map(str, years)),
            )
        return LoadResult(
            rows_read=rows_read,
            counts=counts.as_counts("sector_statistics"),
            rejections=rejections,
            vintage=", ".join(map(str, years)),
            touched_parcels=parcels_of("sector_id", counts.touched_keys),
        )


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)
