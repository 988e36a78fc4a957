"""Edits are never lost nor silently turned into approvals; consequential approvals are deliberate. In Chromium.

The assertions are on what was recorded: the Decision (its edited output) or that there is none. Leaving a page
with unsaved changes raises the browser's own `beforeunload` dialog, which the test answers through
`browse.answer_dialog`; any other dialog still fails the test.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from reviewconsole.autonomy.models import AutonomyPolicy
from reviewconsole.engine.models import RunStatus
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewReason, ReviewStatus
from tests.browser.conftest import TIMEOUT_MS, draft_item, invoice_item
from tests.browser.test_review_browser import QUEUE, approve_button, arrive, decision_of, item_path, run_of, status_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

TOTAL_ERROR = {
    "check": "line_sum",
    "severity": "error",
    "field": "total_amount",
    "message": "Line items add up to 205.00; the total says 250.00",
}


def open_edit(page: Page, item: ReviewItem) -> None:
    """The item's page with its edit form opened by `e`, the cursor in its first field."""
    page.goto(item_path(item))
    page.keyboard.press("e")
    expect(page.locator("#edit-form")).to_be_visible()
    expect(page.locator("#edit-form input:not([type='hidden'])").first).to_be_focused()


def retype(page: Page, selector: str, text: str) -> None:
    """Replace a field's value by typing, as a reviewer does, then leave the field with Escape."""
    page.locator(selector).focus()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Escape")
    expect(page.locator(selector)).not_to_be_focused()


def with_unsaved_title(browse, user, title: str) -> tuple[ReviewItem, Page]:
    """A draft item's page whose edit form holds a title typed but not saved."""
    item = draft_item()
    page = browse.as_user(user)
    open_edit(page, item)
    retype(page, "#sf-title", title)
    return item, page


def no_decision(item: ReviewItem) -> bool:
    return status_of(item) == ReviewStatus.PENDING and not Decision.objects.filter(item_id=item.id).exists()


# ---------------------------------------------------------------- item 3: edits are never lost


def test_escape_then_a_after_an_edit_approves_the_edit_not_the_original(browse, rita):
    item = invoice_item()
    page = browse.as_user(rita)
    open_edit(page, item)
    expect(approve_button(page)).to_have_accessible_name(re.compile(r"^Approve as edited\b"))
    retype(page, "#sf-total_amount", "210")

    page.keyboard.press("a")
    arrive(page, QUEUE)
    expect(page.locator(".messages")).to_contain_text(f"Edited and approved: invoice {str(item.id)[:8]}")
    decision = decision_of(item)
    assert decision.edited_output is not None
    assert decision.edited_output["total_amount"] == 210.0
    assert [(c["path"], c["after"]) for c in decision.diff] == [("total_amount", 210.0)]
    assert run_of(item).result["invoice"]["total_amount"] == 210.0


def test_cancel_discards_the_edit_and_then_a_approves_as_it_stands(browse, rita):
    item = draft_item("Original title")
    page = browse.as_user(rita)
    open_edit(page, item)
    retype(page, "#sf-title", "Changed title")
    page.locator("#edit-form").get_by_role("link", name="Cancel").click()
    expect(page.locator("#output-read")).to_be_visible()
    expect(approve_button(page)).to_have_accessible_name(re.compile(r"^Approve a$"))

    page.keyboard.press("a")
    arrive(page, QUEUE)
    decision = decision_of(item)
    assert (decision.outcome, decision.edited_output) == ("approved", None)
    assert run_of(item).status == RunStatus.COMPLETED


def test_j_and_k_with_unsaved_edits_ask_before_leaving(browse, rita):
    first, second = draft_item("First"), draft_item("Second")
    page = browse.as_user(rita)
    open_edit(page, first)
    retype(page, "#sf-title", "First, corrected")

    # Stay: the page, and what was typed, are still there.
    browse.answer_dialog("beforeunload", accept=False)
    with page.expect_event("dialog"):
        page.keyboard.press("j")
    expect(page.locator("#sf-title")).to_have_value("First, corrected")
    assert page.url.endswith(item_path(first))

    # Leave: the next item opens and nothing was recorded for the first.
    browse.answer_dialog("beforeunload", accept=True)
    with page.expect_event("dialog"):
        page.keyboard.press("j")
    arrive(page, item_path(second))
    assert browse.watched.answered == ["beforeunload: dismissed", "beforeunload: accepted"]
    assert no_decision(first)

    # An edit form opened but not changed does not ask (any dialog would fail the test).
    open_edit(page, second)
    page.keyboard.press("Escape")
    page.keyboard.press("k")
    arrive(page, item_path(first))
    assert no_decision(second)


def test_closing_the_tab_with_unsaved_edits_asks(browse, rita):
    item, page = with_unsaved_title(browse, rita, "Unsaved")

    browse.answer_dialog("beforeunload", accept=False)
    with page.expect_event("dialog"):
        page.close(run_before_unload=True)
    expect(page.locator("#sf-title")).to_have_value("Unsaved")
    assert not page.is_closed()

    browse.answer_dialog("beforeunload", accept=True)
    with page.expect_event("close"):
        page.close(run_before_unload=True)
    assert browse.watched.answered == ["beforeunload: dismissed", "beforeunload: accepted"]
    assert no_decision(item)


def test_rejecting_with_unsaved_edits_does_not_ask(browse, rita):
    item, page = with_unsaved_title(browse, rita, "Not worth saving")
    page.keyboard.press("r")
    page.locator("#decide-reason_code").select_option("other")
    page.get_by_role("button", name="Reject item").click()
    # Any dialog on the way to the queue would fail the test.
    arrive(page, QUEUE)
    decision = decision_of(item)
    assert (decision.outcome, decision.edited_output) == ("rejected", None)


# ---------------------------------------------------------------- item 4: consequential approvals


def test_a_on_an_item_with_an_error_finding_asks_for_the_tick_first(browse, rita, screenshot):
    item = invoice_item()
    ReviewItem.objects.filter(id=item.id).update(findings=[TOTAL_ERROR])
    page = browse.as_user(rita)
    page.goto(item_path(item))
    tick = page.get_by_role("checkbox", name="Approve despite: total_amount: Line items add up to 205.00")
    expect(tick).not_to_be_checked()

    # a goes to the tick (which names the finding) instead of approving.
    page.keyboard.press("a")
    expect(tick).to_be_focused()
    assert no_decision(item)
    screenshot(page, "item-confirm")

    page.keyboard.press("Space")
    expect(tick).to_be_checked()
    page.keyboard.press("a")
    arrive(page, QUEUE)
    decision = decision_of(item)
    assert (decision.outcome, decision.edited_output) == ("approved", None)


def test_high_value_edit_then_escape_a_needs_the_tick_and_keeps_the_edit(browse, rita):
    item = invoice_item()
    ReviewItem.objects.filter(id=item.id).update(reason=ReviewReason.HIGH_VALUE)
    # The tick alone is under test: without four eyes, this one approval decides the item.
    AutonomyPolicy.objects.filter(output_type=item.output_type).update(four_eyes_reasons=[])
    page = browse.as_user(rita)
    open_edit(page, item)
    retype(page, "#sf-total_amount", "206")
    tick = page.get_by_role("checkbox", name="Approve despite: sent for review as high value")

    page.keyboard.press("a")
    expect(tick).to_be_focused()
    expect(page.locator("#sf-total_amount")).to_have_value("206")
    assert no_decision(item)

    page.keyboard.press("Space")
    page.keyboard.press("a")
    arrive(page, QUEUE)
    decision = decision_of(item)
    assert decision.edited_output is not None
    assert decision.edited_output["total_amount"] == 206.0
