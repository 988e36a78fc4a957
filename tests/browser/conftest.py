"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

One Chromium serves the whole package; each test gets fresh contexts (one per signed-in user), so
no cookie, session or page state leaks between tests. The live server runs in a thread of this
process, so with TASKS_SYNC=1 a decision resumes its flow inline, before the response is sent: when
the browser has moved on, the run has finished.

Every page is watched: console errors (a CSP violation is reported there), uncaught page errors,
JavaScript dialogs (alert/confirm/prompt, unless the test expects one: `browse.answer_dialog`) and 5xx responses
fail the test at teardown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, Response, sync_playwright

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewerScope, ReviewItem, ReviewStatus
from reviewconsole.reviews.roles import role_group

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
# Playwright's default is 30 s; a page of this app answers in well under a second.
TIMEOUT_MS = 10_000

# A clean invoice as the demo model reads it (as in tests/test_invoice_flow.py).
CLEAN_INVOICE = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""

_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs its asyncio event loop on this (the main) thread, in a greenlet; while
    # it is alive, asyncio.get_running_loop() finds a loop here, and Django refuses every ORM call from
    # the test body and from pytest-django's database flush with SynchronousOnlyOperation. Nothing here
    # is really asynchronous: the test body runs only while Playwright waits, so the guard is lifted,
    # for exactly as long as Playwright runs. Package scope, not session: the loop must be gone before
    # the other test files run (asyncio.run() and Django's guard would both trip on it there).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Watched:
    """What went wrong on the pages of one test, to be asserted empty at its end."""

    # (status, path) of HTTP errors the test provokes on purpose (a 404 page, a 409 after a lost race…);
    # Chromium reports each as a console error "Failed to load resource", which is then not a problem.
    expected_errors: set[tuple[int, str]] = field(default_factory=set)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    # Dialogs the test provokes on purpose, in order: (type, accept); each is answered so and listed in `answered`.
    expected_dialogs: list[tuple[str, bool]] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("dialog", self._on_dialog)
        page.on("response", self._on_response)
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = _FAILED_LOAD.search(message.text)
        if failed and (int(failed.group(1)), urlsplit(message.location.get("url", "")).path) in self.expected_errors:
            return
        self.console_errors.append(f"{message.location.get('url', '')}: {message.text}")

    def _on_dialog(self, dialog: Dialog) -> None:
        if self.expected_dialogs and self.expected_dialogs[0][0] == dialog.type:
            _, accept = self.expected_dialogs.pop(0)
            self.answered.append(f"{dialog.type}: {'accepted' if accept else 'dismissed'}")
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()
            return
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _on_response(self, response: Response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.url}")

    def problems(self) -> dict[str, list[str]]:
        found = {
            "console errors": self.console_errors,
            "page errors": self.page_errors,
            "dialogs": self.dialogs,
            "server errors": self.server_errors,
            "expected dialogs never shown": [kind for kind, _ in self.expected_dialogs],
        }
        return {kind: entries for kind, entries in found.items() if entries}


@dataclass
class Browse:
    """Opens pages signed in as a user, each in its own browser context, all watched."""

    browser: Browser
    base_url: str
    watched: Watched
    contexts: list[BrowserContext] = field(default_factory=list)

    def context(self) -> BrowserContext:
        context = self.browser.new_context(base_url=self.base_url, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        return context

    def as_user(self, user: User | None) -> Page:
        """A new page in a new context, signed in as `user` by a session cookie (None: signed out)."""
        context = self.context()
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME]
            context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": self.base_url}])
        return self.watched.watch(context.new_page())

    def expect_error(self, status: int, *paths: str) -> None:
        """The test provokes `status` from these paths; the browser's report of it is expected."""
        self.watched.expected_errors.update((status, path) for path in paths)

    def answer_dialog(self, kind: str, *, accept: bool) -> None:
        """The test provokes a dialog of `kind` (e.g. "beforeunload"): answer it so instead of failing the test."""
        self.watched.expected_dialogs.append((kind, accept))

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browse(browser: Browser, live_server) -> Iterator[Browse]:
    """Signed-in pages on the live server; at the end, no console error, page error, dialog or 5xx."""
    session = Browse(browser=browser, base_url=live_server.url, watched=Watched())
    try:
        yield session
    finally:
        session.close()
    problems = session.watched.problems()
    assert not problems, f"the browser reported problems: {problems}"


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    """Saves a full-page screenshot under var/screenshots/ (gitignored), for people to look at."""

    def take(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # From the top: scrolled, a full-page shot draws the sticky top bar across the middle.
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


# ---------------------------------------------------------------- people


def make_user(username: str, role: str | None = "reviewer", *output_types: str) -> User:
    """A user with a role's group, scoped to `output_types` (none: every type). Password "pw"."""
    user = User.objects.create_user(username, password="pw")
    if role:
        user.groups.add(role_group(role))
    ReviewerScope.objects.bulk_create(ReviewerScope(user=user, output_type=t) for t in output_types)
    return user


@pytest.fixture
def rita() -> User:
    """A reviewer of every output type."""
    return make_user("rita")


@pytest.fixture
def carl() -> User:
    """Another reviewer of every output type."""
    return make_user("carl")


@pytest.fixture
def fiona() -> User:
    """A reviewer of invoices only."""
    return make_user("fiona", "reviewer", "invoice")


@pytest.fixture
def mona() -> User:
    """A manager: reviews every type."""
    return make_user("mona", "manager")


@pytest.fixture
def otto() -> User:
    """Signed in, may look at runs, but has no review permission."""
    user = User.objects.create_user("otto", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_flowrun"))
    return user


# ---------------------------------------------------------------- items, from real flow runs


def paused_item(run: FlowRun) -> ReviewItem:
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    assert item.status == ReviewStatus.PENDING
    return item


def draft_item(title: str = "Invoice 7", amount: float = 120.0) -> ReviewItem:
    """A pending "draft" item of the emit_review test flow (tests/engine_flows.py)."""
    return paused_item(run_create(flow_name="emit_review", inputs={"title": title, "amount": amount}))


def invoice_item(raw_invoice: str = CLEAN_INVOICE) -> ReviewItem:
    """A pending "invoice" item of the real invoice flow (flows/invoices.py), read by the demo model."""
    return paused_item(run_create(flow_name="invoice_processing", inputs={"raw_invoice": raw_invoice}))
