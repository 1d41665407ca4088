"""Prometheus metrics of the service (request latency and errors come from django-prometheus).

Served at /metrics to the addresses in METRICS_ALLOWED_IPS only (default: loopback). With several
gunicorn workers set PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode) so that a
scrape sums them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

VALUATIONS = Counter("notary_valuations_total", "Valuations made, by channel.", ["channel"])
MODEL_VERSION = Gauge(
    "notary_model_version_info", "The model version this process uses (value 1).", ["version"]
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


def model_in_use(version: str) -> None:
    MODEL_VERSION.clear()
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


REGISTRY.register(QueueLengths())


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


REGISTRY.register(ModelMonitoring())


def metrics(request: HttpRequest) -> HttpResponse:
    if request.META.get("REMOTE_ADDR", "") not in settings.METRICS_ALLOWED_IPS:
        return HttpResponseForbidden("Metrics are served to the monitoring host only.")
    from django_prometheus.exports import ExportToDjangoView

    response: Any = ExportToDjangoView(request)
    return response
