"""The periodic tasks, declared once in code and installed into django-celery-beat's tables.

Beat runs django-celery-beat's DatabaseScheduler, so staff see and change every schedule in the admin
(Periodic tasks). ``schedules_sync`` adds the entries below that are missing and leaves existing ones
alone: a schedule a staff member changed or disabled stays as they left it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    description: str
    # crontab fields (minute hour day_of_week day_of_month month_of_year), Europe/Brussels time
    crontab: tuple[str, str, str, str, str] | None = None
    every_seconds: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    enabled: bool = True


SCHEDULES: list[Schedule] = [
    Schedule(
        name="Worker heartbeat",
        task="config.health",
        description="Proves that beat and a worker run; the result lands in Redis.",
        every_seconds=300,
        kwargs={"payload": "beat"},
    ),
    Schedule(
        name="Retrain the price model",
        task="valuation.train_model",
        description="Weekly retraining on the latest sales; the gate promotes the new model only when its "
        "MdAPE on the most recent sales is not worse than the active model's.",
        crontab=("30", "2", "0", "*", "*"),  # Sundays 02:30, Brussels time
        queue="training",
    ),
    Schedule(
        name="Model monitoring report",
        task="valuation.monitoring_report",
        description="Drift of recent valuations, accuracy on new sales and feedback of the active model; "
        "its figures and warnings go to the metrics (notary_model_*), the page is in the admin.",
        crontab=("15", "*", "*", "*", "*"),  # every hour at :15
    ),
]


def declared_schedules() -> list[Schedule]:
    """The fixed schedules above plus one per open-data connector that declares a schedule."""
    from opendata.connectors import connectors

    entries = list(SCHEDULES)
    for name, connector in connectors().items():
        if connector.schedule is None:
            continue
        # A source whose live URL needs options (an area, a raster address) starts disabled: staff set
        # them in the task's keyword arguments, {"name": ..., "options": {...}}, then enable it.
        ready = connector().live_url({}) is not None
        note = "" if ready else " Disabled until its options are set in the keyword arguments."
        entries.append(
            Schedule(
                name=f"Refresh {name}",
                task="opendata.refresh_source",
                description=f"{connector.title}: download, validate, swap in; then recompute the touched "
                "parcels' features and queue retraining. Skipped when the source is unchanged." + note,
                crontab=connector.schedule,
                kwargs={"name": name},
                queue="ingest",
                enabled=ready,
            )
        )
    return entries


def schedules_sync(*, schedules: list[Schedule] | None = None) -> list[str]:
    """Create the declared periodic tasks that do not exist yet; return the names created."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created: list[str] = []
    for entry in schedules if schedules is not None else declared_schedules():
        if PeriodicTask.objects.filter(name=entry.name).exists():
            continue
        when: dict[str, Any]
        if entry.crontab is not None:
            minute, hour, day_of_week, day_of_month, month_of_year = entry.crontab
            cron, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_week=day_of_week,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                timezone="Europe/Brussels",
            )
            when = {"crontab": cron}
        elif entry.every_seconds is not None:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=entry.every_seconds, period=IntervalSchedule.SECONDS
            )
            when = {"interval": interval}
        else:
            raise ValueError(f"schedule {entry.name!r} needs a crontab or every_seconds")
        PeriodicTask.objects.create(
            name=entry.name,
            task=entry.task,
            description=entry.description,
            kwargs=json.dumps(entry.kwargs),
            queue=entry.queue,
            enabled=entry.enabled,
            **when,
        )
        created.append(entry.name)
    return created
