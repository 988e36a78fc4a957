"""Every page in Chromium through axe-core, at 1440 by 900 and at 390 by 844: no serious or critical violation, and at
390 px no page wider than the screen, chart labels of 11 px or more, the first queue item on the first screen and
the decision buttons on it too. Also: every control shows where the keyboard focus is.

The pages come from the URL resolver, as in tests/test_authorization_matrix.py: a route that is neither in
PAGES nor in NOT_PAGES fails `test_every_route_is_a_checked_page_or_says_why_not`, so a new page is checked
here before it ships. axe-core is installed from the npm registry, pinned by tests/browser/package-lock.json
(`make test` runs `npm ci` there). The page's CSP allows no inline script, so axe's source is evaluated through
Playwright, which the CSP does not govern, instead of being added as a <script>.
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from playwright.sync_api import Page, expect

from reviewconsole.autonomy.services import policy_update
from reviewconsole.engine.models import FlowRun
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.reliability import second_review_give
from reviewconsole.reviews.services import decide
from tests.browser.conftest import CLEAN_INVOICE, TIMEOUT_MS, Browse, invoice_item, make_user, paused_item

pytestmark = pytest.mark.browser

expect.set_options(timeout=TIMEOUT_MS)

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")

# An invoice whose lines do not add up to its total: the item page shows findings.
MISMATCH = CLEAN_INVOICE.replace("INV-1042", "INV-2207").replace("Total: 205.00", "Total: 305.00")
# Above the four-eyes limit: one approval leaves it waiting for a second approver.
HIGH_VALUE = """Vendor: Stark Logistics
Invoice Number: SL-77
Invoice Date: 2026-09-15
Freight, pallet | 600 | 95.00 | 57,000.00
Total: 57,000.00 USD
"""


@dataclass(frozen=True)
class Visit:
    label: str
    user: str | None  # a key of World.users; None: signed out
    path: str
    status: int = 200
    # What to wait for, or do, once the page has loaded and before axe runs: for pages drawn by script.
    ready: Callable[[Page], None] | None = None


@dataclass
class World:
    users: dict[str, User]
    items: dict[str, ReviewItem]
    runs: dict[str, FlowRun]
    sim_type: str


def _item(world: World, name: str) -> str:
    return reverse("reviews:item", args=[world.items[name].id])


def _run(world: World, name: str) -> str:
    return reverse("engine:run_detail", args=[world.runs[name].id])


# The API docs' operation opened before axe runs, so that an operation's body (its parameters, request body and
# responses) is checked as well as the list: one with a path parameter and a JSON body.
DOCS_OPERATION = "/api/v1/reviews/{item_id}/decision"


def _docs_drawn(page: Page) -> None:
    """Swagger UI draws the docs from the OpenAPI document after load: wait for it, then open one operation."""
    operation = page.locator(f".opblock:has([data-path='{DOCS_OPERATION}'])")
    operation.locator(".opblock-summary-control").click()
    expect(operation.locator(".opblock-body .parameters-container")).to_be_visible()


# Route key: the visits that check it. Each visit is made at both viewports.
PAGES: dict[str, Callable[[World], list[Visit]]] = {
    "login": lambda w: [Visit("login", None, reverse("login"))],
    "reviews:queue": lambda w: [
        Visit("queue", "rita", reverse("reviews:queue")),
        Visit("queue, one type", "rita", reverse("reviews:queue") + "?type=invoice"),
    ],
    "reviews:item": lambda w: [
        Visit("item, pending", "rita", _item(w, "pending")),
        Visit("item, with findings", "rita", _item(w, "findings")),
        Visit("item, four eyes", "rita", _item(w, "four_eyes")),
        Visit("item, decided", "rita", _item(w, "decided")),
        Visit("item, article draft", "rita", _item(w, "article")),
    ],
    "reviews:second_review": lambda w: [
        Visit("second review", "mona", reverse("reviews:second_review", args=[w.items["decided"].id]))
    ],
    "reviews:adjudications": lambda w: [Visit("adjudications", "mona", reverse("reviews:adjudications"))],
    "reviews:reviewers": lambda w: [Visit("reviewers", "mona", reverse("reviews:reviewers"))],
    "autonomy:overview": lambda w: [Visit("autonomy overview", "mona", reverse("autonomy:overview"))],
    "autonomy:type": lambda w: [
        Visit("autonomy type, simulated", "mona", reverse("autonomy:type", args=[w.sim_type])),
        Visit("autonomy type, reviewer", "rita", reverse("autonomy:type", args=["invoice"])),
    ],
    # A download; the page of its own is the refusal of a bad date range (the form again, with the error).
    "autonomy:export_audit": lambda w: [
        Visit(
            "export, dates the wrong way round",
            "mona",
            reverse("autonomy:export_audit", args=[w.sim_type]) + "?date_from=2026-12-01&date_to=2026-11-01",
            400,
        )
    ],
    "engine:flow_list": lambda w: [Visit("flows", "mona", reverse("engine:flow_list"))],
    "engine:flow_start": lambda w: [
        Visit("flow start, upload", "mona", reverse("engine:flow_start", args=["invoice_processing"])),
        Visit("flow start, form", "mona", reverse("engine:flow_start", args=["content_production"])),
    ],
    "engine:run_list": lambda w: [Visit("runs", "mona", reverse("engine:run_list"))],
    "engine:run_detail": lambda w: [
        Visit("run, waiting", "mona", _run(w, "waiting")),
        Visit("run, completed", "mona", _run(w, "completed")),
        Visit("run, article", "mona", _run(w, "article")),
    ],
    "api:openapi-view": lambda w: [Visit("API docs", "mona", reverse("api:openapi-view"), ready=_docs_drawn)],
}

# Visits whose screenshots are kept in var/screenshots/, as <name>-<viewport width>.png, for people to look at.
SCREENSHOTS = {
    "queue": "a11y-queue",
    "item, with findings": "a11y-item",
    "item, article draft": "a11y-article",
    "autonomy type, simulated": "a11y-autonomy-type",
    "run, completed": "a11y-run",
}

# Routes that are not pages of their own, and why.
NOT_PAGES = {
    "logout": "POST only",
    "engine:home": "redirects",
    "engine:run_retry": "POST only",
    "engine:run_cancel": "POST only",
    "reviews:next": "redirects",
    "reviews:bulk": "POST only",
    "reviews:decide": "POST only; its answers are parts of the item page",
    "reviews:check": "POST only; its answer is a part of the item page",
    "reviews:release": "POST only",
    "reviews:adjudicate": "POST only",
    "reviews:claim": "POST only",
    "reviews:undo": "POST only; its answers are the item page",
    "reviews:shortcuts": "POST only; redirects",
    "reviews:document_page": "a PNG image of a document's page, shown (with alt text) on the item page",
    "autonomy:export_dataset": "a JSON Lines download; its refusal is the audit export's page",
    "healthz": "JSON for a load balancer's probe",
    "readyz": "JSON for a load balancer's probe",
    "metrics": "Prometheus text for a scraper",
}
# The JSON API and Django's own admin are not the console's pages (its docs page, in PAGES, is checked).
NOT_PAGE_PREFIXES = ("api:", "admin:", "admin/")

# Pages that are not routes: the error pages every route can answer with.
ERROR_PAGES: list[Callable[[World], Visit]] = [
    lambda w: Visit("403", "otto", reverse("reviews:queue"), 403),
    lambda w: Visit("404", "rita", reverse("reviews:item", args=[uuid.uuid4()]), 404),
]


def _route_keys(patterns: list[Any], namespaces: tuple[str, ...] = (), prefix: str = "") -> list[str]:
    keys = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            namespace = (pattern.namespace,) if pattern.namespace else ()
            keys += _route_keys(pattern.url_patterns, namespaces + namespace, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            keys.append(":".join((*namespaces, pattern.name)) if pattern.name else prefix + str(pattern.pattern))
    return keys


def test_every_route_is_a_checked_page_or_says_why_not():
    keys = _route_keys(get_resolver().url_patterns)
    unlisted = [
        key for key in keys if key not in PAGES and key not in NOT_PAGES and not key.startswith(NOT_PAGE_PREFIXES)
    ]
    assert not unlisted, f"add these routes to PAGES (or NOT_PAGES, saying why): {unlisted}"
    assert not (set(PAGES) | set(NOT_PAGES)) - set(keys), "PAGES or NOT_PAGES name a route that no longer exists"


def _world_seeded() -> World:
    """The world, seeded on a thread of its own: a decision resumes its flow inline, and CrewAI refuses to resume
    on this thread, where Playwright's event loop runs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_world).result()


def _world() -> World:
    users = {name: make_user(name) for name in ("rita", "carl")}
    users["mona"] = make_user("mona", "manager")
    users["otto"] = make_user("otto", None)
    items = {"pending": invoice_item(), "findings": invoice_item(MISMATCH), "four_eyes": invoice_item(HIGH_VALUE)}
    decide(item_id=items["four_eyes"].id, user=users["carl"], outcome="approved")
    policy_update(output_type="invoice", changes={"second_review_rate": 1.0}, by=None, reason="measure agreement")
    # Decided by carl: a second review pending for mona; another, disagreed by rita, waits for adjudication.
    for name, number in (("decided", "INV-1"), ("disagreed", "INV-2")):
        items[name] = invoice_item(CLEAN_INVOICE.replace("INV-1042", number))
        decide(item_id=items[name].id, user=users["carl"], outcome="approved")
    second_review_give(item_id=items["disagreed"].id, user=users["rita"], outcome="rejected")
    article_run = run_create(flow_name="content_production", inputs={"topic": "Quasicrystals"})
    items["article"] = paused_item(article_run)
    runs = {"waiting": items["pending"].run, "completed": items["decided"].run, "article": article_run}
    call_command("simulate_reviews", "--type", "invoice", "--n", "300", "--days", "10", stdout=io.StringIO())
    return World(users=users, items=items, runs=runs, sim_type="sim_invoice")


def _axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (every impact)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    return page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")


def _summary(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['impact']} {v['id']} x{len(v['nodes'])}: {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


# Rendered size of each chart text: its font size times the SVG's scale on the screen.
SMALLEST_CHART_TEXT = """() => Math.min(Infinity, ...[...document.querySelectorAll('svg.chart text')]
    .filter(t => t.getClientRects().length)
    .map(t => parseFloat(getComputedStyle(t).fontSize) * t.ownerSVGElement.getScreenCTM().a))"""


def _phone_problems(page: Page) -> list[str]:
    """What makes the page hard to use on a phone: sideways scrolling, unreadable chart labels, work off screen."""
    problems = []
    width, screen_width, screen_height = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth, window.innerHeight]"
    )
    if width > screen_width:
        problems.append(f"scrolls sideways: {width} px wide on a {screen_width} px screen")
    smallest = page.evaluate(SMALLEST_CHART_TEXT)
    if smallest < 11:
        problems.append(f"chart text {smallest:.1f} px tall")
    # The first queue item, and the decision buttons (those with a key: approve, edit, reject).
    for what, selector in (
        ("first queue item", ".queue-row >> nth=0"),
        ("decision button", "#decide-panel .btn[data-key]"),
    ):
        for element in page.locator(selector).all():
            box = element.bounding_box()
            if box is None:
                continue
            if box["y"] < 0 or box["y"] + box["height"] > screen_height:
                problems.append(f"{what} not on the first screen: at y={box['y']:.0f}")
            if what == "decision button" and box["height"] < 44:
                problems.append(f"{what} {box['height']:.0f} px tall, less than a 44 px tap target")
    return problems


@pytest.mark.django_db(transaction=True)
def test_every_page_has_no_serious_accessibility_violation_and_fits_a_phone(browse: Browse, screenshot):
    assert AXE.exists(), "axe-core is missing: run `npm ci` in tests/browser (make test does)"
    world = _world_seeded()
    visits = [visit for pages in PAGES.values() for visit in pages(world)] + [page(world) for page in ERROR_PAGES]
    for visit in visits:
        if visit.status != 200:
            browse.expect_error(visit.status, urlsplit(visit.path).path)
    pages = {name: browse.as_user(world.users[name] if name else None) for name in {v.user for v in visits}}
    failures: dict[str, list[str]] = {}
    rules: Counter[str] = Counter()
    for viewport_name, viewport in VIEWPORTS.items():
        for visit in visits:
            page = pages[visit.user]
            page.set_viewport_size(viewport)
            # Once the parts that htmx loads after the page (a type page's reviewing panel) are in.
            response = page.goto(visit.path, wait_until="networkidle")
            assert response is not None and response.status == visit.status, (visit, response and response.status)
            if visit.ready is not None:
                visit.ready(page)
            violations = _axe(page)
            for violation in violations:
                if violation["impact"] in BLOCKING:
                    rules[violation["id"]] += len(violation["nodes"])
            found = _summary(violations) + (_phone_problems(page) if viewport_name == "phone" else [])
            if found:
                failures[f"{visit.label} at {viewport_name} ({visit.path})"] = found
            # Last: a full-page screenshot resizes the page for a moment and scrolls it to the top.
            if visit.label in SCREENSHOTS:
                screenshot(page, f"{SCREENSHOTS[visit.label]}-{viewport['width']}")
    assert not failures, f"\nserious or critical, elements by rule: {dict(rules)}\n" + "\n".join(
        f"{page}:\n  " + "\n  ".join(found) for page, found in failures.items()
    )


# How the element under the keyboard's focus is drawn: its outline and shadow, which show the focus here.
FOCUS_LOOK = """el => { const s = getComputedStyle(el);
    return [s.outlineStyle === 'none' ? 0 : parseFloat(s.outlineWidth), s.boxShadow]; }"""


def _tab_through(page: Page, presses: int) -> list[dict[str, Any]]:
    """Press Tab `presses` times; for each element reached, how it looks focused and, afterwards, unfocused."""
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate_handle("document.activeElement")
        if focused.evaluate("el => el === document.body"):
            break
        name = focused.evaluate("el => el.tagName + (el.className ? '.' + el.className : '') + ' ' + el.textContent")
        reached.append(
            {"name": " ".join(name.split())[:80], "element": focused, "focused": focused.evaluate(FOCUS_LOOK)}
        )
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for entry in reached:
        entry["unfocused"] = entry["element"].evaluate(FOCUS_LOOK)
    return reached


def _without_focus_ring(reached: list[dict[str, Any]]) -> list[str]:
    """The controls whose focus shows neither as an outline of 2 px or more nor as a change of their shadow."""
    return [
        entry["name"] for entry in reached if entry["focused"][0] < 2 and entry["focused"][1] == entry["unfocused"][1]
    ]


@pytest.mark.django_db(transaction=True)
def test_every_control_reached_by_the_keyboard_shows_its_focus(browse: Browse):
    item = invoice_item(MISMATCH)
    page = browse.as_user(make_user("rita"))
    page.goto(reverse("reviews:queue"))
    reached = _tab_through(page, 40)
    # The queue's type tabs, its filters (select, input, button) and its rows' links are among them.
    names = " ".join(entry["name"] for entry in reached)
    for control in ("A.type-tab", "SELECT", "INPUT", "BUTTON", "A.row-title"):
        assert control in names, f"Tab never reached {control}: {names}"
    assert not _without_focus_ring(reached), _without_focus_ring(reached)

    # An item: breadcrumbs, buttons, the raw output's <summary>, the decision.
    page.goto(reverse("reviews:item", args=[item.id]))
    reached = _tab_through(page, 40)
    names = " ".join(entry["name"] for entry in reached)
    for control in ("SUMMARY", "BUTTON.btn btn--approve"):
        assert control in names, f"Tab never reached {control}: {names}"
    assert not _without_focus_ring(reached), _without_focus_ring(reached)
