"""Statbel fiscal income (net taxable income from the personal income tax), by municipality and sector.

Sources: ``https://statbel.fgov.be/sites/default/files/files/opendata/arbeid%20per%20sector/
TF_PSNL_INC_TAX_SECTOR.xlsx`` (sectors) and ``TF_PSNL_INC_TAX_MUNTY`` (municipalities); xlsx, older
editions a ``|``-separated txt in a zip. Licence: Statbel open data licence (free, commercial use allowed;
cite "Statbel" and the date). Cadence: yearly (income year ``CD_YEAR``). No geometry.

Columns by name, case-insensitive: ``CD_YEAR``, ``CD_MUNTY_REFNIS`` (or ``CD_REFNIS``), ``CD_SECTOR``
(sector file), ``MS_NBR_NON_ZERO_INC`` (returns), ``MS_TOT_NET_TAXABLE_INC``, ``MS_AVG_TOT_NET_TAXABLE_INC``,
``MS_MEDIAN_NET_TAXABLE_INC``, ``MS_TOT_TAXES``, ``MS_TOT_MUNICIP_TAXES``, ``MS_TOT_RESIDENTS``; the
sector file may add percentiles (``MS_P10``/``MS_P_10``..., ``MS_P90``: [verify] against the live file).
Suppressed cells (``C``, ``*``) are unknown (NULL), never zero.

Derived per municipality and year:

* ``municipal_tax_rate_pct`` = MS_TOT_MUNICIP_TAXES / MS_TOT_TAXES x 100 (unknown when MS_TOT_TAXES is
  0 or unknown): there is no official open file of the municipal surcharge rates;
* ``prosperity_index`` = (MS_TOT_NET_TAXABLE_INC / MS_TOT_RESIDENTS) relative to the same ratio over all
  municipalities of the file (100 = Belgium when the file covers Belgium).

Municipalities that merged on 1 January 2025 (files on the old codes) are summed: totals add up, the
average is recomputed as total / returns, the median of a merged municipality is unknown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
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
from opendata.connectors.statbel.population import sum_or_unknown
from opendata.connectors.statbel.stats import municipality_resolver, parcels_of, statistics_upsert
from opendata.connectors.statbel.tables import AGGREGATE, NIS5, Table, cells, nis_code, number, read_table

YEAR = ("cd_year",)
MUNICIPALITY = ("cd_munty_refnis", "cd_refnis")
SECTOR = ("cd_sector", "cd_stat_sector")
RETURNS = ("ms_nbr_non_zero_inc",)
TOTAL = ("ms_tot_net_taxable_inc",)
AVERAGE = ("ms_avg_tot_net_taxable_inc",)
MEDIAN = ("ms_median_net_taxable_inc",)
TAXES = ("ms_tot_taxes",)
MUNICIPAL_TAXES = ("ms_tot_municip_taxes",)
RESIDENTS = ("ms_tot_residents",)
PERCENTILES = {
    p: (f"ms_p{p}", f"ms_p_{p}", f"ms_perc_{p}", f"ms_p{p}_net_taxable_inc") for p in ("10", "25", "75", "90")
}
MUNICIPALITY_FIGURES = [
    "tax_returns",
    "total_net_taxable_income_eur",
    "average_income_eur",
    "median_income_eur",
    "municipal_tax_rate_pct",
    "prosperity_index",
]
SECTOR_FIGURES = [
    "tax_returns",
    "total_net_taxable_income_eur",
    "average_income_eur",
    "median_income_eur",
    "income_p10_eur",
    "income_p25_eur",
    "income_p75_eur",
    "income_p90_eur",
]


@dataclass
class Figures:
    returns: float | None
    total: float | None
    average: float | None
    median: float | None
    taxes: float | None = None
    municipal_taxes: float | None = None
    residents: float | None = None


def tax_rate_pct(municipal_taxes: float | None, taxes: float | None) -> float | None:
    if municipal_taxes is None or not taxes:
        return None
    return round(municipal_taxes / taxes * 100, 3)


@register
class StatbelIncomeConnector(Connector):
    name = "statbel-income"
    title = "Fiscal income by municipality and statistical sector (Statbel)"
    url = (
        "https://statbel.fgov.be/sites/default/files/files/opendata/arbeid%20per%20sector/"
        "TF_PSNL_INC_TAX_SECTOR.xlsx"
    )
    credit = "Statbel (Directorate-general Statistics - Statistics Belgium), fiscal income statistics"
    schedule = ("30", "5", "*", "1", "12")  # 1 December: Statbel publishes a new income year in autumn
    suffix = ".xlsx"

    def live_url(self, options: dict[str, Any]) -> str | None:
        if options.get("level") == "municipality":
            return str(self.url).replace("TF_PSNL_INC_TAX_SECTOR", "TF_PSNL_INC_TAX_MUNTY")
        return self.url

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        table = read_table(path)
        if table.index(*SECTOR, required=False) is not None:
            return self._sectors(table)
        return self._municipalities(table)

    def _read(self, table: Table, *, municipal: bool) -> dict[str, int | None]:
        columns: dict[str, int | None] = {
            "year": table.column(*YEAR),
            "returns": table.column(*RETURNS),
            "total": table.column(*TOTAL),
            "average": table.column(*AVERAGE),
            "median": table.column(*MEDIAN),
            "taxes": table.index(*TAXES, required=municipal),
            "municipal_taxes": table.index(*MUNICIPAL_TAXES, required=municipal),
            "residents": table.index(*RESIDENTS, required=municipal),
        }
        return columns

    def _municipalities(self, table: Table) -> LoadResult:
        columns = self._read(table, municipal=True)
        code_column = table.column(*MUNICIPALITY)
        resolve = municipality_resolver()
        rejections: list[Rejection] = []
        groups: dict[tuple[int, int], list[Figures]] = defaultdict(list)
        national: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])  # year -> [income, residents]
        aggregates = 0
        for line, row in enumerate(table.rows, start=table.first_line):
            code = nis_code(cells(row, code_column))
            if not NIS5.match(code):
                rejections.append(Rejection(line, f"NIS code {code!r} does not have 5 digits"))
                continue
            if AGGREGATE.match(code):
                aggregates += 1
                continue
            try:
                year = int(number(cells(row, columns["year"])) or 0)
                figures = Figures(**{k: number(cells(row, i)) for k, i in columns.items() if k != "year"})
            except ValueError:
                rejections.append(Rejection(line, f"municipality {code}: a figure is not a number, C or *"))
                continue
            if year and figures.total is not None and figures.residents:  # every municipality of the file
                national[year][0] += figures.total
                national[year][1] += figures.residents
            municipality_id = resolve(code)
            if municipality_id is None or not year:
                why = "has no year" if not year else "is unknown (load municipalities first)"
                rejections.append(Rejection(line, f"municipality {code} {why}"))
                continue
            groups[(municipality_id, year)].append(figures)
        check_rejections(len(table.rows) - aggregates, rejections, what="municipality rows")
        if not groups:
            raise SourceError(f"{table.name} holds no municipality figures. Nothing was loaded.")
        rows = []
        for (municipality_id, year), parts in sorted(groups.items()):
            merged = _merge(parts)
            income, residents = national[year]
            per_resident = (
                merged.total / merged.residents if merged.total is not None and merged.residents else None
            )
            prosperity = (
                round(per_resident / (income / residents) * 100, 2)
                if per_resident is not None and income and residents
                else None
            )
            rows.append(
                (
                    municipality_id,
                    year,
                    _int(merged.returns),
                    merged.total,
                    merged.average,
                    merged.median,
                    tax_rate_pct(merged.municipal_taxes, merged.taxes),
                    prosperity,
                )
            )
        return self._upsert(
            "municipality", rows, MUNICIPALITY_FIGURES, len(table.rows), rejections, aggregates
        )

    def _sectors(self, table: Table) -> LoadResult:
        from opendata.models import StatisticalSector

        columns = self._read(table, municipal=False)
        sector_column = table.column(*SECTOR)
        percentile_columns = {p: table.index(*names, required=False) for p, names in PERCENTILES.items()}
        sectors = dict(StatisticalSector.objects.values_list("code", "id"))
        rejections: list[Rejection] = []
        rows: dict[tuple[int, int], tuple[Any, ...]] = {}
        for line, row in enumerate(table.rows, start=table.first_line):
            code = cells(row, sector_column).strip().upper()
            sector_id = sectors.get(code)
            if sector_id is None:
                rejections.append(Rejection(line, f"sector {code!r} is unknown (load statbel-sectors first)"))
                continue
            try:
                year = int(number(cells(row, columns["year"])) or 0)
                figures = [number(cells(row, columns[k])) for k in ("returns", "total", "average", "median")]
                percentiles = [number(cells(row, percentile_columns[p])) for p in PERCENTILES]
            except ValueError:
                rejections.append(Rejection(line, f"sector {code}: a figure is not a number, C or *"))
                continue
            if not year:
                rejections.append(Rejection(line, f"sector {code} has no year"))
                continue
            rows[(sector_id, year)] = (sector_id, year, _int(figures[0]), *figures[1:], *percentiles)
        check_rejections(len(table.rows), rejections, what="sector rows")
        if not rows:
            raise SourceError(f"{table.name} holds no sector figures. Nothing was loaded.")
        return self._upsert(
            "sector", [rows[k] for k in sorted(rows)], SECTOR_FIGURES, len(table.rows), rejections, 0
        )

    def _upsert(
        self,
        level: str,
        rows: list[tuple[Any, ...]],
        figures: list[str],
        rows_read: int,
        rejections: list[Rejection],
        aggregates: int,
    ) -> LoadResult:
        years = ", ".join(str(y) for y in sorted({row[1] for row in rows}))
        key = f"{level}_id"
        with transaction.atomic():
            counts = statistics_upsert(
                table=f"opendata_{level}statistic",
                key=key,
                part="income",
                columns=figures,
                rows=rows,
                source=self.name,
                vintage=years,
            )
        result = counts.as_counts(f"{level}_statistics")
        if aggregates:
            result["aggregate_rows_skipped"] = aggregates
        return LoadResult(
            rows_read=rows_read,
            counts=result,
            rejections=rejections,
            vintage=years,
            touched_parcels=parcels_of(key, counts.touched_keys),
        )


def _merge(parts: list[Figures]) -> Figures:
    """One municipality's figures from the rows of its former municipalities (one row: as given)."""
    if len(parts) == 1:
        return parts[0]
    returns = sum_or_unknown([p.returns for p in parts])
    total = sum_or_unknown([p.total for p in parts])
    return Figures(
        returns=returns,
        total=total,
        average=round(total / returns, 2) if total is not None and returns else None,
        median=None,  # medians do not add up
        taxes=sum_or_unknown([p.taxes for p in parts]),
        municipal_taxes=sum_or_unknown([p.municipal_taxes for p in parts]),
        residents=sum_or_unknown([p.residents for p in parts]),
    )


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)
