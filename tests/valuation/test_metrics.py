"""Prometheus metrics: valuations, refresh runs, the model in use, requests and queue lengths.

Here rather than next to the other observability tests: it values a demo house, and the modules of
tests/opendata that run before tests/test_*.py remove the demo region (tests/valuation restores it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.mark.django_db
def test_metrics_count_valuations_refreshes_and_requests(house: Any, models_in: Any) -> None:
    from pathlib import Path

    from prometheus_client import REGISTRY

    from opendata.refresh import refresh
    from valuation.services import ValuationQuery, valuation_create

    def value(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("notary_valuations_total", {"channel": "cli"})
    valuation_create(query=ValuationQuery(address_id=house.pk), channel="cli")
    assert value("notary_valuations_total", {"channel": "cli"}) == before + 1
    failed = value("notary_refresh_runs_total", {"source": "stations", "status": "failed"})
    with pytest.raises(Exception, match="File not found"):
        refresh("stations", file=Path("/nonexistent/stations.csv"))
    assert value("notary_refresh_runs_total", {"source": "stations", "status": "failed"}) == failed + 1

    page = Client().get("/metrics")
    text = page.content.decode()
    assert page.status_code == 200
    for name in (
        "notary_valuations_total",
        "notary_model_version_info",
        "notary_refresh_duration_seconds",
        "notary_task_queue_length",
        "django_http_requests_latency_seconds_by_view_method",
    ):
        assert name in text, name
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
