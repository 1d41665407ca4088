"""Warm a web process before it serves its first request (called by ``config/wsgi.py``).

A new gunicorn worker used to spend its first request importing the URLconf, and through the
valuation views LightGBM, scikit-learn and SciPy (0.8 s), and its first valuation loading the model
and the sales (0.1-0.3 s); with sync workers every request behind those waited as long. Measured by
``make loadtest``: the p99 of a fresh demo was mostly these first requests.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def warm_process() -> None:
    """Import every view and load the active model and the sales snapshot. Never raises: without a
    model or a database the process still starts, and ``/readyz`` says what is missing."""
    from django.db import connections
    from django.urls import get_resolver

    started = time.perf_counter()
    try:
        get_resolver().url_patterns  # noqa: B018 - the import is the point
        from valuation.engine import NoActiveModel, active_model
        from valuation.sales_data import sales_snapshot

        try:
            active_model()
        except NoActiveModel:
            log.info("warm-up: no active model yet")
            return
        sales_snapshot().grid()
    except Exception:
        log.warning("warm-up incomplete; the first requests will do it", exc_info=True)
    finally:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:  # none must outlive a fork (gunicorn --preload)
                connection.close()
        log.info("warm-up took %.2f s", time.perf_counter() - started)
