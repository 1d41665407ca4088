"""Authentication by API key (``Authorization: Api-Key <key>`` or ``X-Api-Key: <key>``), scopes,
and throttling per key."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from valuation.api.keys import api_key_check
from valuation.models import ApiKey

log = logging.getLogger(__name__)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        presented = request.META.get("HTTP_X_API_KEY", "")
        if header.startswith(self.keyword + " "):
            presented = header[len(self.keyword) + 1 :]
        if not presented:
            return None
        key = api_key_check(presented)
        if key is None:
            raise exceptions.AuthenticationFailed("This API key is unknown or revoked.")
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def partner_of(request: Request) -> Any:
    return request.auth.partner if isinstance(request.auth, ApiKey) else None


class HasScope(permissions.BasePermission):
    """The key carries the view's ``required_scope``."""

    message = "This API key does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("Send your API key: 'Authorization: Api-Key <key>'.")
        return getattr(view, "required_scope", None) in request.auth.scopes


class PerKeyThrottle(throttling.SimpleRateThrottle):
    """``API_RATE`` requests per key (default 600/min); 429 with Retry-After beyond. A cache (Redis)
    that does not answer lets requests through rather than refusing everyone."""

    scope = "api-key"

    def get_rate(self) -> str:
        return str(getattr(settings, "API_RATE", "600/min"))

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        return f"throttle:api-key:{request.auth.pk}"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache is down
            log.warning("API throttle unavailable: cache error", exc_info=True)
            return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the API-key authentication."""

    target_class = "valuation.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>` (or the key alone in an `X-Api-Key` header).",
        }
