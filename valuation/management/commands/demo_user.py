"""Create (or reset) the demo login and print it: `python manage.py demo_user`."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-notary-2026"  # noqa: S105 - the offline demo's published login, never in production


class Command(BaseCommand):
    help = "Create or reset the demo staff login (DEMO_PASSWORD overrides the password) and print it."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_PASSWORD", DEMO_PASSWORD)
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@example.org"}
        )
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Login: {DEMO_USERNAME} / {password}")
