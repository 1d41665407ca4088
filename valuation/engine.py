"""Valuing properties: facts, model, interval, explanation, 1 km distribution and comparables.

One path serves a single valuation and a batch: the candidate sales around all the properties are
read from PostGIS in one query (ST_DWithin on the GiST index), then everything else is vectorised
over the rows (feature builder, ``Booster.predict``, ``pred_contrib``). The active model is loaded
once per process and reloaded only when another version becomes active.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.gis.geos import Point
from django.db import connection

from features import registry
from features.registry import COMPARABLES_K
from opendata.models import Municipality
from valuation import market
from valuation.locate import Subject
from valuation.ml.bundle import TIME_TERM, Bundle
from valuation.models import SALE_FACTS, ModelStatus, ModelVersion, Sale
from valuation.sales_data import GRID_CELL_M, sales_snapshot

POOL_RADIUS_M = 1000.0
FACT_NAMES = SALE_FACTS
LIVING_AREA_PER_FOOTPRINT_STOREY = 0.8


class ValuationInputError(ValueError):
    """A fact needed for the valuation is missing or wrong; ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class NoActiveModel(RuntimeError):
    pass


@dataclass
class Target:
    subject: Subject
    valuation_date: date
    facts: dict[str, Any] = field(default_factory=dict)  # the notary's facts, overriding known ones


# --- the active model, once per process ----------------------------------------------------------
_lock = threading.Lock()
_loaded: tuple[int, ModelVersion, Bundle] | None = None


def active_model() -> tuple[ModelVersion, Bundle]:
    """The active version and its loaded bundle; one cheap query tells whether it is still active."""
    global _loaded
    active_pk = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("pk", flat=True).first()
    if active_pk is None:
        raise NoActiveModel("No model is active yet: train one with `python manage.py train_model`.")
    with _lock:
        if _loaded is None or _loaded[0] != active_pk:
            version = ModelVersion.objects.select_related("price_index").get(pk=active_pk)
            _loaded = (version.pk, version, Bundle.load(version.artifact_path, num_threads=1))
        return _loaded[1], _loaded[2]


# --- facts ---------------------------------------------------------------------------------------
def known_facts(subject: Subject) -> dict[str, dict[str, Any]]:
    """What the open data says about the property, each fact with its source."""
    facts: dict[str, dict[str, Any]] = {}
    parcel = subject.parcel
    if parcel is not None:
        facts["land_area_m2"] = {"value": round(parcel.area_m2, 1), "source": "cadastral parcel"}
        building = max(parcel.buildings.all(), key=lambda b: b.footprint.area, default=None)
        if building is not None:
            footprint = building.footprint.area
            facts["building_footprint_m2"] = {
                "value": round(footprint, 1),
                "source": f"building ({building.source})",
            }
            facts["building_type"] = {
                "value": building.building_type,
                "source": f"building ({building.source})",
            }
            if building.height_m is not None:
                facts["building_height_m"] = {"value": building.height_m, "source": "heights"}
            if building.storeys:
                facts["storeys"] = {"value": building.storeys, "source": "heights"}
                facts["living_area_m2"] = {
                    "value": round(footprint * building.storeys * LIVING_AREA_PER_FOOTPRINT_STOREY),
                    "source": "estimated: footprint x storeys x 0.8",
                }
    property_type = "apartment" if subject.address is not None and subject.address.box else "house"
    facts["property_type"] = {"value": property_type, "source": "address" if subject.address else "default"}
    if property_type == "apartment":
        facts.pop("land_area_m2", None)
        facts.pop("living_area_m2", None)
    return facts


def merged_facts(subject: Subject, given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    facts = known_facts(subject)
    for name, value in given.items():
        if value is not None and value != "":
            facts[name] = {"value": value, "source": "notary"}
    return facts


# --- coordinates ---------------------------------------------------------------------------------
_to_wgs84 = None


def to_wgs84(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lambert 72 metres to WGS84 longitude/latitude, vectorised, with one cached transformer."""
    global _to_wgs84
    if _to_wgs84 is None:
        from pyproj import Transformer

        _to_wgs84 = Transformer.from_crs(31370, 4326, always_xy=True)
    lon, lat = _to_wgs84.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.asarray(lon), np.asarray(lat)


_municipality_codes: dict[int, str] = {}


def _target_regions(subjects: list[Subject]) -> list[str]:
    """The region of each property: its parcel's municipality, as for the sales; else by its point."""
    wanted = {s.parcel.municipality_id for s in subjects if s.parcel and s.parcel.municipality_id}
    if not wanted <= _municipality_codes.keys():
        _municipality_codes.update(Municipality.objects.values_list("pk", "nis_code"))
    out: list[str | None] = [
        _municipality_codes.get(s.parcel.municipality_id) if s.parcel and s.parcel.municipality_id else None
        for s in subjects
    ]
    missing = [i for i, r in enumerate(out) if r is None]
    if missing:
        for i, region in zip(missing, regions([subjects[i].point for i in missing]), strict=True):
            out[i] = region
    return [r or "" for r in out]


def regions(points: list[Point]) -> list[str]:
    """The price-index region of each point (its municipality, else a grid cell), in one query."""
    xs, ys = [p.x for p in points], [p.y for p in points]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select t.i, min(m.nis_code)
            from unnest(%s::float8[], %s::float8[]) with ordinality as t(x, y, i)
            left join opendata_municipality m
              on m.geometry is not null and st_contains(m.geometry, st_setsrid(st_makepoint(t.x, t.y), 31370))
            group by t.i
            """,
            [xs, ys],
        )
        found = dict(cursor.fetchall())
    return [
        found.get(i + 1) or f"cell:{int(x // GRID_CELL_M)}:{int(y // GRID_CELL_M)}"
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]


# --- valuing -------------------------------------------------------------------------------------
def _target_frame(targets: list[Target], facts: list[dict[str, dict[str, Any]]]) -> pd.DataFrame:
    rows = []
    target_regions = _target_regions([t.subject for t in targets])
    for target, known, region in zip(targets, facts, target_regions, strict=True):
        row: dict[str, Any] = {name: known.get(name, {}).get("value") for name in FACT_NAMES}
        row["x"], row["y"] = target.subject.point.x, target.subject.point.y
        row["sale_date"] = pd.Timestamp(target.valuation_date)
        row["region"] = region
        rows.append(row)
    frame = pd.DataFrame(rows)
    for name in FACT_NAMES[1:]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    frame["property_type"] = frame["property_type"].astype(str)
    return frame


def _check_facts(frame: pd.DataFrame, bundle: Bundle) -> list[str | None]:
    """A readable problem per row (None when the row can be valued)."""
    problems: list[str | None] = []
    # Every model works on price per m² (living area or comparables offset): the area is needed.
    needs_area = "living_area_m2" in bundle.feature_names
    for _, row in frame.iterrows():
        if needs_area and not (row["living_area_m2"] > 0):
            problems.append(
                "The living area is unknown for this property: enter it (in m²) to get a valuation."
            )
        else:
            problems.append(None)
    return problems


def value_targets(targets: list[Target]) -> tuple[ModelVersion, list[dict[str, Any] | ValuationInputError]]:
    """Value many targets at once; each result is a JSON-ready dict, or the input error of that row."""
    version, bundle = active_model()
    facts = [merged_facts(t.subject, t.facts) for t in targets]
    frame = _target_frame(targets, facts)
    problems = _check_facts(frame, bundle)
    ok = [i for i, p in enumerate(problems) if p is None]
    results: list[dict[str, Any] | ValuationInputError] = [
        ValuationInputError(p, field="living_area_m2") if p else {} for p in problems
    ]
    if not ok:
        return version, results
    rows = frame.iloc[ok].reset_index(drop=True)
    snapshot = sales_snapshot()
    near = [
        snapshot.near(
            row.x,
            row.y,
            market.DISTRIBUTION_RADIUS_M,
            before_day=int(np.datetime64(row.sale_date, "D").astype(np.int64)),
            property_type=str(row.property_type),
        )
        for row in rows.itertuples()
    ]
    pool = _pool(rows, version, bundle, full=min(len(s) for s in near) < COMPARABLES_K)
    # A batch uses both cores; a single valuation stays on one (the web server runs several at once).
    with bundle.threads(2 if len(rows) >= 100 else 1):
        valued = bundle.value(rows, pool)
    for k, i in enumerate(ok):
        results[i] = _result(targets[i], facts[i], rows.iloc[k], valued, k, version, bundle, near[k])
    _add_comparable_addresses([r for r in results if isinstance(r, dict)])
    return version, results


def _pool(rows: pd.DataFrame, version: ModelVersion, bundle: Bundle, *, full: bool) -> pd.DataFrame:
    """The candidate sales, indexed to the model's index vintage.

    The sales within 1 km of the properties hold every sale the neighbourhood features can use; they
    also hold the 20 nearest comparables of a property when it has at least 20 earlier sales of its
    type within 1 km. Where one has fewer (a sparse area), all sales are the pool, so the features
    are exactly those training computed.
    """
    snapshot = sales_snapshot()
    indexed = snapshot.indexed_frame(version.pk, bundle.index_pool)
    if full:
        return indexed
    return indexed.iloc[snapshot.around(rows[["x", "y"]].to_numpy(), POOL_RADIUS_M)]


def _add_comparable_addresses(results: list[dict[str, Any]]) -> None:
    ids = {c["sale_id"] for r in results for c in r["comparables"]}
    if not ids:
        return
    addresses = dict(Sale.objects.filter(pk__in=ids).values_list("pk", "address"))
    for result in results:
        for comparable in result["comparables"]:
            comparable["address"] = addresses.get(comparable["sale_id"], "")


def _round(value: float, unit: int = 1000) -> int:
    return int(np.round(value / unit)) * unit


def _result(
    target: Target,
    facts: dict[str, dict[str, Any]],
    row: pd.Series,
    valued: Any,
    k: int,
    version: ModelVersion,
    bundle: Bundle,
    near: np.ndarray,
) -> dict[str, Any]:
    explanation = valued.explanations[k]
    price = explanation.price
    low = min(_round(valued.low[k]), price)
    high = max(_round(valued.high[k]), price)
    neighbours = _neighbours(target, row, bundle, version, price, near)
    values = valued.features.iloc[k].to_dict()
    values[TIME_TERM] = round(float(valued.time_factor[k]), 4)
    contributions = [
        {"feature": name, "value": _jsonable(values[name]), "contribution_eur": amount}
        for name, amount in explanation.contributions.items()
    ]
    contributions.sort(key=lambda c: -abs(c["contribution_eur"]))
    subject = target.subject
    lon, lat = to_wgs84([subject.point.x], [subject.point.y])
    return {
        "subject": {
            "label": subject.label,
            "capakey": subject.parcel.capakey if subject.parcel else None,
            "address_id": subject.address.pk if subject.address else None,
            "longitude": round(float(lon[0]), 7),
            "latitude": round(float(lat[0]), 7),
            "notes": subject.notes,
        },
        "valuation_date": target.valuation_date.isoformat(),
        "facts": facts,
        "price_eur": price,
        "low_eur": low,
        "high_eur": high,
        "coverage": bundle.coverage,
        "explanation": {"base_eur": explanation.base, "contributions": contributions},
        "distribution": neighbours["distribution"],
        "comparables": neighbours["comparables"],
        "model_version": version.version,
        "price_index": version.price_index.label if version.price_index else None,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 2)
    if isinstance(value, (np.integer,)):
        return int(value)
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _neighbours(
    target: Target, row: pd.Series, bundle: Bundle, version: ModelVersion, price: int, sel: np.ndarray
) -> dict[str, Any]:
    """The 1 km distribution and the comparables (``sel``: the earlier same-type sales within 1 km)."""
    here = {
        "x": float(row["x"]),
        "y": float(row["y"]),
        "living_area_m2": row["living_area_m2"],
        "property_type": str(row["property_type"]),
    }
    snapshot = sales_snapshot(check=False)
    when = np.datetime64(target.valuation_date, "D")
    if sel.size == 0:
        return {"distribution": market.price_distribution([], price=price), "comparables": []}
    sale_level = snapshot.cached(
        ("level", version.pk),
        lambda snap: bundle.index.level(
            snap.frame["sale_date"], snap.region if bundle.region_column else None
        ),
    )[sel]
    if bundle.region_column:
        # The index level at the valuation date of each sale's region (few regions: one call each).
        codes, inverse = np.unique(snapshot.region_code[sel], return_inverse=True)
        names = snapshot.region_names[codes]
        target_level = bundle.index.level(np.repeat(when, names.size), names)[inverse]
    else:
        target_level = bundle.index.level(np.array([when]))[np.zeros(sel.size, dtype=np.int64)]
    indexed = snapshot.price[sel] * np.exp(target_level - sale_level)
    x, y = snapshot.x[sel], snapshot.y[sel]
    order = market.comparable_order(
        market.ComparableQuery(
            x=here["x"],
            y=here["y"],
            living_area_m2=here["living_area_m2"],
            property_type=here["property_type"],
        ),
        x=x,
        y=y,
        living_area=snapshot.living_area[sel],
        property_type=snapshot.property_type[sel],
    )
    lons, lats = to_wgs84(x[order], y[order])
    comparables = []
    for rank, (j, lon, lat) in enumerate(zip(order, lons, lats, strict=True), start=1):
        k = sel[j]
        comparables.append(
            {
                "rank": rank,
                "sale_id": int(snapshot.ids[k]),
                "sale_date": str(np.datetime64(int(snapshot.day[k]), "D")),
                "property_type": str(snapshot.property_type[k]),
                "living_area_m2": _jsonable(snapshot.living_area[k]),
                "land_area_m2": _jsonable(snapshot.land_area[k]),
                "price_eur": round(float(snapshot.price[k])),
                "indexed_price_eur": round(float(indexed[j])),
                "distance_m": round(float(np.hypot(x[j] - here["x"], y[j] - here["y"]))),
                "address": "",
                "longitude": round(float(lon), 7),
                "latitude": round(float(lat), 7),
            }
        )
    return {"distribution": market.price_distribution(indexed, price=price), "comparables": comparables}


def feature_label(name: str, language: str) -> str:
    if name == TIME_TERM:
        return registry.TIME_ADJUSTMENT_LABELS.get(language, registry.TIME_ADJUSTMENT_LABELS["en"])
    return registry.get(name).label(language)
