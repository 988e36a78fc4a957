"""Reviewer reliability in Chromium: a blind second review reached from another reviewer's queue, the manager's
adjudication, and the type page's figures after it; bulk approvals left out of the evidence under the policy.

Items come from the real invoice flow on the demo model; decisions resume their runs inline (TASKS_SYNC=1). The
`browse` fixture fails a test on any console error (CSP violations included), page error, dialog or 5xx.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from reviewconsole.autonomy import selectors
from reviewconsole.autonomy.services import policy_update
from reviewconsole.reviews.models import SecondReview, SecondReviewStatus
from reviewconsole.reviews.services import decide_bulk
from tests.browser.conftest import CLEAN_INVOICE, TIMEOUT_MS, invoice_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

TYPE = "invoice"
QUEUE = "/reviews/"


def test_second_review_is_blind_and_an_adjudication_changes_the_accuracy(browse, rita, carl, mona, screenshot):
    policy_update(output_type=TYPE, changes={"second_review_rate": 1.0}, by=None, reason="measure agreement")
    item = invoice_item()
    first = browse.as_user(rita)
    first.goto(reverse("reviews:item", args=[item.id]))
    first.locator("#decide-panel button[data-key='a']").click()
    expect(first.locator(".messages")).to_contain_text("Approved")
    assert SecondReview.objects.get().status == SecondReviewStatus.PENDING

    # Not in the first reviewer's queue…
    first.goto(QUEUE)
    expect(first.locator(".second-reviews")).to_have_count(0)
    # …but in another's, labelled, and blind.
    second = browse.as_user(carl)
    second.goto(QUEUE)
    expect(second.locator(".second-reviews")).to_contain_text("Second review")
    second.locator(".second-reviews a.row-title").click()
    expect(second.locator("h1")).to_contain_text("Second review")
    expect(second.locator("main")).not_to_contain_text("rita")
    screenshot(second, "second-review")
    second.locator("form.decide__reject button[type=submit]").click()
    expect(second.locator(".messages")).to_contain_text("Second review")
    assert SecondReview.objects.get().status == SecondReviewStatus.DISAGREED

    manager = browse.as_user(mona)
    manager.goto(reverse("reviews:adjudications"))
    disagreement = manager.locator(f"#disagreement-{item.id}")
    expect(disagreement).to_contain_text("rita")
    expect(disagreement).to_contain_text("carl")
    screenshot(manager, "adjudications")
    disagreement.get_by_label("The second review").check()
    disagreement.get_by_role("button", name="Adjudicate").click()
    expect(manager.locator(".messages")).to_contain_text("Adjudicated")

    manager.goto(reverse("autonomy:type", args=[TYPE]))
    expect(manager.locator('[data-left-out="adjudicated"]')).to_have_text("1")
    summary = selectors.type_summary(TYPE)
    assert (summary["reviewed"], summary["correct"]) == (1, 0)


def test_with_the_policy_set_the_dashboard_says_how_many_bulk_approvals_were_left_out(browse, rita, mona):
    policy_update(output_type=TYPE, changes={"exclude_marked_approvals": True}, by=None, reason="hygiene")
    # Two different invoices (number and date): no possible-duplicate finding holds either out of bulk.
    items = [
        invoice_item(CLEAN_INVOICE.replace("INV-1042", f"INV-{n}").replace("2026-10-01", f"2026-10-0{n + 1}"))
        for n in range(2)
    ]
    decide_bulk(item_ids=[i.id for i in items], user=rita, output_type=TYPE)
    page = browse.as_user(mona)
    page.goto(reverse("autonomy:type", args=[TYPE]))
    expect(page.locator('[data-left-out="bulk"]')).to_have_text("2")
    expect(page.locator("#left-out")).to_contain_text("left out, of 2 given")
    assert selectors.type_summary(TYPE)["reviewed"] == 0
