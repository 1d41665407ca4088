"""Operational endpoints that belong to no domain app."""

from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Readiness (database, Redis, model) is checked by /readyz."""
    return JsonResponse({"status": "ok"})
