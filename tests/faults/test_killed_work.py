"""A refresh or a training killed while it works leaves nothing half-written, is marked abandoned
instead of "running" forever, and running it again completes. A task delivered twice does its work once.

The killed work runs as ``manage.py`` commands in their own processes (SIGKILL as soon as the
database shows them at work); the reruns and the double deliveries run here.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from tests.faults.conftest import Account, FaultDirs, app_env, database_url, spawn, wait_until
from tests.servers import FixedBody, http_serve

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BEST_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "best" / "openaddress-bevlg.csv"


def best_file(path: Path, n: int) -> Path:
    """A BeSt address CSV of ``n`` addresses in Gent, made from the recorded fixture's rows."""
    with open(BEST_FIXTURE, encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["municipality_id"] == "44021"]
    rows = [r for r in rows if r["postcode"] == "9000" and float(r["EPSG:31370_x"] or 0) > 0]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for i in range(n):
            row = dict(rows[i % len(rows)])
            row["address_id"] = str(3_000_000_000 + i)
            row["house_number"] = str(1 + i // len(rows))
            row["EPSG:31370_x"] = f"{float(row['EPSG:31370_x']) + (i % 997) * 0.5:.2f}"
            row["EPSG:31370_y"] = f"{float(row['EPSG:31370_y']) + (i % 991) * 0.5:.2f}"
            writer.writerow(row)
    return path


def writing_to(table: str) -> bool:
    """Some other session holds a write lock on ``table``: a transaction has begun changing it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid())",
            [table],
        )
        return bool(cursor.fetchone()[0])


def manage(*args: str, env: dict[str, str], fault_dirs: FaultDirs, name: str) -> Any:
    return spawn(name, [sys.executable, "manage.py", *args], env=env, logs=fault_dirs.logs)


@pytest.fixture
def best_cleanup(committed: None) -> Iterator[None]:
    from opendata.models import Address, Municipality, SourceRefreshRun

    yield
    Address.objects.filter(source="best").delete()
    Municipality.objects.filter(source="best").delete()
    SourceRefreshRun.objects.filter(source="best").delete()


def test_a_refresh_killed_mid_swap_keeps_the_previous_data_and_the_next_run_completes(
    demo_model: Any, best_cleanup: None, fault_dirs: FaultDirs, tmp_path: Path
) -> None:
    from config.leases import lease_held
    from opendata.models import Address, RunStatus, SourceRefreshRun
    from opendata.refresh import ABANDONED, last_success, refresh, runs_abandoned_mark

    small, big = best_file(tmp_path / "small.csv", 30), best_file(tmp_path / "big.csv", 20_000)
    first = refresh("best", file=small, stream=io.StringIO())
    assert first.status == RunStatus.SUCCEEDED and first.rows_loaded == 30

    def state() -> list[tuple[Any, ...]]:
        return list(
            Address.objects.filter(source="best")
            .order_by("pk")
            .values_list("pk", "source_id", "street_nl", "house_number", "point")
        )

    before = state()
    env = app_env(database=database_url(), redis="redis://127.0.0.1:1/0", model_dir=fault_dirs.models)
    refreshing = manage(
        "refresh_source",
        "best",
        "--file",
        str(big),
        "--no-follow-up",
        env=env,
        fault_dirs=fault_dirs,
        name="refresh",
    )
    # Killed while its transaction is writing the live table (staging done: progress recorded).
    wait_until(
        lambda: writing_to("opendata_address") or not refreshing.alive(),
        timeout=120,
        what="the refresh writing opendata_address",
        every=0.01,
    )
    assert refreshing.alive(), refreshing.output()[-2000:]
    refreshing.kill(signal.SIGKILL)
    killed = SourceRefreshRun.objects.filter(source="best").latest("started_at")
    assert killed.status == RunStatus.RUNNING and killed.progress_done == 20_000

    # Nothing of the killed load is visible: the addresses are those of the previous run.
    assert state() == before
    assert last_success("best") == first
    # Its lease went with its process; the check marks the run abandoned, not running forever.
    wait_until(lambda: not lease_held("refresh", "best"), timeout=30, what="the dead run's lease released")
    assert runs_abandoned_mark() == 1
    killed.refresh_from_db()
    assert killed.status == RunStatus.FAILED and killed.error == ABANDONED and killed.finished_at

    # Running it again completes (waiting, if need be, for the dead session's work to be rolled back).
    again = refresh("best", file=big, stream=io.StringIO())
    assert again.status == RunStatus.SUCCEEDED and again.rows_loaded == 20_000
    assert Address.objects.filter(source="best").count() == 20_000
    assert runs_abandoned_mark() == 0


def test_a_refresh_left_running_is_marked_abandoned_when_the_next_one_starts(
    demo_model: Any, best_cleanup: None, tmp_path: Path
) -> None:
    from config.leases import Lease
    from opendata.models import RunStatus, SourceRefreshRun
    from opendata.refresh import ABANDONED, RefreshBusy, refresh

    small = best_file(tmp_path / "small.csv", 30)
    dead = SourceRefreshRun.objects.create(source="best", status=RunStatus.RUNNING)  # its process is gone
    holder = Lease("refresh", "best")
    assert holder.acquire()  # a live refresh of best, in another session
    try:
        with pytest.raises(RefreshBusy, match="already running"):
            refresh("best", file=small, stream=io.StringIO())
        assert SourceRefreshRun.objects.get(pk=dead.pk).status == RunStatus.RUNNING  # may be that live one
    finally:
        holder.release()
    run = refresh("best", file=small, stream=io.StringIO())
    assert run.status == RunStatus.SUCCEEDED
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED and dead.error == ABANDONED


@pytest.fixture
def training_sales(demo_model: Any, committed: None) -> Iterator[str]:
    """The demo sales of the west end of the region (about a ninth) under a source of their own:
    enough to train on in seconds. A strip, not a sample, so that every sale keeps its neighbours."""
    from valuation.models import Sale

    source = "faults-training"
    with connection.cursor() as cursor:
        cursor.execute(
            """insert into valuation_sale (source, external_id, sale_date, price_eur, property_type,
                   living_area_m2, land_area_m2, rooms, bedrooms, year_built, epc_kwh_m2, point, address,
                   parcel_id)
               select %s, external_id, sale_date, price_eur, property_type, living_area_m2, land_area_m2,
                   rooms, bedrooms, year_built, epc_kwh_m2, point, address, parcel_id
               from valuation_sale
               where source = 'demo' and st_x(point) < (
                   select percentile_cont(0.11) within group (order by st_x(point))
                   from valuation_sale where source = 'demo')""",
            [source],
        )
    yield source
    Sale.objects.filter(source=source).delete()


def test_a_training_killed_mid_run_is_never_usable_and_the_next_run_completes(
    training_sales: str, fault_dirs: FaultDirs
) -> None:
    from config.leases import lease_held
    from valuation.models import ModelStatus, ModelVersion
    from valuation.tasks import train_model
    from valuation.training import (
        ABANDONED,
        FINISHED,
        TrainingError,
        artifact_intact,
        model_activate,
        model_train,
    )

    active = ModelVersion.objects.get(status=ModelStatus.ACTIVE)
    known = set(ModelVersion.objects.values_list("pk", flat=True))
    env = app_env(database=database_url(), redis="redis://127.0.0.1:1/0", model_dir=fault_dirs.models)
    training = manage("train_model", "--source", training_sales, env=env, fault_dirs=fault_dirs, name="train")

    def at_work() -> ModelVersion | None:
        assert training.alive(), training.output()[-2000:]
        return (
            ModelVersion.objects.exclude(pk__in=known)
            .filter(progress_stage="training and calibrating")
            .first()
        )

    killed = wait_until(at_work, timeout=120, what="the training at work", every=0.05)
    training.kill(signal.SIGKILL)
    killed.refresh_from_db()
    # Not usable: still "training", no files under its name, the active model unchanged.
    assert killed.status == ModelStatus.TRAINING and not killed.artifact_path
    assert not (fault_dirs.models / killed.version).exists()
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) == active
    with pytest.raises(TrainingError):
        model_activate(version=killed)

    wait_until(lambda: not lease_held("training", 0), timeout=30, what="the dead training's lease released")
    request = f"faults-train-{uuid.uuid4().hex[:8]}"
    try:
        with override_settings(MODEL_DIR=fault_dirs.models):
            started = time.perf_counter()
            done = model_train(source=training_sales, request_id=request)  # marks the dead one first
            print(f"\nretraining on {training_sales} took {time.perf_counter() - started:.1f} s")
            killed.refresh_from_db()
            assert killed.status == ModelStatus.FAILED and killed.reason == ABANDONED
            assert done.status in FINISHED and artifact_intact(done)
            assert not [p.name for p in fault_dirs.models.iterdir() if p.name.endswith(".partial")]

            # The same request delivered again (same task id): nothing is trained again.
            count = ModelVersion.objects.count()
            answer = train_model.apply(kwargs={"source": training_sales}, task_id=request).get()
            assert answer["version"] == done.version and ModelVersion.objects.count() == count

            # A model file changed after it was measured cannot be activated.
            copy = fault_dirs.models / f"copy-of-{done.version}"
            shutil.copytree(done.artifact_path, copy)
            with open(copy / "model.txt", "r+b") as handle:
                handle.truncate(os.path.getsize(copy / "model.txt") // 2)
            truncated = ModelVersion.objects.create(
                version=f"faults-{uuid.uuid4().hex[:8]}",
                status=ModelStatus.REJECTED,
                artifact_path=str(copy),
                artifact_sha256=done.artifact_sha256,
            )
            with pytest.raises(TrainingError, match="checksum"):
                model_activate(version=truncated)
            truncated.delete()
    finally:
        if not ModelVersion.objects.filter(pk=active.pk, status=ModelStatus.ACTIVE).exists():
            model_activate(version=ModelVersion.objects.get(pk=active.pk))


# --- the same task delivered twice --------------------------------------------------------------------
def test_a_batch_delivered_twice_is_valued_once(account: Account, house: Any) -> None:
    from config.leases import Lease
    from valuation.models import BatchJob, BatchStatus, Valuation
    from valuation.tasks import value_batch

    items = [{"query": {"address_id": house.pk, "facts": {"living_area_m2": 100 + i}}} for i in range(2)]
    job = BatchJob.objects.create(partner=account.partner, items=items, total=2)
    made = Valuation.objects.filter(partner=account.partner)

    other_worker = Lease("batch", job.pk)  # another worker is valuing it right now
    assert other_worker.acquire()
    try:
        assert value_batch.apply(args=(job.pk,), task_id=f"faults-{job.pk}").get()["status"] == "queued"
        assert made.count() == 0
    finally:
        other_worker.release()

    first = value_batch.apply(args=(job.pk,), task_id=f"faults-{job.pk}").get()
    second = value_batch.apply(args=(job.pk,), task_id=f"faults-{job.pk}").get()
    assert first == second == {"batch": job.pk, "status": "done", "done": 2}
    assert made.count() == 2
    assert BatchJob.objects.get(pk=job.pk).status == BatchStatus.DONE


class _Stops(FixedBody):
    body = b"id,name,x,y\n1,Markt,150000,170000\n2,Kerk,150100,170000\n"


@pytest.fixture
def stops_source(committed: None) -> Iterator[str]:
    """A connector of bus stops (the one of tests/opendata/test_refresh.py) served over HTTP here."""
    from opendata.connectors.base import CONNECTORS, register
    from opendata.models import LocationPoint, SourceRefreshRun
    from tests.opendata.test_refresh import StopsConnector

    with http_serve(_Stops) as base:
        register(type("ServedStops", (StopsConnector,), {"url": f"{base}/stops.csv"}))
        yield StopsConnector.name
        CONNECTORS.pop(StopsConnector.name, None)
    LocationPoint.objects.filter(source=StopsConnector.name).delete()
    SourceRefreshRun.objects.filter(source=StopsConnector.name).delete()


def test_a_refresh_delivered_twice_runs_once(stops_source: str, settings: Any, tmp_path: Path) -> None:
    from config.leases import Lease
    from opendata.models import RunStatus, SourceRefreshRun
    from opendata.tasks import refresh_source

    settings.DATA_DIR = tmp_path
    runs = SourceRefreshRun.objects.filter(source=stops_source)
    first = refresh_source.apply(kwargs={"name": stops_source}, task_id="faults-refresh-1").get()
    again = refresh_source.apply(kwargs={"name": stops_source}, task_id="faults-refresh-1").get()
    assert first["status"] == RunStatus.SUCCEEDED and again["run"] == first["run"]
    assert runs.count() == 1 and runs.get().counts["request"] == "faults-refresh-1"

    running = Lease("refresh", stops_source)  # a refresh of this source is running elsewhere
    assert running.acquire()
    try:
        busy = refresh_source.apply(kwargs={"name": stops_source}, task_id="faults-refresh-2").get()
    finally:
        running.release()
    assert busy["status"] == "busy" and runs.count() == 1
