"""Bring the autonomy rollups up to date now, or rebuild them (the hourly schedule does the former)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reviewconsole.autonomy.services import rollup_refresh


class Command(BaseCommand):
    help = (
        "Roll up the days that ended since the last refresh and recompute the days late verdicts made stale. "
        "--rebuild starts over: needed after gate decisions were changed or deleted outside the services."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="Recompute every day from the gate decisions.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = rollup_refresh(rebuild=options["rebuild"])
        self.stdout.write(
            f"rolled up through {result['rolled_through']}: "
            + ("rebuilt" if result["rebuilt"] else f"{result['new_days']} new days, {result['stale_days']} stale")
        )
