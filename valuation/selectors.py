"""Read-only queries used by views and the API."""

from __future__ import annotations

from opendata.models import Address, Building, Parcel, RunStatus, SourceRefreshRun, StatisticalSector
from valuation.models import Sale


def data_counts() -> list[tuple[str, int]]:
    return [
        ("Parcels", Parcel.objects.count()),
        ("Buildings", Building.objects.count()),
        ("Addresses", Address.objects.count()),
        ("Statistical sectors", StatisticalSector.objects.count()),
        ("Sales", Sale.objects.count()),
    ]


def demo_run_latest() -> SourceRefreshRun | None:
    return (
        SourceRefreshRun.objects.filter(source="demo", status=RunStatus.SUCCEEDED)
        .order_by("-started_at")
        .first()
    )
