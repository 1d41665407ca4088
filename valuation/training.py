"""Training, the promotion gate and the model registry (the Django side of valuation/ml).

``model_train`` takes a snapshot of the sales, holds the most recent months back as the *recent
sales*, trains on the older ones (price index, features, model selection and interval calibration
all inside :func:`valuation.ml.backtest.run_backtest`), measures the candidate on the recent sales
and stores it with its provenance. The gate then compares its MdAPE on those recent sales with the
active model's on the same sales: the candidate becomes active only when it is not worse (within
``MODEL_GATE_TOLERANCE``); otherwise it is kept, marked rejected, with the reason. The model that was
measured is the model that runs.

One training runs at a time (a lease, :mod:`config.leases`). A training whose process died is never
usable: its files are written to a hidden folder and renamed into place only when complete, its
version stays "training" until it is judged, and the next training (or the periodic check,
:func:`versions_abandoned_mark`) marks it failed and removes its partial files. Activation checks
the model file against the checksum recorded when it was saved. A request id (the Celery task id)
makes a repeated delivery of the same request return its version instead of training again.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.leases import lease, lease_held
from valuation.models import ModelStatus, ModelVersion, PriceIndexVersion
from valuation.sales_data import sales_frame, snapshot_checksum

logger = logging.getLogger(__name__)

RECENT_MONTHS = 3


class TrainingError(RuntimeError):
    """Training could not produce a model; the message says why, for a person."""


class TrainingBusy(TrainingError):
    """Another training is running; this one did not start."""


ABANDONED = (
    "Abandoned: the process training this version stopped (killed, out of memory or restarted) before "
    "it finished. Its files were removed; it was never usable."
)
# Versions that finished: a request that produced one of them is not trained again.
FINISHED = (ModelStatus.ACTIVE, ModelStatus.CANDIDATE, ModelStatus.REJECTED, ModelStatus.RETIRED)


def production_builder() -> Any:
    """The feature builder of production models: the registry's radii and comparables, and the
    open-data features of the parcel (unknown where a layer is missing)."""
    from features.registry import COMPARABLES_K, NEIGHBOURHOOD_RADII_M
    from features.store import OPEN_DATA_CATEGORICAL, OPEN_DATA_NUMERIC
    from valuation.ml.features import DefaultFeatures

    return DefaultFeatures(
        radii=tuple(float(r) for r in NEIGHBOURHOOD_RADII_M),
        knn=(COMPARABLES_K,),
        workers=2,
        extra_numeric=OPEN_DATA_NUMERIC,
        categorical=("property_type", *OPEN_DATA_CATEGORICAL),
    )


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - git from PATH, read-only
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _next_version() -> str:
    stem = timezone.localdate().strftime("%Y.%m.%d")
    n = ModelVersion.objects.filter(version__startswith=stem).count() + 1
    while ModelVersion.objects.filter(version=f"{stem}-{n}").exists():
        n += 1
    return f"{stem}-{n}"


@dataclass
class GateDecision:
    promote: bool
    reason: str
    figures: dict[str, Any]


def gate_decide(
    *, candidate_mdape: float, active_mdape: float | None, tolerance: float, n: int
) -> GateDecision:
    """Promote when the candidate's MdAPE on the recent sales is not worse than the active model's."""
    figures = {
        "candidate_mdape": candidate_mdape,
        "active_mdape": active_mdape,
        "tolerance": tolerance,
        "recent_sales": n,
    }
    if active_mdape is None:
        return GateDecision(True, "no active model to compare with", figures)
    if not np.isfinite(candidate_mdape):
        return GateDecision(False, "the candidate could not value the recent sales", figures)
    limit = active_mdape * (1 + tolerance)
    if candidate_mdape <= limit:
        return GateDecision(
            True,
            f"MdAPE {candidate_mdape:.2%} on {n} recent sales is not worse than the active "
            f"model's {active_mdape:.2%}",
            figures,
        )
    return GateDecision(
        False,
        f"MdAPE {candidate_mdape:.2%} on {n} recent sales is worse than the active model's "
        f"{active_mdape:.2%} (tolerance {tolerance:.1%})",
        figures,
    )


def _stage(version: ModelVersion, stage: str, done: int, total: int = 6) -> None:
    version.progress_stage, version.progress_done, version.progress_total = stage, done, total
    version.save(update_fields=["progress_stage", "progress_done", "progress_total"])
    logger.info("training %s: %s (%d/%d)", version.version, stage, done, total)


def model_train(
    *,
    source: str | None = None,
    recent_months: int = RECENT_MONTHS,
    coverage: float = 0.80,
    tolerance: float | None = None,
    on_stage: Callable[[str], None] | None = None,
    request_id: str = "",
) -> ModelVersion:
    """Train a candidate on all but the most recent sales, judge it on those, promote it if not worse.

    ``request_id`` (a Celery task id): when a version of that request finished already, it is returned
    and nothing is trained again. Raises :class:`TrainingBusy` while another training runs."""
    with lease("training", 0) as mine:
        if not mine:
            raise TrainingBusy("Another training is running; this one did not start.")
        # Holding the training lease, any version still "training" was abandoned by its process.
        versions_abandoned_mark(leased=True)
        if request_id:
            done = ModelVersion.objects.filter(params__request=request_id, status__in=FINISHED).first()
            if done is not None:
                logger.info("training request %s ran already: %s", request_id, done.version)
                return done
        return _model_train(
            source=source,
            recent_months=recent_months,
            coverage=coverage,
            tolerance=tolerance,
            on_stage=on_stage,
            request_id=request_id,
        )


def _model_train(
    *,
    source: str | None,
    recent_months: int,
    coverage: float,
    tolerance: float | None,
    on_stage: Callable[[str], None] | None,
    request_id: str,
) -> ModelVersion:
    from valuation.ml.backtest import run_backtest
    from valuation.ml.bundle import Bundle
    from valuation.ml.model import library_versions

    tolerance = settings.MODEL_GATE_TOLERANCE if tolerance is None else tolerance
    version = ModelVersion.objects.create(
        version=_next_version(),
        status=ModelStatus.TRAINING,
        interval_coverage=coverage,
        params={"request": request_id} if request_id else {},
    )

    def stage(name: str, done: int) -> None:
        _stage(version, name, done)
        if on_stage is not None:
            on_stage(name)

    try:
        stage("reading the sales", 1)
        sales = sales_frame(source=source)
        usable = sales[(sales["living_area_m2"] > 0) & (sales["price_eur"] > 0)]
        if len(usable) < 500:
            raise TrainingError(f"{len(usable)} sales with a living area: at least 500 are needed to train.")
        last = usable["sale_date"].max()
        split = (last - pd.DateOffset(months=recent_months)).normalize() + pd.Timedelta(days=1)
        stage("training and calibrating", 2)
        builder = production_builder()
        result = run_backtest(
            usable,
            split,
            builder,
            region_column="region",
            coverage=coverage,
            holdout_months=6,
            keep_predictions=True,
            reference=True,
        )
        bundle = Bundle.from_backtest(result, builder, "region")
        stage("saving the model", 3)
        folder = Path(settings.MODEL_DIR) / version.version
        checksum = snapshot_checksum(usable)
        snapshot: dict[str, Any] = {
            "from": str(usable["sale_date"].min().date()),
            "to": str(last.date()),
            "count": len(usable),
            "trained_before": str(split.date()),
            "checksum": checksum,
            "source": source or "all",
        }
        # Written aside, then renamed into place: a folder named after a version is always complete.
        partial = _partial_folder(version)
        shutil.rmtree(partial, ignore_errors=True)
        bundle.save(
            partial, training_snapshot=snapshot, metrics=_metrics(result), code_version=code_version()
        )
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        index = bundle.index
        price_index = PriceIndexVersion.objects.create(
            method="monthly hedonic time effects of log price per m² (random-walk smoothed), "
            "per municipality where it has enough sales, national otherwise",
            frequency=index.freq,
            vintage=pd.Period(index.vintage_, freq=index.freq).start_time.date(),
            sales_count=int(index.n_sales_),
            sales_checksum=checksum,
            payload=index.to_dict(),
        )
        version.artifact_path = str(folder)
        version.artifact_sha256 = hashlib.sha256((folder / "model.txt").read_bytes()).hexdigest()
        version.features = bundle.feature_names
        version.params = {
            **version.params,
            "chosen": result["chosen"],
            "interval": {"method": result["interval"]["method"], "n_bins": result["interval"]["n_bins"]},
        }
        version.price_index = price_index
        version.train_from = usable["sale_date"].min().date()
        version.train_to = (split - pd.Timedelta(days=1)).date()
        version.train_count = int(
            result["counts"]["fit"] + result["counts"]["valid"] + result["counts"]["calibration"]
        )
        version.train_checksum = checksum
        version.code_version = snapshot_code = code_version()
        version.library_versions = library_versions()
        version.metrics = _metrics(result)
        version.reference = result["reference"]  # what model monitoring compares valuations with
        version.status = ModelStatus.CANDIDATE
        version.save()
        logger.info("model %s trained at code %s", version.version, snapshot_code)

        stage("comparing with the active model", 4)
        decision = _judge(version, bundle, usable, split, result, tolerance)
        version.gate = {"promote": decision.promote, "reason": decision.reason, **decision.figures}
        version.save(update_fields=["gate"])
        if decision.promote:
            model_activate(version=version)
        else:
            version.status, version.reason = ModelStatus.REJECTED, decision.reason
            version.save(update_fields=["status", "reason"])
        stage("done", 6)
    except Exception as exc:
        version.status = ModelStatus.FAILED
        version.reason = str(exc) if isinstance(exc, TrainingError) else f"{type(exc).__name__}: {exc}"
        version.save(update_fields=["status", "reason"])
        raise
    version.refresh_from_db()
    return version


def _metrics(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "recent_sales": result["counts"]["test"],
        "model": result["model"],
        "baseline": result["baseline"],
        "interval": {k: v for k, v in result["interval"].items() if k != "selection"},
        "hit_rate": result["hit_rate"],
        "counts": result["counts"],
        "timings_s": result["timings"],
    }


def _judge(
    version: ModelVersion,
    bundle: Any,
    sales: pd.DataFrame,
    split: pd.Timestamp,
    result: dict[str, Any],
    tolerance: float,
) -> GateDecision:
    from valuation.ml.metrics import mdape

    predictions = result["predictions"]
    estimate = predictions["estimate_eur"].to_numpy()
    price = predictions["price_eur"].to_numpy()
    active = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exclude(pk=version.pk).first()
    ok = np.isfinite(estimate)
    if active is None:
        return gate_decide(
            candidate_mdape=mdape(estimate[ok], price[ok]),
            active_mdape=None,
            tolerance=tolerance,
            n=int(ok.sum()),
        )
    active_estimate = recent_estimates(active, sales, split)
    both = ok & np.isfinite(active_estimate)
    decision = gate_decide(
        candidate_mdape=mdape(estimate[both], price[both]),
        active_mdape=mdape(active_estimate[both], price[both]),
        tolerance=tolerance,
        n=int(both.sum()),
    )
    decision.figures["active_version"] = active.version
    return decision


def recent_estimates(version: ModelVersion, sales: pd.DataFrame, split: pd.Timestamp) -> np.ndarray:
    """Another model's estimates of the sales from ``split`` on, in the order run_backtest uses."""
    from valuation.ml.backtest import _prepare
    from valuation.ml.bundle import Bundle

    bundle = Bundle.load(version.artifact_path, num_threads=2)
    frame = _prepare(sales)
    test = frame[frame["sale_date"] >= split]
    pool = bundle.index_pool(frame)
    valued = bundle.value(test, pool)
    return np.asarray(valued.price, dtype=np.float64)


def _partial_folder(version: ModelVersion) -> Path:
    return Path(settings.MODEL_DIR) / f".{version.version}.partial"


def versions_abandoned_mark(*, leased: bool = False) -> int:
    """Mark failed the versions left "training" by a process that died, remove their partial files;
    return how many. ``leased``: the caller holds the training lease, so every such version was
    abandoned; otherwise only when nobody holds it (versions read before the check)."""
    pks = list(ModelVersion.objects.filter(status=ModelStatus.TRAINING).values_list("pk", flat=True))
    if not pks or (not leased and lease_held("training", 0)):
        return 0
    marked = 0
    for version in ModelVersion.objects.filter(pk__in=pks, status=ModelStatus.TRAINING):
        for folder in {_partial_folder(version), Path(settings.MODEL_DIR) / version.version}:
            shutil.rmtree(folder, ignore_errors=True)
        if version.artifact_path:
            shutil.rmtree(version.artifact_path, ignore_errors=True)
        marked += ModelVersion.objects.filter(pk=version.pk, status=ModelStatus.TRAINING).update(
            status=ModelStatus.FAILED, reason=ABANDONED, artifact_path=""
        )
        logger.warning("training of %s was abandoned by its process; marked failed", version.version)
    return marked


def artifact_intact(version: ModelVersion) -> bool:
    """The version's files are complete and its model file is the one that was measured."""
    folder = Path(version.artifact_path) if version.artifact_path else None
    if folder is None or not (folder / "manifest.json").exists() or not (folder / "model.txt").exists():
        return False
    if not version.artifact_sha256:
        return True
    return hashlib.sha256((folder / "model.txt").read_bytes()).hexdigest() == version.artifact_sha256


@transaction.atomic
def model_activate(*, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the active model (promotion or rollback); the active one is retired."""
    if not version.artifact_path or not Path(version.artifact_path, "manifest.json").exists():
        raise TrainingError(f"model {version.version} has no artifact on disk; it cannot be activated")
    if not artifact_intact(version):
        raise TrainingError(
            f"model {version.version}: its model file does not match the checksum recorded when it was "
            "saved (changed or truncated); it cannot be activated"
        )
    if version.status in (ModelStatus.TRAINING, ModelStatus.FAILED):
        raise TrainingError(f"model {version.version} is {version.status}; it cannot be activated")
    ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).exclude(pk=version.pk).update(
        status=ModelStatus.RETIRED
    )
    version.status, version.activated_at = ModelStatus.ACTIVE, timezone.now()
    version.save(update_fields=["status", "activated_at"])
    return version


def active_model_exists() -> bool:
    return ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exists()
