"""Schemathesis against the generated OpenAPI schema: generated requests to every endpoint, valid
and not, never get a 5xx (and every answer is JSON)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from config.wsgi import application

schema = schemathesis.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def request_signals() -> Any:
    """As Django's test client does: no closing of the test's connection at the end of each request
    (the calls go straight to the WSGI application, inside the test's transaction)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_key(demo_model: Any, models_in: Any) -> str:
    from django.core.cache import cache

    from valuation.api.keys import api_key_issue
    from valuation.models import Partner

    cache.clear()
    partner = Partner.objects.create(name="Fuzzer", slug="fuzzer")
    return api_key_issue(partner=partner, scopes=["valuate", "deliver_sales"])[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: Any, api_key: str, request_signals: Any) -> None:
    response = case.call_wsgi(headers={"Authorization": f"Api-Key {api_key}"})
    assert response.status_code < 500, (case.method, case.path, case.body, response.data[:500])
    assert response.headers["Content-Type"].startswith("application/json")
