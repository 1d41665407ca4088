"""Install the periodic tasks declared in config/schedules.py: `python manage.py sync_schedules`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from config.schedules import schedules_sync


class Command(BaseCommand):
    help = "Create the declared periodic tasks that are missing; existing ones (maybe edited by staff) stay."

    def handle(self, *args: Any, **options: Any) -> None:
        created = schedules_sync()
        self.stdout.write(f"schedules created: {', '.join(created)}" if created else "schedules up to date")
