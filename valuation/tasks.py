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
