"""Remove the data of runs older than RETENTION_DAYS now, as the hourly schedule does, and say what went."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewconsole.engine.services import runs_purge_expired


class Command(BaseCommand):
    help = (
        "Remove the inputs, state, output and uploaded files of runs that finished more than RETENTION_DAYS "
        "(or --days) days ago. Decisions, verdicts and statistics are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="override RETENTION_DAYS for this purge (a whole number above 0)")

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        days = settings.RETENTION_DAYS if days is None else days
        if days <= 0:
            raise CommandError("Nothing to purge: RETENTION_DAYS is unset or 0 (keep for ever); give --days N")
        removed = runs_purge_expired(days=days)
        summary = ", ".join(f"{count} {kind}" for kind, count in removed.items()) or "nothing"
        self.stdout.write(f"Runs finished over {days} days ago: removed {summary}")
