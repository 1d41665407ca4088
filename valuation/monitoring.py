"""Model monitoring: is the active model still fit for the properties it values and the market it meets?

Four views, shown to staff on the admin's "Model monitoring" page (:func:`monitoring_report`):

- **Feature drift**: the PSI of each feature between the model's training reference (recorded at
  training, :mod:`valuation.ml.drift`) and the recent valuations of that model (the last
  ``RECENT_DAYS`` days, at most ``MAX_VALUATIONS``, read from their stored results).
- **Prediction drift**: the PSI of the predicted log price at the price index vintage (the valuation's
  price without the market's move since the vintage), against the model's predictions on its
  reference sales.
- **Accuracy on new sales**: every sale dated after the model's training period, valued by the
  active model as of its sale date (features from earlier sales only, the model's own index held
  flat beyond its vintage: what a valuation on that day would have said), as count, MdAPE, COD and
  PRD (:mod:`valuation.ml.metrics`) per month and per municipality.
- **Feedback**: per month, the share of valuations that got feedback and how it leans (right, too
  high, too low).

Each threshold below is a module constant read from an environment variable when the module is
imported; a crossed one becomes a sentence in :attr:`Report.warnings`:

=====================================  =======  ==================================================
variable                               default  warns when
=====================================  =======  ==================================================
``MONITORING_PSI_WATCH``               0.10     (no warning) a feature is flagged "watch" from here
``MONITORING_PSI_DRIFT``               0.25     a feature's or the prediction's PSI reaches it
``MONITORING_MDAPE_FACTOR``            1.5      the latest month's MdAPE (with at least
                                                ``MONITORING_MIN_SALES`` sales) exceeds this times
                                                the model's MdAPE on its own test sales
``MONITORING_FEEDBACK_IMBALANCE``      0.30     among the feedback of the last ``RECENT_DAYS`` days
                                                (at least ``MONITORING_MIN_FEEDBACK``), the shares
                                                saying too high and too low differ by this much
``MONITORING_RECENT_DAYS``             90       (window of valuations and feedback)
``MONITORING_MAX_VALUATIONS``          5000     (most recent valuations read)
``MONITORING_MIN_VALUATIONS``          100      (fewer recent valuations: drift is not judged)
``MONITORING_MIN_SALES``               20       (see the MdAPE factor)
``MONITORING_MIN_FEEDBACK``            20       (see the feedback imbalance)
=====================================  =======  ==================================================
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from valuation.ml import drift
from valuation.ml.metrics import ratio_study
from valuation.models import Feedback, ModelStatus, ModelVersion, Valuation, Verdict

logger = logging.getLogger(__name__)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


PSI_WATCH = _env_number("MONITORING_PSI_WATCH", 0.10)
PSI_DRIFT = _env_number("MONITORING_PSI_DRIFT", 0.25)
MDAPE_FACTOR = _env_number("MONITORING_MDAPE_FACTOR", 1.5)
FEEDBACK_IMBALANCE = _env_number("MONITORING_FEEDBACK_IMBALANCE", 0.30)
RECENT_DAYS = int(_env_number("MONITORING_RECENT_DAYS", 90))
MAX_VALUATIONS = int(_env_number("MONITORING_MAX_VALUATIONS", 5000))
MIN_VALUATIONS = int(_env_number("MONITORING_MIN_VALUATIONS", 100))
MIN_SALES = int(_env_number("MONITORING_MIN_SALES", 20))
MIN_FEEDBACK = int(_env_number("MONITORING_MIN_FEEDBACK", 20))
#: The accuracy table reads at most this many of the latest sales after the training period.
MAX_SALES = 20_000
#: Municipalities shown by name in the accuracy table; the others are summed in one row.
REGION_ROWS = 25
#: Months of the feedback table.
FEEDBACK_MONTHS = 12
#: The accuracy on new sales is kept this long per model and sales version (it changes with neither).
ACCURACY_CACHE_SECONDS = 6 * 3600
TIME_TERM = "market_change"

#: Where the last report's summary is kept for the metrics of every web process (config/metrics.py).
SUMMARY_CACHE_KEY = "monitoring:summary"
SUMMARY_CACHE_SECONDS = 3 * 24 * 3600


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of one report (the module's, from the environment, unless given)."""

    psi_watch: float = PSI_WATCH
    psi_drift: float = PSI_DRIFT
    mdape_factor: float = MDAPE_FACTOR
    feedback_imbalance: float = FEEDBACK_IMBALANCE
    recent_days: int = RECENT_DAYS
    max_valuations: int = MAX_VALUATIONS
    min_valuations: int = MIN_VALUATIONS
    min_sales: int = MIN_SALES
    min_feedback: int = MIN_FEEDBACK


# --- pure functions --------------------------------------------------------------------------------
def psi_level(value: float, thresholds: Thresholds = Thresholds()) -> str:
    """``drift`` from the drift threshold, ``watch`` from the watch threshold, else ``stable``."""
    if value >= thresholds.psi_drift:
        return "drift"
    return "watch" if value >= thresholds.psi_watch else "stable"


@dataclass
class Drift:
    """One feature's (or the prediction's) shift: its PSI and the bin that moved most."""

    name: str
    label: str
    psi: float
    level: str
    n: int
    moved_bin: str
    expected_share: float
    actual_share: float


def drift_of(
    name: str,
    spec: Mapping[str, Any],
    values: Any,
    *,
    label: str = "",
    thresholds: Thresholds = Thresholds(),
    edge: Callable[[float], str] = "{:g}".format,
) -> Drift:
    """The PSI of ``values`` against the reference ``spec`` of one feature (``edge`` writes a bin edge)."""
    found = drift.compare(spec, values, edge)
    shift = np.abs(np.subtract(found["actual"], found["expected"]))
    moved = int(np.argmax(shift)) if shift.size else 0
    return Drift(
        name=name,
        label=label or name,
        psi=found["psi"],
        level=psi_level(found["psi"], thresholds),
        n=len(values),
        moved_bin=found["labels"][moved] if shift.size else "",
        expected_share=float(found["expected"][moved]) if shift.size else 0.0,
        actual_share=float(found["actual"][moved]) if shift.size else 0.0,
    )


def feature_drift(
    reference: Mapping[str, Any],
    recent: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    thresholds: Thresholds = Thresholds(),
) -> list[Drift]:
    """The PSI of every reference feature in ``recent`` (a column per feature; an absent column is all
    missing), largest first."""
    out = []
    for name, spec in reference.get("features", {}).items():
        values = recent[name].to_numpy() if name in recent.columns else np.full(len(recent), None)
        out.append(drift_of(name, spec, values, label=(labels or {}).get(name, ""), thresholds=thresholds))
    out.sort(key=lambda d: -d.psi)
    return out


def accuracy_groups(keys: Any, estimates: Any, prices: Any) -> list[dict[str, Any]]:
    """Count, MdAPE, PPE10, COD, PRD and median ratio (:func:`ratio_study`) of the sales of each key,
    in the order the keys first appear; sales without a usable estimate are left out."""
    est = np.asarray(estimates, dtype=np.float64)
    price = np.asarray(prices, dtype=np.float64)
    key = np.asarray(keys, dtype=object)
    usable = np.isfinite(est) & (est > 0) & np.isfinite(price) & (price > 0)
    rows = []
    for value in pd.unique(key[usable]):
        mask = usable & (key == value)
        study = ratio_study(est[mask], price[mask])
        rows.append(
            {
                "key": value,
                **{k: study[k] for k in ("count", "mdape", "ppe10", "cod", "prd", "median_ratio")},
            }
        )
    return rows


def feedback_shares(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Shares of the verdicts among ``counts`` (verdict -> number); None where there is no feedback."""
    total = sum(counts.get(v, 0) for v in Verdict.values)
    return {v: (counts.get(v, 0) / total if total else None) for v in Verdict.values}


def warnings_for(
    *,
    features: Sequence[Drift],
    prediction: Drift | None,
    latest_month: Mapping[str, Any] | None,
    test_mdape: float | None,
    feedback: Mapping[str, int],
    thresholds: Thresholds = Thresholds(),
) -> list[str]:
    """The readable sentences of every threshold crossed (empty when all is well)."""
    out: list[str] = []
    drifted = [d for d in features if d.psi >= thresholds.psi_drift]
    if drifted:
        named = ", ".join(f"{d.label} ({d.psi:.2f})" for d in drifted[:6])
        more = _(" and %(n)d more") % {"n": len(drifted) - 6} if len(drifted) > 6 else ""
        out.append(
            _(
                "Feature drift: %(count)d feature(s) of the recent valuations have a PSI of %(limit).2f or "
                "more against the training data: %(names)s%(more)s."
            )
            % {"count": len(drifted), "limit": thresholds.psi_drift, "names": named, "more": more}
        )
    if prediction is not None and prediction.psi >= thresholds.psi_drift:
        out.append(
            _(
                "Prediction drift: the predicted prices of the %(n)d recent valuations have a PSI of "
                "%(psi).2f against the model's predictions on its training sales (limit %(limit).2f)."
            )
            % {"n": prediction.n, "psi": prediction.psi, "limit": thresholds.psi_drift}
        )
    if (
        latest_month is not None
        and test_mdape
        and latest_month["count"] >= thresholds.min_sales
        and latest_month["mdape"] > thresholds.mdape_factor * test_mdape
    ):
        out.append(
            _(
                "Accuracy: the MdAPE on the %(count)d sales of %(month)s is %(mdape).1f%%, more than "
                "%(factor)g times the model's %(test).1f%% on its test sales."
            )
            % {
                "count": latest_month["count"],
                "month": latest_month["key"],
                "mdape": 100 * latest_month["mdape"],
                "factor": thresholds.mdape_factor,
                "test": 100 * test_mdape,
            }
        )
    total = sum(feedback.get(v, 0) for v in Verdict.values)
    if total >= thresholds.min_feedback:
        shares = feedback_shares(feedback)
        high, low = shares[Verdict.TOO_HIGH] or 0.0, shares[Verdict.TOO_LOW] or 0.0
        if abs(high - low) >= thresholds.feedback_imbalance:
            out.append(
                _(
                    "Feedback: of the %(n)d feedback in the last %(days)d days, %(high).0f%% say the price "
                    "is too high and %(low).0f%% too low (a gap of %(limit).0f points or more)."
                )
                % {
                    "n": total,
                    "days": thresholds.recent_days,
                    "high": 100 * high,
                    "low": 100 * low,
                    "limit": 100 * thresholds.feedback_imbalance,
                }
            )
    return out


# --- reading the database --------------------------------------------------------------------------
def recent_valuation_features(
    version: ModelVersion, *, since: datetime, limit: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature values of the latest valuations of ``version`` made since ``since`` (at most
    ``limit``), one row each, as their stored results hold them; and their predicted log price at the
    index vintage (the price without the market's move since the vintage)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select v.price_eur,
                   (select jsonb_object_agg(c->>'feature', c->'value')
                    from jsonb_array_elements(v.result->'explanation'->'contributions') c)
            from valuation_valuation v
            where v.model_version_id = %s and v.created_at >= %s
            order by v.created_at desc
            limit %s
            """,
            [version.pk, since, limit],
        )
        rows = cursor.fetchall()
    # Django reads jsonb as text (its JSONField decodes it): one orjson call per row.
    frame = pd.DataFrame.from_records([_json(values) for _, values in rows])
    price = np.array([p for p, _ in rows], dtype=np.float64)
    factor = (
        pd.to_numeric(frame[TIME_TERM], errors="coerce").to_numpy(dtype=np.float64)
        if TIME_TERM in frame.columns
        else np.ones(len(rows))
    )
    factor = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
    with np.errstate(divide="ignore"):
        log_price = np.log(price / factor)
    return frame, log_price


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return value if isinstance(value, dict) else orjson.loads(value)


def _estimates(version: ModelVersion, bundle: Any, targets: pd.DataFrame) -> np.ndarray:
    """The active model's price of each target on its date, as the engine values a batch: the sales
    snapshot as the pool (features from strictly earlier sales only), the model's index flat beyond
    its vintage. Point prices only (no interval, no explanation)."""
    from valuation.engine import POOL_COLUMNS
    from valuation.sales_data import sales_snapshot

    snapshot = sales_snapshot()
    pool = snapshot.indexed_frame(version.pk, lambda frame: bundle.index_pool(frame)[POOL_COLUMNS])
    sales = snapshot.cached(("sale-arrays", version.pk), lambda _: bundle.builder.sale_arrays(pool))
    features = bundle.builder(targets, pool, sales).reindex(columns=bundle.feature_names)
    region = (
        targets[bundle.region_column].astype(str).to_numpy()
        if bundle.region_column and bundle.region_column in targets.columns
        else None
    )
    factor = bundle.time_factor(targets["sale_date"].to_numpy(), region)
    return np.asarray(bundle.model.predict_price(features) * factor, dtype=np.float64)


def _region_names(codes: Iterable[str]) -> dict[str, str]:
    from opendata.models import Municipality

    language = _language()
    return {
        m.nis_code: f"{m.name(language)} ({m.nis_code})"
        for m in Municipality.objects.filter(nis_code__in=set(codes))
    }


def sales_accuracy(version: ModelVersion, bundle: Any, *, max_sales: int = MAX_SALES) -> dict[str, Any]:
    """The model's accuracy on the sales dated after its training period (the latest ``max_sales``),
    overall, per month and per municipality (the largest :data:`REGION_ROWS`, then the rest)."""
    from valuation.ml.backtest import _prepare
    from valuation.sales_data import sales_frame

    out: dict[str, Any] = {"cutoff": version.train_to, "overall": None, "months": [], "regions": []}
    if version.train_to is None:
        return out
    targets = _prepare(sales_frame(where="s.sale_date > %s", params=[version.train_to]))
    if targets.empty:
        return out
    targets = targets.iloc[-max_sales:].reset_index(drop=True)
    estimate = _estimates(version, bundle, targets)
    price = targets["price_eur"].to_numpy(dtype=np.float64)
    overall = accuracy_groups(["all"] * len(targets), estimate, price)
    out["overall"] = overall[0] if overall else None
    out["months"] = accuracy_groups(targets["sale_date"].dt.strftime("%Y-%m").to_numpy(), estimate, price)
    regions = targets["region"].astype(str).to_numpy()
    counts = pd.Series(regions).value_counts()
    shown = [r for r in counts.index[:REGION_ROWS] if not r.startswith("cell:")]
    rest = _("other places")
    keys = np.where(np.isin(regions, shown), regions, rest)
    names = _region_names(shown)
    rows = accuracy_groups(keys, estimate, price)
    for row in rows:
        row["key"] = names.get(row["key"], row["key"])
    rows.sort(key=lambda r: (r["key"] == rest, -r["count"]))
    out["regions"] = rows
    return out


def cached_sales_accuracy(version: ModelVersion, bundle: Any) -> dict[str, Any]:
    """:func:`sales_accuracy`, kept in the cache until the sales or the model change."""
    from valuation.sales_data import sales_version

    # The artifact's checksum too: a database built again may give another model the same id.
    key = f"monitoring:accuracy:{version.pk}:{version.artifact_sha256[:16]}:{sales_version()}:{_language()}"
    try:
        found = cache.get(key)
    except Exception:  # the cache (Redis) is down: compute it, as without a cache
        logger.warning("model monitoring: the cache did not answer", exc_info=True)
        found = None
    if found is None:
        found = sales_accuracy(version, bundle)
        try:
            cache.set(key, found, ACCURACY_CACHE_SECONDS)
        except Exception:
            logger.warning("model monitoring: the cache did not answer", exc_info=True)
    return found


def feedback_by_month(*, since: datetime) -> list[dict[str, Any]]:
    """Per month of the valuations made since ``since`` (all models), newest first: valuations, those
    with feedback and their share, and the feedback's verdicts with their shares."""
    counts = {f"n_{v}": Count("feedback", filter=Q(feedback__verdict=v)) for v in Verdict.values}
    rows = (
        Valuation.objects.filter(created_at__gte=since)
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(
            n_valuations=Count("id", distinct=True),
            n_with_feedback=Count("feedback__valuation", distinct=True),
            n_feedback=Count("feedback"),
            **counts,
        )
        .order_by("-month")
    )
    out = []
    for row in rows:
        verdicts = {v: row[f"n_{v}"] for v in Verdict.values}
        shares = feedback_shares(verdicts)
        out.append(
            {
                "month": row["month"].strftime("%Y-%m"),
                "valuations": row["n_valuations"],
                "with_feedback": row["n_with_feedback"],
                "rate": row["n_with_feedback"] / row["n_valuations"] if row["n_valuations"] else None,
                "feedback": row["n_feedback"],
                **verdicts,
                **{f"{v}_share": shares[v] for v in Verdict.values},
            }
        )
    return out


def recent_feedback(version: ModelVersion, *, since: datetime) -> dict[str, int]:
    """Verdict -> number of the feedback given since ``since`` on valuations of ``version``."""
    rows = (
        Feedback.objects.filter(created_at__gte=since, valuation__model_version=version)
        .values("verdict")
        .annotate(n=Count("id"))
    )
    return {row["verdict"]: row["n"] for row in rows}


def _euros(log_price: float) -> str:
    return f"EUR {math.exp(log_price):,.0f}"


def _language() -> str:
    language = (translation.get_language() or "en")[:2]
    return language if language in ("nl", "fr", "en") else "en"


def _feature_labels(names: Iterable[str]) -> dict[str, str]:
    from features import registry

    language = _language()
    out = {}
    for name in names:
        try:
            out[name] = registry.get(name).label(language)
        except KeyError:
            out[name] = name
    return out


@dataclass
class Report:
    """Everything the monitoring page shows."""

    version: ModelVersion | None
    generated_at: datetime
    thresholds: Thresholds
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    since: datetime | None = None
    valuations: int = 0
    features: list[Drift] = field(default_factory=list)
    prediction: Drift | None = None
    reference: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    test_mdape: float | None = None
    feedback_months: list[dict[str, Any]] = field(default_factory=list)
    feedback_recent: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def max_psi(self) -> float | None:
        return max((d.psi for d in self.features), default=None)


def monitoring_report(*, now: datetime | None = None, thresholds: Thresholds = Thresholds()) -> Report:
    """The monitoring report of the active model (see the module notes)."""
    now = now or timezone.now()
    report = Report(version=None, generated_at=now, thresholds=thresholds)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        report.timings[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    since = now - timedelta(days=thresholds.recent_days)
    report.since = since
    report.feedback_months = feedback_by_month(since=now - timedelta(days=31 * FEEDBACK_MONTHS))
    lap("feedback")
    version = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
    if version is None:
        report.notes.append(_("No model is active: there is nothing to monitor yet."))
        return report
    report.version = version
    report.test_mdape = ((version.metrics or {}).get("model") or {}).get("mdape")
    report.reference = version.reference or {}

    frame, log_price = recent_valuation_features(version, since=since, limit=thresholds.max_valuations)
    report.valuations = len(frame)
    lap("valuations")
    if not report.reference.get("features"):
        report.notes.append(
            _(
                "No reference: model %(version)s was trained before training recorded the distribution "
                "of its features, so drift cannot be measured; the next trained model will have it."
            )
            % {"version": version.version}
        )
    elif report.valuations < thresholds.min_valuations:
        report.notes.append(
            _(
                "Only %(n)d valuations by model %(version)s in the last %(days)d days: drift is judged "
                "from %(min)d on."
            )
            % {
                "n": report.valuations,
                "version": version.version,
                "days": thresholds.recent_days,
                "min": thresholds.min_valuations,
            }
        )
    else:
        labels = _feature_labels(report.reference["features"])
        report.features = feature_drift(report.reference, frame, labels=labels, thresholds=thresholds)
        report.prediction = drift_of(
            "prediction",
            report.reference["prediction"],
            log_price,
            label=_("predicted price at the index vintage"),
            thresholds=thresholds,
            edge=_euros,
        )
    lap("drift")

    from valuation.engine import NoActiveModel, active_model

    try:
        loaded, bundle = active_model()
        report.accuracy = cached_sales_accuracy(loaded, bundle)
    except NoActiveModel:  # deactivated meanwhile
        report.accuracy = {}
    lap("accuracy")
    months = report.accuracy.get("months") or []
    latest = next((m for m in reversed(months) if m["count"] >= thresholds.min_sales), None)
    report.feedback_recent = recent_feedback(version, since=since)
    report.warnings = warnings_for(
        features=report.features,
        prediction=report.prediction,
        latest_month=latest,
        test_mdape=report.test_mdape,
        feedback=report.feedback_recent,
        thresholds=thresholds,
    )
    lap("warnings")
    report.timings["total"] = round(sum(report.timings.values()), 3)
    summary_store(report)
    return report


def summary_store(report: Report) -> dict[str, Any]:
    """The figures Prometheus scrapes (largest feature PSI, prediction PSI, warnings), kept in the
    shared cache so that every web process reports the last report, whichever process made it (the
    hourly task or a staff member opening the page). Redis being down only loses the gauges."""
    summary = {
        "version": report.version.version if report.version else "",
        "max_psi": _finite(report.max_psi),
        "prediction_psi": _finite(report.prediction.psi if report.prediction else None),
        "warnings": len(report.warnings),
        "generated_at": report.generated_at.timestamp(),
    }
    try:
        cache.set(SUMMARY_CACHE_KEY, summary, SUMMARY_CACHE_SECONDS)
    except Exception:
        logger.warning("model monitoring: the summary was not cached (is Redis down?)", exc_info=True)
    return summary


def summary_cached() -> dict[str, Any] | None:
    try:
        return cache.get(SUMMARY_CACHE_KEY)
    except Exception:
        return None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
