"""Checks: the invoice flow's findings on items, pages, the queue and the API; check_failed routing; live re-checks."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from flows.invoice_checks import due_before_issue, missing_fields, quantity_times_price
from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision
from reviewconsole.autonomy.services import gate, policy_update
from reviewconsole.engine.checks import CHECK_CRASHED, CheckContext, register_check, run_checks
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewEvent, ReviewEventKind, ReviewItem
from reviewconsole.reviews.services import decide
from tests.people import client_for, user_in_role

# The lines add up to 3,480.00; the total says 3,580.00.
MISMATCH = """Vendor: Initech GmbH
Invoice Number: IN-2207
Invoice Date: 2026-10-05
Due Date: 2026-11-04
Currency: EUR
Consulting | 10 | 300.00 | 3,000.00
Travel | 1 | 480.00 | 480.00
Total: 3,580.00
"""
CLEAN = MISMATCH.replace("Total: 3,580.00", "Total: 3,480.00").replace("IN-2207", "IN-2208")
REVIEWS_API = "/api/v1/reviews"


def start(raw_invoice: str) -> FlowRun:
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": raw_invoice})
    run.refresh_from_db()
    return run


def policy(**changes) -> None:
    policy_update(output_type="invoice", changes=changes, by=None, reason="test policy")


def by_check(item: ReviewItem, check: str) -> list[dict]:
    return [finding for finding in item.findings if finding["check"] == check]


@pytest.fixture
def reviewer():
    return user_in_role("rita", "reviewer", "invoice")


@pytest.fixture
def client(reviewer) -> Client:
    return client_for(reviewer)


# --------------------------------------------------------------------------- acceptance


@pytest.mark.django_db(transaction=True)
def test_lines_that_do_not_add_up_are_an_error_on_the_total_on_the_page_in_the_api_and_the_queue(client):
    mismatch = ReviewItem.objects.get(run=start(MISMATCH))
    clean = ReviewItem.objects.get(run=start(CLEAN))

    [total] = by_check(mismatch, "line_items_vs_total")
    assert total["severity"] == "error" and total["field"] == "total_amount"
    assert "3,480.00" in total["message"] and "3,580.00" in total["message"]
    assert clean.findings == [] and (clean.finding_count, clean.error_count) == (0, 0)
    assert (mismatch.finding_count, mismatch.error_count) == (1, 1)

    page = client.get(f"/reviews/{mismatch.id}/").content.decode()
    summary = page[page.index('id="findings-title"') : page.index('class="review-grid"')]
    assert "Checks found 1 problem" in summary and "Total Amount" in summary and "3,580.00" in summary
    # The total's row is marked and names its message.
    row = re.search(r'<div class="out__row out__row--error" data-field="sf-total_amount"[^>]*>', page)[0]
    assert 'aria-describedby="read-sf-total_amount-findings"' in row
    assert 'id="read-sf-total_amount-findings"' in page
    assert 'id="findings-title"' not in client.get(f"/reviews/{clean.id}/").content.decode()

    detail = client.get(f"{REVIEWS_API}/{mismatch.id}").json()
    assert detail["findings"] == [
        {"check": "line_items_vs_total", "severity": "error", "field": "total_amount", "message": total["message"],
         "link": None}
    ]  # fmt: skip
    listed = client.get(f"{REVIEWS_API}?findings=errors").json()["results"]
    assert [item["id"] for item in listed] == [str(mismatch.id)]
    assert len(client.get(f"{REVIEWS_API}?findings=").json()["results"]) == 2
    assert client.get(f"{REVIEWS_API}?findings=bogus").status_code == 422

    queue = client.get("/reviews/?findings=errors").content.decode()
    assert f'id="item-{mismatch.id}"' in queue and f'id="item-{clean.id}"' not in queue
    assert "1 error" in queue
    everything = client.get("/reviews/").content.decode()
    assert f'id="item-{clean.id}"' in everything


@pytest.mark.django_db(transaction=True)
def test_the_same_invoice_started_twice_is_a_possible_duplicate_of_the_first(client):
    first_run = start(CLEAN)
    second_run = start(CLEAN)
    first, second = ReviewItem.objects.get(run=first_run), ReviewItem.objects.get(run=second_run)

    assert by_check(first, "possible_duplicate") == []
    [duplicate] = by_check(second, "possible_duplicate")
    assert duplicate["severity"] == "error" and duplicate["field"] == "invoice_number"
    assert duplicate["link"] == {"item": str(first.id), "run": str(first_run.id)}
    page = client.get(f"/reviews/{second.id}/").content.decode()
    assert f'href="/reviews/{first.id}/"' in page and f'href="/runs/{first_run.id}/"' in page
    assert client.get(f"{REVIEWS_API}/{second.id}").json()["findings"][0]["link"] == duplicate["link"]


@pytest.mark.django_db(transaction=True)
def test_an_edit_of_the_first_copy_does_not_find_the_later_one(reviewer):
    first = ReviewItem.objects.get(run=start(CLEAN))
    start(CLEAN)
    decide(item_id=first.id, user=reviewer, outcome="approved", edited_output={**first.output, "vendor": "Initech"})
    event = ReviewEvent.objects.get(item=first, kind=ReviewEventKind.DECIDED)
    assert event.detail["findings"] == []  # the later copy is not "earlier"


@pytest.mark.django_db(transaction=True)
def test_same_vendor_amount_and_date_under_another_number_is_a_possible_duplicate():
    first = ReviewItem.objects.get(run=start(CLEAN))
    second = ReviewItem.objects.get(run=start(CLEAN.replace("IN-2208", "IN-9999")))
    [duplicate] = by_check(second, "possible_duplicate")
    assert duplicate["field"] == "" and duplicate["link"]["item"] == str(first.id)
    assert "total and date" in duplicate["message"]


@pytest.mark.django_db(transaction=True)
def test_a_copy_of_an_invoice_that_went_through_without_review_is_held_as_a_possible_duplicate(client):
    policy(threshold=0.5, audit_rate=0.0)
    first_run = start(CLEAN)
    assert first_run.status == RunStatus.COMPLETED and not ReviewItem.objects.filter(run=first_run).exists()

    # The copy would go straight through too, but its duplicate check finds the first: it goes to a person.
    second = ReviewItem.objects.get(run=start(CLEAN))
    assert second.reason == "check_failed"
    [duplicate] = by_check(second, "possible_duplicate")
    assert duplicate["link"] == {"run": str(first_run.id)}
    page = client.get(f"/reviews/{second.id}/").content.decode()
    assert f'href="/runs/{first_run.id}/">the other run</a> (went through without review)' in page
    assert client.get(f"{REVIEWS_API}/{second.id}").json()["findings"][0]["link"] == {
        "item": None,
        "run": str(first_run.id),
    }


@pytest.mark.django_db(transaction=True)
def test_a_failing_check_forces_review_when_the_policy_says_so():
    policy(threshold=0.5, audit_rate=0.0)
    assert AutonomyPolicy.objects.get(output_type="invoice").review_failed_checks  # on by default

    run = start(MISMATCH)  # confidence 0.72: above the threshold
    item = ReviewItem.objects.get(run=run)
    assert item.confidence >= 0.5
    assert item.reason == "check_failed"
    gate_decision = GateDecision.objects.get(review_item=item)
    assert gate_decision.forced and gate_decision.reason == "check_failed"

    clean = start(CLEAN)
    assert clean.status == RunStatus.COMPLETED and not ReviewItem.objects.filter(run=clean).exists()


@pytest.mark.django_db(transaction=True)
def test_without_the_policy_option_a_failing_check_goes_straight_through():
    policy(threshold=0.5, audit_rate=0.0, review_failed_checks=False)
    run = start(MISMATCH)
    assert run.status == RunStatus.COMPLETED and not ReviewItem.objects.filter(run=run).exists()
    assert GateDecision.objects.get(run=run).route == "auto_approved"


@pytest.mark.django_db(transaction=True)
def test_below_the_threshold_a_failing_check_keeps_the_gates_own_reason():
    """The gate reviews it for its confidence anyway: it stays in the population the threshold measures."""
    policy(threshold=0.9, audit_rate=0.0)
    item = ReviewItem.objects.get(run=start(MISMATCH))
    assert item.reason == "low_confidence" and not GateDecision.objects.get(review_item=item).forced


@pytest.mark.django_db
def test_a_check_that_raises_is_an_error_naming_it_and_forces_review(monkeypatch):
    def explodes(output, context):
        raise RuntimeError("boom")

    register_check("crashy", explodes)
    [found] = run_checks("crashy", {"a": 1})
    assert found["check"] == CHECK_CRASHED and found["severity"] == "error" and "explodes" in found["message"]

    policy_update(output_type="crashy", changes={"threshold": 0.1, "audit_rate": 0.0}, by=None, reason="test")
    assert gate("crashy", 0.99, output={"a": 1}) == "human_review"
    assert GateDecision.objects.get(output_type="crashy").reason == "check_failed"
    assert gate("crashy", 0.99) == "auto_approved"  # no output given: nothing to check


@pytest.mark.django_db(transaction=True)
def test_missing_fields_read_not_found_never_a_dash_or_a_default(client):
    text = MISMATCH.replace("Invoice Number: IN-2207\n", "").replace("Currency: EUR\n", "")
    item = ReviewItem.objects.get(run=start(text))
    missing = {finding["field"] for finding in by_check(item, "missing")}
    assert missing == {"invoice_number", "currency"}

    page = client.get(f"/reviews/{item.id}/").content.decode()
    for field in ("invoice_number", "currency"):
        row = re.search(rf'data-field="sf-{field}".*?</div>', page, re.S)[0]
        assert "not found" in row and "—" not in row and "USD" not in row


def test_a_currency_the_invoice_does_not_name_is_not_found():
    output = {"vendor": "A", "invoice_number": "1", "invoice_date": "2026-01-01", "total_amount": 5, "currency": "USD"}
    [found] = missing_fields(output, CheckContext(inputs={"raw_invoice": "Total: 5.00 EUR"}))
    assert found["field"] == "currency" and "USD" in found["message"]
    assert list(missing_fields(output, CheckContext(inputs={"raw_invoice": "Total: $5.00"}))) == []


def test_quantity_times_price_and_due_before_issue_name_their_fields():
    rows = [{"quantity": 2, "unit_price": 3, "amount": 6}, {"quantity": 3, "unit_price": 1.5, "amount": 5}]
    lines = {"line_items": rows}
    [line] = quantity_times_price(lines, CheckContext())
    assert line["field"] == "line_items.1.amount" and "4.50" in line["message"]
    dates = {"invoice_date": "2026-10-05", "due_date": "2026-09-01"}
    [due] = due_before_issue(dates, CheckContext())
    assert due["field"] == "due_date"
    assert list(due_before_issue({**dates, "due_date": "2026-10-05"}, CheckContext())) == []


# --------------------------------------------------------------------------- edits


@pytest.mark.django_db(transaction=True)
def test_a_saved_edit_records_the_findings_of_the_edited_output(reviewer):
    item = ReviewItem.objects.get(run=start(MISMATCH))
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output={**item.output, "total_amount": 3480.0})
    assert ReviewEvent.objects.get(item=item, kind=ReviewEventKind.DECIDED).detail["findings"] == []

    other = ReviewItem.objects.get(run=start(MISMATCH.replace("IN-2207", "IN-3000")))
    edited = {**other.output, "total_amount": 3000.0}
    decide(item_id=other.id, user=reviewer, outcome="approved", edited_output=edited)
    [finding] = ReviewEvent.objects.get(item=other, kind=ReviewEventKind.DECIDED).detail["findings"]
    assert finding["field"] == "total_amount" and "3,000.00" in finding["message"]

    # The decided item reads as edited, with the edit's findings.
    page = client_for(reviewer).get(f"/reviews/{other.id}/").content.decode()
    assert "in the output as edited" in page and "3,000.00" in page
    assert "in the output as edited" not in client_for(reviewer).get(f"/reviews/{item.id}/").content.decode()


def _form(output: dict) -> dict[str, str]:
    scalars = {key: value for key, value in output.items() if key != "line_items"}
    data = {f"output.{key}": "" if value is None else str(value) for key, value in scalars.items()}
    for index, line in enumerate(output["line_items"]):
        data[f"output.line_items.{index}.__row"] = "1"
        data.update({f"output.line_items.{index}.{key}": str(value) for key, value in line.items()})
    return data


@pytest.mark.django_db(transaction=True)
def test_the_live_recheck_answers_the_findings_of_the_form_as_it_stands(client):
    item = ReviewItem.objects.get(run=start(MISMATCH))
    url = f"/reviews/{item.id}/check/"
    headers = {"HX-Request": "true"}

    still_wrong = client.post(url, _form(item.output), headers=headers)
    assert still_wrong.status_code == 200
    assert "3,580.00" in still_wrong.content.decode()
    assert 'data-field-id="sf-total_amount"' in still_wrong.content.decode()

    fixed = client.post(url, _form({**item.output, "total_amount": 3480}), headers=headers)
    assert fixed.status_code == 200 and "find nothing wrong" in fixed.content.decode()

    half_typed = client.post(url, _form({**item.output, "total_amount": "3,4x"}), headers=headers).content.decode()
    assert "Not checked until it can be read: total_amount" in half_typed

    as_json = client.post(url, json.dumps({**item.output, "total_amount": 3480}), content_type="application/json")
    assert as_json.status_code == 200 and "find nothing wrong" in as_json.content.decode()
    assert ReviewItem.objects.get(id=item.id).findings == item.findings  # nothing written


@pytest.mark.django_db(transaction=True)
def test_the_live_recheck_refuses_bad_input_and_other_peoples_items(client):
    item = ReviewItem.objects.get(run=start(MISMATCH))
    url = f"/reviews/{item.id}/check/"

    assert client.post(url, "{not json", content_type="application/json").status_code == 400
    assert client.post(url, '{"vendor": "A\\u0000"}', content_type="application/json").status_code == 400
    assert client.post(url, {"output.vendor": "A\x00B"}).status_code == 400
    assert client.post(url, json.dumps([1, 2]), content_type="application/json").status_code == 422
    assert client.post(url, json.dumps({"vendor": "only this"}), content_type="application/json").status_code == 422
    assert client.get(url).status_code == 405

    assert client_for(user_in_role("dan", "reviewer", "draft")).post(url, {}).status_code == 404
    assert client_for(user_in_role("otto", None)).post(url, {}).status_code == 403
    assert Client().post(url, {}).status_code == 302  # to the login page


# --------------------------------------------------------------------------- source lines


@pytest.mark.django_db(transaction=True)
def test_the_item_keeps_where_each_field_was_read_and_the_page_numbers_the_source(client):
    item = ReviewItem.objects.get(run=start(MISMATCH))
    assert item.source_spans["input"] == "raw_invoice"
    lines = MISMATCH.splitlines()
    assert lines[item.source_spans["lines"]["total_amount"][0] - 1] == "Total: 3,580.00"
    assert lines[item.source_spans["lines"]["line_items.1"][0] - 1].startswith("Travel")

    page = client.get(f"/reviews/{item.id}/?edit=1").content.decode()
    assert '<span class="source__line" id="source-line-8">' in page
    total_input = re.search(r'<input[^>]*name="output.total_amount"[^>]*>', page)[0]
    assert 'data-source-lines="8"' in total_input and 'aria-describedby="sf-total_amount-findings"' in total_input
    travel_amount = re.search(r'<input[^>]*name="output.line_items.1.amount"[^>]*>', page)[0]
    assert 'data-source-lines="7"' in travel_amount  # a line item's cells share its line


@pytest.mark.django_db
def test_policy_option_is_exposed_in_the_api():
    manager = user_in_role("mia", "manager")
    response = client_for(manager).patch(
        "/api/v1/autonomy/invoice",
        json.dumps({"review_failed_checks": False, "reason": "checks are noisy"}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["review_failed_checks"] is False
    assert not AutonomyPolicy.objects.get(output_type="invoice").review_failed_checks
