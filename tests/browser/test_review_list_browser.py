"""The reviewer's list in the browser: rows with summary fields, search, bulk selection by keyboard, next and
j/k in the list's order with the item's place in it, reject by r and a digit, browsing without claiming, and
shortcuts turned off."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Page, expect

from reviewconsole.autonomy.models import default_reject_reasons
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.services import decide
from tests.browser.conftest import CLEAN_INVOICE, TIMEOUT_MS, draft_item, invoice_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

QUEUE = reverse("reviews:queue")
TIMINGS = Path(settings.BASE_DIR) / "var" / "timings"


def invoice(vendor: str, number: str, extra_line: str = "") -> ReviewItem:
    """A pending invoice of the real flow, distinct from the others (no duplicate findings)."""
    text = CLEAN_INVOICE.replace("Acme Supplies Ltd", vendor).replace("INV-1042", number)
    if extra_line:
        text = text.replace("Total:", f"{extra_line} | 1 | 0.00 | 0.00\nTotal:")
    return invoice_item(text)


def with_confidence(item: ReviewItem, confidence: float) -> ReviewItem:
    ReviewItem.objects.filter(id=item.id).update(confidence=confidence)
    return item


def item_path(item: ReviewItem) -> str:
    return reverse("reviews:item", args=[item.id])


def arrive_at(page: Page, item: ReviewItem) -> None:
    """Wait until the item's page has loaded, its shortcuts with it (see test_review_browser.arrive)."""
    expect(page).to_have_url(re.compile(re.escape(item_path(item)) + r"(\?|$)"))
    page.wait_for_load_state("load")


def claimed() -> list[str]:
    return [str(pk) for pk in ReviewItem.objects.filter(claimed_by__isnull=False).values_list("id", flat=True)]


def test_rows_show_their_summary_and_search_finds_pending_and_decided_items_in_scope(browse, rita, fiona, screenshot):
    acme = invoice("Acme Supplies Ltd", "INV-1042")
    globex = invoice("Globex Corporation", "GX-77")
    initech = invoice("Initech", "IT-9", extra_line="Sprockets")
    draft = draft_item("Acme launch")
    decide(item_id=globex.id, user=rita, outcome="approved")

    page = browse.as_user(rita)
    page.goto(f"{QUEUE}?type=invoice")
    row = page.locator(f"#item-{acme.id}")
    for shown in ("Acme Supplies Ltd", "INV-1042", "205.00 EUR", "2026-10-31"):
        expect(row).to_contain_text(shown)
    expect(row).to_contain_text(re.compile(r"Findings|\d"))
    screenshot(page, "queue-summary-rows")

    search = page.get_by_role("searchbox", name="Search")
    # By vendor, a decided item among any status; by the text of its input, a pending one.
    page.get_by_label("Status").select_option("all")
    search.fill("globex")
    search.press("Enter")
    expect(page.locator("tr.queue-row")).to_have_count(1)
    expect(page.locator(f"#item-{globex.id}")).to_contain_text("Globex Corporation")
    search.fill("sprockets")
    search.press("Enter")
    expect(page.locator("tr.queue-row")).to_have_count(1)
    expect(page.locator(f"#item-{initech.id}")).to_be_visible()
    # rita reviews every type: the draft is found too; fiona reviews invoices only.
    page.goto(f"{QUEUE}?q=acme&status=all")
    expect(page.locator(f"#item-{draft.id}")).to_be_visible()
    expect(page.locator(f"#item-{acme.id}")).to_be_visible()
    scoped = browse.as_user(fiona)
    scoped.goto(f"{QUEUE}?q=acme&status=all")
    expect(scoped.locator("tr.queue-row")).to_have_count(1)
    expect(scoped.locator(f"#item-{acme.id}")).to_be_visible()
    # An over-long search says so; the page answers.
    scoped.goto(f"{QUEUE}?q={'a' * 201}")
    expect(scoped.locator(".toolbar__error")).to_contain_text("at most 200 characters")


def test_bulk_selection_by_keyboard_shows_what_is_selected_and_approves_it(browse, rita):
    acme = invoice("Acme Supplies Ltd", "INV-1042")
    globex = invoice("Globex Corporation", "GX-77")
    initech = invoice("Initech", "IT-9")
    page = browse.as_user(rita)
    page.goto(f"{QUEUE}?type=invoice")
    count = page.locator("[data-selected-count]")
    submit = page.locator("[data-bulk-submit]")
    expect(count).to_have_text("None selected")
    for key in ("j", "x", "j", "j", "x"):
        page.keyboard.press(key)
    expect(count).to_have_text(
        "2 selected: Acme Supplies Ltd INV-1042 205.00 EUR, Initech IT-9 205.00 EUR", use_inner_text=True
    )
    expect(submit).to_contain_text("Approve 2 selected")
    browse.answer_dialog("confirm", accept=True)
    page.keyboard.press("A")
    expect(page.locator(".messages")).to_contain_text("Approved 2 invoice items")
    assert ReviewItem.objects.get(id=acme.id).status == ReviewStatus.DECIDED
    assert ReviewItem.objects.get(id=initech.id).status == ReviewStatus.DECIDED
    assert ReviewItem.objects.get(id=globex.id).status == ReviewStatus.PENDING


def test_next_and_j_k_follow_the_list_sorted_by_lowest_confidence_and_browsing_claims_nothing(browse, rita):
    low = with_confidence(invoice("Acme Supplies Ltd", "INV-1042"), 0.72)
    high = with_confidence(invoice("Globex Corporation", "GX-77"), 0.97)
    middle = with_confidence(invoice("Initech", "IT-9"), 0.80)
    page = browse.as_user(rita)
    page.goto(f"{QUEUE}?type=invoice&sort=confidence")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    arrive_at(page, low)
    position = page.locator("[data-position]")
    expect(position).to_have_text("1 of 3 in Invoices · lowest confidence first")
    # Looking, and moving with j/k, claims nothing.
    page.keyboard.press("j")
    arrive_at(page, middle)
    expect(position).to_have_text("2 of 3 in Invoices · lowest confidence first")
    page.keyboard.press("j")
    arrive_at(page, high)
    page.keyboard.press("k")
    arrive_at(page, middle)
    page.keyboard.press("k")
    arrive_at(page, low)
    assert claimed() == []
    expect(page.locator("#claim-banner")).to_contain_text("Looking does not claim it")

    # The bug: approving the 0.72 item opened the 0.97 one. Next is the next in the list: 0.80.
    page.keyboard.press("a")
    arrive_at(page, middle)
    assert Decision.objects.get(item=low).outcome == "approved"
    expect(position).to_have_text("1 of 2 in Invoices · lowest confidence first")
    page.keyboard.press("j")
    arrive_at(page, high)
    assert claimed() == []
    # "Work on this" claims it.
    page.get_by_role("button", name="Work on this").click()
    expect(page.locator("#claim-banner")).to_contain_text("You have this item")
    assert claimed() == [str(high.id)]


def test_r_then_a_digit_rejects_with_that_reason_and_escape_cancels(browse, rita):
    item = invoice("Acme Supplies Ltd", "INV-1042")
    page = browse.as_user(rita)
    page.goto(item_path(item))
    keys = page.locator("[data-reject-keys]")
    expect(keys).to_be_hidden()
    page.keyboard.press("r")
    expect(keys).to_be_visible()
    reasons = default_reject_reasons()
    expect(keys.locator("li").first).to_contain_text("1")
    # Pressing r starts work on the item: it is claimed.
    expect(page.locator("#claim-banner")).to_contain_text("You have this item")
    page.keyboard.press("Escape")
    expect(page.locator("#reject-form")).to_be_hidden()
    assert ReviewItem.objects.get(id=item.id).status == ReviewStatus.PENDING
    page.keyboard.press("r")
    page.keyboard.press("2")
    expect(page.locator(".messages")).to_contain_text("Rejected: invoice")
    decision = Decision.objects.get(item=item)
    assert (decision.outcome, decision.reason_code) == ("rejected", reasons[1])


def test_shortcuts_turned_off_do_nothing_until_turned_on(browse, rita):
    item = invoice("Acme Supplies Ltd", "INV-1042")
    page = browse.as_user(rita)
    page.goto(QUEUE)
    page.get_by_role("button", name="Turn keyboard shortcuts off").click()
    expect(page.locator("body")).to_have_attribute("data-shortcuts", "off")
    page.keyboard.press("j")
    expect(page.locator("[data-keynav] tbody tr.is-selected")).to_have_count(0)
    page.goto(item_path(item))
    for key in ("a", "r", "j", "?"):
        page.keyboard.press(key)
    expect(page.locator("#reject-form")).to_be_hidden()
    expect(page.locator("dialog#keys-help")).to_be_hidden()
    assert ReviewItem.objects.get(id=item.id).status == ReviewStatus.PENDING
    page.get_by_role("button", name="Turn keyboard shortcuts on").click()
    expect(page.locator("body")).to_have_attribute("data-shortcuts", "on")
    page.keyboard.press("a")
    expect(page.locator(".messages")).to_contain_text("Approved: invoice")
    assert ReviewItem.objects.get(id=item.id).status == ReviewStatus.DECIDED


def test_ten_invoices_decided_by_keyboard_record_their_server_time(browse, rita):
    """Records (does not assert) the time to first byte of each decision POST, in var/timings/. With
    TASKS_SYNC the flow's resume runs inside that request, so it is an upper bound of the server's time."""
    items = [invoice(f"Vendor {n}", f"N-{n}") for n in range(10)]
    page = browse.as_user(rita)
    waits: list[float] = []
    page.on(
        "requestfinished",
        lambda request: (
            waits.append(request.timing["responseStart"] - request.timing["requestStart"])
            if request.method == "POST" and request.url.endswith("/decide/")
            else None
        ),
    )
    page.goto(f"{QUEUE}?type=invoice")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    for item in items:
        arrive_at(page, item)
        page.keyboard.press("a")
    expect(page).to_have_url(re.compile(re.escape(QUEUE) + r"(\?.*)?$"))
    assert Decision.objects.filter(item__in=items, outcome="approved").count() == 10
    assert len(waits) == 10
    TIMINGS.mkdir(parents=True, exist_ok=True)
    summary = {"ms": [round(wait, 1) for wait in waits], "median_ms": round(statistics.median(waits), 1)}
    (TIMINGS / "keyboard_decisions.json").write_text(json.dumps(summary))
    print("decision POST time to first byte (ms):", summary)
