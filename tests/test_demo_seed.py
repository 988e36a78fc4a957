"""`seed_demo`: what a new user finds after `make run`, through the product's own paths."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from flows.invoice_samples import sample_invoices
from reviewconsole.autonomy import selectors as autonomy_selectors
from reviewconsole.autonomy.models import AutonomyPolicy
from reviewconsole.engine.demo_seed import invoice_correction
from reviewconsole.engine.models import FlowRun
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus

pytestmark = pytest.mark.django_db

SEED_INVOICES = 12


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", "--invoices", str(SEED_INVOICES), stdout=out)
    return out.getvalue()


def _login(client, username: str) -> None:
    client.force_login(get_user_model().objects.get(username=username))


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seed once for the module (it runs dozens of flows), committed as `make run` would, then flush."""
    from reviewconsole.engine.management.commands import seed_demo

    credentials = tmp_path_factory.mktemp("seed") / "demo-credentials.txt"
    # Same hasher as the per-test settings (conftest), so the printed passwords check out in the tests.
    fast_hasher = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch, fast_hasher:
        patch.setattr(seed_demo, "CREDENTIALS_FILE", credentials)
        yield _seed(), credentials
        call_command("flush", interactive=False, verbosity=0)


def test_users_are_created_once_with_their_passwords_printed(seeded, django_user_model):
    output, credentials = seeded
    lines = credentials.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["admin", "manager", "reviewer", "finance"]
    for line in lines:
        username, password = line.split()
        assert f"{username:<10} {password}" in output
        assert django_user_model.objects.get(username=username).check_password(password)

    again = _seed()
    assert "Demo users exist" in again
    assert django_user_model.objects.count() == 4


def test_seeding_twice_creates_no_more_work(seeded):
    runs, items, decisions = FlowRun.objects.count(), ReviewItem.objects.count(), Decision.objects.count()
    _seed()
    assert (FlowRun.objects.count(), ReviewItem.objects.count(), Decision.objects.count()) == (runs, items, decisions)


def test_every_flow_has_runs_and_every_output_type_a_policy(seeded):
    assert set(FlowRun.objects.values_list("flow_name", flat=True)) == {
        "invoice_processing",
        "content_production",
        "lead_enrichment",
    }
    assert set(AutonomyPolicy.objects.values_list("output_type", flat=True)) >= {
        "invoice",
        "article_draft",
        "outreach_email",
    }


def test_reviewer_finds_items_waiting(seeded, client):
    pending = ReviewItem.objects.filter(status=ReviewStatus.PENDING)
    assert pending.filter(output_type="invoice").exists()
    assert pending.exclude(output_type="invoice").exists()

    _login(client, "reviewer")
    page = client.get(reverse("reviews:queue"))
    assert page.status_code == 200
    first = pending.order_by("created_at").first()
    assert str(first.id) in page.content.decode()


def test_manager_finds_dashboards_with_measured_accuracy(seeded, client):
    invoice = next(row for row in autonomy_selectors.overview() if row["output_type"] == "invoice")
    assert invoice["reviewed"] > 0
    assert invoice["accuracy"] is not None

    _login(client, "manager")
    page = client.get(reverse("autonomy:overview"))
    assert page.status_code == 200
    assert "invoice" in page.content.decode()


def test_demo_reviewer_corrects_what_differs_from_the_paper():
    sample = next(s for s in sample_invoices(30) if s.layout == "standard")
    right = {**sample.truth, "confidence": 0.95}
    assert invoice_correction(right, sample.truth) is None

    wrong = {**right, "vendor": "Someone Else", "line_items": right["line_items"][:-1] or [{"description": "x"}]}
    corrected = invoice_correction(wrong, sample.truth)
    assert corrected["vendor"] == sample.truth["vendor"]
    assert corrected["line_items"] == sample.truth["line_items"]
    assert corrected["confidence"] == 0.95
