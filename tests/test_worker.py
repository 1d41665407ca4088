"""A task round trip through a real Celery worker and real Redis."""

from __future__ import annotations

import os

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command

from config.celery import app, health

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def celery_worker():
    # A real worker thread consuming from the Redis broker at REDIS_URL (make test uses its own db).
    assert app.conf.broker_url.startswith("redis://"), app.conf.broker_url
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def test_health_task_round_trips_through_redis_and_a_worker(celery_worker) -> None:
    result = health.delay("round-trip")
    answer = result.get(timeout=20)
    assert answer["echo"] == "round-trip"
    assert answer["pid"] == os.getpid()  # answered by the worker thread in this process
    assert result.status == "SUCCESS"


def test_ping_worker_command_reports_the_round_trip(celery_worker, capsys) -> None:
    call_command("ping_worker", "--timeout", "20")
    assert "answered in" in capsys.readouterr().out


def test_tasks_are_routed_to_their_queues() -> None:
    router = app.amqp.router
    assert router.route({}, "opendata.tasks.source_refresh")["queue"].name == "ingest"
    assert router.route({}, "valuation.train_model")["queue"].name == "training"
    assert router.route({}, "config.health")["queue"].name == "default"
