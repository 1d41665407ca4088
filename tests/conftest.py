"""Shared test set-up: real PostGIS (pytest-django creates test_<db>), real Redis, the shared data folder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real files of ../shared/data; tests that need them skip with a clear message without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


# --- the demo region with a trained, active model: loaded once per test session (about 35 s) --------
def restore_demo() -> None:
    """Load the session's demo region again (region, sales, features) after a module replaced or
    deleted it: the tests that run later expect it, and the session fixture loads it only once."""
    from valuation.demo_sales import demo_load

    demo_load(seed=2026, force=False, progress_stream=io.StringIO())


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def demo_model(django_db_setup: None, django_db_blocker: Any, model_dir: Path) -> Iterator[Any]:
    from valuation.demo_sales import demo_load
    from valuation.models import ModelVersion
    from valuation.training import model_train

    with django_db_blocker.unblock(), override_settings(MODEL_DIR=model_dir):
        demo_load(seed=2026, force=False, progress_stream=io.StringIO())
        version = ModelVersion.objects.filter(status="active").first()
        if version is None or not Path(version.artifact_path, "manifest.json").exists():
            version = model_train()
        yield version


@pytest.fixture
def models_in(model_dir: Path) -> Iterator[Path]:
    with override_settings(MODEL_DIR=model_dir):
        yield model_dir


@pytest.fixture
def house(demo_model: Any) -> Any:
    """A demo house address (no box) whose parcel has a building with storeys (living area known)."""
    from opendata.models import Address

    address = (
        Address.objects.filter(source="demo", box="", parcel__buildings__storeys__isnull=False)
        .select_related("municipality", "parcel")
        .order_by("pk")
        .first()
    )
    assert address is not None
    return address


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", [])
    flagged = marker is not None and bool(
        marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")
    )
    return flagged or "transactional_db" in fixtures or "live_server" in fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault tests (tests/faults) commit their rows and start processes that read them, so they are
    not database tests to pytest-django, which would run them last: after the transactional tests,
    whose flushes remove the session's demo region and model. They run just before those instead.
    (pytest-django's own reordering runs first.)"""
    faults = [item for item in items if item.get_closest_marker("faults")]
    if not faults:
        return
    rest = [item for item in items if not item.get_closest_marker("faults")]
    at = next((i for i, item in enumerate(rest) if _transactional(item)), len(rest))
    items[:] = rest[:at] + faults + rest[at:]
