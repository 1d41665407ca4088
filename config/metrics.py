"""Prometheus metrics of the service (request latency and errors come from django-prometheus).

Served at /metrics to the addresses in METRICS_ALLOWED_IPS only (default: loopback). gunicorn runs
several worker processes and Celery runs the refreshes in its own: with PROMETHEUS_MULTIPROC_DIR set
(prometheus_client's multiprocess mode; `make demo` and compose set it, and empty it before the
processes start) every process writes its figures there and a scrape reads them all, whichever
worker answers it. config/gunicorn.py removes a dead worker's live gauges.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

VALUATIONS = Counter("notary_valuations_total", "Valuations made, by channel.", ["channel"])
MODEL_VERSION = Gauge(
    "notary_model_version_info",
    "The model version a process uses (value 1; one series per live process in multiprocess mode).",
    ["version"],
    multiprocess_mode="liveall",
)
REFRESH_RUNS = Counter(
    "notary_refresh_runs_total", "Open-data refresh runs by source and outcome.", ["source", "status"]
)
REFRESH_SECONDS = Histogram(
    "notary_refresh_duration_seconds",
    "Duration of open-data refresh runs.",
    ["source"],
    buckets=(0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
)
QUEUES = ("default", "ingest", "training")


_in_use: list[str] = []


def model_in_use(version: str) -> None:
    # The previous version goes to 0 rather than away: in multiprocess mode a cleared series would
    # stay in this process's file with its last value.
    for previous in _in_use:
        MODEL_VERSION.labels(previous).set(0)
    _in_use[:] = [version]
    MODEL_VERSION.labels(version).set(1)


class QueueLengths:
    """Celery's queue lengths (Redis lists), read at each scrape; absent when Redis does not answer."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "notary_task_queue_length", "Tasks waiting per Celery queue.", labels=["queue"]
        )
        try:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.3, socket_timeout=0.3)
            try:
                for queue in QUEUES:
                    family.add_metric([queue], float(client.llen(queue)))
            finally:
                client.close()
        except Exception:
            log.warning("queue lengths unavailable: Redis did not answer", exc_info=True)
        yield family


class ModelMonitoring:
    """The last model monitoring report (valuation/monitoring.py, hourly task or the admin page),
    read from the shared cache at each scrape; absent before the first report."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from valuation.monitoring import summary_cached

        summary = summary_cached()
        if not summary:
            return
        labels = ["version"]
        figures = {
            "notary_model_feature_psi_max": ("Largest feature PSI of recent valuations.", summary["max_psi"]),
            "notary_model_prediction_psi": ("PSI of the predicted prices.", summary["prediction_psi"]),
            "notary_model_monitoring_warnings": ("Warnings of the last report.", summary["warnings"]),
            "notary_model_monitoring_timestamp_seconds": (
                "When the last report was made.",
                summary["generated_at"],
            ),
        }
        for name, (text, value) in figures.items():
            if value is None:
                continue
            family = GaugeMetricFamily(name, text, labels=labels)
            family.add_metric([summary["version"]], float(value))
            yield family


COLLECTORS = (QueueLengths(), ModelMonitoring())
for _collector in COLLECTORS:
    REGISTRY.register(_collector)


def metrics(request: HttpRequest) -> HttpResponse:
    if request.META.get("REMOTE_ADDR", "") not in settings.METRICS_ALLOWED_IPS:
        return HttpResponseForbidden("Metrics are served to the monitoring host only.")
    import prometheus_client

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in COLLECTORS:  # read at scrape time from Redis, the same in every process
            registry.register(collector)
    else:
        registry = REGISTRY
    return HttpResponse(
        prometheus_client.generate_latest(registry), content_type=prometheus_client.CONTENT_TYPE_LATEST
    )
