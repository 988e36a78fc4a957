"""Demo users, policies, a reviewed history and fresh runs, so a first `make run` has something to show.

Safe to run repeatedly: each part is only created when missing.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from reviewconsole import demo_seed

CREDENTIALS_FILE = Path(settings.BASE_DIR) / "var" / "demo-credentials.txt"


@contextmanager
def _engine_log_quiet() -> Iterator[None]:
    """Only warnings from the console's loggers: a line per run transition would bury the demo logins."""
    logger = logging.getLogger("reviewconsole")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class Command(BaseCommand):
    help = "Create demo users, policies, a reviewed history and queued sample runs (safe to run repeatedly)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--invoices", type=int, default=40, help="Invoices in the reviewed history. Default: 40.")

    def handle(self, *args, **options) -> None:
        created = demo_seed.users_ensure()
        if created:
            CREDENTIALS_FILE.parent.mkdir(exist_ok=True)
            CREDENTIALS_FILE.write_text("".join(f"{user} {password}\n" for user, password in created))
            self.stdout.write(self.style.SUCCESS("Demo users created. Log in at http://127.0.0.1:8000/ with:"))
            for user, password in created:
                self.stdout.write(f"  {user:<10} {password}")
            self.stdout.write(f"(also saved in {CREDENTIALS_FILE})")
        else:
            self.stdout.write(f"Demo users exist; their passwords are in {CREDENTIALS_FILE}")
        demo_seed.policies_ensure()
        if not demo_seed.already_seeded():
            self.stdout.write("Running and reviewing sample work on the demo model (first start only)…")
            with _engine_log_quiet():
                runs = demo_seed.history_seed(invoices=options["invoices"], progress=self.stdout.write)
                queued = demo_seed.queue_seed()
            self.stdout.write(f"{runs} sample runs processed; {queued} more queued for the worker.")
