"""`seed_demo`: what a new user finds after `make run`, through the product's own paths."""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.urls import reverse

from flows.invoice_samples import sample_invoices
from reviewconsole.autonomy import selectors as autonomy_selectors
from reviewconsole.autonomy.models import AutonomyPolicy
from reviewconsole.demo_seed import _review_invoice, invoice_correction
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.pending_counts import pending_counts_recount

SEED_INVOICES = 12


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", "--invoices", str(SEED_INVOICES), stdout=out)
    return out.getvalue()


@pytest.fixture
def credentials(tmp_path, monkeypatch):
    from reviewconsole.autonomy.management.commands import seed_demo

    path = tmp_path / "demo-credentials.txt"
    monkeypatch.setattr(seed_demo, "CREDENTIALS_FILE", path)
    return path


# One seed runs dozens of flows, so each test checks a whole first start rather than one fact.
@pytest.mark.django_db(transaction=True)
def test_first_start_gives_every_role_real_work(credentials, client, django_user_model, caplog):
    output = _seed()

    # The terminal shows the logins and the seed's progress, not a log line per demo run.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("reviewconsole")] == []
    assert logging.getLogger("reviewconsole").getEffectiveLevel() == logging.INFO

    # Users: created with the passwords printed once (and saved), which pass the password validators.
    lines = credentials.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["admin", "manager", "reviewer", "finance"]
    for line in lines:
        username, password = line.split()
        assert f"{username:<10} {password}" in output
        user = django_user_model.objects.get(username=username)
        assert user.check_password(password)
        validate_password(password, user)

    # Every flow ran, and every output type has a policy.
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

    # The reviewer finds items of several types waiting, oldest first.
    pending = ReviewItem.objects.filter(status=ReviewStatus.PENDING)
    assert pending.filter(output_type="invoice").exists()
    assert pending.exclude(output_type="invoice").exists()
    client.force_login(django_user_model.objects.get(username="reviewer"))
    queue = client.get(reverse("reviews:queue"))
    assert queue.status_code == 200
    assert str(pending.order_by("created_at").first().id) in queue.content.decode()
    # The checks have something to show: the invoice whose lines do not add up, and queued copies of invoices
    # reviewed in the history, each linking to its earlier copy.
    findings = [f for item in pending.filter(output_type="invoice") for f in item.findings]
    assert any(f["check"] == "line_items_vs_total" and "3,580.00" in f["message"] for f in findings)
    duplicates = [f["link"]["item"] for f in findings if f["check"] == "possible_duplicate"]
    assert duplicates and ReviewItem.objects.filter(id__in=duplicates, run__trigger="seed-history").exists()
    # One invoice came as a PDF: its item shows the PDF's pages beside the fields.
    uploaded = pending.get(run__documents__isnull=False)
    page = reverse("reviews:document_page", args=[uploaded.id, uploaded.run.documents.get().id, 1])
    assert page in client.get(reverse("reviews:item", args=[uploaded.id])).content.decode()
    assert client.get(page)["Content-Type"] == "image/png"
    # Its tabs' counts, kept by every pause and decision of the seed, agree with the items.
    assert pending_counts_recount() == {}

    # The manager finds dashboards with measured accuracy: the demo reviewer found some invoices wrong.
    invoice = next(row for row in autonomy_selectors.overview() if row["output_type"] == "invoice")
    assert 0 < invoice["correct"] <= invoice["reviewed"]
    # Some wrong ones were forced to review (high value): they count in their own figures.
    summary = autonomy_selectors.type_summary("invoice")
    assert (summary["reviewed"], summary["correct"]) == (invoice["reviewed"], invoice["correct"])
    assert 0 < summary["correct"] + summary["forced_correct"] < summary["reviewed"] + summary["forced_reviewed"]
    client.force_login(django_user_model.objects.get(username="manager"))
    dashboard = client.get(reverse("autonomy:overview"))
    assert dashboard.status_code == 200
    assert "invoice" in dashboard.content.decode()


@pytest.mark.django_db(transaction=True)
def test_seeding_again_creates_nothing(credentials, django_user_model):
    _seed()
    counts = (FlowRun.objects.count(), ReviewItem.objects.count(), Decision.objects.count())

    again = _seed()

    assert "Demo users exist" in again
    assert django_user_model.objects.count() == 4
    assert (FlowRun.objects.count(), ReviewItem.objects.count(), Decision.objects.count()) == counts


def test_demo_reviewer_corrects_what_differs_from_the_paper():
    sample = next(s for s in sample_invoices(30) if s.layout == "standard")
    right = {**sample.truth, "confidence": 0.95}
    assert invoice_correction(right, sample.truth) is None

    wrong = {**right, "vendor": "Someone Else", "line_items": right["line_items"][:-1] or [{"description": "x"}]}
    corrected = invoice_correction(wrong, sample.truth)
    assert corrected["vendor"] == sample.truth["vendor"]
    assert corrected["line_items"] == sample.truth["line_items"]
    assert corrected["confidence"] == 0.95


@pytest.mark.django_db(transaction=True)
def test_demo_high_value_invoices_get_two_approvers(django_user_model):
    finance, checker = (django_user_model.objects.create_user(name) for name in ("finance", "reviewer"))
    sample = next(s for s in sample_invoices(30) if s.layout == "high_value")
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": sample.text})
    item = ReviewItem.objects.get(run=run)
    assert item.reason == "high_value"

    _review_invoice(item, sample, finance, checker)

    decision = Decision.objects.select_related("item__first_approval").get(item=item)
    assert (decision.item.first_approval.user, decision.user) == (finance, checker)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
