"""Approvals in the web UI that cannot lose an edit, and that must be deliberate when they are consequential.

The decision form refuses, with a form error and nothing recorded, a plain approval sent from a page whose edit
form was open, and an approval of an item with error findings or sent for high value that does not carry the
reviewer's explicit confirmation. Bulk approval leaves such items for their own page. The JSON API asks for no
confirmation. The keyboard paths are in tests/browser/test_review_safety_browser.py.
"""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from reviewconsole.autonomy.models import AutonomyPolicy
from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.reviews.confirmations import Confirmation, approval_confirmations, confirmation_key
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewReason, ReviewStatus
from tests.people import client_for, user_in_role
from tests.test_api_reviews import add_item, decision_url, post_json
from tests.test_review_pages import HTMX, decide_url, edit_post, item_url, make_item, status_of

pytestmark = pytest.mark.django_db

TOTAL_ERROR = {
    "check": "line_sum",
    "severity": "error",
    "field": "total_amount",
    "message": "Line items add up to 3,480.00; the total says 3,580.00",
}
DATE_WARNING = {"check": "due_date", "severity": "warning", "field": "due_date", "message": "No due date"}


@pytest.fixture(autouse=True)
def one_approver() -> None:
    """The deliberate approval alone is under test: without four eyes, one approval of high value decides."""
    policy_ensure(output_type="invoice")
    AutonomyPolicy.objects.filter(output_type="invoice").update(four_eyes_reasons=[])


@pytest.fixture
def reviewer() -> User:
    return user_in_role("rita")


@pytest.fixture
def rita(reviewer) -> Client:
    return client_for(reviewer)


def key_for(item: ReviewItem) -> str:
    return confirmation_key(approval_confirmations(reason=item.reason, findings=item.findings))


def nothing_recorded(item: ReviewItem) -> bool:
    return status_of(item) == ReviewStatus.PENDING and not Decision.objects.filter(item=item).exists()


# ---------------------------------------------------------------- what needs confirming


def test_error_findings_then_high_value_need_confirming_and_warnings_do_not():
    needed = approval_confirmations(reason=ReviewReason.HIGH_VALUE, findings=[DATE_WARNING, TOTAL_ERROR])
    assert [c.text for c in needed] == [
        "total_amount: Line items add up to 3,480.00; the total says 3,580.00",
        "sent for review as high value",
    ]
    assert approval_confirmations(reason=ReviewReason.LOW_CONFIDENCE, findings=[DATE_WARNING]) == []
    # A finding without a field reads as its message; stored junk asks for nothing rather than breaking the page.
    assert approval_confirmations(
        reason="", findings=[{"check": "dup", "severity": "error", "message": "Possible duplicate"}, "junk", None]
    ) == [Confirmation(code="finding:dup:", text="Possible duplicate")]
    assert approval_confirmations(reason="", findings={"not": "a list"}) == []


def test_confirmation_key_names_exactly_what_was_confirmed():
    high = approval_confirmations(reason=ReviewReason.HIGH_VALUE, findings=[])
    both = approval_confirmations(reason=ReviewReason.HIGH_VALUE, findings=[TOTAL_ERROR])
    assert confirmation_key([]) == ""
    assert confirmation_key(both) == confirmation_key(list(reversed(both)))
    assert len({confirmation_key(high), confirmation_key(both), confirmation_key(both[:1])}) == 3


# ---------------------------------------------------------------- an edit open on the page


def test_page_in_edit_mode_binds_the_approve_button_and_its_tick_to_the_edit_form(rita):
    item = make_item(reason=ReviewReason.HIGH_VALUE)
    reading = rita.get(item_url(item)).content.decode()
    approve = re.search(r'<button type="submit" name="outcome" value="approved"[^>]*>', reading)[0]
    tick = re.search(r'<input type="checkbox" name="confirm"[^>]*>', reading)[0]
    assert "form=" not in approve and "form=" not in tick
    assert re.search(r'name="edit_open" value=""', reading)

    editing = rita.get(item_url(item), {"edit": "1"}).content.decode()
    approve = re.search(r'<button type="submit" name="outcome" value="approved"[^>]*>', editing)[0]
    assert 'form="edit-form"' in approve  # without JavaScript too, an approval carries the edit
    tick = re.search(r'<input type="checkbox" name="confirm"[^>]*>', editing)[0]
    assert 'form="edit-form"' in tick  # and its confirmation
    assert re.search(r'name="edit_open" value="1"', editing)
    assert "Approve as edited" in editing


def test_plain_approval_from_a_page_with_an_open_edit_is_refused_and_nothing_recorded(rita):
    item = make_item()
    response = rita.post(decide_url(item), {"outcome": "approved", "edit_open": "1"}, headers=HTMX)
    assert response.status_code == 422
    content = response.content.decode()
    assert "An edit is open on this page, and this approval did not carry it" in content
    assert 'id="edit-form"' in content  # the edit comes back open
    assert nothing_recorded(item)


def test_approval_carrying_the_open_edit_records_it(rita):
    item = make_item()
    data = edit_post(item, {"output.total_amount": "210"}, edit_open="1")
    assert rita.post(decide_url(item), data).status_code == 302
    decision = Decision.objects.get(item=item)
    assert decision.edited_output["total_amount"] == 210.0


def test_rejecting_or_another_outcome_with_an_edit_open_is_not_an_approval_and_goes_through(rita):
    rejected, escalated = make_item(), make_item(outcomes=["approved", "rejected", "escalate"])
    reject = {"outcome": "rejected", "reason_code": "wrong_data", "edit_open": "1"}
    assert rita.post(decide_url(rejected), reject).status_code == 302
    assert rita.post(decide_url(escalated), {"outcome": "escalate", "edit_open": "1"}).status_code == 302
    assert Decision.objects.get(item=rejected).outcome == "rejected"
    assert Decision.objects.get(item=escalated).outcome == "escalate"


# ---------------------------------------------------------------- consequential approvals


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"findings": [TOTAL_ERROR]}, "total_amount: Line items add up to 3,480.00; the total says 3,580.00"),
        ({"reason": ReviewReason.HIGH_VALUE}, "sent for review as high value"),
    ],
    ids=["error-finding", "high-value"],
)
def test_consequential_approval_without_confirmation_is_a_form_error_naming_what(rita, fields, named):
    item = make_item(**fields)
    page = rita.get(item_url(item)).content.decode()
    tick = re.search(r'<input type="checkbox" name="confirm"[^>]*>', page)[0]
    assert f'value="{key_for(item)}"' in tick and "required" in tick
    label = re.search(r'<label class="field__check" for="decide-confirm">.*?</label>', page, re.S)[0]
    assert f"Approve despite: {named}" in label

    response = rita.post(decide_url(item), {"outcome": "approved"}, headers=HTMX)
    assert response.status_code == 422
    content = response.content.decode()
    errors = re.search(r'<ul class="errorlist" id="decide-confirm-errors">.*?</ul>', content, re.S)[0]
    assert f"Confirm that you approve despite: {named}" in errors
    assert re.search(r'<input type="checkbox" name="confirm"[^>]*aria-invalid="true"', content)
    assert nothing_recorded(item)


def test_consequential_approval_with_confirmation_is_recorded(rita, reviewer):
    item = make_item(reason=ReviewReason.HIGH_VALUE, findings=[TOTAL_ERROR, DATE_WARNING])
    response = rita.post(decide_url(item), {"outcome": "approved", "confirm": key_for(item)})
    assert response.status_code == 302
    decision = Decision.objects.get(item=item)
    assert (decision.outcome, decision.user, decision.edited_output) == ("approved", reviewer, None)


def test_a_confirmation_given_for_other_findings_does_not_carry_over(rita):
    item = make_item(findings=[TOTAL_ERROR])
    stale = key_for(item)
    ReviewItem.objects.filter(id=item.id).update(findings=[TOTAL_ERROR, {**TOTAL_ERROR, "field": "line_items.1"}])
    response = rita.post(decide_url(item), {"outcome": "approved", "confirm": stale})
    assert response.status_code == 422
    assert "What needs confirming changed since the page was loaded" in response.content.decode()
    assert nothing_recorded(item)


def test_edited_consequential_approval_needs_confirmation_and_keeps_the_edit_when_refused(rita):
    item = make_item(findings=[TOTAL_ERROR])
    data = edit_post(item, {"output.total_amount": "3480"}, edit_open="1")
    response = rita.post(decide_url(item), data, headers=HTMX)
    assert response.status_code == 422
    content = response.content.decode()
    assert "Confirm that you approve despite: total_amount" in content
    assert re.search(r'name="output.total_amount"[^>]*value="3480', content)  # what was typed is still there
    assert re.search(r'<form id="edit-form"[^>]*data-unsaved', content)  # and leaving would ask
    assert nothing_recorded(item)

    assert rita.post(decide_url(item), {**data, "confirm": key_for(item)}).status_code == 302
    assert Decision.objects.get(item=item).edited_output["total_amount"] == 3480.0


def test_rejecting_a_consequential_item_needs_no_confirmation(rita):
    item = make_item(reason=ReviewReason.HIGH_VALUE, findings=[TOTAL_ERROR])
    response = rita.post(decide_url(item), {"outcome": "rejected", "reason_code": "wrong_data"})
    assert response.status_code == 302
    assert Decision.objects.get(item=item).outcome == "rejected"


def test_item_without_error_findings_or_high_value_has_no_tick(rita):
    item = make_item(findings=[DATE_WARNING])
    assert 'name="confirm"' not in rita.get(item_url(item)).content.decode()
    assert rita.post(decide_url(item), {"outcome": "approved"}).status_code == 302


def test_bulk_approval_skips_consequential_items_naming_why(rita, reviewer):
    plain = make_item()
    flagged = make_item(findings=[TOTAL_ERROR])
    high = make_item(reason=ReviewReason.HIGH_VALUE)
    back = reverse("reviews:queue") + "?type=invoice"
    response = rita.post(
        reverse("reviews:bulk"), {"output_type": "invoice", "items": [plain.id, flagged.id, high.id], "next": back}
    )
    assert response["Location"] == back
    assert Decision.objects.get(item=plain).user == reviewer
    assert nothing_recorded(flagged) and nothing_recorded(high)
    content = rita.get(back).content.decode()
    assert "Approved 1 invoice item" in content
    assert "Skipped 2" in content
    assert f"{str(flagged.id)[:8]}: Needs a deliberate approval on its own page: total_amount: Line items" in content
    assert f"{str(high.id)[:8]}: Needs a deliberate approval on its own page: sent for review as high value" in content


def test_the_api_approves_consequential_items_without_confirmation(reviewer):
    item = add_item(reason=ReviewReason.HIGH_VALUE, findings=[TOTAL_ERROR])
    response = post_json(client_for(reviewer), decision_url(item.id), {"outcome": "approved"})
    assert response.status_code == 200, response.content
    assert Decision.objects.get(item=item).outcome == "approved"
