"""compose.yaml, the Dockerfile and `make demo` run the same processes on the same queues."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
QUEUES = {settings.CELERY_TASK_DEFAULT_QUEUE} | {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()}


def _queues(command: str) -> set[str]:
    match = re.search(r"-Q\s+(\S+)", command)
    assert match, command
    return set(match.group(1).split(","))


def test_compose_has_every_service_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "db", "redis"} <= set(services)
    for name in ("web", "worker", "beat", "db", "redis"):
        assert "healthcheck" in services[name], name
    assert services["db"]["image"].startswith("postgis/postgis:15")
    assert _queues(services["worker"]["command"]) == QUEUES
    assert "beat" in services["beat"]["command"]
    assert {"pgdata", "models"} <= set(compose["volumes"])


def test_make_demo_worker_listens_to_the_same_queues() -> None:
    script = (ROOT / "scripts" / "dev.sh").read_text()
    worker_line = next(line for line in script.splitlines() if "worker -Q" in line)
    assert _queues(worker_line) == QUEUES


def test_dockerfile_runs_as_non_root_from_the_lock_file() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "requirements.lock" in dockerfile
    assert "collectstatic" in dockerfile
    assert re.search(r"^USER app$", dockerfile, re.M)
    assert "gunicorn" in dockerfile


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "API key": re.compile(r"\bnv_[0-9a-f]{8}_[A-Za-z0-9_-]{30,}"),
    "secret in code": re.compile(
        r"(?i)\b(secret_key|api_key|password|passwd|token)\b['\"]?\s*[:=]\s*['\"][^'\"\s$]{8,}['\"]"
    ),
    "secret in env file": re.compile(r"(?m)^\s*#?\s*[A-Z_]*(SECRET|PASSWORD|TOKEN)[A-Z_]*=[^\s$]{8,}"),
    "AWS key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
}
# Published on purpose: the offline demo's login, and a build-time placeholder that signs nothing.
ALLOWED = ("demo-notary-2026", "collectstatic-only-not-a-secret", "insecure-debug-only-key")


def test_no_secret_in_the_repository_or_the_image() -> None:
    """Tracked files outside tests/ hold no key or password; the image leaves .env and var/ out."""
    import subprocess

    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    found = []
    for name in tracked:
        path = ROOT / name
        if not name or name.startswith("tests/") or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
                if not any(word in line for word in ALLOWED):
                    found.append(f"{name}: {kind}: {line.strip()[:120]}")
    assert found == []
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "var", ".git"} <= ignored


def test_web_and_worker_share_their_metrics_in_demo_and_compose() -> None:
    """Both start gunicorn with config/gunicorn.py and give every process one PROMETHEUS_MULTIPROC_DIR,
    emptied before they start, so that /metrics reports the worker's refreshes and all web workers."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app_env = compose["x-app"]["environment"]
    assert app_env["PROMETHEUS_MULTIPROC_DIR"] == "/data/metrics"
    assert "rm -f /data/metrics/*.db" in compose["services"]["migrate"]["command"]
    assert "-c config/gunicorn.py" in _cmd((ROOT / "Dockerfile").read_text())
    dev = (ROOT / "scripts" / "dev.sh").read_text()
    assert 'PROMETHEUS_MULTIPROC_DIR="$VAR/run/prometheus"' in dev
    assert 'gunicorn" -c config/gunicorn.py' in dev


def _cmd(dockerfile: str) -> str:
    line = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    return " ".join(re.findall(r'"([^"]+)"', line))
