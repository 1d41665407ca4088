"""Statbel sectors, population and income: the real tables, the committed fixtures, failures."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from opendata.connectors.base import SourceError
from opendata.models import (
    Municipality,
    MunicipalityStatistic,
    RunStatus,
    SectorStatistic,
    SourceRefreshRun,
    StatisticalSector,
)
from opendata.refresh import refresh
from tests.opendata.test_municipalities import SHAPEFILE_2025, TOPOJSON_581, load_tiny_municipalities

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statbel"
SECTORS = FIXTURES / "sh_statbel_statistical_sectors_3812_20250101.geojson.zip"
INCOME_MUNTY = FIXTURES / "TF_PSNL_INC_TAX_MUNTY_2022.txt"
INCOME_SECTOR = FIXTURES / "TF_PSNL_INC_TAX_SECTOR_2022.txt"
POPULATION_SECTOR = FIXTURES / "OPENDATA_SECTOREN_2022.txt"


def municipal(nis: str, year: int) -> MunicipalityStatistic:
    return MunicipalityStatistic.objects.get(municipality__nis_code=nis, year=year)


def test_real_population_2020_by_municipality(shared_data: Path) -> None:
    for name in (SHAPEFILE_2025, TOPOJSON_581):
        refresh("municipalities", file=shared_data / name)
    run = refresh(
        "statbel-population", file=shared_data / "belgium/statbel/population_by_municipality_2020.csv"
    )
    assert run.status == RunStatus.SUCCEEDED and run.vintage == "2020"
    assert run.counts["aggregate_rows_skipped"] == 57  # country, 3 regions, 10 provinces, 43 arrondissements
    assert MunicipalityStatistic.objects.filter(year=2020).count() == 565
    # By hand from the CSV: "44021,Gent,131543,132384,263927"
    gent = municipal("44021", 2020)
    assert gent.population == 263927 and gent.source == "statbel-population"
    assert gent.provenance == {"population": {"source": "statbel-population", "vintage": "2020"}}
    assert municipal("44088", 2020).population == 11811 + 24756  # Melle + Merelbeke
    assert municipal("11002", 2020).population == 529247 + 10949  # Antwerpen + Borsbeek
    total = sum(
        p or 0 for p in MunicipalityStatistic.objects.filter(year=2020).values_list("population", flat=True)
    )
    assert total == 11492641  # the CSV's Belgium row


def test_real_sector_names_table(shared_data: Path) -> None:
    for name in (SHAPEFILE_2025, TOPOJSON_581):
        refresh("municipalities", file=shared_data / name)
    run = refresh("statbel-sectors", file=shared_data / "belgium/statbel/statistical_sectors_2024.csv")
    assert run.status == RunStatus.SUCCEEDED and run.rows_loaded == 20371
    kuip = StatisticalSector.objects.get(code="44021A00-")
    assert (kuip.name_nl, kuip.municipality.nis_code, kuip.geometry) == ("Kuip", "44021", None)
    # The table uses pre-2019 codes: a Nevele sector (44049) belongs to Deinze (44083) now.
    nevele = StatisticalSector.objects.filter(code__startswith="44049").first()
    assert nevele is not None and nevele.municipality.nis_code == "44083"


def test_sector_polygons_join_on_refnis_and_transform_3812(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path)
    run = refresh("statbel-sectors", file=SECTORS)
    assert run.status == RunStatus.SUCCEEDED and run.rows_loaded == 5 and run.vintage == "2025-01-01"
    nevele = StatisticalSector.objects.get(code="44049A00-")
    assert nevele.municipality.nis_code == "44083"  # cd_munty_refnis, not the code prefix
    melle = StatisticalSector.objects.get(code="44040A00-")
    assert melle.municipality.nis_code == "44088"
    kuip = StatisticalSector.objects.get(code="44021A00-")
    assert kuip.geometry is not None and kuip.geometry.srid == 31370
    x0, _, _, y1 = kuip.geometry.extent  # built as box(104600, 193700, 105100, 194200) in 31370
    assert abs(x0 - 104600) < 1 and abs(y1 - 194200) < 1  # within a metre after 3812 -> 31370
    assert abs(kuip.geometry.area - 250_000) < 100


def test_income_by_municipality_tax_rate_prosperity_suppressed_and_merged(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path)
    run = refresh("statbel-income", file=INCOME_MUNTY)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts["aggregate_rows_skipped"] == 1  # the Belgium row
    gent = municipal("44021", 2022)
    assert gent.tax_returns == 148230 and gent.median_income_eur == 24210
    assert gent.municipal_tax_rate_pct == pytest.approx(66543210 / 1034567890 * 100, abs=0.001)
    national = (321987654 + 1876543210 + 4712345678 + 243456789 + 489123456) / (
        14890 + 102851 + 265086 + 11950 + 25120
    )
    assert gent.prosperity_index == pytest.approx(4712345678 / 265086 / national * 100, abs=0.01)
    assert municipal("11001", 2022).median_income_eur is None  # "C": unknown, not 0
    merged = municipal("44088", 2022)  # Melle 44040 + Merelbeke 44043
    assert merged.tax_returns == 6120 + 12650
    assert merged.total_net_taxable_income_eur == 243456789 + 489123456
    assert merged.average_income_eur == pytest.approx((243456789 + 489123456) / (6120 + 12650), abs=0.01)
    assert merged.median_income_eur is None
    assert merged.municipal_tax_rate_pct == pytest.approx(
        (4123456 + 8234567) / (58765432 + 116543210) * 100, abs=0.001
    )

    # The re-run of the txt is skipped; the same figures as xlsx (C as text) change nothing.
    assert refresh("statbel-income", file=INCOME_MUNTY).status == RunStatus.SKIPPED
    book = Workbook()
    sheet = book.active
    for line in INCOME_MUNTY.read_text(encoding="utf-8").splitlines():
        sheet.append([_cell(v) for v in line.split("|")])
    book.save(tmp_path / "TF_PSNL_INC_TAX_MUNTY.xlsx")
    again = refresh("statbel-income", file=tmp_path / "TF_PSNL_INC_TAX_MUNTY.xlsx")
    assert again.status == RunStatus.SUCCEEDED  # 5 rows, 4 municipalities today (Melle + Merelbeke)
    assert again.counts["municipality_statistics_unchanged"] == 4, again.counts


def _cell(value: str) -> object:
    try:
        return int(value) if value.isdigit() and not value.startswith("0") else float(value)
    except ValueError:
        return value


def test_sector_income_and_population_share_rows(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path)
    refresh("statbel-sectors", file=SECTORS)
    run = refresh("statbel-income", file=INCOME_SECTOR)
    assert run.status == RunStatus.SUCCEEDED and run.rows_loaded == 5
    suppressed = SectorStatistic.objects.get(sector__code="44021A02-", year=2022)
    assert suppressed.tax_returns == 12 and suppressed.average_income_eur is None  # "*"
    assert suppressed.total_net_taxable_income_eur is None and suppressed.median_income_eur is None
    assert SectorStatistic.objects.get(sector__code="44040A00-").median_income_eur is None  # "C"

    run = refresh("statbel-population", file=POPULATION_SECTOR)
    assert run.status == RunStatus.SUCCEEDED
    kuip = SectorStatistic.objects.get(sector__code="44021A00-", year=2022)
    assert (kuip.population, kuip.area_km2, kuip.average_income_eur) == (3456, 0.25, 28614.3)
    assert set(kuip.provenance or {}) == {"income", "population"} and kuip.source == "statbel-population"


def test_population_struct_zip_sums_detail_rows_and_old_codes(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path)
    lines = ["CD_REFNIS|TX_DESCR_NL|CD_SEX|CD_AGE|MS_POPULATION"]
    lines += ["44021|Gent|M|30|1200", "44021|Gent|F|30|1300", "44021|Gent|F|31|7"]
    lines += ["44040|Melle|M|40|500", "44043|Merelbeke|F|40|800", "01000|België|M|30|99999"]
    download = tmp_path / "statbel-population.zip"  # a live download loses the file name, not the member's
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("TF_SOC_POP_STRUCT_2024.txt", "\n".join(lines) + "\n")
    run = refresh("statbel-population", file=download)
    assert run.status == RunStatus.SUCCEEDED and run.vintage == "2024"
    assert municipal("44021", 2024).population == 1200 + 1300 + 7
    assert municipal("44088", 2024).population == 500 + 800  # Melle + Merelbeke


def test_changed_population_file_upserts_and_clears(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path)
    first = tmp_path / "pop_2024.csv"
    first.write_text("CD_REFNIS;TOTAL\n44021;265000\n24062;102000\n", encoding="utf-8")
    assert refresh("statbel-population", file=first).counts["municipality_statistics_inserted"] == 2
    kept = municipal("44021", 2024).pk
    second = tmp_path / "pop_2024b.csv"
    second.write_text("CD_REFNIS;TOTAL\n44021;265100\n", encoding="utf-8")
    run = refresh("statbel-population", file=second)
    assert run.counts["municipality_statistics_updated"] == 1
    assert run.counts["municipality_statistics_deleted"] == 1  # Leuven had no other figures for 2024
    assert municipal("44021", 2024).pk == kept and municipal("44021", 2024).population == 265100


def test_missing_column_or_unknown_codes_fail_and_keep_data(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path)
    refresh("statbel-income", file=INCOME_MUNTY)
    before = sorted(
        MunicipalityStatistic.objects.values_list("municipality_id", "year", "average_income_eur")
    )

    broken = tmp_path / "TF_PSNL_INC_TAX_MUNTY_2023.txt"
    lines = INCOME_MUNTY.read_text(encoding="utf-8").replace("MS_TOT_MUNICIP_TAXES", "MS_TOT_MUNI_TAXES")
    broken.write_text(lines, encoding="utf-8")
    with pytest.raises(SourceError, match="no column MS_TOT_MUNICIP_TAXES"):
        refresh("statbel-income", file=broken)
    shutil.copy(SECTORS, tmp_path / "sectors.geojson.zip")
    unknown = tmp_path / "TF_PSNL_INC_TAX_SECTOR_2023.txt"
    unknown.write_text(INCOME_SECTOR.read_text(encoding="utf-8"), encoding="utf-8")  # no sectors loaded yet
    with pytest.raises(SourceError, match="refused as a whole"):
        refresh("statbel-income", file=unknown)

    after = sorted(MunicipalityStatistic.objects.values_list("municipality_id", "year", "average_income_eur"))
    assert after == before and Municipality.objects.count() == 5
    failed = SourceRefreshRun.objects.filter(source="statbel-income", status=RunStatus.FAILED)
    assert failed.count() == 2 and all(run.error for run in failed)
