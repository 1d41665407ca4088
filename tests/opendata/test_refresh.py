"""The refresh contract: validate all, swap in one transaction, skip unchanged, keep data on failure."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

from opendata.connectors.base import (
    CONNECTORS,
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
from opendata.connectors.fetch import fetch
from opendata.copy import copy_rows
from opendata.models import LocationPoint, RunStatus, SourceRefreshRun
from opendata.refresh import refresh
from tests.servers import Quiet, http_serve

pytestmark = pytest.mark.django_db(transaction=True)


class StopsConnector(Connector):
    """A minimal connector over LocationPoint: id,name,x,y rows."""

    name = "test-stops"
    title = "Test bus stops"

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != ["id", "name", "x", "y"]:
                raise SourceError(f"Expected columns id,name,x,y; found {reader.fieldnames}.")
            rows, rejections = [], []
            for line, row in enumerate(reader, start=2):
                try:
                    x, y = float(row["x"]), float(row["y"])
                except ValueError:
                    rejections.append(Rejection(line, "x and y must be numbers"))
                    continue
                rows.append(
                    ("bus_stop", row["name"], f"SRID=31370;POINT({x} {y})", self.name, row["id"], "{}")
                )
        check_rejections(len(rows) + len(rejections), rejections)
        columns = ["kind", "name", "point", "source", "source_id", "attributes"]
        with transaction.atomic():
            stage = stage_create("location_point", columns, like="opendata_locationpoint")
            copy_rows(stage, columns, rows)
            counts = staged_swap(
                target="opendata_locationpoint",
                stage=stage,
                key=["source", "kind", "source_id"],
                columns=columns,
                scope="source = %s",
                scope_params=[self.name],
            )
        return LoadResult(
            rows_read=len(rows) + len(rejections),
            counts=counts.as_counts("stops"),
            rejections=rejections,
            vintage="2026-11",
            touched_parcels=[],
        )


@pytest.fixture
def stops_connector() -> Iterator[type[Connector]]:
    register(StopsConnector)
    yield StopsConnector
    CONNECTORS.pop(StopsConnector.name, None)


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["id,name,x,y", *rows]) + "\n", encoding="utf-8")
    return path


def test_refresh_loads_upserts_deletes_and_skips_unchanged(stops_connector, tmp_path) -> None:
    first = write(tmp_path / "a.csv", ["1,Markt,150000,170000", "2,Kerk,150100,170000", "3,Station,1,2"])
    run = refresh("test-stops", file=first)
    assert run.status == RunStatus.SUCCEEDED
    assert run.counts["stops_inserted"] == 3 and run.rows_loaded == 3
    assert run.checksum and run.duration_s is not None
    kept_id = LocationPoint.objects.get(source_id="1").pk

    again = refresh("test-stops", file=first)
    assert again.status == RunStatus.SKIPPED and again.vintage == "2026-11"

    second = write(tmp_path / "b.csv", ["1,Markt,150000,170000", "2,Kerkplein,150100,170000", "4,Nieuw,5,6"])
    run = refresh("test-stops", file=second)
    assert run.counts == {
        "stops_inserted": 1,
        "stops_updated": 1,
        "stops_deleted": 1,
        "stops_unchanged": 1,
        "parcels_touched": 0,
    }
    names = dict(LocationPoint.objects.filter(source="test-stops").values_list("source_id", "name"))
    assert names == {"1": "Markt", "2": "Kerkplein", "4": "Nieuw"}
    assert LocationPoint.objects.get(source_id="1").pk == kept_id  # unchanged rows keep their id


def test_a_bad_file_fails_the_run_and_keeps_the_data(stops_connector, tmp_path) -> None:
    refresh("test-stops", file=write(tmp_path / "a.csv", ["1,Markt,150000,170000", "2,Kerk,1,2"]))
    before = sorted(LocationPoint.objects.values_list("source_id", "name"))

    (tmp_path / "bad.csv").write_text("id;name;x;y\n1;Markt;1;2\n", encoding="utf-8")
    with pytest.raises(SourceError, match="Expected columns"):
        refresh("test-stops", file=tmp_path / "bad.csv")
    mostly_bad = write(tmp_path / "c.csv", ["1,Markt,a,b", "2,Kerk,c,d", "3,Ok,1,2"])
    with pytest.raises(SourceError, match="refused as a whole"):
        refresh("test-stops", file=mostly_bad)
    with pytest.raises(SourceError, match="File not found"):
        refresh("test-stops", file=tmp_path / "missing.csv")

    assert sorted(LocationPoint.objects.values_list("source_id", "name")) == before
    failed = SourceRefreshRun.objects.filter(source="test-stops", status=RunStatus.FAILED)
    assert failed.count() == 3
    assert all(run.error and run.finished_at for run in failed)


class _Handler(Quiet):
    body = b"id,name,x,y\n1,Markt,150000,170000\n"
    etag = '"v1"'
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.headers.get("If-None-Match", ""))
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def server() -> Iterator[str]:
    with http_serve(_Handler) as base:
        yield f"{base}/stops.csv"


def test_live_fetch_sends_conditional_request_and_skips_304(
    stops_connector, server, settings, tmp_path
) -> None:
    settings.DATA_DIR = tmp_path
    _Handler.hits.clear()
    run = refresh("test-stops", url=server)
    assert run.status == RunStatus.SUCCEEDED and run.http_etag == '"v1"'
    again = refresh("test-stops", url=server)
    assert again.status == RunStatus.SKIPPED
    assert _Handler.hits == ["", '"v1"']


def test_fetch_reports_http_errors_and_refused_connections(tmp_path) -> None:
    with pytest.raises(SourceError, match="Could not download"):
        fetch("http://127.0.0.1:9/nothing", tmp_path / "x", retries=0, timeout=(1, 1))
    assert not (tmp_path / "x").exists()
