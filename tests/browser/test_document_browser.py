"""The reviewer's view of the source in Chromium: an uploaded PDF beside the fields, every line of the text
numbered, long texts in editors that fit them, amounts in their currency; and a run page that tells the truth."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from flows.invoice_samples import PDF_INVOICE
from reviewconsole.engine.forms import UPLOAD_SUFFIX
from reviewconsole.engine.models import FlowRun, RunDocument
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.simple_pdf import text_pdf
from tests.browser.conftest import TIMEOUT_MS, invoice_item, paused_item
from tests.test_invoice_flow import CLEAN

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
CURRENT = re.compile(r"\bsource__line--current\b")


def shoot(page: Page, screenshot, name: str) -> None:
    """Screenshots at the two sizes people use: a laptop and a phone."""
    for label, size in (("1440", WIDE), ("390", PHONE)):
        page.set_viewport_size(size)
        screenshot(page, f"{name}-{label}")
    page.set_viewport_size(WIDE)


def test_an_invoice_uploaded_as_a_pdf_shows_its_pages_beside_the_fields(browse, mona, rita, tmp_path, screenshot):
    pdf = tmp_path / "northwind.pdf"
    pdf.write_bytes(text_pdf(PDF_INVOICE.splitlines(), size=11))
    manager = browse.as_user(mona)
    manager.goto(reverse("engine:flow_start", args=["invoice_processing"]))
    manager.locator(f'input[name="raw_invoice{UPLOAD_SUFFIX}"]').set_input_files(str(pdf))
    # The run goes as far as its review before the answer comes (tasks run inline in the tests).
    manager.get_by_role("button", name="Start run").click(no_wait_after=True)
    expect(manager.locator(".run-head")).to_contain_text("Waiting", timeout=60_000)
    item = ReviewItem.objects.get(run=FlowRun.objects.get())
    document = RunDocument.objects.get(run=item.run)

    page = browse.as_user(rita)
    page.set_viewport_size(WIDE)
    page.goto(reverse("reviews:item", args=[item.id]))

    # The page image, drawn on the server, loaded lazily, beside (right of) the output's fields.
    image = page.get_by_role("img", name="Page 1 of 1 of northwind.pdf, as uploaded")
    expect(image).to_have_attribute("loading", "lazy")
    expect(image).to_have_attribute("src", reverse("reviews:document_page", args=[item.id, document.id, 1]))
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    fields, shown = page.locator(".review-output").bounding_box(), image.bounding_box()
    assert shown["x"] >= fields["x"] + fields["width"] and shown["width"] > 300
    # Amounts read with their currency and two decimals.
    expect(page.locator('[data-field="sf-total_amount"] dd')).to_have_text("3,005.50 EUR")

    shoot(page, screenshot, "document-invoice-pdf")

    # Every line of the text, numbered; focusing the total highlights its line (the last) and shows it.
    lines = page.locator(".source__text--lines .source__line")
    expect(lines).to_have_count(len(PDF_INVOICE.splitlines()))
    expect(page.locator(".source__line .source__no")).to_have_text([str(n) for n in range(1, 26)])
    page.evaluate("window.scrollTo(0, 0)")
    page.locator('[data-field="sf-total_amount"]').focus()
    total_line = page.locator("#source-line-25")
    expect(total_line).to_have_class(CURRENT)
    expect(total_line).to_contain_text("Total: 3,005.50")
    expect(total_line).to_be_in_viewport()
    expect(page.locator('[data-field="sf-total_amount"]')).to_be_in_viewport()


def test_a_25_line_text_source_shows_every_line_and_the_total_is_highlighted(browse, rita):
    item = invoice_item(PDF_INVOICE)
    page = browse.as_user(rita)
    page.set_viewport_size(WIDE)
    page.goto(reverse("reviews:item", args=[item.id]))

    expect(page.locator(".source__line")).to_have_count(25)
    page.locator('[data-field="sf-total_amount"]').focus()
    expect(page.locator("#source-line-25")).to_have_class(CURRENT)
    expect(page.locator(".source__line--current")).to_have_count(1)
    expect(page.locator("#source-line-25")).to_be_in_viewport()


def test_an_article_drafts_body_editor_fits_its_text(browse, rita, screenshot):
    from reviewconsole.engine.services import run_create

    item = paused_item(run_create(flow_name="content_production", inputs={"topic": "Remote work and productivity"}))
    body_text = item.output["body"]
    page = browse.as_user(rita)
    page.set_viewport_size(WIDE)
    page.goto(reverse("reviews:item", args=[item.id]) + "?edit=1")

    body = page.locator("#sf-body")
    expect(body).to_have_value(body_text)
    size = body.evaluate(
        "el => ({rows: el.rows, client: el.clientHeight, scroll: el.scrollHeight,"
        " line: parseFloat(getComputedStyle(el).lineHeight)})"
    )
    assert size["rows"] > 3
    assert size["client"] > 3 * size["line"] * 1.5  # clearly taller than the three rows it had
    assert size["scroll"] <= size["client"] + 2  # the whole text shows: nothing to scroll inside the editor
    shoot(page, screenshot, "document-article-draft")


def test_a_completed_run_page_shows_no_pause_and_no_llm_row_for_the_persons_decision(browse, rita, screenshot):
    from tests.people import user_with_engine_perms

    item = invoice_item(CLEAN)
    reviewer = browse.as_user(rita)
    reviewer.goto(reverse("reviews:item", args=[item.id]))
    # The decision resumes the run before its answer comes (tasks run inline in the tests).
    reviewer.locator("#decide-panel button[data-key='a']").click(no_wait_after=True)
    expect(reviewer).not_to_have_url(re.compile(str(item.id)), timeout=60_000)
    page = browse.as_user(user_with_engine_perms("vera", "view_flowrun"))
    page.set_viewport_size(WIDE)
    page.goto(reverse("engine:run_detail", args=[item.run_id]))

    expect(page.locator(".run-head")).to_contain_text("Completed")
    steps = page.locator("#run-timeline")
    expect(steps).to_contain_text("review_invoice")
    expect(steps).not_to_contain_text("Paused")
    # One LLM row: the model reading the invoice; the reviewer's approval is not a model's call.
    expect(steps.locator(".tag--llm")).to_have_count(1)
    expect(steps).not_to_contain_text("decision")
    shoot(page, screenshot, "document-run-page")
