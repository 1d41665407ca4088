"""Run one connector as a recorded refresh: fetch or read, skip when unchanged, load, follow up.

Used by ``manage.py refresh_source`` and by the Celery task ``opendata.refresh_source`` that beat runs
on each source's schedule. Every call leaves one :class:`~opendata.models.SourceRefreshRun`: succeeded
(with counts, rejections, checksum, vintage, duration), skipped (the source has not changed) or failed
(with the reason; the data that was there is untouched, since connectors write in one transaction
after validating the whole input).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils import timezone

from config.metrics import REFRESH_RUNS, REFRESH_SECONDS
from opendata.connectors.base import (
    MAX_STORED_REJECTIONS,
    LoadResult,
    RunContext,
    SourceError,
    connectors,
    sha256_file,
)
from opendata.connectors.fetch import fetch
from opendata.models import RunStatus, SourceRefreshRun

log = logging.getLogger(__name__)

# Called after a successful load that changed data: recompute features, then queue retraining.
FollowUp = Callable[[SourceRefreshRun, LoadResult], None]


class UnknownSource(ValueError):
    pass


def last_success(name: str) -> SourceRefreshRun | None:
    return (
        SourceRefreshRun.objects.filter(source=name, status=RunStatus.SUCCEEDED)
        .order_by("-started_at")
        .first()
    )


def refresh(
    name: str,
    *,
    file: Path | None = None,
    url: str | None = None,
    force: bool = False,
    stream: IO[str] | None = None,
    options: dict[str, Any] | None = None,
    follow_up: FollowUp | None = None,
) -> SourceRefreshRun:
    """Refresh source ``name`` from ``file``, or from ``url`` / the connector's live URL; return the run."""
    available = connectors()
    if name not in available:
        raise UnknownSource(f"Unknown source {name!r}; choose one of: {', '.join(available)}.")
    connector = available[name]()
    options = dict(options or {})
    previous = last_success(name)
    run = SourceRefreshRun.objects.create(source=name, location=str(file or url or "")[:500])
    started = time.monotonic()
    try:
        return _refresh(run, connector, name, file, url, force, previous, stream, options, follow_up)
    finally:
        REFRESH_RUNS.labels(name, run.status).inc()
        REFRESH_SECONDS.labels(name).observe(time.monotonic() - started)


def _refresh(
    run: SourceRefreshRun,
    connector: Any,
    name: str,
    file: Path | None,
    url: str | None,
    force: bool,
    previous: SourceRefreshRun | None,
    stream: IO[str] | None,
    options: dict[str, Any],
    follow_up: FollowUp | None,
) -> SourceRefreshRun:
    try:
        if file is None:
            live = url or connector.live_url(options)
            if not live:
                raise SourceError(f"Source {name} has no live URL; give a file with --file.")
            run.location = live[:500]
            dest = Path(settings.DATA_DIR) / "downloads" / name / f"{name}{connector.suffix}"
            fetched = fetch(
                live,
                dest,
                etag="" if force or previous is None else previous.http_etag,
                last_modified="" if force or previous is None else previous.http_last_modified,
            )
            if fetched.not_modified:
                return _finish_skipped(run, previous, "The server says the source has not changed.")
            run.http_etag, run.http_last_modified = fetched.etag[:200], fetched.last_modified[:64]
            assert fetched.path is not None
            path = fetched.path
        else:
            path = Path(file)
            if not path.exists():
                raise SourceError(f"File not found: {path}")
        run.checksum = sha256_file(path) if path.is_file() else ""
        run.save(update_fields=["location", "checksum", "http_etag", "http_last_modified"])
        if not force and previous is not None and run.checksum and previous.checksum == run.checksum:
            return _finish_skipped(run, previous, "Same checksum as the last successful run.")
        result = connector.load(path, RunContext(run=run, stream=stream, options=options))
    except Exception as exc:
        run.status = RunStatus.FAILED
        run.error = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
        run.finished_at = timezone.now()
        run.save()
        log.warning("refresh of %s failed: %s", name, run.error)
        raise
    run.refresh_from_db(fields=["progress_done", "progress_total"])
    run.status, run.finished_at = RunStatus.SUCCEEDED, timezone.now()
    run.vintage = result.vintage[:40]
    run.rows_read, run.rows_loaded, run.rows_rejected = (
        result.rows_read,
        result.rows_loaded,
        len(result.rejections),
    )
    run.counts = dict(result.counts)
    run.counts["parcels_touched"] = -1 if result.touched_parcels is None else len(result.touched_parcels)
    run.rejections = [{"row": r.row, "reason": r.reason} for r in result.rejections[:MAX_STORED_REJECTIONS]]
    run.save()
    if follow_up is not None and (result.touched_parcels is None or result.touched_parcels):
        follow_up(run, result)
    return run


def _finish_skipped(run: SourceRefreshRun, previous: SourceRefreshRun | None, why: str) -> SourceRefreshRun:
    run.status, run.finished_at = RunStatus.SKIPPED, timezone.now()
    run.error = ""
    run.counts = {"skipped": why}
    if previous is not None:
        run.vintage = previous.vintage
        if not run.checksum:
            run.checksum = previous.checksum
        run.http_etag = run.http_etag or previous.http_etag
        run.http_last_modified = run.http_last_modified or previous.http_last_modified
    run.save()
    return run


def features_then_retrain(
    run: SourceRefreshRun, result: LoadResult, *, stream: IO[str] | None = None
) -> None:
    """Recompute the features of the parcels the refresh touched, then queue retraining (the model gate
    decides whether the new model is promoted). A broker that is down costs the retraining, never the
    refresh: it is logged and recorded on the run."""
    from features.compute import parcel_features_refresh

    computed = parcel_features_refresh(result.touched_parcels, stream=stream)
    run.counts["features_recomputed"] = computed
    try:
        from celery import current_app

        current_app.send_task("valuation.train_model", kwargs={}, queue="training")
        run.counts["retraining_queued"] = 1
    except Exception as exc:  # the broker is down: the data is in, retraining waits for the weekly run
        log.warning("could not queue retraining after %s: %s", run.source, exc)
        run.counts["retraining_queued"] = 0
    run.save(update_fields=["counts"])
