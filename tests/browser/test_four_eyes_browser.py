"""Four eyes in Chromium: a high-value invoice approved by one reviewer waits for a second, who completes it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.reviews.models import Decision, FirstApproval, ReviewStatus
from tests.browser.conftest import TIMEOUT_MS, invoice_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

HIGH_VALUE = """Vendor: Stark Logistics
Invoice Number: SL-77
Invoice Date: 2026-09-15
Freight, pallet | 600 | 95.00 | 57,000.00
Total: 57,000.00 USD
"""


def test_high_value_invoice_needs_a_second_approver(browse, rita, carl, screenshot):
    item = invoice_item(HIGH_VALUE)
    assert item.reason == "high_value"
    item_path = reverse("reviews:item", args=[item.id])
    browse.expect_error(409, reverse("reviews:decide", args=[item.id]))
    approve = "#decide-panel button[data-key='a']"
    # A high-value approval is deliberate: its tick names the high value (see reviews/confirmations.py).
    tick = "#decide-confirm"

    # The first approval: the page says two approvers are needed, and the item stays in the queue.
    page_rita = browse.as_user(rita)
    page_rita.goto(item_path)
    expect(page_rita.locator("[data-four-eyes='needed']")).to_contain_text("a different reviewer must approve")
    page_rita.locator(tick).check()
    page_rita.locator(approve).click()
    expect(page_rita.locator(".messages")).to_contain_text("first of two approvals")
    assert FirstApproval.objects.get(item=item).user == rita
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.WAITING_REVIEW

    # The same reviewer's second approval is refused on the page, saying why.
    page_rita.goto(item_path)
    expect(page_rita.locator("[data-four-eyes='awaiting']")).to_contain_text("You gave the first approval")
    page_rita.locator(tick).check()
    page_rita.locator(approve).click()
    expect(page_rita.locator("#review-main .review-alert")).to_contain_text("needs a second approver")
    assert not Decision.objects.filter(item=item).exists()

    # Another reviewer finds it marked in the queue and completes it.
    page_carl = browse.as_user(carl)
    page_carl.goto(reverse("reviews:queue"))
    expect(page_carl.locator(f"#item-{item.id}")).to_contain_text("Awaiting 2nd approval")
    page_carl.goto(item_path)
    expect(page_carl.locator("[data-four-eyes='awaiting']")).to_contain_text("First approved by rita")
    expect(page_carl.locator("#claim-banner")).not_to_contain_text("rita")  # her visit claimed nothing
    screenshot(page_carl, "four-eyes-second-approver")
    page_carl.locator(tick).check()
    page_carl.locator(approve).click()
    expect(page_carl.locator(".messages")).to_contain_text("Approved: invoice")

    decision = Decision.objects.select_related("user").get(item=item)
    assert (decision.outcome, decision.user) == ("approved", carl)
    item.refresh_from_db()
    assert item.status == ReviewStatus.DECIDED
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
