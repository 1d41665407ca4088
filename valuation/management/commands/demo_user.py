"""Create (or reset) the demo logins and print them: `python manage.py demo_user`.

``demo`` is a notary of the demo office (the web app) and also staff (the admin), so that one login
shows everything on the offline demo.
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from valuation.models import Membership, Office

DEMO_USERNAME = "demo"
DEMO_OFFICE = "Demo notary office"
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
        user.first_name = "Demo"
        user.set_password(password)
        user.save()
        office, _ = Office.objects.get_or_create(name=DEMO_OFFICE)
        Membership.objects.update_or_create(user=user, defaults={"office": office})
        self.stdout.write(f"Login: {DEMO_USERNAME} / {password} (notary of '{DEMO_OFFICE}', and staff)")
