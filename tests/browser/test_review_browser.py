"""The review pages in Chromium: decisions, the edit form, the keyboard, a race, hostile output, permissions.

Items come from real flow runs (the emit_review test flow, the invoice flow on the demo model); a decision
resumes its run inline (TASKS_SYNC=1), so once the next page has loaded the run has finished. The `browse`
fixture fails a test on any console error (CSP violations included), uncaught page error, dialog or 5xx.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from tests.browser.conftest import CLEAN_INVOICE, TIMEOUT_MS, draft_item, invoice_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

QUEUE = "/reviews/"
SCRIPT_PAYLOAD = "<script>window.__xss=1</script>"
ATTR_PAYLOAD = '"><img src=x onerror="window.__xss=1;alert(1)">'


def item_path(item: ReviewItem) -> str:
    return reverse("reviews:item", args=[item.id])


def decide_path(item: ReviewItem) -> str:
    return reverse("reviews:decide", args=[item.id])


def url_of(path: str) -> re.Pattern[str]:
    """The page at `path`, without a query string."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}$")


def arrive(page: Page, path: str) -> None:
    """Wait until a navigation (a click, a key, an htmx redirect) has loaded the page at `path`.

    The URL changes when the new document commits, before its deferred scripts run; a key pressed in
    between would reach a page without its shortcuts yet.
    """
    expect(page).to_have_url(url_of(path))
    page.wait_for_load_state("load")


def approve_button(page: Page):
    return page.locator("#decide-panel button[data-key='a']")


def run_of(item: ReviewItem) -> FlowRun:
    return FlowRun.objects.get(id=item.run_id)


def decision_of(item: ReviewItem) -> Decision:
    return Decision.objects.select_related("user").get(item_id=item.id)


def status_of(item: ReviewItem) -> str:
    return ReviewItem.objects.values_list("status", flat=True).get(id=item.id)


# ---------------------------------------------------------------- approve, edit, reject


def test_approve_from_the_queue_opens_the_next_item(browse, rita, screenshot):
    first, second = draft_item("First draft"), draft_item("Second draft")
    page = browse.as_user(rita)

    page.goto(QUEUE)
    rows = page.locator("tr.queue-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_id(f"item-{first.id}")
    screenshot(page, "queue")

    rows.first.locator("a.row-title").click()
    arrive(page, item_path(first))
    expect(page.locator("#output-read")).to_contain_text("First draft")
    # Looking claims nothing; "Work on this" does.
    expect(page.locator("#claim-banner")).to_contain_text("Looking does not claim it")
    page.get_by_role("button", name="Work on this").click()
    expect(page.locator("#claim-banner")).to_contain_text("You have this item")
    screenshot(page, "item")

    approve_button(page).click()
    arrive(page, item_path(second))
    expect(page.locator(".messages")).to_contain_text(f"Approved: draft {str(first.id)[:8]}")
    expect(page.locator("#output-read")).to_contain_text("Second draft")

    decision = decision_of(first)
    assert (decision.outcome, decision.user, decision.edited_output) == ("approved", rita, None)
    assert status_of(first) == ReviewStatus.DECIDED
    assert status_of(second) == ReviewStatus.PENDING
    run = run_of(first)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["published"]["title"] == "First draft"


def test_edit_with_a_bad_number_shows_the_error_at_the_field_then_saves_the_fix(browse, rita, screenshot):
    item = invoice_item()
    browse.expect_error(422, decide_path(item))
    page = browse.as_user(rita)
    page.goto(item_path(item))

    page.get_by_role("link", name=re.compile(r"^Edit, then approve")).click()
    expect(page.locator("#edit-form")).to_be_visible()
    expect(page.locator("#output-read")).to_be_hidden()
    total = page.locator("#sf-total_amount")
    expect(total).to_have_value(re.compile(r"^205(\.0+)?$"))

    total.fill("abc")
    page.get_by_role("button", name=re.compile(r"^Save and approve")).click()

    # Refused: the form comes back with the error next to the total, which has the cursor.
    errors = page.locator("#sf-total_amount-errors")
    expect(errors).to_be_visible()
    expect(errors).not_to_be_empty()
    field = page.locator(".sf-field", has=page.locator("#sf-total_amount"))
    expect(field).to_have_class(re.compile(r"\bfield--error\b"))
    expect(field.locator(".errorlist")).to_have_id("sf-total_amount-errors")
    expect(total).to_have_attribute("aria-invalid", "true")
    expect(total).to_have_attribute("aria-describedby", "sf-total_amount-errors")
    expect(total).to_be_focused()
    expect(total).to_have_value("abc")
    expect(page.locator(".sf-summary")).to_contain_text("the item is still pending")
    # Only the total is marked: the other fields kept their values and have no error.
    expect(page.locator("#edit-form [aria-invalid='true']")).to_have_count(1)
    expect(page.locator("#sf-vendor")).to_have_value("Acme Supplies Ltd")
    screenshot(page, "item-edit-error")
    assert status_of(item) == ReviewStatus.PENDING
    assert not Decision.objects.filter(item_id=item.id).exists()
    assert run_of(item).status == RunStatus.WAITING_REVIEW

    total.fill("210.00")
    page.locator("#edit-comment").fill("Shipping was left out")
    page.get_by_role("button", name=re.compile(r"^Save and approve")).click()
    arrive(page, QUEUE)
    expect(page.locator(".messages")).to_contain_text(f"Edited and approved: invoice {str(item.id)[:8]}")

    decision = decision_of(item)
    assert decision.outcome == "approved"
    assert decision.comment == "Shipping was left out"
    assert decision.edited_output["total_amount"] == 210.0
    assert [(c["path"], c["before"], c["after"]) for c in decision.diff] == [("total_amount", 205.0, 210.0)]
    run = run_of(item)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "approved"
    assert run.result["invoice"]["total_amount"] == 210.0

    # The decided item reads as decided, with the change listed.
    page.goto(item_path(item))
    diff = page.locator(".diff__table tbody tr")
    expect(diff).to_have_count(1)
    expect(diff.first).to_contain_text("total_amount")
    expect(diff.first.locator(".diff__after")).to_contain_text("210")
    screenshot(page, "item-decided-diff")


def test_reject_with_a_reason_and_a_comment(browse, rita):
    item = invoice_item()
    page = browse.as_user(rita)
    page.goto(item_path(item))

    reject_form = page.locator("#reject-form")
    expect(reject_form).to_be_hidden()
    page.locator("#decide-panel a[data-key='r']").click()
    expect(reject_form).to_be_visible()
    reject_form.get_by_label("Reason").select_option("wrong_data")
    reject_form.get_by_label("Comment").fill("The total does not match the lines")
    reject_form.get_by_role("button", name="Reject item").click()
    arrive(page, QUEUE)
    expect(page.locator(".messages")).to_contain_text(f"Rejected: invoice {str(item.id)[:8]}")

    decision = decision_of(item)
    assert (decision.outcome, decision.reason_code, decision.comment) == (
        "rejected",
        "wrong_data",
        "The total does not match the lines",
    )
    assert decision.user == rita
    run = run_of(item)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "rejected"


# ---------------------------------------------------------------- keyboard


def test_keyboard_flow(browse, rita):
    first, second, third = draft_item("One"), draft_item("Two"), draft_item("Three")
    page = browse.as_user(rita)
    page.goto(QUEUE)
    selected = page.locator("[data-keynav] tbody tr.is-selected")
    expect(selected).to_have_count(0)

    for key, expected in [("j", first), ("j", second), ("j", third), ("j", third), ("k", second)]:
        page.keyboard.press(key)
        expect(selected).to_have_id(f"item-{expected.id}")
        expect(selected).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    arrive(page, item_path(second))

    # ? toggles the help; Escape closes it, and no shortcut acts while it is open.
    help_dialog = page.locator("dialog#keys-help")
    expect(help_dialog).to_be_hidden()
    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_have_attribute("open", "")
    page.keyboard.press("a")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    assert status_of(second) == ReviewStatus.PENDING

    # e opens the edit form with the cursor in its first field; typed letters stay in the field.
    page.keyboard.press("e")
    title = page.locator("#sf-title")
    expect(title).to_be_focused()
    page.keyboard.type("jkae?")
    expect(title).to_have_value(re.compile("jkae\\?"))
    arrive(page, item_path(second))
    expect(help_dialog).to_be_hidden()
    assert status_of(second) == ReviewStatus.PENDING
    # Escape leaves the field; from there keys are shortcuts again. Cancel puts the form away.
    page.keyboard.press("Escape")
    expect(title).not_to_be_focused()
    page.locator("#edit-form").get_by_role("link", name="Cancel").click()
    expect(page.locator("#edit-form")).to_be_hidden()

    page.keyboard.press("a")
    # Then the next item of the list (the queue, oldest first): the third.
    arrive(page, item_path(third))
    assert decision_of(second).outcome == "approved"
    assert decision_of(second).edited_output is None
    assert run_of(second).status == RunStatus.COMPLETED

    page.keyboard.press("k")
    arrive(page, item_path(first))
    page.keyboard.press("j")
    arrive(page, item_path(third))
    page.keyboard.press("u")
    arrive(page, QUEUE)
    expect(page.locator("tr.queue-row")).to_have_count(2)


# ---------------------------------------------------------------- two reviewers, one item


def test_two_reviewers_approving_at_once_make_one_decision(browse, rita, carl, screenshot):
    item = draft_item()
    browse.expect_error(409, decide_path(item))
    page_rita, page_carl = browse.as_user(rita), browse.as_user(carl)
    page_rita.goto(item_path(item))
    page_rita.get_by_role("button", name="Work on this").click()
    expect(page_rita.locator("#claim-banner")).to_contain_text("You have this item")
    page_carl.goto(item_path(item))
    expect(page_carl.locator("#claim-banner")).to_contain_text("Being reviewed by rita")

    # Both clicks are dispatched before either answer can arrive: each only starts an htmx request.
    buttons = [approve_button(page_rita), approve_button(page_carl)]
    for button in buttons:
        expect(button).to_be_enabled()
    for button in buttons:
        button.dispatch_event("click")

    alert = "#review-main .review-alert"
    # Each page ends up either on the queue with a message (won) or with an alert on the item (lost).
    for page in (page_rita, page_carl):
        expect(page.locator(f"{alert}, .messages").first).to_be_visible()
    decisions = list(Decision.objects.filter(item_id=item.id).select_related("user"))
    assert len(decisions) == 1
    winner = decisions[0].user
    assert winner in (rita, carl)
    won, lost = (page_rita, page_carl) if winner == rita else (page_carl, page_rita)

    arrive(won, QUEUE)
    expect(won.locator(".messages")).to_contain_text("Approved: draft")
    arrive(lost, item_path(item))
    expect(lost.locator(alert)).to_contain_text(f"Already decided by {winner.username}")
    # The loser's page now shows the decision instead of the buttons.
    expect(lost.locator("#decide-panel")).to_have_count(0)
    expect(lost.locator(".decided")).to_contain_text(winner.username)
    screenshot(lost, "item-race-lost")
    assert status_of(item) == ReviewStatus.DECIDED
    assert run_of(item).status == RunStatus.COMPLETED


def test_second_reviewer_clicking_after_the_first_is_told_who_decided(browse, rita, carl):
    item = draft_item()
    browse.expect_error(409, decide_path(item))
    page_rita, page_carl = browse.as_user(rita), browse.as_user(carl)
    page_rita.goto(item_path(item))
    page_rita.get_by_role("button", name="Work on this").click()
    expect(page_rita.locator("#claim-banner")).to_contain_text("You have this item")
    page_carl.goto(item_path(item))
    expect(page_carl.locator("#claim-banner")).to_contain_text("Being reviewed by rita")

    approve_button(page_rita).click()
    arrive(page_rita, QUEUE)
    approve_button(page_carl).click()
    expect(page_carl.locator("#review-main .review-alert")).to_contain_text("Already decided by rita")
    arrive(page_carl, item_path(item))

    assert Decision.objects.filter(item_id=item.id).count() == 1
    assert decision_of(item).user == rita


# ---------------------------------------------------------------- hostile output


def assert_inert(page: Page) -> None:
    """Nothing of the payloads became markup or ran."""
    assert page.evaluate("typeof window.__xss") == "undefined"
    expect(page.locator("img[src='x']")).to_have_count(0)
    inline = page.eval_on_selector_all("script", "scripts => scripts.filter(s => !s.src).map(s => s.outerHTML)")
    assert inline == []
    # Every element with an event-handler attribute would show up here.
    handlers = page.evaluate(
        "() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
        ".filter(name => name.startsWith('on'))"
    )
    assert handlers == []


def test_hostile_output_and_inputs_are_shown_as_text(browse, rita):
    invoice = invoice_item(
        CLEAN_INVOICE.replace("Acme Supplies Ltd", SCRIPT_PAYLOAD)
        .replace("INV-1042", ATTR_PAYLOAD)
        .replace("Widgets |", "<img src=x onerror=alert(2)>Widgets |")
    )
    assert invoice.output["vendor"] == SCRIPT_PAYLOAD
    assert invoice.output["invoice_number"] == ATTR_PAYLOAD
    draft = draft_item(SCRIPT_PAYLOAD + ATTR_PAYLOAD)
    page = browse.as_user(rita)

    page.goto(QUEUE)
    assert_inert(page)

    page.goto(item_path(invoice))
    read = page.locator("#output-read")
    expect(read).to_contain_text(SCRIPT_PAYLOAD)
    expect(read).to_contain_text(ATTR_PAYLOAD)
    expect(read).to_contain_text("<img src=x onerror=alert(2)>Widgets")
    expect(page.locator(".review-source")).to_contain_text(SCRIPT_PAYLOAD)
    expect(page.locator(".review-source")).to_contain_text(ATTR_PAYLOAD)
    page.locator(".out-raw summary").click()
    expect(page.locator(".out-raw pre")).to_contain_text(ATTR_PAYLOAD.replace('"', '\\"'))
    assert_inert(page)
    # In the edit form the payloads are attribute values, intact.
    page.keyboard.press("e")
    expect(page.locator("#sf-vendor")).to_have_value(SCRIPT_PAYLOAD)
    expect(page.locator("#sf-invoice_number")).to_have_value(ATTR_PAYLOAD)
    assert_inert(page)

    # Rejected with a hostile comment: the decided page shows it as text too.
    page.goto(item_path(draft))
    expect(page.locator("#output-read")).to_contain_text(SCRIPT_PAYLOAD + ATTR_PAYLOAD)
    expect(page.locator(".review-source")).to_contain_text(SCRIPT_PAYLOAD + ATTR_PAYLOAD)
    assert_inert(page)
    page.locator("#decide-panel a[data-key='r']").click()
    page.locator("#decide-reason_code").select_option("other")
    page.locator("#reject-comment").fill(ATTR_PAYLOAD)
    page.get_by_role("button", name="Reject item").click()
    arrive(page, item_path(invoice))
    assert_inert(page)
    page.goto(item_path(draft))
    expect(page.locator(".decided")).to_contain_text(ATTR_PAYLOAD)
    assert_inert(page)

    # The run pages show the same inputs and results.
    for item in (invoice, draft):
        page.goto(reverse("engine:run_detail", args=[item.run_id]))
        expect(page.locator("main")).to_contain_text(ATTR_PAYLOAD.replace('"', '\\"'))
        assert_inert(page)
    assert browse.watched.dialogs == []


# ---------------------------------------------------------------- who may review what


def test_scoped_reviewer_manager_and_outsider(browse, fiona, mona, otto, live_server):
    draft, invoice = draft_item(), invoice_item()
    browse.expect_error(404, item_path(draft))
    browse.expect_error(403, QUEUE, item_path(invoice), reverse("reviews:next"))

    # Fiona reviews invoices only: drafts are not in her queue, and their pages do not exist for her.
    page = browse.as_user(fiona)
    page.goto(QUEUE)
    expect(page.locator(f"#item-{invoice.id}")).to_be_visible()
    expect(page.locator(f"#item-{draft.id}")).to_have_count(0)
    expect(page.locator("#queue-tabs")).not_to_contain_text("draft")
    response = page.goto(item_path(draft))
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    response = page.goto(item_path(invoice))
    assert response is not None and response.status == 200
    # A draft's Next link never leads her there either: the queue of her type has only this invoice.
    expect(page.locator("a[rel='next']")).to_have_count(0)

    # Mona, a manager, sees and opens both.
    page = browse.as_user(mona)
    page.goto(QUEUE)
    expect(page.locator("tr.queue-row")).to_have_count(2)
    response = page.goto(item_path(draft))
    assert response is not None and response.status == 200
    expect(page.locator("#output-read")).to_contain_text("Invoice 7")

    # Otto signs in through the login form; he may look at runs but not review.
    page = browse.as_user(None)
    page.goto(f"/accounts/login/?next={QUEUE}")
    page.get_by_label("Username").fill("otto")
    page.get_by_label("Password").fill("pw")
    with page.expect_response(lambda r: url_of(QUEUE).match(r.url) is not None) as queue_response:
        page.get_by_role("button", name="Log in").click()
    assert queue_response.value.status == 403
    expect(page.locator("h1")).to_have_text("You don't have access to this page")
    expect(page.locator("nav.nav")).not_to_contain_text("Queue")
    for path in (item_path(invoice), reverse("reviews:next")):
        response = page.goto(path)
        assert response is not None and response.status == 403
    assert not ReviewItem.objects.filter(claimed_by=otto).exists()
