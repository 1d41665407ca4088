"""The Celery app: Redis broker, queues `default`, `ingest` and `training`, schedules from the database."""

from __future__ import annotations

import os
import time

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_KEY = "notary:celery:heartbeat"


@app.task(name="config.health", acks_late=False, soft_time_limit=10, time_limit=20)
def health(payload: str = "ping") -> dict[str, object]:
    """Answer from inside a worker; used by tests, `make demo` and the readiness probe."""
    import socket

    return {"echo": payload, "worker": socket.gethostname(), "pid": os.getpid(), "at": time.time()}
