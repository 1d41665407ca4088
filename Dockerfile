# syntax=docker/dockerfile:1
# The app image: web (gunicorn), worker and beat all run from it (see compose.yaml).
# GDAL, GEOS and PROJ come from the pyogrio and shapely wheels pinned in requirements.lock
# (config/geolibs.py), so the image needs no distribution GDAL; libpq comes with psycopg[binary].
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends libexpat1 libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

FROM base AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv "$VIRTUAL_ENV"
COPY requirements.lock /tmp/requirements.lock
RUN pip install -r /tmp/requirements.lock
# The nl and fr translations, compiled here (gettext stays out of the app image).
COPY . /src
RUN cd /src && DEBUG=1 python manage.py compilemessages --ignore "var" -v 0

FROM base AS app
RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app . /app
COPY --from=build --chown=app:app /src/locale /app/locale
# collectstatic needs settings but no database or real secret.
RUN DEBUG=0 SECRET_KEY=collectstatic-only-not-a-secret STATIC_ROOT=/app/staticfiles \
        python manage.py collectstatic --no-input -v 0 \
    && mkdir -p /data/models /data/sources /data/metrics \
    && chown -R app:app /data /app/staticfiles
ENV STATIC_ROOT=/app/staticfiles \
    MODEL_DIR=/data/models \
    DATA_DIR=/data/sources
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
# config/gunicorn.py: the app, and the hook that retires a dead worker's metrics.
CMD ["gunicorn", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
