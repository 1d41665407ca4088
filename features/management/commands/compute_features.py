"""manage.py compute_features [--capakey KEY ...]: recompute the open-data features of parcels."""

from __future__ import annotations

import sys
import time
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.compute import CHUNK_SIZE, WORKERS, parcel_features_refresh
from opendata.capakey import InvalidCapaKey, normalise_capakey
from opendata.models import Parcel


class Command(BaseCommand):
    help = (
        "Recompute the open-data features (cadastral, height, accessibility, socio-economic) of every "
        "parcel, or of the parcels given with --capakey, in chunks with set-based SQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--capakey",
            action="append",
            default=[],
            help="Only this parcel (CaPaKey, with or without separators); repeatable.",
        )
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="Parcels per transaction.")
        parser.add_argument("--workers", type=int, default=WORKERS, help="Parallel database connections.")

    def handle(self, *args: Any, capakey: list[str], chunk_size: int, workers: int, **options: Any) -> None:
        ids: list[int] | None = None
        if capakey:
            try:
                keys = [normalise_capakey(k) for k in capakey]
            except InvalidCapaKey as exc:
                raise CommandError(str(exc)) from exc
            found = dict(Parcel.objects.filter(capakey__in=keys).values_list("capakey", "pk"))
            missing = [k for k in keys if k not in found]
            if missing:
                raise CommandError(f"No parcel with CaPaKey {', '.join(missing)}.")
            ids = list(found.values())
        if chunk_size < 1 or workers < 1:
            raise CommandError("--chunk-size and --workers must be at least 1.")
        started = time.monotonic()
        # The raw stream: Django's wrapper would end each of the progress bar's partial lines with a newline.
        stream = cast(IO[str], getattr(self.stderr, "_out", sys.stderr))
        count = parcel_features_refresh(ids, stream=stream, chunk_size=chunk_size, workers=workers)
        self.stdout.write(
            self.style.SUCCESS(
                f"Computed the features of {count:,} parcel{'' if count == 1 else 's'} "
                f"in {time.monotonic() - started:.1f} s."
            )
        )
