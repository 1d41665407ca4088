"""``manage.py demo_region``: load the synthetic demo municipality Demodorp / Démoville and its demo sales."""

from __future__ import annotations

import sys
import time
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandParser

from valuation.demo_sales import demo_load


class Command(BaseCommand):
    help = (
        "Load the SYNTHETIC demo municipality Demodorp / Démoville (NIS 99001, source 'demo'): streets, "
        "parcels, buildings, addresses, sectors with statistics, location layers and 10,000+ demo sales. "
        "Same seed, same data; does nothing when that seed is already loaded unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=2026, help="Random seed (default 2026).")
        parser.add_argument(
            "--force", action="store_true", help="Reload even when this seed is already loaded."
        )

    def handle(self, *args: Any, seed: int, force: bool, **options: Any) -> None:
        started = time.monotonic()
        # The raw stream: Django's wrapper would end each of the progress bar's partial lines with a newline.
        stream = cast(IO[str], getattr(self.stderr, "_out", sys.stderr))
        result = demo_load(seed=seed, force=force, progress_stream=stream)
        run = result.loaded_by
        if not result.loaded:
            self.stdout.write(
                f"The demo region {run.vintage} is already loaded (run {run.pk}, "
                f"checksum {run.checksum[:12]}); nothing to do. Use --force to reload it."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Loaded the SYNTHETIC demo region {run.vintage} in {time.monotonic() - started:.1f}s "
                    f"(run {run.pk}, checksum {run.checksum[:12]})."
                )
            )
        for name, count in result.counts.items():
            self.stdout.write(f"  {name:<24} {count:>7,}")
