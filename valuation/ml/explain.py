"""Explanations in euros: SHAP contributions that add up exactly to the displayed price.

The model predicts log price. LightGBM's ``pred_contrib=True`` gives TreeSHAP contributions ``phi_j``
of each feature to the log price plus a base value ``b`` (the model's expected log price), with
``b + sum_j phi_j = log(price)`` -- the same values as ``shap.TreeExplainer``.

From log to euros (exact scheme)
    The base in euros is ``B = exp(b)``; the gap ``price - B = B * (exp(S) - 1)``, with ``S = sum phi``,
    is shared among features in proportion to their log contributions::

        c_j = B * phi_j * expm1(S) / S          (and c_j = B * phi_j when S = 0)

    so ``B + sum_j c_j = price`` exactly in real arithmetic, each ``c_j`` has the sign of ``phi_j``, and
    a feature's share of the euro gap equals its share of the log gap. ``expm1(S)/S`` is evaluated
    stably near 0, so there is no blow-up when the price is close to the base.

Integer euros for a rounded price (:func:`rounded_explanation`)
    The displayed price is rounded to ``unit`` (EUR 1,000 by default), the base to the euro. The euro
    amounts to share are then ``T = displayed price - displayed base``, which differs from ``sum c_j``
    by the rounding of the price and the base (at most ``unit / 2 + 1/2`` EUR). That remainder is
    spread over the features *in proportion to their absolute contributions*, and the adjusted
    amounts are rounded to integer euros by the largest-remainder method (floor everything, then give
    the missing euros one by one to the largest fractional parts; ties go to the earlier feature), so
    ``displayed base + sum of integer contributions == displayed price`` holds exactly, in integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from valuation.ml.model import PriceModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
OTHER_LABEL = "other features"


def _expm1_over_x(s: FloatArray) -> FloatArray:
    """``expm1(s) / s``, continuous at 0 (value 1), accurate for small ``s``."""
    s = np.asarray(s, dtype=np.float64)
    out = np.ones_like(s)
    nonzero = s != 0
    out[nonzero] = np.expm1(s[nonzero]) / s[nonzero]
    return out


def eur_contributions(log_contrib: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Convert log-price contributions to euros.

    Parameters
    ----------
    log_contrib : array-like of shape (n, n_features + 1)
        TreeSHAP contributions to the log price, the last column being the base value
        (``PriceModel.contributions`` or ``Booster.predict(..., pred_contrib=True)``).

    Returns
    -------
    base_eur : numpy.ndarray of shape (n,)
        ``exp(base)``.
    contrib_eur : numpy.ndarray of shape (n, n_features)
        Euro contributions; ``base_eur + contrib_eur.sum(axis=1) == price_eur`` up to float rounding
        (about 1e-12 relative).
    price_eur : numpy.ndarray of shape (n,)
        ``exp(base + sum of log contributions)``, the model's price.
    """
    contrib = np.atleast_2d(np.asarray(log_contrib, dtype=np.float64))
    phi, base_log = contrib[:, :-1], contrib[:, -1]
    total_log = phi.sum(axis=1)
    base_eur = np.exp(base_log)
    contrib_eur = (base_eur * _expm1_over_x(total_log))[:, None] * phi
    price_eur = np.exp(base_log + total_log)
    return base_eur, contrib_eur, price_eur


def largest_remainder_round(amounts: npt.ArrayLike, total: int) -> IntArray:
    """Integers close to ``amounts`` that add up to ``total`` exactly.

    ``amounts`` are first shifted so that they sum to ``total``, in proportion to their absolute values
    (equally when all are 0), then floored; the missing units go one by one to the largest fractional
    parts (the earlier position wins a tie).
    """
    a = np.asarray(amounts, dtype=np.float64).ravel()
    if a.size == 0:
        if total != 0:
            raise ValueError("cannot share a non-zero total among no amounts")
        return np.zeros(0, dtype=np.int64)
    weight = np.abs(a)
    weight = weight / weight.sum() if weight.sum() > 0 else np.full(a.size, 1.0 / a.size)
    target = a + (total - a.sum()) * weight
    floored = np.floor(target)
    result = floored.astype(np.int64)
    missing = int(total - result.sum())
    # Float error can leave `missing` one off the number of fractional parts; clamp it into range.
    fraction = target - floored
    order = np.argsort(-fraction, kind="stable")
    if missing >= 0:
        result[order[np.arange(missing) % a.size]] += 1
    else:
        result[order[::-1][np.arange(-missing) % a.size]] -= 1
    return result


@dataclass(frozen=True)
class Explanation:
    """One valuation's explanation in integer euros.

    ``base + sum(contributions.values()) == price`` exactly.

    Attributes
    ----------
    price : int
        Displayed price (rounded to the unit).
    base : int
        The model's base value in euros: the price of a typical property (rounded to the euro).
    contributions : dict of str to int
        Euro contribution of each feature, in feature order.
    price_unrounded : float
        The model's price before rounding.
    """

    price: int
    base: int
    contributions: dict[str, int]
    price_unrounded: float

    def grouped(self, max_items: int = 8, min_share: float = 0.02) -> list[tuple[str, int]]:
        """The contributions for display, small ones grouped; see :func:`group_small`."""
        return group_small(self.contributions, max_items=max_items, min_share=min_share)


def rounded_explanation(
    feature_names: Sequence[str], log_contrib: npt.ArrayLike, *, unit: int = 1000
) -> list[Explanation]:
    """Integer-euro explanations of rows of log contributions, for a price rounded to ``unit``.

    Parameters
    ----------
    feature_names : sequence of str
        Names of the feature columns of ``log_contrib`` (all but the last, the base).
    log_contrib : array-like of shape (n, n_features + 1)
        TreeSHAP log contributions with the base last.
    unit : int, default 1000
        Rounding unit of the displayed price (half-way cases round to even, as ``numpy.round``).

    Returns
    -------
    list of Explanation
        One per row.
    """
    base_eur, contrib_eur, price_eur = eur_contributions(log_contrib)
    names = list(feature_names)
    if contrib_eur.shape[1] != len(names):
        raise ValueError("one feature name per contribution column")
    explanations = []
    for base, contrib, price in zip(base_eur, contrib_eur, price_eur, strict=True):
        shown_price = int(np.round(price / unit)) * unit
        shown_base = int(np.round(base))
        integers = largest_remainder_round(contrib, shown_price - shown_base)
        explanations.append(
            Explanation(
                price=shown_price,
                base=shown_base,
                contributions=dict(zip(names, (int(v) for v in integers), strict=True)),
                price_unrounded=float(price),
            )
        )
    return explanations


def explain(model: PriceModel, X: Any, *, unit: int = 1000) -> list[Explanation]:
    """Integer-euro explanations of ``model``'s prices for the rows of ``X`` (see the module notes)."""
    return rounded_explanation(model.feature_names, model.contributions(X), unit=unit)


def group_small(
    contributions: dict[str, int] | dict[str, float],
    *,
    max_items: int = 8,
    min_share: float = 0.02,
    other_label: str = OTHER_LABEL,
) -> list[tuple[str, Any]]:
    """The contributions worth showing, the rest summed into one ``other_label`` line.

    A feature is shown when it is among the ``max_items`` largest in absolute value and its absolute
    value is at least ``min_share`` of the sum of absolute values. The other line (omitted when empty)
    is last; the shown values plus the other line add up to the same total as the input (exactly, for
    integer contributions).

    Returns
    -------
    list of (str, number)
        Shown features by decreasing absolute value, then the other line.
    """
    items = list(contributions.items())
    total_abs = sum(abs(v) for _, v in items)
    ranked = sorted(items, key=lambda item: -abs(item[1]))
    shown = [
        (name, value)
        for rank, (name, value) in enumerate(ranked)
        if rank < max_items and total_abs > 0 and abs(value) >= min_share * total_abs
    ]
    shown_names = {name for name, _ in shown}
    rest = [value for name, value in items if name not in shown_names]
    if rest:
        shown.append((other_label, sum(rest)))
    return shown
