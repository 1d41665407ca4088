"""Small servers the tests start: a free loopback port, a local HTTP server, waiting for an app."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Quiet(http.server.BaseHTTPRequestHandler):
    """A handler that keeps the test output clean; subclasses answer GET."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class FixedBody(Quiet):
    """Answers every GET with ``body`` (200, with its length)."""

    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@contextmanager
def http_serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread; yields ``http://127.0.0.1:PORT``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def wait_answers(url: str, process: subprocess.Popen[bytes] | None = None, *, timeout: float = 30) -> None:
    """Wait until ``url`` answers; fail with the process's errors if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                errors = process.stderr.read() if process.stderr else b""
                raise RuntimeError(f"the server exited: {errors.decode()[-2000:]}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.2)


@contextmanager
def app_serve(command: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    """Run the app in its own process (``command``, from the project folder, listening on ``port``,
    with ``env`` added to ours); yields its URL once /healthz answers, and stops it afterwards."""
    from django.conf import settings

    server = subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_answers(base + "/healthz", server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def python_command(*args: str) -> list[str]:
    """``args`` run by this interpreter: a module (``-m gunicorn``) or ``manage.py``."""
    return [sys.executable, *args]
