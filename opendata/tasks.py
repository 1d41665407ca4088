"""Celery tasks of the open-data app: refresh one source on its schedule, then follow up."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from opendata.refresh import features_then_retrain, refresh


@shared_task(
    name="opendata.refresh_source", acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300
)
def refresh_source(name: str, force: bool = False, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refresh one source from its live URL (beat runs this on the source's schedule)."""
    run = refresh(name, force=force, options=options, follow_up=features_then_retrain)
    return {"run": run.pk, "status": run.status, "counts": run.counts}
