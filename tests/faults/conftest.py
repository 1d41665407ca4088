"""Fault tests: real processes (gunicorn, a Celery worker, manage.py commands) against private Redis
and PostgreSQL servers that the tests stop, kill and start again by PID. The shared servers on 5432
and 6379 are never touched: the tests read and write the session's test database through committed
transactions (the processes they start must see the data), and remove what they created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "Storing-2026-veilig"


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something true; return it, or fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


# --- processes ----------------------------------------------------------------------------------------
@dataclass
class Process:
    """A process this test started, stopped by its own PID (never by name)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.kill(self.pid, sig)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def spawn(name: str, args: list[str], *, env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, popen, log)


def database_url(*, port: int | None = None, name: str | None = None) -> str:
    """The URL of the session's test database (or of a copy on another server / under another name)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{name or db['NAME']}"


def app_env(*, database: str, redis: str, model_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=database,
        REDIS_URL=redis,
        MODEL_DIR=str(model_dir),
        LOG_FORMAT="plain",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@dataclass
class Web(Process):
    """gunicorn serving the app, as deployed."""

    base: str = ""

    def wait_ready(self) -> Web:
        def up() -> bool:
            assert self.alive(), self.output()[-3000:]
            try:
                return requests.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, timeout=90, what="gunicorn answering /healthz", every=0.2)
        return self


def start_web(env: dict[str, str], logs: Path, *, workers: int = 2, threads: int = 4) -> Web:
    """Start gunicorn (2 workers of 4 threads); ``wait_ready`` waits until /healthz answers."""
    port = free_port()
    options = f"--bind 127.0.0.1:{port} --workers {workers} --threads {threads} --timeout 120"
    started = spawn(
        "gunicorn", [sys.executable, "-m", "gunicorn", "config.wsgi", *options.split()], env=env, logs=logs
    )
    return Web(started.name, started.popen, started.log, base=f"http://127.0.0.1:{port}")


class Worker(Process):
    """A Celery worker in its own process (solo pool), as `make demo` runs it."""

    def wait_ready(self) -> Worker:
        wait_until(lambda: "ready." in self.output() or not self.alive(), timeout=90, what="the worker ready")
        assert self.alive(), self.output()[-3000:]
        return self


def start_worker(env: dict[str, str], logs: Path, *, queues: str = "default,ingest") -> Worker:
    """Start a worker on ``queues``; ``wait_ready`` waits until it says so."""
    name = f"faults-{uuid.uuid4().hex[:8]}@%h"
    options = f"-P solo -Q {queues} -n {name} --without-gossip --without-mingle --without-heartbeat -l INFO"
    started = spawn(
        "worker",
        [sys.executable, "-m", "celery", "-A", "config", "worker", *options.split()],
        env=env,
        logs=logs,
    )
    return Worker(started.name, started.popen, started.log)


def children(pid: int) -> set[int]:
    """PIDs of a process's children (gunicorn's workers), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


# --- a private Redis ----------------------------------------------------------------------------------
class RedisServer:
    """redis-server on a free port, no persistence: killing it loses whatever was queued in it."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.logs = logs
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary
        self.process = spawn(
            "redis",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            env=dict(os.environ),
            logs=self.logs,
        )
        wait_until(self.answers, timeout=20, what="the private redis-server answering")

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=2)


@pytest.fixture
def private_redis(fault_dirs: FaultDirs) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(fault_dirs.logs)
    server.start()
    yield server
    server.kill()


# --- a private PostgreSQL cluster ---------------------------------------------------------------------
def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PrivateCluster:
    """initdb, start, stop (``pg_ctl stop -m fast``, what a restart does) and start again; as the
    ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bin = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="notary-faults-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, cwd=self.root)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), *f"-D {self.data} -U postgres -A trust -E UTF8 --no-sync".split())

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        log = self.root / "server.log"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def copy_database(self, source_url: str, name: str) -> None:
        """The session's test database, dumped and restored here under ``name``."""
        dump = self.root / "copy.dump"
        source = source_url.replace("postgres://", "postgresql://")
        pg_dump = [str(self.bin / "pg_dump"), "-Fc", "-f", str(dump), "-d", source]
        subprocess.run(pg_dump, check=True, capture_output=True, timeout=120)
        server = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        subprocess.run([str(self.bin / "createdb"), *server, name], check=True, timeout=60)
        subprocess.run(
            [str(self.bin / "pg_restore"), *server, "--no-owner", "-j", "2", "-d", name, str(dump)],
            check=True,
            capture_output=True,
            timeout=180,
        )

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    bindir = _pg_bindir()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    cluster = PrivateCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


# --- folders, committed data -------------------------------------------------------------------------
@dataclass
class FaultDirs:
    logs: Path
    models: Path


@pytest.fixture
def fault_dirs(tmp_path: Path) -> FaultDirs:
    dirs = FaultDirs(logs=tmp_path / "logs", models=tmp_path / "models")
    dirs.logs.mkdir()
    dirs.models.mkdir()
    return dirs


@pytest.fixture(scope="session")
def django_db_setup(
    django_db_setup: None, django_db_blocker: Any, django_db_keepdb: bool, django_db_createdb: bool
) -> Iterator[None]:
    """pytest-django creates the test database only for sessions holding a test marked django_db, and
    the fault tests are not marked (their writes must be committed, outside a test transaction, and a
    transactional test would flush the session's demo region at its end). Run alone, they set it up."""
    from django.db import connection
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX
    from django.test.utils import setup_databases, teardown_databases

    # Already the test database (pytest-django made it for the session): _get_test_db_name() would
    # prefix it again and a second, empty database would replace the one holding the demo region.
    if str(connection.settings_dict["NAME"]).startswith(TEST_DATABASE_PREFIX):
        yield
        return
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0,
            interactive=False,
            aliases={"default"},  # type: ignore[arg-type]  # a set, as pytest-django passes
            serialized_aliases=set(),
            keepdb=django_db_keepdb and not django_db_createdb,
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=0)


@pytest.fixture
def committed(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Database access outside a test transaction: what the test writes is committed, so the processes
    it starts see it. Each test removes what it made."""
    with django_db_blocker.unblock():
        yield


@dataclass
class Account:
    """A notary of a fresh office, a staff member, and a partner with an API key (all committed)."""

    notary: Any
    staff: Any
    office: Any
    partner: Any
    api_key: str
    made: list[Any] = field(default_factory=list)


@pytest.fixture
def account(demo_model: Any, committed: None) -> Iterator[Account]:
    from django.contrib.auth.models import User
    from django.db.models import Q

    from valuation.api.keys import api_key_issue
    from valuation.models import BatchJob, Membership, Office, Partner, Valuation

    tag = uuid.uuid4().hex[:8]
    office = Office.objects.create(name=f"Faults office {tag}")
    notary = User.objects.create_user(f"notary-{tag}", password=PASSWORD)
    Membership.objects.create(user=notary, office=office)
    staff = User.objects.create_user(f"staff-{tag}", password=PASSWORD, is_staff=True, is_superuser=True)
    partner = Partner.objects.create(name=f"Faults partner {tag}", slug=f"faults-{tag}")
    _, key = api_key_issue(partner=partner, scopes=["valuate"], name="faults")
    made = Account(notary=notary, staff=staff, office=office, partner=partner, api_key=key)
    yield made
    Valuation.objects.filter(Q(office=office) | Q(partner=partner)).delete()
    BatchJob.objects.filter(partner=partner).delete()
    partner.delete()
    Membership.objects.filter(office=office).delete()
    User.objects.filter(pk__in=[notary.pk, staff.pk]).delete()
    office.delete()


def web_login(base: str, username: str, *, language: str = "en") -> requests.Session:
    """A browser-like session logged in through the login form (CSRF cookie and token)."""
    session = requests.Session()
    session.headers["Accept-Language"] = language
    page = session.get(f"{base}/login/", timeout=30)
    assert page.status_code == 200, page.text[:500]
    answer = session.post(
        f"{base}/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[:500]
    return session
