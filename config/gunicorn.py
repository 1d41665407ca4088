"""gunicorn settings shared by `make demo`, the Dockerfile and compose (`gunicorn -c config/gunicorn.py`).

Command-line options given besides ``-c`` take precedence, so a deployment can still change the bind
address or the number of workers. The hook tells Prometheus's multiprocess mode (config/metrics.py)
that a worker died, so its live gauges (the model version it used) stop being reported.
"""

from __future__ import annotations

import os
from typing import Any

wsgi_app = "config.wsgi"


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
