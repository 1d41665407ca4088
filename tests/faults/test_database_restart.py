"""PostgreSQL restarted under load: while it is down every request gets a clean 503 (a readable page,
the API's error body, /readyz naming the database), and afterwards requests succeed again without
restarting the app.

A private PostgreSQL cluster holds a copy of the session's test database (pg_dump / pg_restore: a few
seconds); gunicorn serves the app from it while threads send requests; the cluster is stopped with
``pg_ctl stop -m fast`` (what a restart does first) and started again.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.faults.conftest import (
    Account,
    FaultDirs,
    PrivateCluster,
    app_env,
    children,
    database_url,
    start_web,
    web_login,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

THREADS = 6


@dataclass
class Answer:
    kind: str
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all (connection refused, timeout)
    body: str
    retry_after: str


class Load:
    """Threads that value (API), open the search page and ask /readyz, in turn, until stopped."""

    def __init__(self, base: str, cookies: Any, api_key: str, address_id: int) -> None:
        self.base, self.cookies, self.api_key, self.address_id = base, cookies, api_key, address_id
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)]

    def _one(self, session: requests.Session, kind: str) -> requests.Response:
        if kind == "api":
            return session.post(
                f"{self.base}/api/v1/valuations",
                json={"address_id": self.address_id, "facts": {"living_area_m2": 130}},
                headers={"Authorization": f"Api-Key {self.api_key}"},
                timeout=20,
            )
        if kind == "page":
            return session.get(f"{self.base}/search/", timeout=20, allow_redirects=False)
        return session.get(f"{self.base}/readyz", timeout=20)

    def _run(self, n: int) -> None:
        session = requests.Session()
        session.headers["Accept-Language"] = "en"
        session.cookies.update(self.cookies)
        kinds = ["api", "page", "ready"]
        i = n
        while self.running.is_set():
            kind = kinds[i % 3]
            i += 1
            started = time.monotonic()
            try:
                response = self._one(session, kind)
                status, body = response.status_code, response.text
                retry_after = response.headers.get("Retry-After", "")
            except requests.RequestException as exc:
                status, body, retry_after = 0, repr(exc), ""
            with self.lock:
                self.answers.append(Answer(kind, started, time.monotonic(), status, body, retry_after))

    def start(self) -> None:
        self.running.set()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.running.clear()
        for thread in self.threads:
            thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.started >= start and a.ended <= end]


OK = {"api": 201, "page": 200, "ready": 200}


def test_postgres_restarted_under_load_requests_fail_cleanly_then_succeed(
    account: Account, house: Any, private_cluster: PrivateCluster, fault_dirs: FaultDirs
) -> None:
    from django.conf import settings

    env = app_env(
        database=database_url(port=private_cluster.port, name="notary"),
        redis=settings.REDIS_URL,
        model_dir=fault_dirs.models,
    )
    web = start_web(env, fault_dirs.logs, workers=2, threads=4)  # connects on the first request
    load: Load | None = None
    try:
        private_cluster.copy_database(database_url(), "notary")
        base = web.wait_ready().base
        session = web_login(base, account.notary.username)
        load = Load(base, session.cookies, account.api_key, house.pk)
        for kind in OK:  # warm both workers (model loaded) before measuring
            for _ in range(2):
                assert load._one(session, kind).status_code == OK[kind]
        gunicorn_workers = children(web.pid)
        load.start()
        time.sleep(1.0)
        up_until = time.monotonic()

        private_cluster.stop("fast")
        down_at = time.monotonic()
        time.sleep(2.0)
        restarting_at = time.monotonic()
        private_cluster.start()  # pg_ctl -w: returns once it accepts connections
        back_at = time.monotonic()
        time.sleep(2.5)
        load.stop()
        ended = time.monotonic()

        up = load.between(0, up_until)
        # Started after the stop had taken effect, answered before the start was asked for.
        down = load.between(down_at + 0.2, restarting_at)
        everything = load.between(0, ended)
        assert up and all(a.status == OK[a.kind] for a in up), {(a.kind, a.status) for a in up}

        # While down: 503 for everyone, never a 500 or a dropped connection, each the right shape.
        assert {a.kind for a in down} == {"api", "page", "ready"}
        assert {a.status for a in down} == {503}, [
            (a.kind, a.status, round(a.started - down_at, 3), round(a.ended - down_at, 3), a.body[:300])
            for a in down
            if a.status != 503
        ]
        assert all(a.status in (*OK.values(), 503) for a in everything), {a.status for a in everything}
        page = next(a for a in down if a.kind == "page")
        assert "Service temporarily unavailable" in page.body and "Try again in a minute." in page.body
        assert "<script" not in page.body and "style=" not in page.body and "<style" not in page.body
        assert page.retry_after == "60"
        api = next(a for a in down if a.kind == "api")
        error = json.loads(api.body)["error"]
        assert error["code"] == "unavailable" and error["fields"] == {} and "database" in error["message"]
        ready = next(a for a in down if a.kind == "ready")
        checks = json.loads(ready.body)["checks"]
        assert checks["database"]["ok"] is False and checks["redis"]["ok"] is True

        # Afterwards: every kind succeeds again, from the same processes (nothing was restarted).
        after = load.between(back_at, ended)
        succeeded = {k: [a.ended - back_at for a in after if a.kind == k and a.status == OK[k]] for k in OK}
        assert all(succeeded.values()), succeeded
        first_ok = {kind: min(times) for kind, times in succeeded.items()}
        last_failure = max((a.ended for a in everything if a.status != OK[a.kind]), default=down_at)
        settled = [a for a in after if a.started > last_failure]
        assert settled and all(a.status == OK[a.kind] for a in settled)
        assert web.alive() and children(web.pid) == gunicorn_workers

        slowest_down, downtime = max(a.ended - a.started for a in down), restarting_at - down_at
        print(
            f"\n{len(everything)} requests from {THREADS} threads; database down {downtime:.1f} s: "
            f"{len(down)} answered 503 (slowest {slowest_down * 1000:.0f} ms); after the restart the first "
            + ", ".join(f"{k} success after {v * 1000:.0f} ms" for k, v in first_ok.items())
            + f"; last failure {max(0.0, last_failure - back_at) * 1000:.0f} ms after the restart"
        )
    finally:
        if load is not None:
            load.stop()
        web.stop()
