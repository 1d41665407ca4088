"""Training, the promotion gate, rollback and the model registry, on the demo region."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import registry
from valuation.ml.bundle import Bundle
from valuation.models import ModelStatus, ModelVersion
from valuation.training import gate_decide, model_activate, model_train

pytestmark = pytest.mark.django_db


def test_the_demo_model_is_active_with_its_provenance(demo_model: ModelVersion) -> None:
    version = ModelVersion.objects.get(pk=demo_model.pk)
    assert version.status == ModelStatus.ACTIVE
    folder = Path(version.artifact_path)
    assert {"model.txt", "model.json", "interval.json", "price_index.json", "manifest.json"} <= {
        p.name for p in folder.iterdir()
    }
    sidecar = json.loads((folder / "model.json").read_text())
    assert sidecar["training_snapshot"]["count"] == version.train_count + version.metrics["recent_sales"]
    assert version.train_checksum and len(version.train_checksum) == 64
    assert version.library_versions["lightgbm"]
    assert version.price_index is not None and version.price_index.payload
    assert version.metrics["model"]["mdape"] < version.metrics["baseline"]["mdape"]
    assert 0.7 < version.metrics["model"]["coverage"] < 0.9
    assert version.gate["promote"] is True


def test_every_model_feature_comes_from_the_registry_with_three_languages(demo_model: ModelVersion) -> None:
    assert set(demo_model.features) <= set(registry.names())
    for name in demo_model.features:
        feature = registry.get(name)
        assert all(feature.label(lang) and feature.explanation(lang) for lang in ("nl", "fr", "en"))
        assert len({feature.label(lang) for lang in ("nl", "fr", "en")}) >= 2  # really translated


def test_a_saved_and_reloaded_bundle_values_identically(demo_model: ModelVersion) -> None:
    first, second = Bundle.load(demo_model.artifact_path), Bundle.load(demo_model.artifact_path)
    pool = pd.DataFrame(
        {
            "sale_date": pd.to_datetime(["2020-01-01", "2021-06-01"]),
            "price_eur": [250_000.0, 300_000.0],
            "x": [196_000.0, 196_300.0],
            "y": [156_000.0, 156_100.0],
            "property_type": ["house", "house"],
            "living_area_m2": [120.0, 140.0],
            "region": ["99001", "99001"],
        }
    )
    targets = pd.DataFrame(
        {
            "sale_date": pd.to_datetime(["2026-11-01"]),
            "x": [196_100.0],
            "y": [156_050.0],
            "property_type": ["house"],
            "living_area_m2": [130.0],
            "land_area_m2": [400.0],
            "region": ["99001"],
        }
    )
    a = first.value(targets, first.index_pool(pool))
    b = second.value(targets, second.index_pool(pool))
    np.testing.assert_array_equal(a.price, b.price)
    np.testing.assert_array_equal(a.low, b.low)
    assert a.explanations == b.explanations


def test_the_gate_decides_on_mdape_with_a_tolerance() -> None:
    assert gate_decide(candidate_mdape=0.10, active_mdape=None, tolerance=0.0, n=50).promote
    assert gate_decide(candidate_mdape=0.10, active_mdape=0.10, tolerance=0.0, n=50).promote
    worse = gate_decide(candidate_mdape=0.11, active_mdape=0.10, tolerance=0.0, n=50)
    assert not worse.promote and "worse" in worse.reason
    assert gate_decide(candidate_mdape=0.101, active_mdape=0.10, tolerance=0.02, n=50).promote


def test_the_gate_refuses_a_model_that_is_not_good_enough_and_rollback_works(
    demo_model: ModelVersion, models_in: Path
) -> None:
    # Demand a candidate 50% better than the active model: the retrained one cannot be, so it is kept
    # as rejected with the reason, and the active model stays active.
    candidate = model_train(tolerance=-0.5)
    assert candidate.status == ModelStatus.REJECTED
    assert "worse than the active model" in candidate.reason
    assert candidate.gate["active_version"] == demo_model.version
    assert candidate.gate["recent_sales"] > 100
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE).pk == demo_model.pk
    # Staff may still activate it, and roll back to the earlier version.
    model_activate(version=candidate)
    assert ModelVersion.objects.get(pk=demo_model.pk).status == ModelStatus.RETIRED
    model_activate(version=ModelVersion.objects.get(pk=demo_model.pk))
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE).pk == demo_model.pk
    assert ModelVersion.objects.filter(status=ModelStatus.ACTIVE).count() == 1
