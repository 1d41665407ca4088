"""Reference distributions of a model's inputs and outputs, and the population stability index (PSI).

Training records, with each model, how its features and its predicted log price were distributed on
the latest training sales (:func:`reference_distribution`); monitoring later bins the features of
recent valuations the same way and compares the two with the PSI (:func:`psi`, :func:`bin_shares`).

A numeric feature is cut at its reference deciles (values that occur, right-closed bins, repeated
edges merged, so a discrete feature such as the number of rooms keeps one bin per common value); a
missing value is a bin of its own. A categorical feature keeps the share of each of its most
frequent values; rarer values and values unseen in training share one ``other`` bin.

The PSI of bin proportions ``e`` (reference) and ``a`` (recent) is ``sum((a - e) * ln(a / e))``, each
proportion floored at :data:`PSI_FLOOR` so an empty bin counts as a large shift, not as infinity.
Usual reading: below 0.1 stable, 0.1 to 0.25 worth watching, from 0.25 a real shift.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FORMAT = "valuation.reference/1"
#: Quantile bins of a numeric feature (deciles).
N_BINS = 10
#: Categories kept by name; the rest share the ``other`` bin.
MAX_CATEGORIES = 20
#: Floor of a bin proportion in the PSI (an empty bin).
PSI_FLOOR = 1e-4
#: Values are compared at the precision a stored valuation keeps them (two decimals).
DECIMALS = 2
#: The reference rows: the latest training sales, at least this many ...
REFERENCE_MIN_ROWS = 2_000
#: ... and at most this many (a seeded sample beyond it: deciles need no more).
REFERENCE_MAX_ROWS = 200_000
MISSING = "__missing__"

FloatArray = npt.NDArray[np.float64]


def psi(expected: Sequence[float] | FloatArray, actual: Sequence[float] | FloatArray) -> float:
    """Population stability index of two sets of bin proportions (same bins, same order).

    Parameters
    ----------
    expected, actual : sequence of float
        Proportions per bin (each summing to 1), the reference first.

    Returns
    -------
    float
        ``sum((a - e) * ln(a / e))`` with every proportion floored at :data:`PSI_FLOOR`.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    if e.shape != a.shape:
        raise ValueError(f"expected {e.shape[0]} bins, got {a.shape[0]}")
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric(values: Any) -> FloatArray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":  # None, strings: what cannot be read as a number is missing
        array = pd.to_numeric(pd.Series(array, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    out: FloatArray = np.asarray(np.round(array.astype(np.float64), DECIMALS), dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def _categories(values: Any) -> npt.NDArray[np.object_]:
    series = pd.Series(values, dtype=object)
    present = series.notna() & (series.astype(str) != "")
    return np.where(present, series.astype(str), MISSING).astype(object)


def numeric_reference(values: Any, n_bins: int = N_BINS) -> dict[str, Any]:
    """Decile edges and the share of each bin (and of missing values) of a numeric column."""
    x = _numeric(values)
    known = x[~np.isnan(x)]
    edges = (
        np.unique(np.quantile(known, np.arange(1, n_bins) / n_bins, method="inverted_cdf")).tolist()
        if known.size
        else []
    )
    spec: dict[str, Any] = {"kind": "numeric", "edges": edges}
    spec["shares"] = bin_shares(spec, x).tolist() if x.size else []
    return spec


def categorical_reference(values: Any, max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """The share of each frequent category, of the others together, and of missing values."""
    labels = _categories(values)
    counts = pd.Series(labels).value_counts()
    kept = [str(k) for k in counts.index if k != MISSING][:max_categories]
    spec: dict[str, Any] = {"kind": "categorical", "categories": kept}
    spec["shares"] = bin_shares(spec, labels).tolist() if labels.size else []
    return spec


def bin_labels(spec: Mapping[str, Any], edge: Callable[[float], str] = "{:g}".format) -> list[str]:
    """Readable names of the bins of a reference (``<= 120``, ``120 - 150``, ``> 180``, ``missing``);
    ``edge`` writes one edge (e.g. a log price as euros)."""
    if spec["kind"] == "categorical":
        return [*spec["categories"], "other", "missing"]
    edges = [edge(e) for e in spec["edges"]]
    if not edges:
        return ["all", "missing"]
    inner = [f"{lo} - {hi}" for lo, hi in itertools.pairwise(edges)]
    return [f"<= {edges[0]}", *inner, f"> {edges[-1]}", "missing"]


def bin_shares(spec: Mapping[str, Any], values: Any) -> FloatArray:
    """Proportions of ``values`` in the bins of ``spec`` (the missing bin last)."""
    if spec["kind"] == "categorical":
        labels = _categories(values)
        names = list(spec["categories"])
        size = len(names) + 2
        codes = pd.Index(names, dtype=object).get_indexer(labels).astype(np.int64)
        codes[codes < 0] = size - 2  # other
        codes[labels == MISSING] = size - 1
    else:
        x = _numeric(values)
        edges = np.asarray(spec["edges"], dtype=np.float64)
        size = edges.size + 2
        codes = np.where(np.isnan(x), size - 1, np.searchsorted(edges, x, side="left"))
    if codes.size == 0:
        return np.zeros(size)
    return np.bincount(codes, minlength=size).astype(np.float64) / codes.size


def compare(
    spec: Mapping[str, Any], values: Any, edge: Callable[[float], str] = "{:g}".format
) -> dict[str, Any]:
    """The PSI of ``values`` against a reference, with both sets of proportions and the bin labels."""
    actual = bin_shares(spec, values)
    expected = np.asarray(spec["shares"], dtype=np.float64)
    return {
        "psi": psi(expected, actual),
        "labels": bin_labels(spec, edge),
        "expected": expected.tolist(),
        "actual": actual.tolist(),
    }


def reference_distribution(
    features: pd.DataFrame, log_prediction: Any, *, n_bins: int = N_BINS
) -> dict[str, Any]:
    """What monitoring compares recent valuations with: every feature's and the predicted log price's
    bins and proportions on these rows (JSON-ready).

    Parameters
    ----------
    features : pandas.DataFrame
        Model inputs of the reference sales; columns of a non-numeric dtype are categorical.
    log_prediction : array-like
        The model's predicted log price of the same rows (at the price index vintage).
    """
    out: dict[str, Any] = {"format": FORMAT, "rows": len(features), "bins": n_bins, "features": {}}
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_numeric_dtype(column):
            out["features"][name] = numeric_reference(column.to_numpy(), n_bins)
        else:
            out["features"][name] = categorical_reference(column.astype(object).to_numpy())
    out["prediction"] = numeric_reference(np.asarray(log_prediction, dtype=np.float64), n_bins)
    return out


def reference_rows(
    rows: Any,
    holdout: int,
    *,
    min_rows: int = REFERENCE_MIN_ROWS,
    max_rows: int = REFERENCE_MAX_ROWS,
    seed: int = 0,
) -> npt.NDArray[np.intp]:
    """The rows a reference is computed on: the latest ``max(holdout, min_rows)`` of ``rows`` (positions
    in date order), a seeded sample of ``max_rows`` of them when there are more.

    The latest training sales, not all of them: features that grow with time (the count of earlier
    sales around a property) are then compared with the market the model was last fitted on.
    """
    ordered = np.sort(np.asarray(rows, dtype=np.intp))
    latest = ordered[-max(holdout, min_rows) :]
    if latest.size > max_rows:
        latest = np.sort(np.random.default_rng(seed).choice(latest, max_rows, replace=False))
    return latest
