"""Readiness, request ids and JSON logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client, override_settings

from config.observability import JsonFormatter, RequestIdFilter, request_id


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
