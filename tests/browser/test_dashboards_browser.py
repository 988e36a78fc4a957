"""The autonomy dashboards in Chromium: overview and per-type page with simulated data, the live what-if,
the day/week toggle, applying a policy change, and a reviewer's read-only view.

Data comes from `manage.py simulate_reviews` (synthetic outputs through the real gate, reviewed
truthfully). The `browse` fixture fails a test on any console error (CSP violations included),
uncaught page error, dialog or 5xx. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from reviewconsole.autonomy.models import AutonomyPolicy, PolicyChange
from tests.browser.conftest import TIMEOUT_MS, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=TIMEOUT_MS)

OVERVIEW = "/autonomy/"


def simulate(name: str, *options: str) -> str:
    """Simulated outputs of `sim_<name>`, spread over past days; returns the output type."""
    call_command("simulate_reviews", "--type", name, "--no-guard", *options, stdout=io.StringIO())
    return f"sim_{name}"


@pytest.fixture
def simulated() -> dict[str, str]:
    invoice = simulate("invoice", "--n", "2200", "--days", "30", "--grant-after", "1500", "--seed", "1")
    # Everything reviewed so far: enough evidence for a recommendation (0.77 with this seed).
    receipt = simulate("receipt", "--n", "2000", "--days", "21", "--seed", "3")
    return {"invoice": invoice, "receipt": receipt}


@pytest.fixture
def few() -> dict[str, str]:
    """Less data, for tests that take no screenshot."""
    invoice = simulate("invoice", "--n", "200", "--days", "5", "--seed", "1")
    receipt = simulate("receipt", "--n", "100", "--days", "5", "--seed", "3")
    return {"invoice": invoice, "receipt": receipt}


def type_path(output_type: str) -> str:
    return reverse("autonomy:type", args=[output_type])


def test_overview_and_type_page_with_a_live_what_if_and_a_policy_change(browse, mona, simulated, screenshot):
    invoice = simulated["invoice"]
    granted = AutonomyPolicy.objects.get(output_type=invoice).threshold
    assert granted is not None
    page = browse.as_user(mona)

    page.goto(OVERVIEW)
    rows = page.locator(".overview-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(invoice)
    expect(rows.first.locator("svg.chart--spark")).to_be_visible()
    expect(page.locator("svg.chart--types")).to_be_visible()
    expect(page.locator("nav.nav a[aria-current='page']")).to_have_text("Autonomy")
    screenshot(page, "autonomy-overview")

    rows.first.locator("a.row-title").click()
    expect(page).to_have_url(re.compile(re.escape(type_path(invoice)) + "$"))
    expect(page.locator("h1")).to_have_text(invoice)
    for chart in ("calibration", "recommendation", "trend"):
        expect(page.locator(f"svg.chart--{chart}")).to_be_visible()
    # The current threshold is previewed first.
    what_if = page.locator("#what-if")
    expect(what_if).to_contain_text(f"What threshold {granted:.2f} would have done")
    screenshot(page, "autonomy-type")
    # A full-page screenshot leaves empty style="" attributes on inputs, which htmx would copy onto the
    # swapped-in form (a CSP violation no user would cause): go on with a fresh page.
    page.reload()

    # Typing a threshold updates the preview (htmx, after a short delay).
    share_before = what_if.locator("[data-whatif-share]").inner_text()
    page.locator("[data-threshold-number]").fill("0.55")
    expect(what_if).to_contain_text("What threshold 0.55 would have done")
    expect(what_if.locator("[data-whatif-share]")).not_to_have_text(share_before)
    # The slider drives the number box, which asks for the preview.
    page.locator("[data-threshold-range]").fill("0.9")
    expect(page.locator("[data-threshold-number]")).to_have_value("0.90")
    expect(what_if).to_contain_text("What threshold 0.90 would have done")

    # The trend switches to weeks in place.
    page.locator("#trend-panel").get_by_role("link", name="By week").click()
    expect(page.locator("#trend-panel summary")).to_contain_text("Numbers by week")
    expect(page.locator("#trend-panel .segmented__item--on")).to_have_text("By week")
    expect(page.locator("#what-if")).to_contain_text("0.90")

    # The evidence window: every figure says which one it covers.
    page.locator(".window-bar").get_by_role("link", name="Since last change").click()
    expect(page.locator("[data-window-label]")).to_contain_text("since the last policy change")
    expect(page.locator("#rec-note")).to_contain_text("since the last policy change")
    expect(page.locator("[data-guard-state]")).to_contain_text("the monitor stands at")
    page.locator("[data-threshold-number]").fill("0.90")
    expect(page.locator("[data-whatif-window]")).to_contain_text("since the last policy change")

    # Applying the change needs a reason; it lands in the history with its author.
    page.locator("#id_reason").fill("Audits above 0.90 hold up; start cautiously.")
    page.get_by_role("button", name="Apply change").click()
    expect(page.locator(".type-alert")).to_contain_text(f"threshold {granted:g} → 0.9")
    first_change = page.locator(".history-table tbody tr").first
    expect(first_change).to_contain_text("mona")
    expect(first_change).to_contain_text("Audits above 0.90 hold up")
    assert AutonomyPolicy.objects.get(output_type=invoice).threshold == 0.9
    change = PolicyChange.objects.filter(policy__output_type=invoice).first()
    assert (change.by.username, change.changes) == ("mona", {"threshold": [granted, 0.9]})
    screenshot(page, "autonomy-type-applied")


def test_a_refused_change_shows_the_error_at_the_field(browse, mona, few):
    invoice = few["invoice"]
    browse.expect_error(422, type_path(invoice))
    page = browse.as_user(mona)
    page.goto(type_path(invoice))
    page.locator("#id_auto_min_threshold").fill("0.9")
    page.locator("#id_auto_max_threshold").fill("0.6")
    page.locator("#id_reason").fill("Narrow the autopilot.")
    page.get_by_role("button", name="Apply change").click()
    expect(page.locator("#policy-form .field--error")).to_contain_text("must not be below the lowest")
    assert not PolicyChange.objects.filter(reason="Narrow the autopilot.").exists()


def test_a_reviewer_sees_the_dashboards_of_their_types_without_controls(browse, few):
    simulated = few
    reviewer = make_user("fiona", "reviewer", simulated["receipt"])
    browse.expect_error(403, type_path(simulated["invoice"]))
    page = browse.as_user(reviewer)

    page.goto(OVERVIEW)
    rows = page.locator(".overview-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(simulated["receipt"])

    page.goto(type_path(simulated["receipt"]))
    expect(page.locator("svg.chart--calibration")).to_be_visible()
    expect(page.locator("#controls")).to_have_count(0)
    expect(page.locator("#what-if")).to_have_count(0)

    response = page.goto(type_path(simulated["invoice"]))
    assert response is not None and response.status == 403


def test_a_recommendation_with_its_evidence_can_be_previewed_and_applied(browse, mona, simulated, screenshot):
    receipt = simulated["receipt"]
    page = browse.as_user(mona)
    page.goto(type_path(receipt))
    recommended = page.locator(".rec__number").inner_text()
    assert re.fullmatch(r"0\.\d\d", recommended), recommended
    expect(page.locator("[data-rec-guarantee]")).to_contain_text("With 95% confidence")
    expect(page.locator("[data-rec-guarantee]")).to_contain_text("audits are drawn at random")
    expect(page.locator("[data-window-label]")).to_have_text("all time")
    expect(page.locator("[data-guard-state]")).to_contain_text("Not watching")
    expect(page.locator("svg.chart--recommendation .chart__chosen")).to_have_count(1)
    evidence = page.locator("details", has_text="Evidence: every candidate threshold")
    evidence.locator("summary").click()
    chosen = evidence.locator("tr.evidence--chosen")
    expect(chosen).to_contain_text(recommended)
    # The table's scroll box opens scrolled to the recommended row.
    page.wait_for_function(
        """() => {
            const row = document.querySelector("tr.evidence--chosen");
            const box = row.closest(".table-wrap").getBoundingClientRect();
            const rect = row.getBoundingClientRect();
            return rect.top >= box.top && rect.bottom <= box.bottom;
        }"""
    )
    screenshot(page, "autonomy-type-recommended")
    page.reload()

    page.get_by_role("link", name=f"Preview and apply {recommended}").click()
    expect(page.locator("#what-if")).to_contain_text(f"What threshold {recommended} would have done")
    expect(page.locator("[data-threshold-number]")).to_have_value(recommended)
    page.locator("#id_reason").fill("Apply the recommendation")
    page.get_by_role("button", name="Apply change").click()
    expect(page.locator(".type-alert")).to_contain_text(f"threshold none → {float(recommended):g}")
    expect(page.locator(".rec .tag--ok")).to_have_text("in force")
