"""Checks in Chromium: findings at the top and on the fields, live as the edit changes; source lines on focus."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, invoice_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

# Line 8 is the total, which the lines (3,000.00 + 480.00 on lines 6 and 7) do not add up to.
MISMATCH = """Vendor: Initech GmbH
Invoice Number: IN-2207
Invoice Date: 2026-10-05
Due Date: 2026-11-04
Currency: EUR
Consulting | 10 | 300.00 | 3,000.00
Travel | 1 | 480.00 | 480.00
Total: 3,580.00
"""
CURRENT = re.compile(r"\bsource__line--current\b")


def test_findings_show_on_the_fields_and_focusing_a_field_highlights_its_source_line(browse, rita, screenshot):
    item = invoice_item(MISMATCH)
    page = browse.as_user(rita)
    page.goto(reverse("reviews:item", args=[item.id]))

    expect(page.locator(".findings-panel")).to_contain_text("3,580.00")
    total_row = page.locator('[data-field="sf-total_amount"]')
    expect(total_row).to_have_class(re.compile(r"\bout__row--error\b"))
    expect(total_row).to_have_attribute("aria-describedby", "read-sf-total_amount-findings")
    expect(page.locator("#read-sf-total_amount-findings")).to_contain_text("add up to 3,480.00")

    # Focusing the total (read view) highlights line 8 of the invoice, and only it.
    total_row.focus()
    expect(page.locator("#source-line-8")).to_have_class(CURRENT)
    expect(page.locator(".source__line--current")).to_have_count(1)
    screenshot(page, "checks-read")

    page.get_by_role("link", name=re.compile(r"^Edit, then approve")).click()
    total = page.locator("#sf-total_amount")
    expect(total).to_be_visible()
    expect(total).to_have_attribute("aria-describedby", "sf-total_amount-findings")
    page.locator("#sf-vendor").focus()
    expect(page.locator("#source-line-1")).to_have_class(CURRENT)
    page.locator("#sf-line_items-1-amount").focus()
    expect(page.locator("#source-line-7")).to_have_class(CURRENT)
    expect(page.locator("#source-line-1")).not_to_have_class(CURRENT)

    # The live re-check: fixing the total clears its finding; breaking it again brings one back.
    total.fill("3480")
    expect(page.locator("#edit-findings")).to_contain_text("find nothing wrong")
    expect(page.locator("#sf-total_amount-findings")).to_be_hidden()
    expect(total).not_to_have_attribute("aria-describedby", re.compile("findings"))

    total.fill("3000")
    expect(page.locator("#edit-findings")).to_contain_text("3,000.00")
    expect(page.locator("#sf-total_amount-findings")).to_contain_text("add up to 3,480.00")
    expect(total).to_have_attribute("aria-describedby", "sf-total_amount-findings")
    expect(total).to_have_attribute("data-finding", "error")
    screenshot(page, "checks-edit")
