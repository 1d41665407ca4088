"""Shared test set-up: real PostGIS (pytest-django creates test_<db>), real Redis, the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real files of ../shared/data; tests that need them skip with a clear message without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared real data folder {SHARED_DATA} is absent")
    return SHARED_DATA
