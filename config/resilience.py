"""While the database is down, answer 503 "try again in a minute" instead of a server error.

PostgreSQL restarting, failing over or refusing connections raises ``OperationalError`` (or
``InterfaceError`` on a connection that broke) wherever a request touches the database. Each such
request gets a clean answer: the notary's pages a short page in their language (``503.html``, which
neither extends the site's layout nor reads the session, so it renders without a database), the API
its usual error body ``{"error": {"code": "unavailable", ...}}``, both with ``Retry-After``. ``/readyz``
answers its own 503 naming the database. Nothing needs a restart afterwards: with
``CONN_HEALTH_CHECKS`` Django drops a broken persistent connection at the start of the next request
and connects again.

Views raise into :meth:`DatabaseUnavailableMiddleware.process_exception`. An error outside a view (a
session saved in another middleware's response phase) is turned into a 500 response by Django before
it reaches any middleware; :func:`_note_database_error` marks the request from Django's
``got_request_exception`` signal, and the middleware replaces that 500.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_S = 60
_MARK = "_notary_database_unavailable"


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 for ``request``: the API's error body under /api/, else the readable page."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        message = (
            "The service is temporarily unavailable (its database does not answer). Try again in a minute."
        )
        response = JsonResponse(
            {"error": {"code": "unavailable", "message": message, "fields": {}}}, status=503
        )
    else:
        # No request in the context: context processors would read the session and the user from the
        # database that is down. The language was chosen by LocaleMiddleware already.
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Turn a database outage into 503 (see the module docstring). Put it high in MIDDLEWARE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        log.warning("database unavailable, answered 503 for %s: %s", request.path, exception)
        return unavailable_response(request)


def _note_database_error(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        setattr(request, _MARK, True)


got_request_exception.connect(_note_database_error, dispatch_uid="notary-database-unavailable")
