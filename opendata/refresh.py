"""Run one connector as a recorded refresh: fetch or read, skip when unchanged, load, follow up.

Used by ``manage.py refresh_source`` and by the Celery task ``opendata.refresh_source`` that beat runs
on each source's schedule. Every call leaves one :class:`~opendata.models.SourceRefreshRun`: succeeded
(with counts, rejections, checksum, vintage, duration), skipped (the source has not changed) or failed
(with the reason; the data that was there is untouched, since connectors write in one transaction
after validating the whole input).

One refresh of a source runs at a time: it holds the source's lease (:mod:`config.leases`) from
start to end, follow-up included. A run left "running" by a process that died (killed mid-load) is
marked failed, abandoned, by the next refresh of that source or by :func:`runs_abandoned_mark`; what
it was loading was never committed. A follow-up (features, retraining request) that died half-way is
finished by the next refresh, even when that one is skipped as unchanged. A request id (the Celery
task id) makes a repeated delivery of the same request return its run instead of running again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils import timezone

from config.leases import lease, lease_held
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


class RefreshBusy(SourceError):
    """Another refresh of the same source is running; this one did not start."""


ABANDONED = (
    "Abandoned: the process running this refresh stopped (killed, out of memory or restarted) before "
    "it finished. What it was loading was not kept (a source is swapped in within one transaction); "
    "the data of the previous run is unchanged."
)
UNSENT = (
    "Not started yet: the task queue (Redis) did not answer ({error}). The refresh is sent again "
    "automatically once it answers."
)
# Keys of SourceRefreshRun.counts that say how a run came about (kept whatever the connector counts).
REQUEST_KEYS = ("request",)


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
    request_id: str = "",
) -> SourceRefreshRun:
    """Refresh source ``name`` from ``file``, or from ``url`` / the connector's live URL; return the run.

    ``request_id`` (a Celery task id): when a run of that request has finished already, it is
    returned as it is and nothing runs again. Raises :class:`RefreshBusy` while another refresh of
    the source is running."""
    available = connectors()
    if name not in available:
        raise UnknownSource(f"Unknown source {name!r}; choose one of: {', '.join(available)}.")
    with lease("refresh", name) as mine:
        if not mine:
            running = SourceRefreshRun.objects.filter(source=name, status=RunStatus.RUNNING).first()
            since = f" (run {running.pk}, started {running.started_at:%Y-%m-%d %H:%M})" if running else ""
            raise RefreshBusy(f"A refresh of {name} is already running{since}; this one did not start.")
        # Holding the source's lease, any other run of it still "running" was abandoned.
        runs_abandoned_mark(name)
        if request_id:
            done = _request_run(name, request_id)
            if done is not None:
                log.info("refresh of %s: request %s ran already (run %s)", name, request_id, done.pk)
                return done
        connector = available[name]()
        options = dict(options or {})
        previous = last_success(name)
        counts = {"request": request_id} if request_id else {}
        run = SourceRefreshRun.objects.create(
            source=name, location=str(file or url or "")[:500], counts=counts
        )
        started = time.monotonic()
        try:
            return _refresh(run, connector, name, file, url, force, previous, stream, options, follow_up)
        finally:
            REFRESH_RUNS.labels(name, run.status).inc()
            REFRESH_SECONDS.labels(name).observe(time.monotonic() - started)


def _request_run(name: str, request_id: str) -> SourceRefreshRun | None:
    """The finished run of ``request_id``, if any (an abandoned one does not count: it did nothing)."""
    return (
        SourceRefreshRun.objects.filter(source=name, counts__request=request_id)
        .exclude(status=RunStatus.RUNNING)
        .exclude(counts__has_key="abandoned")
        .exclude(counts__has_key="unsent")
        .first()
    )


def _keep_request(run: SourceRefreshRun, counts: dict[str, Any]) -> dict[str, Any]:
    kept = {k: run.counts[k] for k in REQUEST_KEYS if k in (run.counts or {})}
    return {**counts, **kept}


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
                return _finish_skipped(
                    run, previous, "The server says the source has not changed.", follow_up
                )
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
            return _finish_skipped(run, previous, "Same checksum as the last successful run.", follow_up)
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
    run.counts = _keep_request(run, dict(result.counts))
    run.counts["parcels_touched"] = -1 if result.touched_parcels is None else len(result.touched_parcels)
    run.rejections = [{"row": r.row, "reason": r.reason} for r in result.rejections[:MAX_STORED_REJECTIONS]]
    pending = follow_up is not None and (result.touched_parcels is None or bool(result.touched_parcels))
    if pending:
        run.counts["follow_up"] = "pending"  # "done" once it has finished; a next run finishes it else
    run.save()
    if follow_up is not None and pending:
        _follow_up(run, result, follow_up)
    return run


def _follow_up(run: SourceRefreshRun, result: LoadResult, follow_up: FollowUp) -> None:
    follow_up(run, result)
    run.counts["follow_up"] = "done"
    SourceRefreshRun.objects.filter(pk=run.pk).update(counts=run.counts)


def _finish_skipped(
    run: SourceRefreshRun,
    previous: SourceRefreshRun | None,
    why: str,
    follow_up: FollowUp | None = None,
) -> SourceRefreshRun:
    run.status, run.finished_at = RunStatus.SKIPPED, timezone.now()
    run.error = ""
    run.counts = _keep_request(run, {"skipped": why})
    if previous is not None:
        run.vintage = previous.vintage
        if not run.checksum:
            run.checksum = previous.checksum
        run.http_etag = run.http_etag or previous.http_etag
        run.http_last_modified = run.http_last_modified or previous.http_last_modified
    run.save()
    if follow_up is not None and previous is not None and previous.counts.get("follow_up") == "pending":
        # The run that loaded this data died during its follow-up: the data is in, but its features
        # may be half recomputed. Which parcels it touched was not kept, so all are recomputed.
        log.warning("refresh of %s: finishing the follow-up of run %s", run.source, previous.pk)
        _follow_up(previous, LoadResult(rows_read=0, touched_parcels=None), follow_up)
        run.counts["follow_up_finished_for"] = previous.pk
        run.save(update_fields=["counts"])
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

        # No result in Redis: asking it to watch for one hangs for 20 s when it is down.
        current_app.send_task("valuation.train_model", kwargs={}, queue="training", ignore_result=True)
        run.counts["retraining_queued"] = 1
    except Exception as exc:  # the broker is down: the data is in; the dispatcher queues it later
        log.warning("could not queue retraining after %s: %s", run.source, exc)
        run.counts["retraining_queued"] = 0
    run.save(update_fields=["counts"])


# --- runs whose process died, and requests the broker did not take (config.celery.dispatch_pending) --
def runs_abandoned_mark(name: str | None = None) -> int:
    """Mark failed the runs left "running" by a process that died; return how many.

    With ``name``, the caller holds that source's lease, so every run of it still running is
    abandoned. Without, a source's running runs are abandoned when nobody holds its lease (read
    first, so a run started after the check is never touched)."""
    running = SourceRefreshRun.objects.filter(status=RunStatus.RUNNING)
    if name is not None:
        running = running.filter(source=name)
    stale: list[int] = []
    for source in sorted(set(running.values_list("source", flat=True))):
        pks = list(running.filter(source=source).values_list("pk", flat=True))
        if name is not None or not lease_held("refresh", source):
            stale += pks
    marked = 0
    for run in SourceRefreshRun.objects.filter(pk__in=stale, status=RunStatus.RUNNING):
        counts = {**(run.counts or {}), "abandoned": True}
        marked += SourceRefreshRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=ABANDONED, counts=counts
        )
        log.warning("refresh run %s of %s was abandoned by its process; marked failed", run.pk, run.source)
    return marked


def refresh_unsent_record(
    name: str, *, force: bool, options: dict[str, Any] | None, error: str
) -> SourceRefreshRun:
    """Keep a refresh the broker did not take as a failed run saying so; the dispatcher sends it."""
    return SourceRefreshRun.objects.create(
        source=name,
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error=UNSENT.format(error=error[:300]),
        counts={"unsent": {"force": force, "options": dict(options or {})}},
    )


def refresh_requests_send() -> int:
    """Send the refreshes recorded as unsent; return how many went (they stay recorded otherwise)."""
    from opendata.tasks import refresh_source

    sent = 0
    for run in SourceRefreshRun.objects.filter(counts__has_key="unsent").order_by("pk"):
        request = run.counts["unsent"]
        refresh_source.send(
            kwargs={
                "name": run.source,
                "force": bool(request.get("force")),
                "options": request.get("options"),
            }
        )
        counts = {k: v for k, v in run.counts.items() if k != "unsent"}
        counts["sent_again_at"] = timezone.now().isoformat(timespec="seconds")
        SourceRefreshRun.objects.filter(pk=run.pk).update(counts=counts)
        sent += 1
    return sent


def retraining_requests_send() -> int:
    """Queue one retraining for the refreshes that could not queue theirs; return 1 if sent, else 0."""
    from celery import current_app

    waiting = SourceRefreshRun.objects.filter(counts__retraining_queued=0)
    pks = list(waiting.values_list("pk", flat=True))
    if not pks:
        return 0
    current_app.send_task("valuation.train_model", kwargs={}, queue="training", ignore_result=True)
    for run in SourceRefreshRun.objects.filter(pk__in=pks):
        SourceRefreshRun.objects.filter(pk=run.pk).update(counts={**run.counts, "retraining_queued": 1})
    return 1
