"""`python manage.py train_model [--source NAME] [--if-missing]`: train, judge and maybe promote a model."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from valuation.training import TrainingError, active_model_exists, model_train


class Command(BaseCommand):
    help = (
        "Train a candidate model on all but the most recent sales, measure it on those, and promote it "
        "when it is not worse than the active model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", help="Train on the sales of this source only.")
        parser.add_argument("--if-missing", action="store_true", help="Do nothing when a model is active.")
        parser.add_argument(
            "--recent-months", type=int, default=3, help="Months of recent sales to judge on."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_missing"] and active_model_exists():
            self.stdout.write("An active model exists; nothing to train (drop --if-missing to retrain).")
            return
        started = time.monotonic()
        try:
            version = model_train(
                source=options["source"],
                recent_months=options["recent_months"],
                on_stage=lambda stage: self.stderr.write(f"  {stage} ({time.monotonic() - started:.0f} s)"),
            )
        except TrainingError as exc:
            raise CommandError(str(exc)) from exc
        model = version.metrics.get("model", {})
        nan = float("nan")
        self.stdout.write(
            f"Model {version.version}: {version.status}. {version.gate.get('reason', '')}\n"
            f"  recent sales: {version.metrics.get('recent_sales')}, MdAPE {model.get('mdape', nan):.1%}, "
            f"PPE10 {model.get('ppe10', nan):.1%}, COD {model.get('cod', nan):.1f}, coverage of the "
            f"{version.interval_coverage:.0%} range {model.get('coverage', nan):.1%}\n"
            f"  trained in {time.monotonic() - started:.0f} s; files in {version.artifact_path}"
        )
