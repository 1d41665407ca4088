"""Backtests on the sales in the database: the figures of avm-quality.md for the model and a baseline."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from valuation.sales_data import sales_frame

ROWS = ("count", "hit_rate", "mdape", "ppe10", "ppe20", "cod", "prd", "prb", "median_ratio", "coverage")


class BacktestError(ValueError):
    pass


def backtest_run(
    *, split_date: date, source: str | None = None, coverage: float = 0.80, index_refresh: bool = True
) -> dict[str, Any]:
    """Train on sales before ``split_date``, value the later ones, and ratio-study model and baseline.

    With ``index_refresh`` the price index is refitted each month of the test period on the sales dated
    before that month, as the weekly retraining does in production (the model and its interval stay as
    trained); without it the index stays frozen at the split date.
    """
    from valuation.ml.backtest import run_backtest
    from valuation.training import production_builder

    sales = sales_frame(source=source)
    sales = sales[(sales["living_area_m2"] > 0) & (sales["price_eur"] > 0)]
    before = int((sales["sale_date"] < np.datetime64(split_date)).sum())
    after = len(sales) - before
    if before < 500 or after < 50:
        raise BacktestError(
            f"{before} sales before and {after} from {split_date} on (with a living area"
            + (f", source {source}" if source else "")
            + "): at least 500 before and 50 after are needed."
        )
    result = run_backtest(
        sales,
        split_date,
        production_builder(),
        region_column="region",
        coverage=coverage,
        keep_predictions=False,
        index_refresh="M" if index_refresh else None,
    )
    out: dict[str, Any] = {
        "split_date": split_date.isoformat(),
        "source": source or "all",
        "sales_before": before,
        "sales_from": after,
        "coverage_stated": coverage,
        "index": "refitted monthly on earlier sales" if index_refresh else "frozen at the split date",
    }
    for who in ("model", "baseline"):
        study = dict(result[who])
        study["hit_rate"] = result["hit_rate"][who]
        out[who] = study
    out["interval"] = {k: v for k, v in result["interval"].items() if k != "selection"}
    out["chosen"] = result["chosen"]
    out["timings_s"] = result["timings"]
    out["counts"] = result["counts"]
    return out


def backtest_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table (model and baseline side by side)."""

    def fmt(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key in ("count",):
            return f"{value:,}"
        if key in ("hit_rate", "mdape", "ppe10", "ppe20", "coverage"):
            return f"{100 * value:.1f}%"
        if key == "cod":
            return f"{value:.1f}"
        return f"{value:.3f}"

    lines = ["| figure | model | comparables baseline |", "|---|---:|---:|"]
    for key in ROWS:
        lines.append(
            f"| {key} | {fmt(key, report['model'].get(key))} | {fmt(key, report['baseline'].get(key))} |"
        )
    by_q = report["model"].get("coverage_by_quartile") or {}
    for quartile, value in by_q.items():
        lines.append(f"| coverage, price {quartile} | {fmt('coverage', value)} | - |")
    return "\n".join(lines)
