"""The export form on a type's page in Chromium: two dates, two buttons, a file downloaded; bad dates named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from reviewconsole.autonomy.exports import DatasetLine
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from tests.browser.conftest import TIMEOUT_MS
from tests.test_exports import TYPE, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)


def test_a_manager_downloads_the_dataset_and_is_told_about_bad_dates(browse, mona):
    item = make_item()
    ReviewItem.objects.filter(id=item.id).update(status=ReviewStatus.DECIDED, decided_at=timezone.now())
    Decision.objects.create(item=item, outcome="approved", user=mona)
    today = timezone.now().date().isoformat()
    page = browse.as_user(mona)
    page.goto(reverse("autonomy:type", args=[TYPE]))

    form = page.locator("#export form")
    expect(form.get_by_label("To")).to_have_value(today)
    with page.expect_download() as download:
        form.get_by_role("button", name="Dataset (JSONL)").click()
    assert download.value.suggested_filename.startswith(f"{TYPE}-dataset-")
    [line] = Path(download.value.path()).read_text().splitlines()
    assert DatasetLine.model_validate_json(line).item_id == str(item.id)
    assert json.loads(line)["verdict"] is None  # decided outside the services: no verdict on its gate decision

    browse.expect_error(400, reverse("autonomy:export_audit", args=[TYPE]))
    form.get_by_label("From").fill("2026-03-02")
    form.get_by_label("To").fill("2026-03-01")
    form.get_by_role("button", name="Audit trail (CSV)").click()
    expect(page.locator("#export")).to_contain_text("The start date 2026-03-02 is after the end date 2026-03-01")
