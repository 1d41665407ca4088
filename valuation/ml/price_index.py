"""A hedonic price index built from the sales themselves, to express past prices at a later date.

The index is the time effect of a regression of log price (per m2, or with log area as a control) on
period dummies, optional numeric controls and optional location-cell fixed effects. The period effects
are smoothed by a random-walk penalty inside the regression itself::

    minimise  sum_i (y_i - b[t_i] - controls_i @ g - c[cell_i])^2  +  lam * sum_t (b[t] - b[t-1])^2

which is the posterior mode of a random-walk state-space model: ``lam = sigma^2 / step_sd^2``, with
``sigma^2`` the residual variance (estimated in a first pass) and ``step_sd`` the expected standard
deviation of the period-to-period change of the log index. Periods with many sales follow their own
data; thin or empty periods are pulled towards their neighbours, so there are no gaps to fill.

Regions with at least ``min_sales_per_region`` sales get their own index, modelled as the national
index plus a region deviation that itself follows a (smoother) random walk, so a thin region keeps the
national shape. Other regions use the national index. Beyond the last period with data (the vintage)
and before the first one, the index is flat.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from valuation.ml._dates import as_days

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FORMAT = "valuation.price_index/1"
_MONTHS_PER_PERIOD = {"M": 1, "Q": 3}


def _periods(dates: Any, freq: str) -> IntArray:
    """Period number of each date: months (``freq="M"``) or quarters (``"Q"``) since 1970-01."""
    months = as_days(dates).astype("datetime64[M]").astype(np.int64)
    return months // _MONTHS_PER_PERIOD[freq]


def period_label(period: int, freq: str) -> str:
    """Human label of a period number: ``"2016-12"`` or ``"2016Q4"``."""
    if freq == "M":
        return f"{1970 + period // 12:04d}-{period % 12 + 1:02d}"
    return f"{1970 + period // 4:04d}Q{period % 4 + 1}"


def parse_period(label: str, freq: str) -> int:
    """Inverse of :func:`period_label`."""
    if freq == "M":
        year, month = label.split("-")
        return (int(year) - 1970) * 12 + int(month) - 1
    year, quarter = label.split("Q")
    return (int(year) - 1970) * 4 + int(quarter) - 1


def _one_hot(codes: IntArray, width: int) -> sparse.csr_matrix:
    n = codes.size
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, width))


def _smoothed_time_effects(
    y: FloatArray,
    period: IntArray,
    n_periods: int,
    controls: FloatArray | None,
    cells: IntArray | None,
    step_sd: float,
) -> tuple[FloatArray, float]:
    """Random-walk-penalised period effects (see the module docstring) and the residual SD.

    The cell fixed effects are profiled out with a Schur complement, so thousands of cells cost little.
    """
    n = y.size
    blocks = [_one_hot(period, n_periods)]
    if controls is not None and controls.shape[1]:
        blocks.append(sparse.csr_matrix(controls - controls.mean(axis=0)))
    x1 = sparse.hstack(blocks, format="csr")
    p1 = x1.shape[1]
    a = (x1.T @ x1).toarray()
    r1 = np.asarray(x1.T @ y).ravel()
    diff = np.diff(np.eye(n_periods), axis=0)
    penalty = np.zeros((p1, p1))
    penalty[:n_periods, :n_periods] = diff.T @ diff
    ridge = 1e-8 * np.eye(p1)
    if cells is not None:
        n_cells = int(cells.max()) + 1
        c = _one_hot(cells, n_cells)
        b_dense = (x1.T @ c).toarray()
        # A tiny ridge on the cell effects pins the otherwise free common level of b and c.
        d = np.asarray(c.sum(axis=0)).ravel() + 1e-6
        r2 = np.asarray(c.T @ y).ravel()
        a_schur = a - (b_dense / d) @ b_dense.T
        r_schur = r1 - b_dense @ (r2 / d)
    else:
        a_schur, r_schur = a, r1

    def solve(lam: float) -> tuple[FloatArray, FloatArray]:
        theta1 = np.linalg.solve(a_schur + lam * penalty + ridge, r_schur)
        fitted = x1 @ theta1
        if cells is not None:
            cell_effects = (r2 - b_dense.T @ theta1) / d
            fitted = fitted + cell_effects[cells]
        return theta1, y - fitted

    n_params = p1 + (int(cells.max()) + 1 if cells is not None else 0)
    dof = max(n - n_params, 1)
    _, residuals = solve(1.0)
    sigma2 = float(residuals @ residuals) / dof
    lam = sigma2 / step_sd**2
    theta1, residuals = solve(lam)
    return theta1[:n_periods], float(np.sqrt(float(residuals @ residuals) / dof))


def _codes(values: Any) -> tuple[IntArray, list[str]]:
    codes, uniques = pd.factorize(pd.Series(np.asarray(values)).astype(str), sort=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


class PriceIndex:
    """A smoothed hedonic price index per period, national and per region.

    Parameters
    ----------
    freq : {"M", "Q"}, default "M"
        Monthly or quarterly periods.
    min_sales_per_region : int, default 500
        A region with fewer sales uses the national index.
    step_sd : float, optional
        Expected standard deviation of the period-to-period change of the national log index; sets the
        strength of the random-walk smoothing. Default 0.01 per month (``0.01 * sqrt(3)`` per quarter).
    region_step_sd : float, optional
        The same for a region's deviation from the national index. Default ``step_sd / 2``.

    Attributes
    ----------
    start_ : str
        Label of the first period with data (``"2014-01"`` or ``"2014Q1"``).
    vintage_ : str
        Label of the last period with data; the index is flat after it.
    national_ : numpy.ndarray
        Log index level per period from ``start_`` to ``vintage_``, 0 at the first period.
    regions_ : dict of str to numpy.ndarray
        Log index level per period of each region that has its own index.
    n_sales_ : int
        Number of sales the index was fitted on.
    n_sales_by_region_ : dict of str to int
        Sales per region (all regions seen, with or without their own index).
    residual_sd_ : float
        Residual standard deviation of the national regression (log units).
    """

    def __init__(
        self,
        freq: str = "M",
        min_sales_per_region: int = 500,
        step_sd: float | None = None,
        region_step_sd: float | None = None,
    ) -> None:
        if freq not in _MONTHS_PER_PERIOD:
            raise ValueError(f"freq must be 'M' or 'Q', not {freq!r}")
        self.freq = freq
        self.min_sales_per_region = min_sales_per_region
        self.step_sd = step_sd
        self.region_step_sd = region_step_sd

    # -- fitting -------------------------------------------------------------------------------------
    def _step_sds(self) -> tuple[float, float]:
        step = self.step_sd if self.step_sd is not None else 0.01 * np.sqrt(_MONTHS_PER_PERIOD[self.freq])
        region_step = self.region_step_sd if self.region_step_sd is not None else step / 2
        return float(step), float(region_step)

    def fit(
        self,
        dates: Any,
        log_price: npt.ArrayLike,
        region: npt.ArrayLike | None = None,
        controls: npt.ArrayLike | None = None,
        cells: npt.ArrayLike | None = None,
    ) -> Self:
        """Fit the national and regional indices.

        Parameters
        ----------
        dates : array-like of dates
            Sale dates.
        log_price : array-like of float
            Log of the price (or of the price per m2).
        region : array-like, optional
            Region of each sale (stored as str). Regions with enough sales get their own index.
        controls : array-like of shape (n,) or (n, k), optional
            Numeric hedonic controls, e.g. log living area. Must not contain NaN.
        cells : array-like, optional
            Location cells (postcode, grid cell...) entered as fixed effects. Defaults to ``region``.

        Returns
        -------
        PriceIndex
            self.
        """
        period = _periods(dates, self.freq)
        y = np.asarray(log_price, dtype=np.float64).ravel()
        if y.size != period.size or y.size == 0:
            raise ValueError("dates and log_price must be non-empty and of the same length")
        ctrl = None if controls is None else np.asarray(controls, dtype=np.float64).reshape(y.size, -1)
        if not np.all(np.isfinite(y)) or (ctrl is not None and not np.all(np.isfinite(ctrl))):
            raise ValueError("log_price and controls must be finite")
        if cells is None:
            cells = region
        cell_codes = None if cells is None else _codes(cells)[0]
        step_sd, region_step_sd = self._step_sds()

        first, last = int(period.min()), int(period.max())
        n_periods = last - first + 1
        rel = period - first
        national, residual_sd = _smoothed_time_effects(y, rel, n_periods, ctrl, cell_codes, step_sd)
        self.national_ = national - national[0]
        self.residual_sd_ = residual_sd
        self.start_ = period_label(first, self.freq)
        self.vintage_ = period_label(last, self.freq)
        self.n_sales_ = int(y.size)
        self.regions_: dict[str, FloatArray] = {}
        self.n_sales_by_region_: dict[str, int] = {}
        if region is not None:
            region_codes, region_names = _codes(region)
            counts = np.bincount(region_codes, minlength=len(region_names))
            self.n_sales_by_region_ = {name: int(k) for name, k in zip(region_names, counts, strict=True)}
            for code, name in enumerate(region_names):
                if counts[code] < self.min_sales_per_region:
                    continue
                rows = region_codes == code
                sub_cells = None
                if cell_codes is not None:
                    sub_cells = _codes(cell_codes[rows])[0]
                deviation, _ = _smoothed_time_effects(
                    y[rows] - self.national_[rel[rows]],
                    rel[rows],
                    n_periods,
                    None if ctrl is None else ctrl[rows],
                    sub_cells,
                    region_step_sd,
                )
                level = self.national_ + deviation
                self.regions_[name] = level - level[0]
        return self

    # -- using ---------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "national_"):
            raise RuntimeError("this PriceIndex is not fitted yet")

    def level(self, dates: Any, region: Any = None) -> FloatArray:
        """Log index level at each date (flat outside the fitted periods).

        ``region`` is None (national), one region for all dates, or one region per date; regions
        without their own index use the national index.
        """
        self._check_fitted()
        first = parse_period(self.start_, self.freq)
        rel = np.clip(_periods(dates, self.freq) - first, 0, self.national_.size - 1)
        out = self.national_[rel]
        if region is None or not self.regions_:
            return out.astype(np.float64)
        regions = np.asarray(region).astype(str)
        if regions.ndim == 0:
            regions = np.full(rel.size, str(regions))
        if regions.size != rel.size:
            raise ValueError("region must be one value or one per date")
        out = out.astype(np.float64, copy=True)
        for name, levels in self.regions_.items():
            rows = regions == name
            out[rows] = levels[rel[rows]]
        return out

    def factor(self, dates: Any, region: Any = None, to_date: Any = None) -> FloatArray:
        """Multiplier expressing a price of ``dates`` at ``to_date`` (default: the vintage).

        ``price_at_to_date = price * factor``. ``to_date`` is one date or one per date.
        """
        from_days = as_days(dates)
        to_days = as_days(self.vintage_date() if to_date is None else to_date)
        if to_days.size == 1:
            to_days = np.repeat(to_days, from_days.size)
        if to_days.size != from_days.size:
            raise ValueError("to_date must be one date or one per date")
        return np.asarray(
            np.exp(self.level(to_days, region) - self.level(from_days, region)), dtype=np.float64
        )

    def vintage_date(self) -> np.datetime64:
        """First day of the vintage period, as ``datetime64[D]``."""
        self._check_fitted()
        months = parse_period(self.vintage_, self.freq) * _MONTHS_PER_PERIOD[self.freq]
        return np.datetime64(months, "M").astype("datetime64[D]")

    _vintage_day = vintage_date  # older name, kept for callers

    def table(self) -> pd.DataFrame:
        """The index as a table: one row per period, columns ``national`` and each region (base 100)."""
        self._check_fitted()
        first = parse_period(self.start_, self.freq)
        labels = [period_label(first + k, self.freq) for k in range(self.national_.size)]
        data = {"national": 100 * np.exp(self.national_)}
        data.update({name: 100 * np.exp(levels) for name, levels in self.regions_.items()})
        return pd.DataFrame(data, index=pd.Index(labels, name="period"))

    # -- storage -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the fitted index, for versioned storage."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "freq": self.freq,
            "params": {
                "min_sales_per_region": self.min_sales_per_region,
                "step_sd": self.step_sd,
                "region_step_sd": self.region_step_sd,
            },
            "start": self.start_,
            "vintage": self.vintage_,
            "national": [float(v) for v in self.national_],
            "regions": {name: [float(v) for v in levels] for name, levels in self.regions_.items()},
            "n_sales": self.n_sales_,
            "n_sales_by_region": dict(self.n_sales_by_region_),
            "residual_sd": self.residual_sd_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriceIndex:
        """Rebuild an index saved with :meth:`to_dict`."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        index = cls(freq=data["freq"], **data["params"])
        index.start_ = data["start"]
        index.vintage_ = data["vintage"]
        index.national_ = np.asarray(data["national"], dtype=np.float64)
        index.regions_ = {name: np.asarray(v, dtype=np.float64) for name, v in data["regions"].items()}
        index.n_sales_ = int(data["n_sales"])
        index.n_sales_by_region_ = {name: int(k) for name, k in data["n_sales_by_region"].items()}
        index.residual_sd_ = float(data["residual_sd"])
        return index
