"""The partner API over HTTP on the bench town (issue: partner REST API).

Serves the app with gunicorn (2 workers) and runs a Celery worker, as `make demo` does, on the bench
database (the valuation benchmark's town of 200,000 parcels and sales, and its model), then times:
one valuation at a time over HTTP (``POST /api/v1/valuations``, client-side latency, keep-alive), and
a batch of 10,000 (``POST /api/v1/valuations/batch`` until its status URL says done). Targets: median
<= 40 ms, p99 <= 150 ms; batch >= 500 valuations per second with explanations on 2 cores.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests
from django.conf import settings

from benchmarks import Figure, median, percentile

SINGLE = 200
BATCH = 10_000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run() -> list[Figure]:
    from benchmarks.bench_valuation import N_PARCELS, _capakey, build_town, ensure_model
    from valuation.api.keys import api_key_issue
    from valuation.models import Partner

    model_dir = Path(settings.BASE_DIR) / "var" / "models-bench"
    build_town()
    from django.test import override_settings

    with override_settings(MODEL_DIR=model_dir):
        ensure_model(model_dir)
    partner, _ = Partner.objects.get_or_create(slug="bench-api", defaults={"name": "Bench API"})
    _, key = api_key_issue(partner=partner, scopes=["valuate"], name="bench")
    redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    env = {
        **os.environ,
        "DEBUG": "1",
        "MODEL_DIR": str(model_dir),
        "API_RATE": "1000000/min",
        "REDIS_URL": urlunsplit(redis._replace(path="/13")),  # no other worker takes the bench's tasks
        "DATABASE_URL": os.environ["DATABASE_URL"],
    }
    port = _port()
    base = f"http://127.0.0.1:{port}"
    venv = Path(sys.executable).parent
    web = subprocess.Popen(  # noqa: S603 - our own tools from our own venv
        [str(venv / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(  # noqa: S603
        [
            str(venv / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            "default",
            "-c",
            "1",
            "-n",
            f"bench-api-{port}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {key}"
        for _ in range(300):
            try:
                session.get(base + "/healthz", timeout=5).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.2)
        rng = np.random.default_rng(3)
        keys = [_capakey(int(i)) for i in rng.integers(0, N_PARCELS, SINGLE + 10)]
        for capakey in keys[:10]:  # warm both web workers: model and sales loaded
            session.post(
                base + "/api/v1/valuations", json={"capakey": capakey}, timeout=120
            ).raise_for_status()
        times = []
        for capakey in keys[10:]:
            started = time.perf_counter()
            session.post(
                base + "/api/v1/valuations", json={"capakey": capakey}, timeout=60
            ).raise_for_status()
            times.append(time.perf_counter() - started)
        items = [{"capakey": _capakey(int(i))} for i in rng.integers(0, N_PARCELS, BATCH)]
        started = time.perf_counter()
        queued = session.post(base + "/api/v1/valuations/batch", json={"items": items}, timeout=120)
        queued.raise_for_status()
        status_url = queued.json()["status_url"]
        while True:
            state = session.get(status_url, timeout=60).json()
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        failed = sum("error" in r for r in state.get("results", []))
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=30)
    return [
        Figure(
            "API: one valuation over HTTP, median",
            median(times) * 1000,
            "ms",
            f"{SINGLE} requests",
            "<= 40 ms",
        ),
        Figure("API: one valuation over HTTP, p99", percentile(times, 99) * 1000, "ms", "", "<= 150 ms"),
        Figure(
            "API: batch of 10,000 with explanations (POST to done)",
            BATCH / elapsed,
            "per s",
            f"{elapsed:.1f} s, status {state['status']}, {failed} failed",
            ">= 500/s",
        ),
    ]
