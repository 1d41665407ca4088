"""`import_sales`: canonical sales CSV -> valuation_sale, against real PostGIS (no mocks)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from pyproj import Transformer

from opendata.models import Parcel
from valuation.models import Sale
from valuation.sale_rows import validate_sale_rows
from valuation.sales_import import SalesImportError, SalesImportResult, sales_import

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sales"
TO_LAMBERT72 = Transformer.from_crs("EPSG:4326", "EPSG:31370", always_xy=True)
HEADER = "sale_id,sale_date,price_eur,latitude,longitude,capakey"

pytestmark = pytest.mark.django_db


def run(path: Path, source: str = "test") -> SalesImportResult:
    return sales_import(path=path, source=source)


def reasons(result: SalesImportResult) -> dict[int, str]:
    return {rejection.line: rejection.reason for rejection in result.rejections}


def write(tmp_path: Path, text: str, name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# Good and bad rows in one file.


def test_good_rows_are_loaded_with_their_values() -> None:
    result = run(FIXTURES / "good_and_bad.csv")

    assert (result.read, result.inserted, result.updated, result.unchanged) == (15, 3, 0, 0)
    assert set(Sale.objects.filter(source="test").values_list("external_id", flat=True)) == {
        "B-001",
        "B-002",
        "B-012",
    }
    gent = Sale.objects.get(source="test", external_id="B-002")
    assert gent.sale_date == date(2022, 11, 2)
    assert gent.price_eur == Decimal("219500.50")
    assert gent.property_type == "apartment"
    assert (gent.living_area_m2, gent.land_area_m2, gent.epc_kwh_m2) == (82.0, None, 120.0)
    assert (gent.rooms, gent.bedrooms, gent.year_built) == (3, 2, 2004)
    assert gent.address == "Korenmarkt 5, 9000 Gent"
    assert gent.parcel is None
    liege = Sale.objects.get(source="test", external_id="B-012")
    assert (liege.property_type, liege.address, liege.living_area_m2, liege.rooms) == (
        "other",
        "",
        None,
        None,
    )


def test_points_are_stored_in_lambert72() -> None:
    run(FIXTURES / "good_and_bad.csv")

    point = Sale.objects.get(source="test", external_id="B-001").point
    x, y = TO_LAMBERT72.transform(4.3517, 50.8466)
    assert point.srid == 31370
    assert abs(point.x - x) < 1
    assert abs(point.y - y) < 1
    assert (140_000 < point.x < 160_000, 160_000 < point.y < 180_000) == (True, True)  # Brussels


def test_each_bad_row_is_rejected_with_its_line_and_reason() -> None:
    result = run(FIXTURES / "good_and_bad.csv")

    got = reasons(result)
    assert got.pop(12).startswith("capakey 'not-a-key' is not a CaPaKey: it must start with the 5-digit")
    assert got == {
        4: "price_eur '-5' must be a number greater than 0",
        5: "sale_date '2023-02-30' is not a date that exists",
        6: "latitude '95' must be a number from -90 to 90",
        7: "latitude/longitude '0, 0' is not a real location (missing coordinates?)",
        8: "living_area_m2 'abc' must be a number of at least 1 (leave it empty when unknown)",
        9: "land_area_m2 '-20' must be a number of at least 0",
        10: f"year_built '900' must be a whole number from 1000 to {timezone.localdate().year + 5}",
        11: "property_type 'castle' must be one of apartment, house, other or empty",
        13: "sale_id 'B-001' already appears on line 2 (the first one is kept)",
        15: "sale_date '15/03/2023' must be a date written YYYY-MM-DD",
        16: "has 5 fields where the header has 14",
    }
    assert str(result.rejections[0]) == "line 4: price_eur '-5' must be a number greater than 0"
    assert result.rejected == 12


def test_the_first_of_two_rows_with_the_same_sale_id_is_kept() -> None:
    run(FIXTURES / "good_and_bad.csv")

    kept = Sale.objects.get(source="test", external_id="B-001")
    assert (kept.sale_date, kept.price_eur) == (date(2023, 3, 15), Decimal("325000.00"))


def test_a_row_names_every_bad_column() -> None:
    valid, rejections = validate_sale_rows(
        [{"sale_id": "X", "sale_date": "2023-13-01", "price_eur": "12,5", "latitude": "", "longitude": "4"}],
        first_line=7,
    )
    assert len(valid) == 0
    assert str(rejections[0]) == (
        "line 7: sale_date '2023-13-01' is not a date that exists; "
        "price_eur '12,5' must be a number greater than 0 (use a dot for decimals); "
        "latitude is empty; it is required"
    )


def test_validation_takes_the_apis_dicts_too() -> None:
    valid, rejections = validate_sale_rows(
        [
            {
                "sale_id": "A",
                "sale_date": "2024-02-29",
                "price_eur": 310000,
                "latitude": 50.5,
                "longitude": 4.1,
            },
            {"sale_id": "B", "sale_date": "2024-02-29", "price_eur": 0, "latitude": 50.5, "longitude": 4.1},
        ]
    )
    assert [str(r) for r in rejections] == ["line 2: price_eur '0' must be a number greater than 0"]
    assert list(valid.rows()) == [
        (
            1,
            "A",
            date(2024, 2, 29),
            310000.0,
            "house",
            None,
            None,
            None,
            None,
            None,
            None,
            4.1,
            50.5,
            None,
            "",
        )
    ]


# Re-importing.


def test_reimporting_the_same_file_changes_nothing() -> None:
    run(FIXTURES / "good_and_bad.csv")
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    Sale.objects.filter(source="test").update(imported_at=long_ago)
    before = _row_versions()

    result = run(FIXTURES / "good_and_bad.csv")

    assert (result.read, result.inserted, result.updated, result.unchanged, result.rejected) == (
        15,
        0,
        0,
        3,
        12,
    )
    assert _row_versions() == before  # no row rewritten: same physical row versions
    assert set(Sale.objects.filter(source="test").values_list("imported_at", flat=True)) == {long_ago}


def test_a_changed_price_updates_that_row_only(tmp_path: Path) -> None:
    run(FIXTURES / "good_and_bad.csv")
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    Sale.objects.filter(source="test").update(imported_at=long_ago)
    changed = (
        (FIXTURES / "good_and_bad.csv")
        .read_text()
        .replace("B-002,2022-11-02,219500.50", "B-002,2022-11-02,224000")
    )

    result = run(write(tmp_path, changed))

    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    sales = {s.external_id: s for s in Sale.objects.filter(source="test")}
    assert sales["B-002"].price_eur == Decimal("224000.00")
    assert sales["B-002"].imported_at > long_ago
    assert sales["B-001"].imported_at == sales["B-012"].imported_at == long_ago


def test_sources_keep_their_own_sale_ids() -> None:
    run(FIXTURES / "good_and_bad.csv", source="partner-a")
    result = run(FIXTURES / "good_and_bad.csv", source="partner_b")

    assert result.inserted == 3
    assert Sale.objects.filter(external_id="B-001").count() == 2


def _row_versions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id, ctid::text FROM valuation_sale WHERE source = 'test'")
        return dict(cursor.fetchall())


# Layouts of the file.


def test_columns_in_another_order_and_unknown_columns_are_fine() -> None:
    result = run(FIXTURES / "reordered_extra_columns.csv")

    assert (result.inserted, result.rejected) == (2, 0)
    leuven = Sale.objects.get(source="test", external_id="R-1")
    assert (leuven.price_eur, leuven.living_area_m2, leuven.address) == (
        Decimal("410000.00"),
        160.0,
        "Grote Markt 9, 3000 Leuven",
    )
    x, y = TO_LAMBERT72.transform(4.7005, 50.8798)
    assert leuven.point.distance(leuven.point.__class__(x, y, srid=31370)) < 1


def test_a_byte_order_mark_and_windows_line_ends_are_fine() -> None:
    result = run(FIXTURES / "bom_crlf.csv")

    assert (result.read, result.inserted, result.rejected) == (2, 2, 0)
    assert Sale.objects.get(source="test", external_id="BOM-1").price_eur == Decimal("199000.00")


def test_blank_lines_are_skipped_and_line_numbers_stay_the_files(tmp_path: Path) -> None:
    text = (
        f"{HEADER}\n"
        "K-1,2023-01-01,1,50.8,4.3,\n"
        "\n"
        "K-2,2023-01-01,-1,50.8,4.3,\n"
        '"K-3\nsecond line",2023-01-01,-1,50.8,4.3,\n'
    )
    result = run(write(tmp_path, text))

    assert (result.read, result.inserted) == (3, 1)
    assert sorted(reasons(result)) == [4, 5]


# Files refused as a whole: nothing written.


def test_a_wrong_header_is_refused_naming_the_missing_columns() -> None:
    before = Sale.objects.count()

    with pytest.raises(SalesImportError) as refused:
        run(FIXTURES / "wrong_header.csv")

    assert "lacks the required columns sale_date, price_eur" in str(refused.value)
    assert Sale.objects.count() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (
            "sale_id,sale_date,price_eur,latitude,longitude\nL-1,2023-01-01,1,50.8,4.3,Liège\n".encode(
                "latin-1"
            ),
            "is not UTF-8",
        ),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "is a ZIP or Excel (.xlsx) file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a CSV text file"),
        (b"sale_id;sale_date;price_eur;latitude;longitude\n1;2023-01-01;1;50.8;4.3\n", "separated by ';'"),
    ],
    ids=["empty", "blank-lines", "latin-1", "xlsx", "png", "semicolons"],
)
def test_a_file_that_is_not_a_sales_csv_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(content)
    before = Sale.objects.count()

    with pytest.raises(SalesImportError, match=re.escape(message)):
        run(path)
    assert Sale.objects.count() == before


def test_a_bad_byte_late_in_the_file_rolls_everything_back(tmp_path: Path) -> None:
    rows = "".join(f"N-{i},2023-01-01,100000,50.8,4.3,\n" for i in range(400))  # 12 kB, past the first read
    path = tmp_path / "sales.csv"
    path.write_bytes(
        f"sale_id,sale_date,price_eur,latitude,longitude,address\n{rows}".encode() + b"N,,,,,Li\xe8ge\n"
    )
    before = Sale.objects.count()

    upserted: list[int] = []

    with pytest.raises(SalesImportError, match="line 402 holds the byte 0xe8"):
        sales_import(
            path=path, source="test", batch_rows=50, on_progress=lambda done, _: upserted.append(done)
        )
    assert max(upserted) >= 50  # batches were written before the decoder met the bad byte
    assert Sale.objects.count() == before


@pytest.mark.parametrize("source", ["", "a b", "x" * 51, "dvf/lyon"])
def test_the_source_name_is_checked(source: str) -> None:
    with pytest.raises(SalesImportError, match="must be 1 to 50 letters"):
        run(FIXTURES / "bom_crlf.csv", source=source)


# Parcels.


def _square(x: float, y: float, half: float) -> MultiPolygon:
    ring = (
        (x - half, y - half),
        (x + half, y - half),
        (x + half, y + half),
        (x - half, y + half),
        (x - half, y - half),
    )
    return MultiPolygon(Polygon(ring), srid=31370)


def test_sales_are_linked_to_the_parcel_of_their_capakey_or_their_point(tmp_path: Path) -> None:
    x, y = TO_LAMBERT72.transform(4.3517, 50.8466)
    around = Parcel.objects.create(
        capakey="21004A0001/00A000", geometry=_square(x, y, 20), area_m2=1600, source="test"
    )
    elsewhere = Parcel.objects.create(
        capakey="21004A0002/00_000", geometry=_square(x + 1000, y, 20), area_m2=1600, source="test"
    )
    text = (
        f"{HEADER}\n"
        "P-1,2023-01-01,300000,50.8466,4.3517,\n"  # inside `around`, no key
        "P-2,2023-01-01,300000,50.8466,4.3517,21004a 2/00000\n"  # key of `elsewhere` wins, spelt loosely
        "P-3,2023-01-01,300000,50.8466,4.3517,21004A0099/00_000\n"  # key not loaded: the point decides
        "P-4,2023-01-01,300000,50.9,4.5,\n"  # no parcel there
    )
    result = run(write(tmp_path, text))

    assert result.inserted == 4
    linked = dict(Sale.objects.filter(source="test").values_list("external_id", "parcel_id"))
    assert linked == {"P-1": around.pk, "P-2": elsewhere.pk, "P-3": around.pk, "P-4": None}


def test_a_point_in_two_parcels_goes_to_the_lowest_id_every_time(tmp_path: Path) -> None:
    x, y = TO_LAMBERT72.transform(4.3517, 50.8466)
    first = Parcel.objects.create(capakey="21004A0003/00_000", geometry=_square(x - 10, y, 20), area_m2=1600)
    Parcel.objects.create(capakey="21004A0004/00_000", geometry=_square(x + 10, y, 20), area_m2=1600)
    path = write(tmp_path, f"{HEADER}\nE-1,2023-01-01,300000,50.8466,4.3517,\n")

    run(path)
    again = run(path)

    assert Sale.objects.get(source="test", external_id="E-1").parcel_id == first.pk
    assert again.unchanged == 1


# Real files.


def test_a_real_dvf_file_converted_to_the_canonical_format(shared_data: Path, tmp_path: Path) -> None:
    dvf = pd.read_csv(
        shared_data / "sales" / "dvf_lyon_apartments_2014_2018" / "2014.csv", nrows=300, dtype=str
    )
    canonical = pd.DataFrame(
        {
            "sale_id": "dvf-2014-" + dvf.index.astype(str),
            "sale_date": dvf["date_mutation"],
            "price_eur": dvf["valeur_fonciere"],
            "living_area_m2": dvf["surface_reelle_bati"],
            "latitude": dvf["latitude"],
            "longitude": dvf["longitude"],
            "property_type": "apartment",
        }
    )
    path = tmp_path / "dvf.csv"
    canonical.to_csv(path, index=False)
    missing = dvf.index[dvf["latitude"].isna() | dvf["longitude"].isna()]

    result = run(path, source="dvf-lyon")

    assert result.read == 300
    assert sorted(reasons(result)) == sorted(i + 2 for i in missing)  # header is line 1
    assert all("is empty; it is required" in reason for reason in reasons(result).values())
    assert result.inserted == 300 - len(missing) == Sale.objects.filter(source="dvf-lyon").count()
    first = Sale.objects.get(source="dvf-lyon", external_id="dvf-2014-0")
    assert first.price_eur == Decimal(dvf.loc[0, "valeur_fonciere"]).quantize(Decimal("0.01"))
    x, y = TO_LAMBERT72.transform(float(dvf.loc[0, "longitude"]), float(dvf.loc[0, "latitude"]))
    assert abs(first.point.x - x) < 1
    assert abs(first.point.y - y) < 1
    assert first.point.y < -300_000  # Lyon, far south of Belgium's Lambert 72 frame


# The command.


def test_the_command_reports_rejections_and_counts() -> None:
    out = io.StringIO()
    call_command(
        "import_sales",
        str(FIXTURES / "good_and_bad.csv"),
        "--source",
        "cmd",
        stdout=out,
        stderr=io.StringIO(),
    )

    lines = out.getvalue().splitlines()
    assert "rejected line 4: price_eur '-5' must be a number greater than 0" in lines
    assert sum(line.startswith("rejected line ") for line in lines) == 12
    assert lines[-1].startswith("cmd: read 15, inserted 3, updated 0, unchanged 0, rejected 12 in ")
    assert Sale.objects.filter(source="cmd").count() == 3


def test_the_command_uses_the_default_source() -> None:
    call_command("import_sales", str(FIXTURES / "bom_crlf.csv"), stdout=io.StringIO(), stderr=io.StringIO())

    assert Sale.objects.filter(source="import").count() == 2


def test_the_command_fails_readably_on_a_refused_file() -> None:
    with pytest.raises(CommandError, match="lacks the required columns sale_date, price_eur"):
        call_command("import_sales", str(FIXTURES / "wrong_header.csv"), stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"cannot read .*missing\.csv: No such file"):
        call_command("import_sales", str(FIXTURES / "missing.csv"), stdout=io.StringIO())


def test_the_command_fails_when_every_row_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nZ-1,2023-01-01,-1,50.8,4.3,\n")

    with pytest.raises(CommandError, match="all 1 rows were rejected"):
        call_command("import_sales", str(path), stdout=io.StringIO(), stderr=io.StringIO())


def test_the_command_exits_non_zero_without_a_traceback() -> None:
    db = settings.DATABASES["default"]  # the test database; a refused file never reaches it anyway
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    done = subprocess.run(
        [sys.executable, "manage.py", "import_sales", str(FIXTURES / "wrong_header.csv")],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    assert "CommandError: the header lacks the required columns sale_date, price_eur" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.django_db
def test_every_import_is_recorded_as_a_run_of_its_source(tmp_path) -> None:
    from opendata.models import RunStatus, SourceRefreshRun

    path = tmp_path / "sales.csv"
    path.write_text(
        "sale_id,sale_date,price_eur,latitude,longitude\n"
        "r1,2024-03-15,325000,50.8466,4.3517\n"
        "r2,2024-03-16,-5,50.8466,4.3517\n",
        encoding="utf-8",
    )
    call_command("import_sales", str(path), "--source", "partner-a", stdout=io.StringIO(), verbosity=0)
    run = SourceRefreshRun.objects.get(source="sales:partner-a")
    assert run.status == RunStatus.SUCCEEDED
    assert (run.rows_read, run.rows_loaded, run.rows_rejected) == (2, 1, 1)
    assert run.rejections[0]["row"] == 3 and "price_eur" in run.rejections[0]["reason"]
    assert len(run.checksum) == 64 and run.finished_at is not None

    path.write_text("sale_id,price_eur\nx,1\n", encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("import_sales", str(path), "--source", "partner-a", stdout=io.StringIO(), verbosity=0)
    failed = SourceRefreshRun.objects.filter(source="sales:partner-a").order_by("-started_at").first()
    assert failed is not None and failed.status == RunStatus.FAILED and "sale_date" in failed.error
