"""Readiness, request ids and JSON logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client, override_settings

from config.observability import JsonFormatter, RequestIdFilter, request_id
from tests.servers import app_serve, free_port, python_command


@pytest.mark.django_db
def test_ready_when_database_redis_and_model_answer(demo_model: Any, models_in: Any) -> None:
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["model"]["version"] == demo_model.version


@pytest.mark.django_db
def test_not_ready_without_redis_or_without_a_model(demo_model: Any, models_in: Any) -> None:
    from valuation.models import ModelVersion

    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens there
        response = Client().get("/readyz")
    assert response.status_code == 503 and not response.json()["checks"]["redis"]["ok"]
    ModelVersion.objects.filter(status="active").update(status="retired")  # rolled back after the test
    response = Client().get("/readyz")
    assert response.status_code == 503 and "No model is active" in response.json()["checks"]["model"]["error"]


def test_every_response_carries_a_request_id(db: Any) -> None:
    client = Client()
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="partner-42.a")["X-Request-ID"] == "partner-42.a"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"] != "bad id\n"


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("valuation", logging.WARNING, __file__, 1, "price %s", ("337000",), None)
    token = request_id.set("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc123" and line["message"] == "price 337000" and line["level"] == "WARNING"


HEALTHZ_REQUESTS = (
    r"^django_http_requests_total_by_view_transport_method_total"
    r'\{[^}]*view="healthz"[^}]*\} (\S+)'
)


def test_a_scrape_counts_every_gunicorn_worker(tmp_path: Any) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (as make demo and compose run it), whichever of the two workers
    answers /metrics reports the requests of both; without it each would report only its own."""
    import re
    import urllib.request

    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    command = python_command(
        "-m", "gunicorn", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}", "--workers", "2"
    )
    with app_serve(command, port, {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DEBUG": "1"}) as base:
        for _ in range(40):
            urllib.request.urlopen(base + "/healthz", timeout=5).close()
        pids: set[str] = set()
        totals = []
        for _ in range(12):
            text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
            totals.append(sum(float(v) for v in re.findall(HEALTHZ_REQUESTS, text, re.M)))
            pids.update(p.name for p in metrics_dir.glob("counter_*.db"))
    assert min(totals) >= 41  # every scrape sees all the requests, whichever worker answered
    assert len(pids) >= 2  # both workers wrote their figures
