"""What the API does beyond one valuation: sales deliveries and batches (services, no HTTP).

A batch is recorded (``BatchJob``, queued) before its task is sent, so Redis being down delays it and
loses nothing: a send that fails marks the job unsent, and :func:`batches_pending_send` (run by every
worker when it connects to the broker and every minute after) sends it again. :func:`batch_run` holds
the batch's lease (:mod:`config.leases`) while it values: a second delivery of the same batch leaves
it to the worker valuing it, or returns it as it is once done; a batch whose worker died goes on
after the last chunk it committed (a chunk's valuations and the job's results commit together).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.leases import lease, lease_held
from valuation.models import BatchJob, BatchStatus, Channel, Partner
from valuation.sale_rows import validate_sale_rows
from valuation.sales_import import sales_upsert
from valuation.services import ValuationQuery, valuations_create_many

BATCH_MAX = 10_000
BATCH_CHUNK = 2_000  # items valued at a time: progress is saved between chunks
# A batch still queued this long after it was created is sent again (its message may have been lost
# with a Redis that restarted); a second delivery costs one query.
BATCH_RESEND_AFTER_S = 300
UNSENT = "Not sent yet: the task queue (Redis) did not answer ({error}); it is sent again once it answers."


def partner_source(partner: Partner) -> str:
    """The source name of a partner's sales (``partner-<slug>``): its sale ids are unique within it."""
    return f"partner-{partner.slug}"[:50]


@dataclass
class Delivery:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return self.read - len(self.rejected) - self.inserted - self.updated


def sales_deliver(*, partner: Partner, rows: Sequence[Mapping[str, object]]) -> Delivery:
    """Validate a partner's sales like the CSV import and upsert the valid ones on (source, sale_id):
    delivering the same sales again changes nothing. Row ``i`` is reported as index ``i``."""
    valid, rejections = validate_sale_rows(rows, first_line=0)
    result = Delivery(read=len(rows))
    result.rejected = [
        {"index": r.line, "sale_id": str(rows[r.line].get("sale_id", "")), "reasons": [r.reason]}
        for r in rejections
    ]
    if len(valid):
        result.inserted, result.updated = sales_upsert(valid, source=partner_source(partner))
    return result


def batch_create(*, partner: Partner, items: list[dict[str, Any]]) -> BatchJob:
    """A queued batch; ``items`` are validated requests (``{"query": {...}}``) or ``{"error": {...}}``."""
    return BatchJob.objects.create(partner=partner, items=items, total=len(items))


def batch_run(job_id: int) -> BatchJob:
    """Value a batch's items in chunks, saving progress and results; an item that fails carries its
    own error, the others are valued. Running it again after it finished, or while another worker
    values it, changes nothing."""
    with lease("batch", job_id) as mine:
        job = BatchJob.objects.select_related("partner").get(pk=job_id)
        if not mine or job.status == BatchStatus.DONE:
            return job
        return _batch_value(job)


def _batch_value(job: BatchJob) -> BatchJob:
    # Each chunk commits its valuations together with the job's results so far: a run that dies
    # leaves a consistent prefix, and the next run resumes after it (no valuation is made twice).
    results: list[dict[str, Any]] = list(job.results or []) if job.status != BatchStatus.QUEUED else []
    BatchJob.objects.filter(pk=job.pk).update(status=BatchStatus.RUNNING, done=len(results), error="")
    try:
        for start in range(len(results), len(job.items), BATCH_CHUNK):
            chunk = job.items[start : start + BATCH_CHUNK]
            with transaction.atomic():
                results += _value_chunk(job, chunk, start)
                BatchJob.objects.filter(pk=job.pk).update(done=len(results), results=results)
    except Exception as exc:
        BatchJob.objects.filter(pk=job.pk).update(status=BatchStatus.FAILED, error=str(exc)[:2000])
        raise
    BatchJob.objects.filter(pk=job.pk).update(
        status=BatchStatus.DONE, results=results, done=len(results), finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def batch_unsent_record(job_id: int, *, error: str) -> None:
    """The batch's task could not be sent: say so on the job, which :func:`batches_pending_send` sends."""
    BatchJob.objects.filter(pk=job_id, status=BatchStatus.QUEUED).update(
        error=UNSENT.format(error=error[:300])
    )


def batches_pending_send(*, reconnected: bool = False) -> int:
    """Send again the batches that wait for nothing: queued and unsent, queued for long (every queued
    one when ``reconnected``: the broker may have lost them), or running with nobody holding their
    lease (the worker died). Return how many were sent; a send that fails leaves them for next time."""
    from valuation.tasks import value_batch

    queued = BatchJob.objects.filter(status=BatchStatus.QUEUED)
    if not reconnected:
        stale = timezone.now() - timedelta(seconds=BATCH_RESEND_AFTER_S)
        queued = queued.filter(Q(error__startswith=UNSENT[:20]) | Q(created_at__lt=stale))
    pks = list(queued.order_by("pk").values_list("pk", flat=True))
    running = BatchJob.objects.filter(status=BatchStatus.RUNNING).order_by("pk").values_list("pk", flat=True)
    pks += [pk for pk in running if not lease_held("batch", pk)]
    for pk in pks:
        value_batch.send(args=(pk,))
        BatchJob.objects.filter(pk=pk, error__startswith=UNSENT[:20]).update(error="")
    return len(pks)


def _value_chunk(job: BatchJob, chunk: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"index": start + k} for k in range(len(chunk))]
    positions, queries = [], []
    for k, item in enumerate(chunk):
        if "error" in item:
            out[k]["error"] = item["error"]
            continue
        q = item["query"]
        when = q.get("valuation_date")
        queries.append(
            ValuationQuery.naming(
                q, facts=q.get("facts") or {}, valuation_date=date.fromisoformat(when) if when else None
            )
        )
        positions.append(k)
    for k, outcome in zip(
        positions,
        valuations_create_many(queries=queries, channel=Channel.BATCH, partner=job.partner),
        strict=True,
    ):
        if outcome.valuation is not None:
            v = outcome.valuation
            out[k].update(valuation_id=v.pk, price_eur=v.price_eur, low_eur=v.low_eur, high_eur=v.high_eur)
        else:
            error = outcome.error or {}
            field_name = error.get("field", "query")
            out[k]["error"] = {
                "code": "invalid",
                "message": error.get("message", ""),
                "fields": {field_name: [error.get("message", "")]},
            }
    return out
