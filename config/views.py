"""Operational endpoints that belong to no domain app: liveness and readiness."""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Readiness (database, Redis, model) is checked by /readyz."""
    return JsonResponse({"status": "ok"})


def _check(name: str, probe: Any, checks: dict[str, dict[str, Any]]) -> bool:
    started = time.perf_counter()
    try:
        detail = probe()
        checks[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **(detail or {})}
        return True
    except Exception as exc:  # any failure makes the process not ready, with the reason
        checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return False


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    finally:
        client.close()


def _model() -> dict[str, Any]:
    from valuation.engine import active_model

    version, _bundle = active_model()  # loads it once per process
    return {"version": version.version}


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, Redis answers, and the active model is loaded. 503 with the
    failing checks otherwise (valuations still work without Redis; a balancer may still route here,
    but the answer says what is missing)."""
    checks: dict[str, dict[str, Any]] = {}
    ready = all(
        [
            _check("database", _database, checks),
            _check("redis", _redis, checks),
            _check("model", _model, checks),
        ]
    )
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )
