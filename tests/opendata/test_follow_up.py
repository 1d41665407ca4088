"""After a successful refresh: the touched parcels' features are computed and retraining is queued."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from config.celery import app
from features.models import ParcelFeatures
from opendata.models import Parcel, RunStatus, SourceRefreshRun

pytestmark = pytest.mark.django_db(transaction=True)


def _queued(queue: str) -> int:
    """Messages waiting in a queue (the Redis transport keeps each queue as a list of that name)."""
    with app.connection_for_write() as conn:
        return int(conn.default_channel.client.llen(queue))  # type: ignore[attr-defined]


def _purge(queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(queue)  # type: ignore[attr-defined]


def test_refresh_computes_the_touched_features_then_queues_retraining(shared_data: Path) -> None:
    _purge("training")
    out = io.StringIO()
    call_command(
        "refresh_source",
        "grb",
        "--file",
        str(shared_data / "belgium/grb/adp_leuven_321_parcels.geojson"),
        stdout=out,
    )
    run = SourceRefreshRun.objects.filter(source="grb").latest("started_at")
    assert run.status == RunStatus.SUCCEEDED
    assert run.counts["features_recomputed"] == 321
    assert ParcelFeatures.objects.filter(parcel__in=Parcel.objects.filter(source="grb")).count() == 321
    some = ParcelFeatures.objects.filter(parcel__source="grb").first()
    assert some is not None and some.parcel_area_m2 == pytest.approx(some.parcel.area_m2)
    assert run.counts["retraining_queued"] == 1
    assert _queued("training") == 1
    _purge("training")

    # The same file again: skipped, nothing recomputed, no retraining.
    call_command(
        "refresh_source",
        "grb",
        "--file",
        str(shared_data / "belgium/grb/adp_leuven_321_parcels.geojson"),
        stdout=out,
    )
    assert SourceRefreshRun.objects.filter(source="grb").latest("started_at").status == RunStatus.SKIPPED
    assert _queued("training") == 0
