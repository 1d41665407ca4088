from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from config.celery import app
from config.schedules import SCHEDULES, Schedule, declared_schedules, schedules_sync

pytestmark = pytest.mark.django_db


def test_every_declared_schedule_names_a_registered_task() -> None:
    app.loader.import_default_modules()
    for entry in declared_schedules():
        assert entry.task in app.tasks, entry.task


def test_sync_installs_missing_schedules_and_keeps_staff_changes(capsys) -> None:
    call_command("sync_schedules")
    assert "schedules created" in capsys.readouterr().out
    assert set(PeriodicTask.objects.values_list("name", flat=True)) >= {s.name for s in declared_schedules()}

    task = PeriodicTask.objects.get(name=SCHEDULES[0].name)
    task.enabled = False  # a staff member pauses it in the admin
    task.save()
    call_command("sync_schedules")
    assert "up to date" in capsys.readouterr().out
    assert PeriodicTask.objects.get(name=SCHEDULES[0].name).enabled is False


def test_crontab_schedules_are_created_in_brussels_time() -> None:
    weekly = Schedule(
        name="t weekly", task="config.health", description="", crontab=("0", "3", "1", "*", "*")
    )
    assert schedules_sync(schedules=[weekly]) == ["t weekly"]
    cron = PeriodicTask.objects.get(name="t weekly").crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == (
        "0",
        "3",
        "1",
        "Europe/Brussels",
    )


def test_every_source_has_a_schedule_and_those_needing_options_start_disabled() -> None:
    from opendata.connectors import connectors

    call_command("sync_schedules")
    for name in connectors():
        task = PeriodicTask.objects.get(name=f"Refresh {name}")
        assert task.queue == "ingest" and json.loads(task.kwargs)["name"] == name
    assert PeriodicTask.objects.get(name="Refresh osm").enabled
    assert not PeriodicTask.objects.get(name="Refresh grb").enabled
    assert "options" in PeriodicTask.objects.get(name="Refresh grb").description
