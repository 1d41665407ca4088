"""Celery tasks of the valuation app: thin wrappers that take ids and call one service.

Each is safe to deliver twice (a worker that dies leaves its task to be delivered again): the task id
names a training, the batch id names a batch, and the services skip what was done or is being done.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from config.celery import RecordedTask
from valuation.training import TrainingBusy, model_train

TRAINING_BUSY_RETRY_S = 300


class BatchTask(RecordedTask):
    def record_unsent(self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException) -> None:
        from valuation.api.services import batch_unsent_record

        batch_unsent_record(int(kwargs.get("job_id", args[0] if args else 0)), error=str(exc))


@shared_task(
    bind=True,
    base=RecordedTask,
    name="valuation.train_model",
    acks_late=True,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
    max_retries=24,
)
def train_model(self: RecordedTask, source: str | None = None) -> dict[str, Any]:
    """Retrain through the promotion gate (weekly, and after a data refresh). While another training
    runs this one waits its turn (it trains after, on the data of then)."""
    try:
        version = model_train(source=source, request_id=self.request.id or "")
    except TrainingBusy as exc:
        raise self.retry(countdown=TRAINING_BUSY_RETRY_S) from exc
    return {"version": version.version, "status": version.status, "reason": version.gate.get("reason", "")}


@shared_task(name="valuation.value_batch", base=BatchTask, acks_late=True)
def value_batch(job_id: int) -> dict[str, Any]:
    """Value a partner's batch (see valuation.api.services.batch_run); a batch done or being done by
    another worker is left as it is."""
    from valuation.api.services import batch_run

    job = batch_run(job_id)
    return {"batch": job.pk, "status": job.status, "done": job.done}


@shared_task(name="valuation.monitoring_report", ignore_result=True)
def monitoring_report() -> dict[str, Any]:
    """The hourly model monitoring report: its summary goes to the metrics of every web process, and the
    accuracy on new sales it computes is cached for the admin page. Read-only: safe to run twice."""
    from valuation.monitoring import monitoring_report as report_make
    from valuation.monitoring import summary_store

    return summary_store(report_make())
