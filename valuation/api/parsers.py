"""JSON bodies within the size limit the rest of the site has (``DATA_UPLOAD_MAX_MEMORY_SIZE``).

config/limits.py refuses a declared length over the limit; DRF reads the raw stream, so a body sent
without a length (chunked) is bounded here. Over the limit the answer is 413 in the API's error shape.
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class LimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and str(declared).isdigit() and int(declared) > limit:
            raise _too_large(limit)
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:  # a body sent without a length
            raise _too_large(limit)
        return super().parse(io.BytesIO(data), media_type, parser_context)


def too_large_message(limit: int) -> str:
    """What a partner reads when a body is over the limit (here and in config/limits.py)."""
    return (
        f"The request body is over {limit:,} bytes. Send fewer rows per request (at most 10,000), "
        "or split the batch."
    )


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(too_large_message(limit))
