"""Import sales from a canonical CSV file: `python manage.py import_sales FILE.csv [--source NAME]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from valuation.sales_import import SalesImportError, sales_import_recorded


class Command(BaseCommand):
    help = (
        "Import sales from a canonical CSV file (valuation/SALES_FORMAT.md): bad rows are reported "
        "by line and skipped, the others inserted or updated; re-importing a file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file (UTF-8, comma-separated, header row).")
        parser.add_argument(
            "--source",
            default="import",
            help="Who delivered the sales: 1-50 letters, digits, - or _; sale_id is unique per source.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = sales_import_recorded(
                path=options["file"],
                source=options["source"],
                progress_stream=sys.stderr if options["verbosity"] > 0 else None,
            )
        except SalesImportError as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(f"the database refused the import, nothing was written: {exc}") from exc
        for rejection in result.rejections:
            self.stdout.write(f"rejected {rejection}")
        self.stdout.write(result.summary())
        if result.read and not (result.inserted + result.updated + result.unchanged):
            raise CommandError(f"all {result.read:,} rows were rejected; nothing was imported")
