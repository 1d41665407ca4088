"""compose.yaml, the Dockerfile and `make demo` run the same processes on the same queues."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
QUEUES = {settings.CELERY_TASK_DEFAULT_QUEUE} | {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()}


def _queues(command: str) -> set[str]:
    match = re.search(r"-Q\s+(\S+)", command)
    assert match, command
    return set(match.group(1).split(","))


def test_compose_has_every_service_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "db", "redis"} <= set(services)
    for name in ("web", "worker", "beat", "db", "redis"):
        assert "healthcheck" in services[name], name
    assert services["db"]["image"].startswith("postgis/postgis:15")
    assert _queues(services["worker"]["command"]) == QUEUES
    assert "beat" in services["beat"]["command"]
    assert {"pgdata", "models"} <= set(compose["volumes"])


def test_make_demo_worker_listens_to_the_same_queues() -> None:
    script = (ROOT / "scripts" / "dev.sh").read_text()
    worker_line = next(line for line in script.splitlines() if "worker -Q" in line)
    assert _queues(worker_line) == QUEUES


def test_dockerfile_runs_as_non_root_from_the_lock_file() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "requirements.lock" in dockerfile
    assert "collectstatic" in dockerfile
    assert re.search(r"^USER app$", dockerfile, re.M)
    assert "gunicorn" in dockerfile
