"""The Celery app: Redis broker, queues `default`, `ingest` and `training`, schedules from the database.

Redis may be down while the web app runs. Work that a request queues is recorded in the database
first (a partner's batch, a refresh run, a retraining request on a refresh run), so a broker that does
not answer costs a delay, never the work:

- :class:`RecordedTask`: sending such a task never raises for a broker that does not answer; it logs,
  lets the task record the work as unsent (:meth:`RecordedTask.record_unsent`) and returns None;
- :func:`dispatch_pending` sends the recorded work again, and marks runs whose worker died as
  abandoned. Every worker runs it when it connects to the broker (at start, and again each time it
  reconnects after an outage, when Redis may have lost the queued messages) and then every
  ``DISPATCH_PENDING_EVERY_S`` seconds (:class:`DispatchPending`);
- the tasks are idempotent: a task delivered twice (the same message redelivered after a worker died,
  or sent again by the dispatcher) does its work once (leases in :mod:`config.leases`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Celery, Task, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

log = logging.getLogger(__name__)

app = Celery("notary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_KEY = "notary:celery:heartbeat"

# What sending a message raises when Redis does not answer (kombu wraps most of them in its own).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


@app.task(name="config.health", acks_late=False, soft_time_limit=10, time_limit=20)
def health(payload: str = "ping") -> dict[str, object]:
    """Answer from inside a worker; used by tests, `make demo` and the readiness probe."""
    import socket

    return {"echo": payload, "worker": socket.gethostname(), "pid": os.getpid(), "at": time.time()}


class RecordedTask(Task):
    """A task whose work is recorded in the database before it is sent.

    ``delay``/``apply_async`` never raise because the broker does not answer: they log it, call
    :meth:`record_unsent` (each task marks its own record so that :func:`dispatch_pending` sends it
    again) and return None. Results are kept in the database, not in Redis (``ignore_result``):
    asking Redis to watch for a result is what made a send hang for 20 s when it was down.
    """

    abstract = True
    ignore_result = True

    def send(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Send now; raise when the broker does not answer (the dispatcher uses this)."""
        return super().apply_async(args, kwargs, **options)

    # The same call as Task.apply_async (its options are passed on as they are).
    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        try:
            return self.send(args, kwargs, **options)
        except BROKER_ERRORS as exc:
            if self.app.conf.task_always_eager:
                raise
            log.warning("task %s not sent, the broker does not answer: %s", self.name, exc)
            try:
                self.record_unsent(tuple(args or ()), dict(kwargs or {}), exc)
            except Exception:  # the database is down too: nothing more can be kept
                log.exception("task %s: could not record the unsent work", self.name)
            return None

    def record_unsent(self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException) -> None:
        """Record that this call was not sent (the default: its work is recorded already)."""


@app.task(
    name="config.dispatch_pending", acks_late=False, ignore_result=True, soft_time_limit=60, time_limit=90
)
def dispatch_pending(reconnected: bool = False) -> dict[str, int]:
    """Send recorded work again and mark abandoned runs (see the module docstring).

    ``reconnected``: a worker has just connected to the broker, which may have lost its messages, so
    every queued batch is sent again, not only those recorded as unsent or waiting for long.
    """
    from config.leases import lease
    from opendata.refresh import refresh_requests_send, retraining_requests_send, runs_abandoned_mark
    from valuation.api.services import batches_pending_send
    from valuation.training import versions_abandoned_mark

    with lease("dispatch", 0) as mine:
        if not mine:  # another worker is dispatching right now
            return {}
        return {
            "refresh_runs_abandoned": runs_abandoned_mark(),
            "trainings_abandoned": versions_abandoned_mark(),
            "refreshes_sent": refresh_requests_send(),
            "retrainings_sent": retraining_requests_send(),
            "batches_sent": batches_pending_send(reconnected=reconnected),
        }


class DispatchPending(bootsteps.StartStopStep):
    """A worker step: queue :func:`dispatch_pending` whenever the worker (re)connects to the broker,
    then every ``DISPATCH_PENDING_EVERY_S`` seconds while it stays connected.

    Consumer steps are started again after every reconnection, so "Redis is back" is noticed here
    without beat, and sends whatever was recorded while it was down."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def start(self, parent: Any) -> None:
        from django.conf import settings

        every = float(getattr(settings, "DISPATCH_PENDING_EVERY_S", 60))
        self._send(reconnected=True)
        if every > 0:
            self.tref = parent.timer.call_repeatedly(every, self._send, (False,))

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    @staticmethod
    def _send(reconnected: bool) -> None:
        try:
            dispatch_pending.apply_async(kwargs={"reconnected": reconnected})
        except BROKER_ERRORS as exc:  # down again: the next connection tries again
            log.warning("dispatch_pending not sent: %s", exc)


app.steps["consumer"].add(DispatchPending)
