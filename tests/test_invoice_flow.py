"""The invoice flow on the offline demo model: readings, re-readings, routing and review."""

from __future__ import annotations

import pytest

from flows.invoice_demo import CAREFUL_CUE, demo_extract_invoice
from flows.invoices import HIGH_VALUE_TOTAL, MAX_REREADS, REREAD_BELOW, InvoiceData
from reviewconsole.autonomy.models import GateDecision
from reviewconsole.autonomy.services import policy_update
from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide

CLEAN = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Description | Qty | Unit price | Amount
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""

# Everything is there, but nothing in the form a first reading trusts except the invoice number.
AMBIGUOUS = """ACME SUPPLIES LTD
Invoice No. INV-1042
Date 2026-10-01
Due 31.10.2026
Widgets        10    12.50    125.00
Gadgets         2    40.00     80.00
                        EUR 205.00
"""

MALFORMED = "Thanks for lunch yesterday! Let's do it again next week.\n"

HIGH_VALUE = """Vendor: Stark Logistics
Invoice Number: SL-77
Invoice Date: 2026-09-15
Freight, pallet | 600 | 95.00 | 57,000.00
Total: 57,000.00 USD
"""


def careful(text: str) -> str:
    """A prompt that asks for the careful reading, as the fallback crew's task does."""
    return f"Re-read the invoice between the <invoice> tags {CAREFUL_CUE}.\n<invoice>\n{text}</invoice>"


# --------------------------------------------------------------------------- the demo model's readings


def test_clean_invoice_is_extracted_with_high_confidence():
    data = demo_extract_invoice(CLEAN)
    assert data["vendor"] == "Acme Supplies Ltd"
    assert data["invoice_number"] == "INV-1042"
    assert data["invoice_date"] == "2026-10-01"
    assert data["due_date"] == "2026-10-31"
    assert data["currency"] == "EUR"
    assert [item["description"] for item in data["line_items"]] == ["Widgets", "Gadgets"]
    assert [item["amount"] for item in data["line_items"]] == [125.0, 80.0]
    assert data["total_amount"] == 205.0
    assert data["confidence"] >= 0.9
    InvoiceData.model_validate(data)


@pytest.mark.parametrize(
    "replacements",
    [
        {"Vendor:": "From:"},
        {"Vendor:": "Supplier :"},
        {"Invoice Number:": "Invoice No."},
        {"Invoice Number:": "Invoice #:"},
        {"Total:": "Amount due:"},
        {"Total: 205.00": "TOTAL DUE: EUR 205.00"},
        {"Invoice Date: 2026-10-01": "Date: 1 October 2026"},
        {"Invoice Date: 2026-10-01": "Issue date: Oct 1, 2026"},
        {"Currency: EUR\n": "", "Total: 205.00": "Total: €205.00"},
    ],
)
def test_label_variants_read_the_same_invoice(replacements):
    variant = CLEAN
    for old, new in replacements.items():
        assert old in variant
        variant = variant.replace(old, new)

    # A removed line moves the lines below it; where each field was read is tested on its own.
    reading, clean = demo_extract_invoice(variant), demo_extract_invoice(CLEAN)
    fields = [sorted(entry["field"] for entry in answer.pop("source_lines")) for answer in (reading, clean)]
    assert fields[0] == fields[1]
    assert reading == clean


def test_the_demo_reading_says_on_which_line_it_read_each_field():
    lines = {entry["field"]: entry["lines"] for entry in demo_extract_invoice(CLEAN)["source_lines"]}
    text = CLEAN.splitlines()

    def at(path):
        return [text[n - 1] for n in lines[path]]

    assert at("vendor") == ["Vendor: Acme Supplies Ltd"]
    assert at("total_amount") == ["Total: 205.00"]
    assert at("currency") == ["Currency: EUR"]
    assert at("line_items.1") == ["Gadgets | 2 | 40.00 | 80.00"]
    assert "due_date" in lines and "invoice_number" in lines


def test_an_invoice_naming_no_currency_reads_as_none_not_a_default():
    assert demo_extract_invoice(CLEAN.replace("Currency: EUR\n", ""))["currency"] == ""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Vendor: Acme Supplies Ltd\n", ""),  # missing vendor
        ("Invoice Date: 2026-10-01\n", ""),  # missing date
        ("Total: 205.00", "Total: 999.00"),  # the lines do not add up
        ("Total: 205.00", "Total: 205.00\nAmount due: 250.00"),  # two different totals
        ("Widgets | 10 | 12.50 | 125.00", "Widgets | 10 | 12.50 | 135.00\nRebate | 1 | -10 | -10"),  # 10 x 12.50
        ("Due Date: 2026-10-31", "Due Date: 2026-09-01"),  # due before it was issued
        ("Gadgets | 2 | 40.00 | 80.00", "Gadgets | 2 | $40.00 | $80.00"),  # dollars on a EUR invoice
    ],
)
def test_missing_or_conflicting_fields_lower_confidence(old, new):
    assert old in CLEAN
    assert demo_extract_invoice(CLEAN.replace(old, new))["confidence"] < demo_extract_invoice(CLEAN)["confidence"]


def test_a_discount_line_is_a_negative_amount_that_still_adds_up():
    with_discount = CLEAN.replace("Total: 205.00", "Loyalty discount | 1 | -5.00 | -5.00\nTotal: 200.00")
    data = demo_extract_invoice(with_discount)

    assert data["line_items"][-1] == {"description": "Loyalty discount", "quantity": 1, "unit_price": -5, "amount": -5}
    assert data["total_amount"] == 200.0
    assert data["confidence"] == demo_extract_invoice(CLEAN)["confidence"]


def test_text_without_labels_is_low_confidence_however_it_is_read():
    assert demo_extract_invoice("From: Someone\nAmount due: 10")["confidence"] < REREAD_BELOW
    assert demo_extract_invoice(MALFORMED)["confidence"] < REREAD_BELOW
    assert demo_extract_invoice(careful(MALFORMED))["confidence"] < REREAD_BELOW


def test_the_careful_reading_recovers_an_ambiguous_layout():
    first = demo_extract_invoice(f"Extract the invoice.\n<invoice>\n{AMBIGUOUS}</invoice>")
    second = demo_extract_invoice(careful(AMBIGUOUS))

    assert first["confidence"] < REREAD_BELOW
    assert first["vendor"] == "" and first["total_amount"] == 0
    assert second["confidence"] >= REREAD_BELOW
    assert second["confidence"] < demo_extract_invoice(CLEAN)["confidence"]  # guesses cost a little
    assert second["vendor"] == "ACME SUPPLIES LTD"
    assert second["invoice_date"] == "2026-10-01" and second["due_date"] == "2026-10-31"
    assert second["total_amount"] == 205.0 and second["currency"] == "EUR"
    assert [item["amount"] for item in second["line_items"]] == [125.0, 80.0]


def test_only_the_instructions_ask_for_a_careful_reading():
    # An invoice that itself says "line by line" is still read the first way.
    text = f"Notes: priced {CAREFUL_CUE}\n{AMBIGUOUS}"
    assert demo_extract_invoice(f"<invoice>\n{text}</invoice>")["confidence"] < REREAD_BELOW


def test_line_items_never_swallow_the_lines_before_them():
    prompt = "Extract the invoice fields as JSON.\n\n" + CLEAN
    assert [item["description"] for item in demo_extract_invoice(prompt)["line_items"]] == ["Widgets", "Gadgets"]


# --------------------------------------------------------------------------- the flow


def set_threshold(threshold: float) -> None:
    """Let invoices at or above ``threshold`` through, with no audit samples, so routing is exact."""
    policy_update(
        output_type="invoice", changes={"threshold": threshold, "audit_rate": 0.0}, by=None, reason="test policy"
    )


def start(raw_invoice: str) -> FlowRun:
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": raw_invoice})
    run.refresh_from_db()
    return run


def method_calls(run: FlowRun, method: str) -> int:
    return Step.objects.filter(run=run, kind=StepKind.METHOD, method=method).count()


def branches(run: FlowRun) -> list[str]:
    """The labels the run's routers returned, in order."""
    checkpoints = Checkpoint.objects.filter(flow_uuid=str(run.id)).exclude(outcome="").order_by("sequence")
    return list(checkpoints.values_list("outcome", flat=True))


def readings(run: FlowRun) -> int:
    """Calls to the demo model (a resume's decision is made by another, fixed model)."""
    return Step.objects.filter(run=run, kind=StepKind.LLM, model="demo").count()


@pytest.mark.django_db(transaction=True)
def test_new_type_reviews_a_clean_invoice_and_approval_completes_the_run(django_user_model):
    reviewer = django_user_model.objects.create_user("rita")
    run = start(CLEAN)

    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert run.state["stage"] == "extracted" and run.state["attempts"] == 1
    item = ReviewItem.objects.get(run=run)
    assert item.output_type == "invoice"
    assert item.reason == "always_review"  # a new type starts fully reviewed
    assert item.output["vendor"] == "Acme Supplies Ltd"
    llm_step = Step.objects.get(run=run, kind=StepKind.LLM)
    assert llm_step.model == "demo"
    assert llm_step.tokens_in > 0 and llm_step.tokens_out > 0

    edited = {**item.output, "vendor": "Acme Supplies Limited"}
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edited)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "approved" and run.result["reviewed"] is True
    assert run.result["invoice"]["vendor"] == "Acme Supplies Limited"
    assert run.state["stage"] == "approved"


@pytest.mark.django_db(transaction=True)
def test_clean_invoice_above_the_threshold_is_auto_approved():
    set_threshold(0.9)
    run = start(CLEAN)

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "approved" and run.result["reviewed"] is False
    assert run.result["invoice"]["total_amount"] == 205.0
    assert not ReviewItem.objects.filter(run=run).exists()
    assert GateDecision.objects.get(run=run).route == "auto_approved"
    assert branches(run) == ["standard", "auto_approved"]


@pytest.mark.django_db(transaction=True)
def test_invoice_below_the_threshold_is_reviewed_for_low_confidence_without_a_reread():
    set_threshold(0.9)
    run = start(CLEAN.replace("Total: 205.00", "Total: 999.00"))  # a typo on the paper: re-reading won't fix it

    item = ReviewItem.objects.get(run=run)
    assert REREAD_BELOW <= item.confidence < 0.9
    assert item.reason == "low_confidence"
    assert run.state["attempts"] == 1 and method_calls(run, "re_extract") == 0


@pytest.mark.django_db(transaction=True)
def test_high_value_invoice_is_reviewed_with_reason_high_value_whatever_the_policy():
    set_threshold(0.5)
    run = start(HIGH_VALUE)

    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    assert item.reason == "high_value"
    assert item.output["total_amount"] > HIGH_VALUE_TOTAL
    assert item.confidence >= 0.9
    assert branches(run) == ["high_value", "human_review"]
    gate_decision = GateDecision.objects.get(run=run)
    assert (gate_decision.route, gate_decision.reason, gate_decision.review_item_id) == (
        "human_review",
        "high_value",
        item.id,
    )


@pytest.mark.django_db(transaction=True)
def test_malformed_invoice_is_reread_twice_by_the_fallback_crew_then_reviewed(django_user_model):
    set_threshold(0.5)
    run = start(MALFORMED)

    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert method_calls(run, "extract") == 1
    assert method_calls(run, "re_extract") == MAX_REREADS
    assert method_calls(run, "validate_extraction") == 1 + MAX_REREADS
    assert readings(run) == 1 + MAX_REREADS
    # Each call is booked to the flow step that made it, not to the crew's internals.
    llm_steps = Step.objects.filter(run=run, kind=StepKind.LLM).order_by("started_at")
    assert list(llm_steps.values_list("method", flat=True)) == ["extract"] + ["re_extract"] * MAX_REREADS
    assert run.state["attempts"] == 1 + MAX_REREADS
    item = ReviewItem.objects.get(run=run)
    assert item.reason == "unreadable"
    assert item.confidence < REREAD_BELOW
    assert branches(run) == ["low_confidence", "low_confidence", "human_review"]
    # Only the last routing asked the gate: the re-readings were the flow's own business.
    assert list(GateDecision.objects.filter(run=run).values_list("reason", flat=True)) == ["unreadable"]

    decide(item_id=item.id, user=django_user_model.objects.create_user("rita"), outcome="rejected", reason_code="other")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "rejected" and run.state["stage"] == "rejected"
    assert readings(run) == 1 + MAX_REREADS  # resuming read nothing again


@pytest.mark.django_db(transaction=True)
def test_ambiguous_invoice_is_fixed_by_the_fallback_crew_and_goes_through():
    set_threshold(0.8)
    run = start(AMBIGUOUS)

    assert run.status == RunStatus.COMPLETED, run.error
    assert method_calls(run, "re_extract") == 1
    assert run.state["attempts"] == 2
    assert run.result["reviewed"] is False and run.result["stage"] == "approved"
    invoice = run.result["invoice"]
    assert invoice["vendor"] == "ACME SUPPLIES LTD" and invoice["total_amount"] == 205.0
    assert invoice["confidence"] >= 0.8
    assert GateDecision.objects.get(run=run).route == "auto_approved"


@pytest.mark.django_db(transaction=True)
def test_rejection_completes_the_run_with_stage_rejected_and_the_comment(django_user_model):
    run = start(CLEAN)
    item = ReviewItem.objects.get(run=run)

    decide(
        item_id=item.id,
        user=django_user_model.objects.create_user("rita"),
        outcome="rejected",
        reason_code="wrong_data",
        comment="Duplicate of INV-1041",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "rejected"
    assert "Duplicate of INV-1041" in run.result["reason"]
    assert GateDecision.objects.get(run=run).verdict == "incorrect"
