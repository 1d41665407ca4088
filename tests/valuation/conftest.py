"""The demo region with a trained, active model: loaded once per test session (about 35 s)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from valuation.models import ModelVersion


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def demo_model(django_db_setup: None, django_db_blocker: Any, model_dir: Path) -> Iterator[ModelVersion]:
    from valuation.demo_sales import demo_load
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
