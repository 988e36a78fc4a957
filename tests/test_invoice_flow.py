"""The invoice flow on the offline demo model: extraction, routing, review."""

import pytest

from flows.invoices import demo_extract_invoice
from reviewconsole.engine.models import RunStatus, Step
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide

CLEAN = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""


def test_clean_invoice_is_extracted_with_high_confidence():
    data = demo_extract_invoice(CLEAN)
    assert data["vendor"] == "Acme Supplies Ltd"
    assert data["invoice_number"] == "INV-1042"
    assert data["invoice_date"] == "2026-10-01"
    assert data["currency"] == "EUR"
    assert [item["amount"] for item in data["line_items"]] == [125.0, 80.0]
    assert data["total_amount"] == 205.0
    assert data["confidence"] >= 0.9


def test_missing_and_conflicting_fields_lower_confidence():
    conflicting = CLEAN.replace("Total: 205.00", "Total: 999.00")
    assert demo_extract_invoice(conflicting)["confidence"] < 0.9
    assert demo_extract_invoice("From: Someone\nAmount due: 10")["confidence"] < 0.6


@pytest.mark.django_db(transaction=True)
def test_invoice_run_pauses_for_review_and_completes_on_approval(django_user_model):
    reviewer = django_user_model.objects.create_user("rita")
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": CLEAN})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    assert item.output_type == "invoice"
    assert item.reason == "always_review"  # a new type starts fully reviewed
    assert item.output["vendor"] == "Acme Supplies Ltd"
    llm_step = Step.objects.get(run=run, kind="llm")
    assert llm_step.model == "demo"
    assert llm_step.tokens_in > 0 and llm_step.tokens_out > 0

    decide(item_id=item.id, user=reviewer, outcome="approved")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result["stage"] == "approved"
    assert run.result["invoice"]["total_amount"] == 205.0


@pytest.mark.django_db(transaction=True)
def test_high_value_invoice_is_reviewed_with_reason_high_value():
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": CLEAN.replace("205.00", "75,000.00")})
    item = ReviewItem.objects.get(run=run)
    assert item.reason == "high_value"


def test_line_items_never_swallow_the_lines_before_them():
    prompt = "Extract the invoice fields as JSON.\n\n" + CLEAN
    assert [item["description"] for item in demo_extract_invoice(prompt)["line_items"]] == ["Widgets", "Gadgets"]
