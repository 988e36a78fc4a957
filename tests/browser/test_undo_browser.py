"""Undo in Chromium: after a decision the next page offers "Undo (z)"; z puts the item back in the queue,
and an undo after the flow resumed says it is too late."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.urls import reverse
from playwright.sync_api import expect

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.services import review_items_release_held_resumes
from tests.browser.conftest import TIMEOUT_MS, invoice_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

WINDOW = 30


@pytest.fixture(autouse=True)
def undo_window(settings):
    # Long enough that the bar cannot time out while the browser works; the live server reads it in-process.
    settings.UNDO_SECONDS = WINDOW


def released_by_a_worker() -> int:
    """The heartbeat's release, in a thread of its own as in a worker (Playwright's loop runs in this one, and
    the inline resume it queues cannot run a flow inside an event loop)."""
    result: list[int] = []

    def release() -> None:
        try:
            result.append(review_items_release_held_resumes())
        finally:
            connection.close()

    thread = threading.Thread(target=release)
    thread.start()
    thread.join(timeout=60)
    return result[0]


def test_z_undoes_the_decision_and_a_late_undo_says_it_is_too_late(browse, rita, screenshot):
    first, second = invoice_item(), invoice_item()
    first_path, second_path = reverse("reviews:item", args=[first.id]), reverse("reviews:item", args=[second.id])
    undo_path = reverse("reviews:undo", args=[first.id])
    browse.expect_error(409, undo_path)
    page = browse.as_user(rita)

    page.goto(first_path)
    page.keyboard.press("a")
    page.wait_for_url(f"**{second_path}")
    bar = page.locator(".undo-bar")
    expect(bar).to_contain_text(f"Approved: invoice {str(first.id)[:8]}")
    expect(bar.get_by_role("button", name="Undo z")).to_be_visible()
    screenshot(page, "undo-bar")
    assert Decision.objects.filter(item=first).exists()

    page.keyboard.press("z")
    page.wait_for_url(f"**{first_path}")
    expect(page.locator(".messages")).to_contain_text("is pending again, yours to decide")
    expect(page.locator("#claim-banner")).to_contain_text("You have this item")
    expect(page.locator(".undo-bar")).to_have_count(0)
    first.refresh_from_db()
    assert (first.status, first.claimed_by) == (ReviewStatus.PENDING, rita)
    assert not Decision.objects.filter(item=first).exists()
    page.goto(reverse("reviews:queue"))
    expect(page.locator(f"#item-{first.id}")).to_be_visible()

    # Decided again; this time a worker resumes the flow (the window is over) before the reviewer presses z.
    page.goto(first_path)
    page.keyboard.press("a")
    page.wait_for_url(f"**{second_path}")
    earlier = timedelta(seconds=WINDOW + 1)
    ReviewItem.objects.filter(id=first.id).update(resume_not_before=F("resume_not_before") - earlier)
    FlowRun.objects.filter(id=first.run_id).update(enqueued_at=F("enqueued_at") - earlier)
    assert released_by_a_worker() == 1
    assert FlowRun.objects.get(id=first.run_id).status == RunStatus.COMPLETED

    page.keyboard.press("z")
    expect(page.locator(".review-alert")).to_contain_text("Too late to undo: the flow has resumed")
    assert ReviewItem.objects.get(id=first.id).status == ReviewStatus.DECIDED
