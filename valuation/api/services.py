"""What the API does beyond one valuation: sales deliveries and batches (services, no HTTP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils import timezone

from valuation.models import BatchJob, BatchStatus, Channel, Partner
from valuation.sale_rows import validate_sale_rows
from valuation.sales_import import sales_upsert
from valuation.services import ValuationQuery, valuations_create_many

BATCH_MAX = 10_000
BATCH_CHUNK = 2_000  # items valued at a time: progress is saved between chunks


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
    own error, the others are valued. Running it again after it finished changes nothing."""
    job = BatchJob.objects.select_related("partner").get(pk=job_id)
    if job.status == BatchStatus.DONE:
        return job
    BatchJob.objects.filter(pk=job.pk).update(status=BatchStatus.RUNNING, done=0, results=[])
    results: list[dict[str, Any]] = []
    try:
        for start in range(0, len(job.items), BATCH_CHUNK):
            chunk = job.items[start : start + BATCH_CHUNK]
            results += _value_chunk(job, chunk, start)
            BatchJob.objects.filter(pk=job.pk).update(done=len(results))
    except Exception as exc:
        BatchJob.objects.filter(pk=job.pk).update(status=BatchStatus.FAILED, error=str(exc)[:2000])
        raise
    BatchJob.objects.filter(pk=job.pk).update(
        status=BatchStatus.DONE, results=results, done=len(results), finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


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
