"""Demo users and sample work so a first `make run` has something to review.

Idempotent: users and runs are only created when missing.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from reviewconsole.engine.models import FlowRun
from reviewconsole.engine.roles import role_group
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewerScope

DEMO_USERS = [
    # username, role, superuser, output types reviewed (empty: every type)
    ("admin", "manager", True, []),
    ("manager", "manager", False, []),
    ("reviewer", "reviewer", False, []),
    ("finance", "reviewer", False, ["invoice"]),
]

SAMPLE_INVOICES = {
    "clean": (
        "Vendor: Acme Supplies Ltd\nInvoice Number: INV-1042\nInvoice Date: 2026-10-01\nDue Date: 2026-10-31\n"
        "Currency: EUR\nWidgets | 10 | 12.50 | 125.00\nGadgets | 2 | 40.00 | 80.00\nTotal: 205.00\n"
    ),
    "ambiguous": (
        "From: Northwind Traders\nInvoice No. NW-77\nDate: 2026-09-14\nConsulting | 3 | 450.00 | 1350.00\n"
        "Amount due: 1,530.00\n"
    ),
    "high value": (
        "Vendor: Globex Engineering\nInvoice Number: GX-2026-118\nInvoice Date: 2026-10-20\n"
        "Due Date: 2026-11-19\nCurrency: USD\nTurbine overhaul | 1 | 84,000.00 | 84,000.00\nTotal: 84,000.00\n"
    ),
    "malformed": "hello, please pay us for the stuff we sent last month. thanks!!\n",
}

CREDENTIALS_FILE = Path(settings.BASE_DIR) / "var" / "demo-credentials.txt"


class Command(BaseCommand):
    help = "Create demo users, roles and sample runs (safe to run repeatedly)."

    def handle(self, *args, **options) -> None:
        created = self._users()
        if created:
            CREDENTIALS_FILE.parent.mkdir(exist_ok=True)
            CREDENTIALS_FILE.write_text("".join(f"{user} {password}\n" for user, password in created))
            self.stdout.write(self.style.SUCCESS("Demo users created. Log in at http://127.0.0.1:8000/ with:"))
            for user, password in created:
                self.stdout.write(f"  {user:<10} {password}")
            self.stdout.write(f"(also saved in {CREDENTIALS_FILE})")
        else:
            self.stdout.write(f"Demo users exist; their passwords are in {CREDENTIALS_FILE}")
        self._runs()

    def _users(self) -> list[tuple[str, str]]:
        user_model = get_user_model()
        created = []
        for username, role, superuser, output_types in DEMO_USERS:
            if user_model.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            user = user_model.objects.create_user(
                username, password=password, is_staff=role == "manager", is_superuser=superuser
            )
            user.groups.add(role_group(role))
            ReviewerScope.objects.bulk_create(ReviewerScope(user=user, output_type=t) for t in output_types)
            created.append((username, password))
        return created

    def _runs(self) -> None:
        if FlowRun.objects.filter(trigger="seed").exists():
            return
        for raw in SAMPLE_INVOICES.values():
            run_create(flow_name="invoice_processing", inputs={"raw_invoice": raw}, trigger="seed")
        self.stdout.write(f"Queued {len(SAMPLE_INVOICES)} sample invoices.")
