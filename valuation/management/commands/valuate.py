"""`python manage.py valuate "Dorpsplein 2, 9998" [--capakey K | --lat LAT --lon LON] [facts] [--json]`."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from valuation.engine import NoActiveModel, ValuationInputError, feature_label
from valuation.locate import LocateError
from valuation.models import Channel
from valuation.services import ValuationQuery, valuation_create

FACT_OPTIONS = ("living_area_m2", "land_area_m2", "rooms", "bedrooms", "year_built", "epc_kwh_m2")


class Command(BaseCommand):
    help = "Value one property from the command line and store the valuation (channel 'cli')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", nargs="?", help="Address, e.g. 'Dorpsplein 2, 9998', or a CaPaKey.")
        parser.add_argument("--capakey")
        parser.add_argument("--lat", type=float)
        parser.add_argument("--lon", type=float)
        parser.add_argument("--date", type=date.fromisoformat, help="Valuation date (default today).")
        parser.add_argument("--property-type", choices=["house", "apartment", "other"])
        for name in FACT_OPTIONS:
            parser.add_argument(f"--{name.replace('_', '-')}", type=float, dest=name)
        parser.add_argument("--language", choices=["nl", "fr", "en"], default="en")
        parser.add_argument("--json", action="store_true", help="Print the stored result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        facts = {name: options[name] for name in FACT_OPTIONS if options[name] is not None}
        if options["property_type"]:
            facts["property_type"] = options["property_type"]
        query = ValuationQuery(
            address=options["address"],
            capakey=options["capakey"],
            latitude=options["lat"],
            longitude=options["lon"],
            facts=facts,
            valuation_date=options["date"],
        )
        try:
            valuation = valuation_create(query=query, channel=Channel.CLI)
        except (LocateError, ValuationInputError) as exc:
            raise CommandError(f"{exc.field}: {exc}") from exc
        except NoActiveModel as exc:
            raise CommandError(str(exc)) from exc
        result = valuation.result
        if options["json"]:
            self.stdout.write(json.dumps({"id": valuation.pk, **result}, indent=2))
            return
        lang = options["language"]
        self.stdout.write(
            f"{result['subject']['label']} (CaPaKey {result['subject']['capakey']}), "
            f"{result['valuation_date']}\n"
            f"Indicative price EUR {valuation.price_eur:,}; {valuation.coverage:.0%} range "
            f"EUR {valuation.low_eur:,} - {valuation.high_eur:,} (valuation #{valuation.pk}, model "
            f"{result['model_version']}, index {result['price_index']})\n"
            f"How the model got there: base EUR {result['explanation']['base_eur']:,}"
        )
        for item in result["explanation"]["contributions"][:8]:
            self.stdout.write(
                f"  {item['contribution_eur']:+,} {feature_label(item['feature'], lang)} = {item['value']}"
            )
        distribution = result["distribution"]
        self.stdout.write(f"{distribution['count']} earlier sales of the same type within 1 km (indexed):")
        for band in distribution["bands"]:
            low = f"{band['low_eur']:,}" if band["low_eur"] is not None else ""
            high = f"{band['high_eur']:,}" if band["high_eur"] is not None else ""
            mark = "  <- price" if band["contains_price"] else ""
            self.stdout.write(f"  {low:>9} - {high:<9} {band['count']:>5} {band['percent']:>5.1f}%{mark}")
