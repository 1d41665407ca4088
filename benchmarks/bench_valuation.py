"""Valuation speed with 200,000 parcels and 200,000 sales in the database (issue: valuation engine).

Builds (once, kept in the bench database) a synthetic town of 200,000 square parcels, one house
each, and 200,000 sales over ten years, trains a model on it, then measures in this warm process:
one valuation (features, price, interval, SHAP, 1 km distribution, comparables) with and without
storing it, a batch of 10,000 valuations with explanations (three batches, the median), and the
process memory.
"""

from __future__ import annotations

import datetime
import json
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from benchmarks import Figure, median, percentile
from opendata.copy import copy_rows
from opendata.models import Building, Municipality, Parcel
from valuation.models import ModelStatus, ModelVersion, Sale

SOURCE = "bench"
N_PARCELS = 200_000
N_SALES = 200_000
COLUMNS, SIDE = 500, 20.0  # 500 x 400 parcels of 20 x 20 m: a 10 x 8 km town
ORIGIN = (150_000.0, 160_000.0)
BATCH_RUNS = 3


def _capakey(i: int) -> str:
    return f"{88000 + i // 10_000:05d}A{i % 10_000:04d}/00_000"


def build_town() -> None:
    if not (
        Parcel.objects.filter(source=SOURCE).count() == N_PARCELS
        and Sale.objects.filter(source=SOURCE).count() == N_SALES
    ):
        _build_town()
    # The open-data features of the town's parcels, as a refresh would leave them.
    from features.compute import parcel_features_refresh
    from features.models import ParcelFeatures

    if ParcelFeatures.objects.filter(parcel__source=SOURCE).count() < N_PARCELS:
        parcel_features_refresh(list(Parcel.objects.filter(source=SOURCE).values_list("pk", flat=True)))


def _build_town() -> None:
    rng = np.random.default_rng(7)
    with transaction.atomic():
        Sale.objects.filter(source=SOURCE).delete()
        Building.objects.filter(source=SOURCE).delete()
        Parcel.objects.filter(source=SOURCE).delete()
        municipality, _ = Municipality.objects.get_or_create(
            nis_code="88888",
            defaults={"name_nl": "Benchstad (synthetisch)", "valid_from": "2025-01-01", "source": SOURCE},
        )
        col = np.arange(N_PARCELS) % COLUMNS
        row = np.arange(N_PARCELS) // COLUMNS
        x0, y0 = ORIGIN[0] + col * SIDE, ORIGIN[1] + row * SIDE

        def square(x: float, y: float, inset: float) -> str:
            a, b = x + inset, y + inset
            c, d = x + SIDE - inset, y + SIDE - inset
            return f"SRID=31370;MULTIPOLYGON((({a} {b},{c} {b},{c} {d},{a} {d},{a} {b})))"

        copy_rows(
            "opendata_parcel",
            ["capakey", "geometry", "area_m2", "municipality_id", "parcel_type", "source"],
            (
                (_capakey(i), square(x0[i], y0[i], 0), SIDE * SIDE, municipality.pk, "PR", SOURCE)
                for i in range(N_PARCELS)
            ),
        )
        ids = dict(Parcel.objects.filter(source=SOURCE).values_list("capakey", "pk"))
        storeys = rng.integers(1, 4, N_PARCELS)
        copy_rows(
            "opendata_building",
            ["footprint", "building_type", "storeys", "height_m", "parcel_id", "source", "source_id"],
            (
                (
                    square(x0[i], y0[i], 4),
                    "open",
                    int(storeys[i]),
                    3.0 * storeys[i],
                    ids[_capakey(i)],
                    SOURCE,
                    str(i),
                )
                for i in range(N_PARCELS)
            ),
        )
        which = rng.integers(0, N_PARCELS, N_SALES)
        days = rng.integers(0, 3650, N_SALES)
        area = (144.0 * 0.8 * storeys[which]).round()
        centre = np.hypot(x0[which] - ORIGIN[0] - 5000, y0[which] - ORIGIN[1] - 4000) / 1000
        log_price = np.log(2200 * area) - 0.05 * centre + 0.00009 * days + rng.normal(0, 0.15, N_SALES)
        start = np.datetime64("2016-11-01")
        copy_rows(
            "valuation_sale",
            [
                "source",
                "external_id",
                "sale_date",
                "price_eur",
                "property_type",
                "living_area_m2",
                "land_area_m2",
                "point",
                "parcel_id",
                "address",
            ],
            (
                (
                    SOURCE,
                    str(k),
                    str(start + int(days[k])),
                    round(float(np.exp(log_price[k])), 2),
                    "house",
                    float(area[k]),
                    SIDE * SIDE,
                    f"SRID=31370;POINT({x0[which[k]] + 10} {y0[which[k]] + 10})",
                    ids[_capakey(int(which[k]))],
                    f"Benchstraat {which[k]}",
                )
                for k in range(N_SALES)
            ),
        )
    with connection.cursor() as cursor:
        cursor.execute("analyze opendata_parcel; analyze opendata_building; analyze valuation_sale")


def ensure_model(model_dir: Path) -> float | None:
    from valuation.ml.bundle import Bundle
    from valuation.training import model_train, production_builder

    active = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
    if active is not None:
        try:
            bundle = Bundle.load(active.artifact_path)
            same = json.dumps({**asdict(bundle.builder), "workers": 0}, sort_keys=True) == json.dumps(
                {**asdict(production_builder()), "workers": 0}, sort_keys=True
            )
            if same:
                return None
        except (OSError, ValueError, KeyError):  # missing or from an older format: train anew
            pass
        # Another feature set (older code): retire it so the figures are those of today's model.
        ModelVersion.objects.filter(pk=active.pk).update(status=ModelStatus.RETIRED)
    started = time.perf_counter()
    model_train(source=SOURCE)
    return time.perf_counter() - started


def run() -> list[Figure]:
    from valuation.engine import Target, value_targets
    from valuation.locate import subject_from_capakey
    from valuation.services import ValuationQuery, valuation_create, valuations_create_many

    model_dir = Path(settings.BASE_DIR) / "var" / "models-bench"
    figures = []
    started = time.perf_counter()
    build_town()
    figures.append(Figure("bench town ready (200k parcels, 200k sales)", time.perf_counter() - started, "s"))
    with override_settings(MODEL_DIR=model_dir):
        trained = ensure_model(model_dir)
        if trained is not None:
            figures.append(Figure("train + gate on 200k sales (6 candidates, CQR interval)", trained, "s"))
        rng = np.random.default_rng(1)
        keys = [_capakey(int(i)) for i in rng.integers(0, N_PARCELS, 300)]
        valuation_create(query=ValuationQuery(capakey=keys[0]))  # warm: model and sales snapshot loaded
        figures.append(
            Figure(
                "web-like process memory: model + 200k sales loaded, one valuation",
                fresh_process_rss(keys[0]),
                "MB",
                target="<= 500 MB",
                note="measured in a fresh process",
            )
        )
        compute, stored = [], []
        for key in keys[1:201]:
            subject = subject_from_capakey(key)
            t0 = time.perf_counter()
            value_targets([Target(subject=subject, valuation_date=datetime.date(2026, 11, 27))])
            compute.append(time.perf_counter() - t0)
        for key in keys[201:]:
            t0 = time.perf_counter()
            valuation_create(query=ValuationQuery(capakey=key))
            stored.append(time.perf_counter() - t0)
        figures += [
            Figure("one valuation, compute only: median", median(compute) * 1000, "ms", target="<= 20 ms"),
            Figure(
                "one valuation, compute only: p99", percentile(compute, 99) * 1000, "ms", target="<= 80 ms"
            ),
            Figure("one valuation, locate + compute + store: median", median(stored) * 1000, "ms"),
            Figure("one valuation, locate + compute + store: p99", percentile(stored, 99) * 1000, "ms"),
        ]
        rates, failed = [], 0
        for _ in range(BATCH_RUNS):  # a new random batch each time
            batch = [ValuationQuery(capakey=_capakey(int(i))) for i in rng.integers(0, N_PARCELS, 10_000)]
            t0 = time.perf_counter()
            outcomes = valuations_create_many(queries=batch)
            rates.append(len(batch) / (time.perf_counter() - t0))
            failed += sum(o.valuation is None for o in outcomes)
        figures.append(
            Figure(
                f"batch of 10,000 with explanations, stored: median of {BATCH_RUNS}",
                median(rates),
                "per s",
                target=">= 1,000/s",
                note=f"runs {min(rates):,.0f}-{max(rates):,.0f}/s, {failed} failed",
            )
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures.append(Figure("process peak memory, after the batch", peak, "MB"))
    return figures


FRESH = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.test import override_settings
from valuation.services import ValuationQuery, valuation_create
with override_settings(MODEL_DIR={model_dir!r}):
    valuation_create(query=ValuationQuery(capakey={key!r}))
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) / 1024)
"""


def fresh_process_rss(key: str) -> float:
    import os
    import subprocess
    import sys

    model_dir = str(Path(settings.BASE_DIR) / "var" / "models-bench")
    out = subprocess.run(  # noqa: S603 - our own interpreter running our own snippet
        [sys.executable, "-c", FRESH.format(model_dir=model_dir, key=key)],
        cwd=settings.BASE_DIR,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])
