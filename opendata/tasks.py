"""Celery tasks of the open-data app: refresh one source on its schedule, then follow up."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from config.celery import RecordedTask
from opendata.refresh import RefreshBusy, features_then_retrain, refresh, refresh_unsent_record

log = logging.getLogger(__name__)


class RefreshTask(RecordedTask):
    def record_unsent(self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException) -> None:
        call = dict(zip(("name", "force", "options"), args, strict=False)) | kwargs
        refresh_unsent_record(
            call["name"], force=bool(call.get("force")), options=call.get("options"), error=str(exc)
        )


@shared_task(
    bind=True,
    base=RefreshTask,
    name="opendata.refresh_source",
    acks_late=True,
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 300,
)
def refresh_source(
    self: RefreshTask, name: str, force: bool = False, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Refresh one source from its live URL (beat runs this on the source's schedule).

    Delivered twice (redelivered after its worker died, or sent again), the request runs once: the
    task id names the run, and a refresh of the same source already running makes this one stop."""
    try:
        run = refresh(
            name,
            force=force,
            options=options,
            follow_up=features_then_retrain,
            request_id=self.request.id or "",
        )
    except RefreshBusy as exc:
        log.info("%s", exc)
        return {"run": None, "status": "busy", "reason": str(exc)}
    return {"run": run.pk, "status": run.status, "counts": run.counts}
