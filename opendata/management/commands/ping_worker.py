"""Round trip through Redis and a Celery worker: `python manage.py ping_worker [--timeout S]`."""

from __future__ import annotations

import time
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.celery import health


class Command(BaseCommand):
    help = "Send the health task to a Celery worker and wait for its answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=10.0, help="Seconds to wait for the answer.")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            answer = health.delay("ping").get(timeout=options["timeout"])
        except CeleryTimeout as exc:
            raise CommandError(f"no Celery worker answered within {options['timeout']:.0f} s") from exc
        except Exception as exc:  # the broker itself is unreachable
            raise CommandError(f"cannot reach the Celery broker: {exc}") from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        self.stdout.write(f"worker {answer['worker']} (pid {answer['pid']}) answered in {elapsed_ms:.0f} ms")
