"""The accounts and addresses `make loadtest` needs, in the running demo's database.

    python -m benchmarks.loadtest_prepare OUT.json [--users 50] [--addresses 400]
    python -m benchmarks.loadtest_prepare --retire

Creates (or resets) notaries ``loadtest-01`` ... in five "Load test office" offices with one fresh
random password, a "Load test partner" with a fresh API key (the previous ones revoked), and picks a
random sample of the demo region's addresses. Writes all of it to OUT.json (mode 0600), which
``benchmarks/locustfile.py`` reads. Every notary logs in under their own name, so the login throttle
(failed attempts per name and address) is neither shared nor weakened. ``--retire`` makes those
passwords unusable and revokes the key once the run is over.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

USER_PREFIX = "loadtest-"
OFFICES = 5
PARTNER_SLUG = "loadtest"


def prepare(*, users: int, addresses: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from opendata.models import Address
    from valuation.api.keys import api_key_issue, api_key_revoke
    from valuation.models import Membership, Office, Partner

    password = secrets.token_urlsafe(18)
    digest = make_password(password)  # hashed once: PBKDF2 costs a third of a second each time
    user_model = get_user_model()
    accounts = []
    with transaction.atomic():
        offices = [Office.objects.get_or_create(name=f"Load test office {i + 1}")[0] for i in range(OFFICES)]
        for i in range(users):
            name = f"{USER_PREFIX}{i + 1:02d}"
            user, _ = user_model.objects.get_or_create(username=name)
            user.password = digest
            user.is_active, user.is_staff, user.is_superuser = True, False, False
            user.save()
            Membership.objects.update_or_create(user=user, defaults={"office": offices[i % OFFICES]})
            # Every third notary works in French: French page, French street names.
            accounts.append({"username": name, "language": "fr" if i % 3 == 2 else "nl"})
        partner, _ = Partner.objects.get_or_create(
            slug=PARTNER_SLUG, defaults={"name": "Load test partner", "active": True}
        )
        Partner.objects.filter(pk=partner.pk).update(active=True)
        for old in partner.keys.filter(revoked_at__isnull=True):
            api_key_revoke(old)
        _, key = api_key_issue(partner=partner, scopes=["valuate"], name="make loadtest")
    sample = list(
        Address.objects.order_by("?").values(
            "id", "street_nl", "street_fr", "house_number", "box", "postcode"
        )[:addresses]
    )
    if not sample:
        raise SystemExit("no address in this database: load the demo region first (make demo)")
    return {"password": password, "users": accounts, "api_key": key, "addresses": sample}


def retire() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from valuation.api.keys import api_key_revoke
    from valuation.models import ApiKey

    get_user_model().objects.filter(username__startswith=USER_PREFIX).update(password=make_password(None))
    for key in ApiKey.objects.filter(partner__slug=PARTNER_SLUG, revoked_at__isnull=True):
        api_key_revoke(key)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadtest_prepare")
    parser.add_argument("out", nargs="?", type=Path, help="where to write the accounts and addresses")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--addresses", type=int, default=400)
    parser.add_argument("--retire", action="store_true", help="disable the accounts and the key")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    if args.retire:
        retire()
        return 0
    if args.out is None:
        parser.error("OUT.json is required unless --retire")
    fixture = prepare(users=args.users, addresses=args.addresses)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # it holds a password and an API key
    with os.fdopen(fd, "w") as out:
        json.dump(fixture, out, indent=1)
    users, addresses = len(fixture["users"]), len(fixture["addresses"])
    print(f"{users} notaries, 1 partner key, {addresses} addresses -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
