"""manage.py refresh_source NAME [--file PATH] [--url URL] [--force] [--option KEY=VALUE ...]"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opendata.connectors.base import SourceError, connectors
from opendata.models import RunStatus
from opendata.refresh import UnknownSource, features_then_retrain, refresh


class Command(BaseCommand):
    help = (
        "Refresh one open-data source from its live URL or from a local file: validate the whole input, "
        "swap it in within one transaction, record the run; then recompute the touched parcels' features "
        "and queue retraining. An unchanged source is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        names = ", ".join(connectors())
        parser.add_argument("name", help=f"Source: {names}.")
        parser.add_argument("--file", type=Path, help="Read this local file instead of the live URL.")
        parser.add_argument("--url", help="Fetch this URL instead of the connector's live URL.")
        parser.add_argument("--force", action="store_true", help="Load even when the source is unchanged.")
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Connector option, e.g. --option nis=44021 --option year=2025 (repeatable).",
        )
        parser.add_argument(
            "--no-follow-up",
            action="store_true",
            help="Do not recompute features or queue retraining after the load.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        extra: dict[str, str] = {}
        for item in options["option"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--option takes KEY=VALUE, not {item!r}.")
            extra[key.strip()] = value.strip()

        def follow_up(run: Any, result: Any) -> None:
            features_then_retrain(run, result, stream=sys.stderr)

        try:
            run = refresh(
                options["name"],
                file=options["file"],
                url=options["url"],
                force=options["force"],
                stream=sys.stderr,
                options=extra,
                follow_up=None if options["no_follow_up"] else follow_up,
            )
        except UnknownSource as exc:
            raise CommandError(str(exc)) from exc
        except SourceError as exc:
            raise CommandError(f"Refresh of {options['name']} failed, previous data kept: {exc}") from exc
        if run.status == RunStatus.SKIPPED:
            self.stdout.write(f"{run.source}: unchanged, skipped ({run.counts.get('skipped', '')}).")
            return
        self.stdout.write(
            f"{run.source}: {run.rows_loaded:,} rows loaded, {run.rows_rejected:,} rejected "
            f"in {run.duration_s:.1f}s; vintage {run.vintage or '?'}; counts {run.counts}"
        )
        for rejection in run.rejections[:20]:
            self.stdout.write(f"  rejected {rejection['row']}: {rejection['reason']}")
        if run.rows_rejected > 20:
            self.stdout.write(f"  ... and {run.rows_rejected - 20:,} more (see the refresh run in the admin)")
