"""API keys: issued once in clear, stored as SHA-256, checked in constant time, revocable.

A key reads ``nv_<prefix>_<secret>``: the prefix (8 hex characters) finds the row and is shown in
the admin to recognise a key; the secret (32 random bytes, URL-safe) is never stored. Keys are
random and long, so a plain SHA-256 (no slow password hash) is the usual and sufficient digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from django.db.models import F
from django.utils import timezone

from valuation.models import ApiKey, ApiScope, Partner

PREFIX = "nv"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_issue(*, partner: Partner, scopes: Iterable[str], name: str = "") -> tuple[ApiKey, str]:
    """A new key for ``partner``: the row, and the key in clear (show it once, it is not kept)."""
    wanted = sorted(set(scopes))
    unknown = set(wanted) - set(ApiScope.values)
    if unknown or not wanted:
        raise ValueError(
            f"scopes must be among {', '.join(ApiScope.values)}; got {', '.join(wanted) or 'none'}"
        )
    prefix = secrets.token_hex(4)
    key = f"{PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(partner=partner, name=name, prefix=prefix, digest=_digest(key), scopes=wanted)
    return row, key


def api_key_revoke(key: ApiKey) -> None:
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())


def api_key_check(presented: str) -> ApiKey | None:
    """The active key ``presented`` is, or None (unknown, malformed, revoked, or partner inactive)."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 8:
        return None
    key = ApiKey.objects.select_related("partner").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.digest, _digest(presented.strip())):
        return None
    if key.revoked_at is not None or not key.partner.active:
        return None
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now(), use_count=F("use_count") + 1)
    return key
