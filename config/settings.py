"""One settings module, driven only by environment variables (documented in .env.example).

Debug mode (DEBUG=1) is for a developer's machine and the offline demo; everything else runs with
DEBUG=0, where SECRET_KEY must be set and the security settings default to their strict values.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config import geolibs
from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

_secret = os.environ.get("SECRET_KEY", "")
if not _secret:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    _secret = "insecure-debug-only-key-never-used-in-production-" + "x" * 20
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# GDAL, GEOS and PROJ come from the pyogrio and shapely wheels; config/geolibs.py says why.
GDAL_LIBRARY_PATH, GEOS_LIBRARY_PATH = geolibs.configure()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_celery_beat",
    "opendata",
    "features",
    "valuation",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.observability.RequestIdMiddleware",
    "config.limits.RequestSizeLimitMiddleware",
    "config.resilience.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
METRICS_ALLOWED_IPS = env_str("METRICS_ALLOWED_IPS", "127.0.0.1,::1").split(",")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notary"),
        engine="django.contrib.gis.db.backends.postgis",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "nl"
LANGUAGES = [("nl", "Nederlands"), ("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Brussels"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Where trained model artifacts (LightGBM text files with their provenance) and downloaded or
# uploaded source files live. Both survive restarts; in compose they are volumes.
MODEL_DIR = Path(env_str("MODEL_DIR", str(BASE_DIR / "var" / "models")))
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var" / "data")))
# A retrained model becomes active only when its MdAPE on the most recent sales is at most the active
# model's times (1 + this tolerance); 0.0 means "not worse".
MODEL_GATE_TOLERANCE = float(env_str("MODEL_GATE_TOLERANCE", "0.0"))
# Size limits of what the refreshes read: a download (FETCH_MAX_BYTES) and what a zip would unpack to
# (UNZIPPED_MAX_BYTES). Both sit above the largest real source (national OSM, a DSM tile set).
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 16 << 30)
UNZIPPED_MAX_BYTES = env_int("UNZIPPED_MAX_BYTES", 64 << 30)
# Largest request body the web app and the API accept (a 10,000-row API batch is about 3 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 8 << 20)

# Redis carries Celery's broker and results. Caching stays in process memory so that valuations keep
# working while Redis is down.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Shared by the web processes (login throttling): Redis. Callers tolerate it being down.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "notary",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "search"
LOGOUT_REDIRECT_URL = "login"

# The map of the result page: a tile URL template (e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png
# where its terms allow), empty for none. Parcel, buildings and sales are vector layers either way.
MAP_TILE_URL = env_str("MAP_TILE_URL", "")
MAP_TILE_ATTRIBUTION = env_str("MAP_TILE_ATTRIBUTION", "")

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600, "socket_connect_timeout": 2}
# A send to a Redis that does not answer fails within a second (the work is recorded in the database
# and sent again by config.celery.dispatch_pending), instead of holding a web request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# How often each worker sends recorded work again (and at every (re)connection to the broker).
DISPATCH_PENDING_EVERY_S = env_int("DISPATCH_PENDING_EVERY_S", 60)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# Ingest (source refreshes) and training run on their own queues so a long refresh never delays a
# retraining and vice versa; `make demo` and compose start one worker that listens to all three.
CELERY_TASK_ROUTES = {
    "opendata.*": {"queue": "ingest"},
    "features.*": {"queue": "ingest"},
    "valuation.train*": {"queue": "training"},
}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["valuation.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["valuation.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["valuation.api.auth.PerKeyThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["valuation.api.parsers.LimitedJSONParser"],
    "EXCEPTION_HANDLER": "valuation.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_RATE = env_str("API_RATE", "600/min")  # requests per API key
SPECTACULAR_SETTINGS = {
    "TITLE": "Notary valuation API",
    "DESCRIPTION": (
        "Indicative prices of Belgian houses from open data, with explanations. Authenticate with "
        "`Authorization: Api-Key <key>` (keys are issued by staff, per partner, with scopes). Errors "
        'are `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,  # the schema documents the API, not itself
}

# Security. Strict unless DEBUG; behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=1.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): our own origin only, no inline script or style anywhere. The
# result page draws its bars as SVG and starts its map from static files; the admin shows geometries on
# the same vendored Leaflet (opendata/admin_map.py). Map tiles, when configured, are the one other origin.
# ReDoc (/api/docs/) injects its own <style> elements and runs a blob: worker: config/urls.py widens the
# policy for that page alone.
_tile_origin = urlsplit(MAP_TILE_URL.replace("{s}", "a"))
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"]
        + ([f"{_tile_origin.scheme}://{_tile_origin.netloc}"] if _tile_origin.netloc else []),
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# One JSON object per line with the request id (LOG_FORMAT=json, the default outside debug), or plain.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "plain" if DEBUG else "json"),
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
