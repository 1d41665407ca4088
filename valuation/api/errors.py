"""One error shape everywhere: ``{"error": {"code", "message", "fields"}}``, 4xx for every bad input."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from valuation.engine import NoActiveModel, ValuationInputError
from valuation.locate import LocateError


def _fields(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(name): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            for name, messages in detail.items()
        }
    return {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, LocateError):
        body = {"code": "not_found", "message": str(exc), "fields": {exc.field: [str(exc)]}}
        if exc.suggestions:
            body["suggestions"] = exc.suggestions
        return Response({"error": body}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ValuationInputError):
        return Response(
            {"error": {"code": "invalid", "message": str(exc), "fields": {exc.field: [str(exc)]}}},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, NoActiveModel):
        return Response(
            {"error": {"code": "unavailable", "message": str(exc), "fields": {}}},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(detail)
        message = "Some fields are not valid: " + ", ".join(fields) if fields else "The request is not valid."
        if isinstance(detail, list):
            message = " ".join(str(d) for d in detail)
        body = {"code": "invalid", "message": message, "fields": fields}
    else:
        code = getattr(exc, "default_code", "error")
        body = {"code": str(code), "message": str(detail) if detail is not None else str(exc), "fields": {}}
    response.data = {"error": body}
    return response
