"""Model monitoring: PSI and reference bins, accuracy on sales after training, feedback, the admin page."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone
from prometheus_client import REGISTRY

from features import registry
from opendata.models import Address
from valuation import monitoring
from valuation.engine import active_model
from valuation.ml import drift
from valuation.ml.metrics import mdape, ratio_study
from valuation.models import Feedback, ModelVersion, Sale, Valuation
from valuation.monitoring import Thresholds, accuracy_groups, feature_drift, warnings_for
from valuation.services import ValuationQuery, valuations_create_many

URL = "/admin/valuation/modelmonitoring/"


# --- PSI and reference bins (no database) ----------------------------------------------------------
def test_psi_equals_the_hand_computed_sum() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 2 + 0.25 ln 1.5
    assert drift.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert drift.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    # An empty bin is floored at 1e-4, not an infinite PSI.
    floored = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert drift.psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(floored)
    with pytest.raises(ValueError, match="bins"):
        drift.psi([0.5, 0.5], [1.0])


def test_numeric_reference_cuts_at_deciles_with_a_missing_bin() -> None:
    values = np.concatenate([np.arange(1, 1001, dtype=float), [np.nan] * 250])
    spec = drift.numeric_reference(values)
    assert spec["edges"] == [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0]
    assert spec["shares"] == pytest.approx([0.08] * 10 + [0.2])  # 1000 of 1250 known, in ten bins
    assert drift.bin_labels(spec)[:2] == ["<= 100", "100 - 200"] and drift.bin_labels(spec)[-1] == "missing"
    # The same values give the same shares; a value beyond the last edge falls in the last bin.
    assert drift.bin_shares(spec, values).tolist() == pytest.approx(spec["shares"])
    assert drift.bin_shares(spec, [5000.0, None]).tolist() == pytest.approx([0] * 9 + [0.5, 0.5])


def test_a_discrete_feature_keeps_one_bin_per_common_value() -> None:
    rooms = np.repeat([3, 4, 5, 6], [300, 400, 200, 100])
    spec = drift.numeric_reference(rooms)
    assert spec["edges"] == [3.0, 4.0, 5.0]  # deciles 3, 3, 3, 4, 4, 4, 4, 5, 5
    assert spec["shares"] == pytest.approx([0.3, 0.4, 0.2, 0.1, 0.0])  # <= 3, 4, 5, > 5, missing


def test_categorical_reference_puts_unseen_values_in_other() -> None:
    spec = drift.categorical_reference(["house"] * 8 + ["apartment"] * 2)
    assert spec["categories"] == ["house", "apartment"]
    assert spec["shares"] == pytest.approx([0.8, 0.2, 0.0, 0.0])
    found = drift.compare(spec, ["house", "castle", None, "apartment"])
    assert found["actual"] == pytest.approx([0.25, 0.25, 0.25, 0.25])
    assert found["labels"] == ["house", "apartment", "other", "missing"]


def _reference(rng: np.random.Generator) -> dict[str, Any]:
    training = pd.DataFrame(
        {
            "living_area_m2": rng.lognormal(np.log(140), 0.3, 20_000),
            "property_type": pd.Categorical(rng.choice(["house", "apartment"], 20_000, p=[0.8, 0.2])),
        }
    )
    return drift.reference_distribution(training, np.log(2_500 * training["living_area_m2"]))


def test_a_shifted_distribution_drifts_and_warns_an_unshifted_one_does_not() -> None:
    rng = np.random.default_rng(7)
    reference = _reference(rng)
    same = pd.DataFrame(
        {
            "living_area_m2": rng.lognormal(np.log(140), 0.3, 2_000),
            "property_type": rng.choice(["house", "apartment"], 2_000, p=[0.8, 0.2]),
        }
    )
    shifted = same.assign(living_area_m2=same["living_area_m2"] * 1.5)

    stable = {d.name: d for d in feature_drift(reference, same)}
    assert stable["living_area_m2"].psi < 0.02 and stable["living_area_m2"].level == "stable"
    assert stable["property_type"].psi < 0.02
    found = warnings_for(
        features=list(stable.values()), prediction=None, latest_month=None, test_mdape=None, feedback={}
    )
    assert found == []

    moved = feature_drift(reference, shifted, labels={"living_area_m2": "Living area"})
    assert moved[0].name == "living_area_m2" and moved[0].psi >= 0.25 and moved[0].level == "drift"
    assert moved[0].moved_bin.startswith("> ")  # the largest areas gained most
    found = warnings_for(features=moved, prediction=None, latest_month=None, test_mdape=None, feedback={})
    assert len(found) == 1 and "Living area (" in found[0]

    prediction = monitoring.drift_of(
        "prediction", reference["prediction"], np.log(2_500 * shifted["living_area_m2"])
    )
    assert prediction.psi == pytest.approx(moved[0].psi, rel=0.05)  # the price follows the area
    found = warnings_for(features=[], prediction=prediction, latest_month=None, test_mdape=None, feedback={})
    assert len(found) == 1 and "Prediction drift" in found[0]


def test_reference_rows_are_the_latest_training_sales() -> None:
    rows = np.arange(10_000)
    assert drift.reference_rows(rows, 500).tolist() == list(range(8_000, 10_000))
    assert drift.reference_rows(rows, 3_000).tolist() == list(range(7_000, 10_000))
    sampled = drift.reference_rows(rows, 9_000, max_rows=1_000)
    assert sampled.size == 1_000 and sampled.min() >= 1_000 and np.all(np.diff(sampled) > 0)


def test_accuracy_groups_are_the_ratio_study_of_each_group() -> None:
    keys = ["2026-08", "2026-08", "2026-08", "2026-09", "2026-09"]
    estimates = [110.0, 90.0, 100.0, 130.0, np.nan]  # no estimate: left out
    prices = [100.0, 100.0, 100.0, 100.0, 100.0]
    rows = accuracy_groups(keys, estimates, prices)
    assert [r["key"] for r in rows] == ["2026-08", "2026-09"]
    assert rows[0]["count"] == 3 and rows[0]["mdape"] == pytest.approx(0.10)
    assert rows[0]["cod"] == pytest.approx(100 * (0.1 + 0.1 + 0) / 3)
    assert rows[0]["prd"] == pytest.approx(1.0)
    single = ratio_study([130.0], [100.0])
    assert rows[1] == {"key": "2026-09", **{k: single[k] for k in rows[1] if k != "key"}}
    assert rows[1]["mdape"] == pytest.approx(0.30)


def test_accuracy_and_feedback_warnings() -> None:
    month = {"key": "2026-10", "count": 40, "mdape": 0.20}
    found = warnings_for(features=[], prediction=None, latest_month=month, test_mdape=0.11, feedback={})
    assert len(found) == 1 and "2026-10" in found[0] and "20.0%" in found[0]
    assert not warnings_for(features=[], prediction=None, latest_month=month, test_mdape=0.15, feedback={})
    few = {**month, "count": 5}
    assert not warnings_for(features=[], prediction=None, latest_month=few, test_mdape=0.11, feedback={})

    leaning = {"too_high": 14, "too_low": 2, "right": 9}
    found = warnings_for(features=[], prediction=None, latest_month=None, test_mdape=None, feedback=leaning)
    assert len(found) == 1 and "56%" in found[0] and "8%" in found[0]
    balanced = {"too_high": 6, "too_low": 5, "right": 14}
    assert not warnings_for(
        features=[], prediction=None, latest_month=None, test_mdape=None, feedback=balanced
    )
    strict = Thresholds(min_feedback=100)
    assert not warnings_for(
        features=[], prediction=None, latest_month=None, test_mdape=None, feedback=leaning, thresholds=strict
    )


# --- on the demo region ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_training_records_the_reference_with_the_model(demo_model: ModelVersion) -> None:
    reference = ModelVersion.objects.get(pk=demo_model.pk).reference
    assert reference["format"] == drift.FORMAT
    assert set(reference["features"]) == set(demo_model.features)
    for spec in [*reference["features"].values(), reference["prediction"]]:
        assert sum(spec["shares"]) == pytest.approx(1.0)
    assert reference["features"]["property_type"]["categories"][0] == "house"
    assert reference["to"] == str(demo_model.train_to)  # the latest training sales
    assert reference["rows"] >= drift.REFERENCE_MIN_ROWS


@pytest.mark.django_db
def test_accuracy_per_month_on_the_demo_sales_after_training(demo_model: ModelVersion) -> None:
    version, bundle = active_model()
    found = monitoring.sales_accuracy(version, bundle)
    later = (
        Sale.objects.filter(sale_date__gt=version.train_to, living_area_m2__gt=0)
        .annotate(month=TruncMonth("sale_date"))
        .values("month")
        .annotate(n=Count("id"))
        .order_by("month")
    )
    assert [(m["key"], m["count"]) for m in found["months"]] == [
        (row["month"].strftime("%Y-%m"), row["n"]) for row in later
    ]
    assert found["overall"]["count"] == sum(row["n"] for row in later) > 100
    # The same sales, valued as of their dates, as the promotion gate measured the model on them.
    assert found["overall"]["mdape"] == pytest.approx(version.metrics["model"]["mdape"], abs=0.005)
    for month in found["months"]:
        assert 0.03 < month["mdape"] < 0.25 and 0.9 < month["prd"] < 1.1 and month["cod"] > 0
    assert [r["count"] for r in found["regions"]] == [found["overall"]["count"]]
    assert "99001" in found["regions"][0]["key"]


def _valuations(n: int, version: ModelVersion) -> list[Valuation]:
    """``n`` stored valuations of demo addresses, their living areas drawn from the model's latest
    training sales (so that they do not drift on it)."""
    areas = list(
        Sale.objects.filter(sale_date__lte=version.train_to, living_area_m2__gt=0)
        .order_by("-sale_date", "-pk")
        .values_list("living_area_m2", flat=True)[: drift.REFERENCE_MIN_ROWS]
    )
    picked = np.random.default_rng(3).choice(np.array(areas, dtype=np.float64), n)
    addresses = Address.objects.filter(source="demo").order_by("pk").values_list("pk", flat=True)[:n]
    queries = [
        ValuationQuery(address_id=a, facts={"living_area_m2": round(float(area))})
        for a, area in zip(addresses, picked, strict=True)
    ]
    made = [o.valuation for o in valuations_create_many(queries=queries)]
    assert all(v is not None for v in made)
    return [v for v in made if v is not None]


@pytest.mark.django_db
def test_feedback_rates_and_direction_per_month(demo_model: ModelVersion) -> None:
    since = timezone.now() - timedelta(days=40)
    before = {row["month"]: row for row in monitoring.feedback_by_month(since=since)}
    a, b, _c, _d = _valuations(4, demo_model)
    for valuation, verdict in ((a, "too_high"), (a, "too_high"), (b, "too_low")):
        Feedback.objects.create(valuation=valuation, verdict=verdict)
    month = timezone.localtime().strftime("%Y-%m")
    now = {row["month"]: row for row in monitoring.feedback_by_month(since=since)}[month]
    counted = ("valuations", "with_feedback", "feedback", "too_high", "too_low", "right")
    was = before.get(month, dict.fromkeys(counted, 0))
    assert now["valuations"] - was["valuations"] == 4
    assert now["with_feedback"] - was["with_feedback"] == 2
    assert now["feedback"] - was["feedback"] == 3
    assert (now["too_high"] - was["too_high"], now["too_low"] - was["too_low"]) == (2, 1)
    assert now["rate"] == pytest.approx(now["with_feedback"] / now["valuations"])
    assert now["too_high_share"] == pytest.approx(now["too_high"] / now["feedback"])
    recent = monitoring.recent_feedback(demo_model, since=since)
    assert recent["too_high"] >= 2 and recent["too_low"] >= 1


@pytest.mark.django_db
def test_the_admin_page_for_staff_only(demo_model: ModelVersion, client: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(User.objects.create_user("notaris", password="Notaris-2026-veilig"))
    assert client.get(URL).status_code == 302  # a notary is not staff
    client.force_login(User.objects.create_user("kijker", password="Notaris-2026-veilig", is_staff=True))
    index = client.get("/admin/")
    assert URL in index.content.decode()  # reachable from the admin index, for any staff member
    response = client.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert demo_model.version in page and "Accuracy on sales after the training period" in page
    # Ready for a Content Security Policy without 'unsafe-inline'.
    assert "style=" not in page and not re.search(r"\son[a-z]+=", page)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
    assert "admin-extra/monitoring.css" in page


@pytest.mark.django_db
def test_injected_drift_shows_a_warning_on_the_page(demo_model: ModelVersion, client: Any) -> None:
    valuations = _valuations(200, demo_model)
    label = registry.get("living_area_m2").label("en")
    client.force_login(User.objects.create_user("kijker", password="Notaris-2026-veilig", is_staff=True))

    report = monitoring.monitoring_report()
    assert report.valuations >= 200
    area = next(d for d in report.features if d.name == "living_area_m2")
    assert area.level != "drift" and area.psi < 0.15
    assert _scraped("notary_model_feature_psi_max", demo_model) == pytest.approx(report.max_psi)
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"{label} (" not in page  # the living area is not among the drifted features

    for valuation in valuations:  # the same properties, each four times as large
        for item in valuation.result["explanation"]["contributions"]:
            if item["feature"] == "living_area_m2":
                item["value"] = item["value"] * 4
        valuation.save(update_fields=["result"])
    report = monitoring.monitoring_report()
    area = next(d for d in report.features if d.name == "living_area_m2")
    assert area.level == "drift" and area.psi >= 0.25 and area.moved_bin.startswith("> ")
    assert any(f"{label} (" in w for w in report.warnings)
    assert _scraped("notary_model_monitoring_warnings", demo_model) == len(report.warnings)
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Feature drift" in page and f"{label} (" in page


@pytest.mark.django_db
def test_a_model_without_a_reference_says_so(demo_model: ModelVersion) -> None:
    ModelVersion.objects.filter(pk=demo_model.pk).update(reference={})
    _valuations(3, demo_model)
    report = monitoring.monitoring_report()
    assert report.features == [] and report.prediction is None
    assert any("No reference" in note for note in report.notes)
    assert report.accuracy["overall"]["count"] > 0  # accuracy and feedback do not need it


def test_mdape_of_the_metrics_module_is_what_the_groups_report() -> None:
    est, price = [105.0, 80.0, 120.0], [100.0, 100.0, 100.0]
    assert accuracy_groups(["x"] * 3, est, price)[0]["mdape"] == mdape(est, price)


def _scraped(name: str, version: ModelVersion) -> float | None:
    """A gauge as Prometheus reads it: from the cached summary of the last report, at scrape time."""
    return REGISTRY.get_sample_value(name, {"version": version.version})


@pytest.mark.django_db
def test_the_hourly_task_publishes_the_report_to_the_metrics(demo_model: ModelVersion, client: Any) -> None:
    from django.core.cache import cache

    from valuation.tasks import monitoring_report

    _valuations(120, demo_model)
    cache.delete(monitoring.SUMMARY_CACHE_KEY)
    assert "notary_model_monitoring_warnings" not in client.get("/metrics").content.decode()
    summary = monitoring_report.apply().get()  # as the worker runs it, without a broker
    assert summary["version"] == demo_model.version and summary["max_psi"] > 0
    scraped = client.get("/metrics").content.decode()
    assert (
        f'notary_model_monitoring_warnings{{version="{demo_model.version}"}} {float(summary["warnings"])}'
        in scraped
    )
    assert f'notary_model_feature_psi_max{{version="{demo_model.version}"}}' in scraped
