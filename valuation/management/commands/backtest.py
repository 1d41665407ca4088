"""`python manage.py backtest --split-date YYYY-MM-DD [--source NAME] [--json]`."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from valuation.backtests import BacktestError, backtest_run, backtest_table


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--split-date {text!r} is not a date like 2017-01-01") from None


class Command(BaseCommand):
    help = (
        "Train on the sales before the split date and report, on the sales from it on: count, hit rate, "
        "MdAPE, PPE10, PPE20, COD, PRD, PRB, median ratio and interval coverage (overall and per price "
        "quartile), for the model and for a comparables baseline computed in the same run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--split-date", required=True, type=_date)
        parser.add_argument("--source", help="Use only the sales of this source.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--frozen-index",
            action="store_true",
            help="Keep the price index frozen at the split date (default: refitted monthly on earlier "
            "sales, as the weekly retraining does in production).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = backtest_run(
                split_date=options["split_date"],
                source=options["source"],
                index_refresh=not options["frozen_index"],
            )
        except BacktestError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=float))
            return
        self.stdout.write(
            f"Backtest split {report['split_date']}, source {report['source']}: trained on "
            f"{report['sales_before']:,} sales, valued {report['sales_from']:,} later ones; price index "
            f"{report['index']}.\n"
        )
        self.stdout.write(backtest_table(report))
