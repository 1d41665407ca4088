"""Refuse a request body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413 before anything reads it.

Django raises only when a body is read, and the first reader (the request-size metric) would turn it into
a bare 400 page. Here the API answers in its JSON error shape and the pages with a sentence. Bodies sent
without a length are bounded by the API's parser (valuation/api/parsers.py) and Django's form parsing.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or ""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(request, limit)
        return self.get_response(request)


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    if request.path.startswith("/api/"):
        from valuation.api.parsers import too_large_message

        body = {"code": "too_large", "message": too_large_message(limit), "fields": {}}
        return JsonResponse({"error": body}, status=413)
    return HttpResponse(
        _("What you sent is too large (over %(limit)s bytes).") % {"limit": f"{limit:,}"},
        status=413,
        content_type="text/plain; charset=utf-8",
    )
