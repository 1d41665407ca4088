"""Celery tasks of the valuation app: thin wrappers that take ids and call one service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from valuation.training import model_train


@shared_task(
    name="valuation.train_model", acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300
)
def train_model(source: str | None = None) -> dict[str, Any]:
    """Retrain through the promotion gate (weekly, and after a data refresh)."""
    version = model_train(source=source)
    return {"version": version.version, "status": version.status, "reason": version.gate.get("reason", "")}


@shared_task(name="valuation.value_batch", acks_late=True)
def value_batch(job_id: int) -> dict[str, Any]:
    """Value a partner's batch (see valuation.api.services.batch_run); idempotent once done."""
    from valuation.api.services import batch_run

    job = batch_run(job_id)
    return {"batch": job.pk, "status": job.status, "done": job.done}
