"""A web process warms up before serving: the views imported, the active model and the sales loaded."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from config.warmup import warm_process
from valuation import engine, sales_data
from valuation.models import ModelStatus, ModelVersion

pytestmark = pytest.mark.django_db


def test_warm_process_loads_the_active_model_and_the_sales(demo_model: Any, models_in: Any) -> None:
    engine._loaded, sales_data._snapshot = None, None
    warm_process()
    assert "valuation.views" in sys.modules and "lightgbm" in sys.modules
    assert engine._loaded is not None and engine._loaded[0] == demo_model.pk
    assert sales_data._snapshot is not None and sales_data._snapshot.version == sales_data.sales_version()
    assert ModelVersion.objects.filter(pk=demo_model.pk).exists()  # the database still answers


def test_warm_process_without_a_model_starts_anyway(
    demo_model: Any, models_in: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ModelVersion.objects.filter(status=ModelStatus.ACTIVE).update(status=ModelStatus.RETIRED)
    engine._loaded = None
    with caplog.at_level(logging.INFO, logger="config.warmup"):
        warm_process()
    assert engine._loaded is None
    assert "no active model yet" in caplog.text
