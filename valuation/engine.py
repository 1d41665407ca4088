"""Valuing properties: facts, model, interval, explanation, 1 km distribution and comparables.

One path serves a single valuation and a batch: the candidate sales around all the properties are
read from PostGIS in one query (ST_DWithin on the GiST index), then everything else is vectorised
over the rows (feature builder, ``Booster.predict``, ``pred_contrib``). The active model is loaded
once per process and reloaded only when another version becomes active.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import orjson
import pandas as pd
from django.contrib.gis.gdal import CoordTransform, SpatialReference
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db import connection

from config.metrics import model_in_use
from features import registry
from features.registry import COMPARABLES_K
from features.store import parcel_features_columns
from opendata.models import Municipality
from valuation import market, neighbours
from valuation.locate import Subject
from valuation.ml.bundle import TIME_TERM, Bundle
from valuation.models import SALE_FACTS, ModelStatus, ModelVersion
from valuation.parallel import parallel_parts, workers_for
from valuation.sales_data import GRID_CELL_M, sales_snapshot

POOL_RADIUS_M = 1000.0
# What the feature builder reads of the candidate sales (a narrow frame is cheap to slice).
POOL_COLUMNS = ["x", "y", "sale_date", "indexed_price_m2", "property_type"]
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
            model_in_use(version.version)
        return _loaded[1], _loaded[2]


# --- facts ---------------------------------------------------------------------------------------
def known_facts(subject: Subject) -> dict[str, dict[str, Any]]:
    """What the open data says about the property, each fact with its source."""
    facts: dict[str, dict[str, Any]] = {}
    parcel = subject.parcel
    if parcel is not None:
        facts["land_area_m2"] = {"value": round(parcel.area_m2, 1), "source": "cadastral parcel"}
        buildings: list[Any] = (
            list(subject.buildings) if subject.buildings is not None else list(parcel.buildings.all())
        )
        building = max(buildings, key=footprint_area, default=None)
        if building is not None:
            footprint = footprint_area(building)
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


def footprint_area(building: Any) -> float:
    """A building's footprint area in m², as PostGIS computed it when the parcel was located."""
    area = getattr(building, "footprint_area_m2", None)
    return float(area) if area is not None else float(building.footprint.area)


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


_transforms = threading.local()  # GDAL's coordinate transformations are not shared between threads


def geometry_to_wgs84(geometry: GEOSGeometry) -> GEOSGeometry:
    """A WGS84 copy of ``geometry`` through a transformation kept per thread and source SRID.

    ``geometry.transform(4326)`` builds its transformation from PROJ's database every time, 20-50 ms:
    the result page (parcel and buildings) and every API answer paid that per geometry.
    """
    cached: dict[int, CoordTransform] = _transforms.__dict__.setdefault("by_srid", {})
    source = int(geometry.srid or 31370)
    if source not in cached:
        cached[source] = CoordTransform(SpatialReference(source), SpatialReference(4326))
    return geometry.transform(cached[source], clone=True)


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
    """One row per target: the facts, the point, the valuation date, the index region and the stored
    open-data features of its parcel (built column by column: a frame of row dicts is slow)."""
    columns: dict[str, Any] = {}
    for name in FACT_NAMES:
        values = [known.get(name, {}).get("value") for known in facts]
        if name == "property_type":
            columns[name] = np.array([str(v) for v in values], dtype=object)
        else:
            columns[name] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
                dtype=np.float64
            )
    xy = np.array([t.subject.point.coords[:2] for t in targets], dtype=np.float64).reshape(-1, 2)
    columns["x"], columns["y"] = xy[:, 0], xy[:, 1]
    columns["sale_date"] = pd.to_datetime([t.valuation_date for t in targets])
    columns["region"] = _target_regions([t.subject for t in targets])
    ids = [t.subject.parcel.pk if t.subject.parcel is not None else None for t in targets]
    columns.update(parcel_features_columns(ids))
    return pd.DataFrame(columns)


def _check_facts(frame: pd.DataFrame, bundle: Bundle) -> list[str | None]:
    """A readable problem per row (None when the row can be valued)."""
    # Every model works on price per m² (living area or comparables offset): the area is needed.
    if "living_area_m2" not in bundle.feature_names:
        return [None] * len(frame)
    known = (frame["living_area_m2"].to_numpy(dtype=np.float64) > 0).tolist()
    missing = "The living area is unknown for this property: enter it (in m²) to get a valuation."
    return [None if ok else missing for ok in known]


@dataclass
class Prepared:
    """Targets ready to be valued: everything read from the database, nothing computed yet."""

    version: ModelVersion
    bundle: Bundle
    results: list[dict[str, Any] | ValuationInputError]  # input errors in place, {} where to value
    ok: list[int]  # positions of the targets to value
    rows: pd.DataFrame  # one row per position in ``ok``
    work: list[tuple[Target, dict[str, dict[str, Any]]]]
    vintages: dict[str, Any] | None = None  # the data vintages every result cites


@dataclass(frozen=True)
class Encoded:
    """A result as it is stored: its JSON text, and the figures the valuation row repeats."""

    text: str
    price_eur: int
    low_eur: int
    high_eur: int
    coverage: float


def value_prepare(targets: list[Target], *, vintages: dict[str, Any] | None = None) -> Prepared:
    """Facts, features from the database, the current sales and model (database work, in the caller)."""
    version, bundle = active_model()
    facts = [merged_facts(t.subject, t.facts) for t in targets]
    frame = _target_frame(targets, facts)
    problems = _check_facts(frame, bundle)
    ok = [i for i, p in enumerate(problems) if p is None]
    results: list[dict[str, Any] | ValuationInputError] = [
        ValuationInputError(p, field="living_area_m2") if p else {} for p in problems
    ]
    # The current sales, checked against the database once for the whole batch, and what every part
    # of the batch reads built now, once (forked workers then share it); the computation never
    # queries the database.
    snapshot = sales_snapshot()
    snapshot.indexed_frame(version.pk, lambda frame: bundle.index_pool(frame)[POOL_COLUMNS])
    snapshot.grid()
    snapshot.display_columns()
    _ = version.price_index
    rows = frame.iloc[ok].reset_index(drop=True)
    return Prepared(version, bundle, results, ok, rows, [(targets[i], facts[i]) for i in ok], vintages)


def value_compute_parts(
    prepared: Prepared, *, encode: bool = False, caller_load: float = 0.0
) -> Iterator[tuple[int, list[Any]]]:
    """The results of the prepared targets, part by part: ``(offset, results)``, ``offset`` the
    position in ``prepared.ok`` of the part's first result. Large batches are split over the cores by
    forked processes (no database access in the computation; see :mod:`valuation.parallel`).

    ``encode``: each result as :class:`Encoded` (JSON text, made in the worker processes) instead of
    a dict. ``caller_load``: the caller's own work per result in the parent (storing it), as a
    fraction of the computation's, so that the parent takes a smaller share of the rows.
    """
    if not prepared.ok:
        return
    if workers_for(len(prepared.ok)) > 1:
        _warm(prepared)
    yield from parallel_parts(
        _compute,
        prepared.rows,
        prepared.work,
        prepared.version,
        prepared.bundle,
        prepared.vintages,
        encode,
        caller_load=caller_load,
    )


def _warm(prepared: Prepared) -> None:
    """Value one row per (valuation date, property type) of the batch before it forks: the search
    structures over the sales for those dates and types (grids, k-d trees, bands) are then built
    once, in the parent, and shared by the workers instead of built again in each."""
    rows = prepared.rows
    sample = rows.drop_duplicates(["sale_date", "property_type"]).index.to_list()
    sample = (sample + [i for i in range(len(rows)) if i not in sample[:2]])[: max(2, len(sample))]
    _compute(
        rows.iloc[sample].reset_index(drop=True),
        [prepared.work[i] for i in sample],
        prepared.version,
        prepared.bundle,
        prepared.vintages,
        False,
        1,
    )


def value_targets(
    targets: list[Target], *, vintages: dict[str, Any] | None = None
) -> tuple[ModelVersion, list[dict[str, Any] | ValuationInputError]]:
    """Value many targets at once; each result is a JSON-ready dict, or the input error of that row."""
    prepared = value_prepare(targets, vintages=vintages)
    results = list(prepared.results)
    for offset, part in value_compute_parts(prepared):
        for k, result in enumerate(part):
            results[prepared.ok[offset + k]] = result
    return prepared.version, results


def _encode(result: dict[str, Any]) -> Encoded:
    # orjson: 15 us for a 9 KB result against 90 us for json.dumps (the same JSON values).
    return Encoded(
        orjson.dumps(result).decode(),
        result["price_eur"],
        result["low_eur"],
        result["high_eur"],
        result["coverage"],
    )


def _compute(
    rows: pd.DataFrame,
    work: list[tuple[Target, dict[str, dict[str, Any]]]],
    version: ModelVersion,
    bundle: Bundle,
    vintages: dict[str, Any] | None,
    encode: bool,
    threads: int,
) -> list[Any]:
    """Value ``rows`` (no database access: safe in a forked process)."""
    snapshot = sales_snapshot(check=False)
    found = _neighbourhoods(rows, snapshot, bundle, version)
    if len(rows) > 1:
        # Many properties: all the sales are the pool, with the search structures built over them
        # kept for the next parts of the batch (same features: see _pool).
        pool = _pool(rows, version, bundle, full=True)
        sales = snapshot.cached(("sale-arrays", version.pk), lambda _: bundle.builder.sale_arrays(pool))
    else:
        pool = _pool(rows, version, bundle, full=int(found.count.min()) < COMPARABLES_K)
        sales = None
    with bundle.threads(threads):
        valued = bundle.value(rows, pool, sales=sales)
    feature_rows = _feature_records(valued.features)
    lon, lat = to_wgs84(rows["x"].to_numpy(), rows["y"].to_numpy())
    all_comparables = np.concatenate([np.zeros(0, np.int64), *found.comparables])
    c_lon, c_lat = to_wgs84(snapshot.x[all_comparables], snapshot.y[all_comparables])
    out = []
    at = 0
    for k, (target, facts) in enumerate(work):
        n = found.comparables[k].size
        place = (float(lon[k]), float(lat[k]), c_lon[at : at + n], c_lat[at : at + n])
        at += n
        result = _result(target, facts, valued, k, version, bundle, found, feature_rows[k], place)
        if vintages is not None:
            result["vintages"] = vintages
        out.append(_encode(result) if encode else result)
    return out


def _feature_records(features: pd.DataFrame) -> list[dict[str, Any]]:
    """The feature values of each row as plain Python values (JSON-ready), without pandas per row."""
    columns = {name: features[name].to_numpy() for name in features.columns}
    n = len(features)
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, values in columns.items():
        converted = [_jsonable(v) for v in values.tolist()] if values.dtype != object else None
        for k in range(n):
            out[k][name] = converted[k] if converted is not None else _jsonable(values[k])
    return out


def _neighbourhoods(
    rows: pd.DataFrame, snapshot: Any, bundle: Bundle, version: ModelVersion
) -> neighbours.Neighbourhood:
    """Distribution counts and comparables of every row (earlier same-type sales within 1 km)."""

    def bands_at(tday: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        days, row = np.unique(tday, return_inverse=True)
        table = np.stack([_sale_bands(snapshot, bundle, version, int(d)) for d in days.tolist()])
        return table, row.astype(np.int64)

    return neighbours.neighbourhoods(
        grid=snapshot.grid(),
        living_area=snapshot.cached("living-area-in-grid", lambda s: s.living_area[s.grid().order]),
        tx=rows["x"].to_numpy(dtype=np.float64),
        ty=rows["y"].to_numpy(dtype=np.float64),
        tday=_days(rows["sale_date"]),
        ttype=rows["property_type"].astype(str).to_numpy(),
        tarea=rows["living_area_m2"].to_numpy(dtype=np.float64),
        bands_at=bands_at,
    )


def _days(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy().astype("datetime64[D]").astype(np.int64)


def _sale_gap(snapshot: Any, bundle: Bundle, version: ModelVersion, day: int) -> np.ndarray:
    """Log index change of every sale from its sale date to ``day`` (in its own region)."""

    def compute(snap: Any) -> np.ndarray:
        sale_level = snap.cached(
            ("level", version.pk),
            lambda s: bundle.index.level(s.frame["sale_date"], s.region if bundle.region_column else None),
        )
        when = np.datetime64(day, "D")
        if bundle.region_column:
            names = snap.region_names
            return bundle.index.level(np.repeat(when, names.size), names)[snap.region_code] - sale_level
        return bundle.index.level(np.array([when]))[0] - sale_level

    return snapshot.per_day(("gap", version.pk, day), compute)


def _sale_bands(snapshot: Any, bundle: Bundle, version: ModelVersion, day: int) -> np.ndarray:
    """The band of every sale's price indexed to ``day``, in the order of the sales grid."""
    return snapshot.per_day(
        ("bands", version.pk, day),
        lambda snap: neighbours.sale_bands(day, snap.day, snap.price, _sale_gap(snap, bundle, version, day))[
            snap.grid().order
        ],
    )


def _pool(rows: pd.DataFrame, version: ModelVersion, bundle: Bundle, *, full: bool) -> pd.DataFrame:
    """The candidate sales, indexed to the model's index vintage.

    The sales within 1 km of the properties hold every sale the neighbourhood features can use; they
    also hold the 20 nearest comparables of a property when it has at least 20 earlier sales of its
    type within 1 km. Where one has fewer (a sparse area), all sales are the pool, so the features
    are exactly those training computed.
    """
    snapshot = sales_snapshot(check=False)
    indexed = snapshot.indexed_frame(version.pk, lambda frame: bundle.index_pool(frame)[POOL_COLUMNS])
    if full:
        return indexed
    return indexed.iloc[snapshot.around(rows[["x", "y"]].to_numpy(), POOL_RADIUS_M)]


def _round(value: float, unit: int = 1000) -> int:
    return int(np.round(value / unit)) * unit


def _result(
    target: Target,
    facts: dict[str, dict[str, Any]],
    valued: Any,
    k: int,
    version: ModelVersion,
    bundle: Bundle,
    found: neighbours.Neighbourhood,
    values: dict[str, Any],
    place: tuple[float, float, np.ndarray, np.ndarray],
) -> dict[str, Any]:
    explanation = valued.explanations[k]
    price = explanation.price
    day = int(np.datetime64(target.valuation_date, "D").astype(np.int64))
    gap = _sale_gap(sales_snapshot(check=False), bundle, version, day)
    low = min(_round(valued.low[k]), price)
    high = max(_round(valued.high[k]), price)
    values = dict(values)
    values[TIME_TERM] = round(float(valued.time_factor[k]), 4)
    contributions = [
        {"feature": name, "value": values[name], "contribution_eur": amount}
        for name, amount in explanation.contributions.items()
    ]
    contributions.sort(key=lambda c: -abs(c["contribution_eur"]))
    subject = target.subject
    lon, lat, c_lon, c_lat = place
    return {
        "subject": {
            "label": subject.label,
            "capakey": subject.parcel.capakey if subject.parcel else None,
            "address_id": subject.address.pk if subject.address else None,
            "longitude": round(lon, 7),
            "latitude": round(lat, 7),
            "notes": subject.notes,
        },
        "valuation_date": target.valuation_date.isoformat(),
        "facts": facts,
        "price_eur": price,
        "low_eur": low,
        "high_eur": high,
        "coverage": bundle.coverage,
        "explanation": {"base_eur": explanation.base, "contributions": contributions},
        "distribution": market.distribution_from_counts(found.band_counts[k], price=price),
        "comparables": _comparables(found, k, c_lon, c_lat, gap),
        "model_version": version.version,
        "price_index": version.price_index.label if version.price_index else None,
    }


def _comparables(
    found: neighbours.Neighbourhood, k: int, lons: np.ndarray, lats: np.ndarray, gap: np.ndarray
) -> list[dict[str, Any]]:
    snapshot = sales_snapshot(check=False)
    shown = snapshot.display_columns()
    positions = found.comparables[k]
    indexed = (snapshot.price[positions] * np.exp(gap[positions])).tolist()
    rows = zip(
        positions.tolist(),
        indexed,
        found.comparable_distance[k].tolist(),
        lons.tolist(),
        lats.tolist(),
        strict=True,
    )
    return [
        {
            "rank": rank,
            "sale_id": shown["sale_id"][j],
            "sale_date": shown["sale_date"][j],
            "property_type": shown["property_type"][j],
            "living_area_m2": shown["living_area_m2"][j],
            "land_area_m2": shown["land_area_m2"][j],
            "price_eur": shown["price_eur"][j],
            "indexed_price_eur": round(value),
            "distance_m": round(metres),
            "address": shown["address"][j],
            "longitude": round(lon, 7),
            "latitude": round(lat, 7),
        }
        for rank, (j, value, metres, lon, lat) in enumerate(rows, start=1)
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 2)
    if isinstance(value, (np.integer,)):
        return int(value)
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def feature_label(name: str, language: str) -> str:
    if name == TIME_TERM:
        return registry.TIME_ADJUSTMENT_LABELS.get(language, registry.TIME_ADJUSTMENT_LABELS["en"])
    return registry.get(name).label(language)
