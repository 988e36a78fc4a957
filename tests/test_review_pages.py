"""Reviewer pages: the queue, the item page and its generated edit form, decisions, claims and bulk approval."""

import datetime
import enum
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from typing import Literal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pydantic import BaseModel, Field

from flows.invoices import InvoiceData
from reviewconsole.autonomy.models import AutonomyPolicy
from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create
from reviewconsole.reviews import schema_form, selectors
from reviewconsole.reviews.confirmations import approval_confirmations, confirmation_key
from reviewconsole.reviews.models import (
    Decision,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    ReviewReason,
    ReviewStatus,
)
from reviewconsole.reviews.pending_counts import pending_count_add
from reviewconsole.reviews.schemas import with_property_order
from reviewconsole.reviews.services import decide, review_item_claim
from tests.engine_flows import Draft
from tests.people import client_for
from tests.people import user_in_role as make_user

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(1)>'

INVOICE_SCHEMA = with_property_order(InvoiceData.model_json_schema())
DRAFT_SCHEMA = with_property_order(Draft.model_json_schema())
RAW_INVOICE = "Vendor: Acme Supplies Ltd\nInvoice Number: INV-1042\nWidgets | 10 | 12.50 | 125.00\nTotal: 205.00\n"


def invoice_output(**changes) -> dict:
    output = {
        "vendor": "Acme Supplies Ltd",
        "invoice_number": "INV-1042",
        "invoice_date": "2026-10-01",
        "due_date": None,
        "currency": "EUR",
        "line_items": [
            {"description": "Widgets", "quantity": 10.0, "unit_price": 12.5, "amount": 125.0},
            {"description": "Gadgets", "quantity": 2.0, "unit_price": 40.0, "amount": 80.0},
        ],
        "total_amount": 205.0,
        "confidence": 0.62,
    }
    return {**output, **changes}


@pytest.fixture
def reviewer() -> User:
    """A reviewer of every output type."""
    return make_user("rita")


@pytest.fixture
def finance() -> User:
    """A reviewer of invoices only."""
    return make_user("fiona", "reviewer", "invoice")


@pytest.fixture
def colleague() -> User:
    return make_user("carl")


@pytest.fixture
def outsider() -> User:
    """Signed in, with run access but no review permission."""
    user = User.objects.create_user("otto", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_flowrun"))
    return user


@pytest.fixture
def rita(reviewer) -> Client:
    return client_for(reviewer)


def make_item(
    output_type: str = "invoice",
    *,
    output: dict | None = None,
    schema: dict | None = None,
    inputs: dict | None = None,
    age: timedelta | None = None,
    run: FlowRun | None = None,
    outcomes: list[str] | None = None,
    **fields,
) -> ReviewItem:
    """A pending item as a paused flow leaves it, without running the flow."""
    invoice = output_type == "invoice"
    method = fields.pop("method", "review_invoice" if invoice else "draft")
    if run is None:
        run = FlowRun.objects.create(
            flow_name="invoice_processing" if invoice else "emit_review",
            status=RunStatus.WAITING_REVIEW,
            inputs=inputs if inputs is not None else ({"raw_invoice": RAW_INVOICE} if invoice else {"title": "T"}),
        )
    pending = PendingFeedback.objects.create(
        flow_uuid=str(run.id), method="review", context={}, state={}, cleared_at=timezone.now()
    )
    if output is None:
        output = invoice_output() if invoice else {"title": "Draft 1", "amount": 120.0, "confidence": 0.4}
    if schema is None:
        schema = INVOICE_SCHEMA if invoice else DRAFT_SCHEMA
    item = ReviewItem.objects.create(
        run=run,
        pending=pending,
        method=method,
        output_type=output_type,
        output=output,
        schema=schema,
        outcomes=outcomes or ["approved", "rejected"],
        confidence=fields.pop("confidence", output.get("confidence")),
        reason=fields.pop("reason", ReviewReason.LOW_CONFIDENCE),
        message=fields.pop("message", "Check the extracted invoice against the original text."),
        **fields,
    )
    if item.status == ReviewStatus.PENDING:
        pending_count_add(output_type=output_type, delta=1)
    if age is not None:
        ReviewItem.objects.filter(id=item.id).update(created_at=timezone.now() - age)
        item.refresh_from_db()
    return item


def item_url(item: ReviewItem) -> str:
    return reverse("reviews:item", args=[item.id])


def decide_url(item: ReviewItem) -> str:
    return reverse("reviews:decide", args=[item.id])


def queue_ids(content: str) -> list[str]:
    return re.findall(r'<tr id="item-([0-9a-f-]{36})"', content)


def status_of(item: ReviewItem) -> str:
    return ReviewItem.objects.values_list("status", flat=True).get(id=item.id)


class BrowserForm(HTMLParser):
    """What a browser submits for the controls of some HTML: checked boxes, selected options, textareas
    (with one leading newline dropped and line breaks sent as CRLF); nothing inside <template>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.data: list[tuple[str, str]] = []
        self._template = 0
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "template":
            self._template += 1
        if self._template or "disabled" in attrs:
            return
        if tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data.append((attrs["name"], attrs.get("value", "on")))
            elif kind not in ("submit", "button", "reset"):
                self.data.append((attrs["name"], attrs.get("value", "")))
        elif tag == "select":
            self._select, self._options = attrs.get("name"), []
        elif tag == "option" and self._select:
            self._options.append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea":
            self._textarea, self._text = attrs.get("name"), ""

    def handle_endtag(self, tag):
        if tag == "template":
            self._template -= 1
        elif tag == "select" and self._select:
            chosen = [value for value, selected in self._options if selected] or [self._options[0][0]]
            self.data.append((self._select, chosen[-1]))
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = self._text[1:] if self._text.startswith("\n") else self._text
            self.data.append((self._textarea, text.replace("\n", "\r\n")))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data


def browser_submit(html: str) -> dict[str, list[str]]:
    parser = BrowserForm()
    parser.feed(html)
    submitted: dict[str, list[str]] = {}
    for name, value in parser.data:
        submitted.setdefault(name, []).append(value)
    return submitted


def edit_form_html(schema: dict | None, value, **options) -> str:
    tree = schema_form.build_form(schema, value, **options)
    return render_to_string("reviews/fields/edit.html", {"field": tree})


def edit_post(item: ReviewItem, changes: dict[str, str] | None = None, **fields) -> dict:
    """The edit form of `item` as a browser submits it unchanged, with `changes` typed in."""
    data = {name: values[-1] for name, values in browser_submit(edit_form_html(item.schema, item.output)).items()}
    data.update(changes or {})
    return {**data, "edit": "1", "outcome": "approved", **fields}


# ---------------------------------------------------------------- access


def test_anonymous_is_sent_to_login(client):
    item = make_item()
    for url in [reverse("reviews:queue"), item_url(item), reverse("reviews:next")]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    for url in [decide_url(item), reverse("reviews:release", args=[item.id]), reverse("reviews:bulk")]:
        assert client.post(url, {"outcome": "approved"})["Location"].startswith("/accounts/login/"), url
    assert status_of(item) == ReviewStatus.PENDING


def test_anonymous_htmx_request_gets_hx_redirect_not_a_login_page(client):
    response = client.get(reverse("reviews:queue"), headers=HTMX)
    assert response["HX-Redirect"].startswith("/accounts/login/")


def test_user_without_review_permission_gets_403_everywhere(outsider):
    item = make_item()
    client = client_for(outsider)
    for url in [reverse("reviews:queue"), item_url(item), reverse("reviews:next")]:
        assert client.get(url).status_code == 403, url
    assert client.post(decide_url(item), {"outcome": "approved"}).status_code == 403
    assert client.post(reverse("reviews:release", args=[item.id])).status_code == 403
    bulk = {"output_type": "invoice", "items": [str(item.id)]}
    assert client.post(reverse("reviews:bulk"), bulk).status_code == 403
    assert status_of(item) == ReviewStatus.PENDING
    assert not ReviewEvent.objects.filter(kind=ReviewEventKind.CLAIMED).exists()


def test_items_of_a_type_outside_ones_scope_are_404(finance):
    draft = make_item("draft")
    client = client_for(finance)
    assert client.get(item_url(draft)).status_code == 404
    assert client.post(decide_url(draft), {"outcome": "approved"}).status_code == 404
    assert client.post(reverse("reviews:release", args=[draft.id])).status_code == 404
    assert client.get(f"/reviews/{uuid.uuid4()}/").status_code == 404
    assert status_of(draft) == ReviewStatus.PENDING
    draft.refresh_from_db()
    assert draft.claimed_by is None


def test_home_sends_reviewers_to_their_queue_and_others_to_the_runs(rita, outsider):
    assert rita.get("/")["Location"] == reverse("reviews:queue")
    assert client_for(outsider).get("/")["Location"] == reverse("engine:run_list")


def test_queue_is_the_first_nav_link_for_reviewers_only(rita, outsider):
    nav = re.search(r'<nav class="nav".*?</nav>', rita.get(reverse("engine:run_list")).content.decode(), re.S)[0]
    assert nav.index(reverse("reviews:queue")) < nav.index(reverse("engine:run_list"))
    other = client_for(outsider).get(reverse("engine:run_list")).content.decode()
    assert reverse("reviews:queue") not in other


def test_run_page_links_its_review_items(rita):
    item = make_item()
    assert item_url(item) in rita.get(reverse("engine:run_detail", args=[item.run_id])).content.decode()


# ---------------------------------------------------------------- queue


def test_queue_lists_only_the_types_one_may_review(finance):
    invoice = make_item("invoice")
    draft = make_item("draft")
    content = client_for(finance).get(reverse("reviews:queue")).content.decode()
    assert queue_ids(content) == [str(invoice.id)]
    assert str(draft.id) not in content
    tabs = re.search(r'<nav id="queue-tabs".*?</nav>', content, re.S)[0]
    assert "invoice" in tabs
    assert "draft" not in tabs


def test_queue_is_oldest_first_with_age_reason_confidence_and_overdue_flag(rita):
    new = make_item(age=timedelta(minutes=5), confidence=0.91)
    old = make_item(
        age=timedelta(hours=3, minutes=10),
        reason=ReviewReason.HIGH_VALUE,
        due_at=timezone.now() - timedelta(minutes=61),
    )
    content = rita.get(reverse("reviews:queue")).content.decode()
    assert queue_ids(content) == [str(old.id), str(new.id)]
    old_row = re.search(rf'<tr id="item-{old.id}".*?</tr>', content, re.S)[0]
    assert ">3 h<" in old_row
    assert "High value" in old_row
    assert "Overdue 1 h" in old_row
    assert "queue-row--overdue" in old_row
    new_row = re.search(rf'<tr id="item-{new.id}".*?</tr>', content, re.S)[0]
    assert ">5 min<" in new_row
    assert 'value="0.9100"' in new_row and "0.91" in new_row
    assert "Overdue" not in new_row


def test_queue_counts_pending_and_overdue_per_type(rita):
    make_item("invoice", due_at=timezone.now() - timedelta(minutes=1))
    make_item("invoice")
    make_item("draft")
    make_item("draft", status=ReviewStatus.DECIDED)
    content = rita.get(reverse("reviews:queue")).content.decode()
    tabs = re.findall(
        r'type-tab__name">([^<]+)</span>\s*<span class="type-tab__count">(\d+)</span>\s*'
        r'<span class="type-tab__meta">(.*?)</span>\s*</a>',
        content,
        re.S,
    )
    by_name = {name: (count, meta) for name, count, meta in tabs}
    assert by_name["All types"][0] == "3"
    assert "1 overdue" in by_name["All types"][1]
    assert by_name["invoice"][0] == "2"
    assert "1 overdue" in by_name["invoice"][1]
    assert by_name["draft"][0] == "1"
    assert "overdue" not in by_name["draft"][1]


def test_queue_filters_by_type_reason_age_confidence_and_status(rita):
    low = make_item("invoice", confidence=0.2, age=timedelta(hours=5))
    high = make_item("invoice", confidence=0.95, reason=ReviewReason.HIGH_VALUE, age=timedelta(minutes=2))
    draft = make_item("draft", confidence=0.5, reason=ReviewReason.AUDIT_SAMPLE, age=timedelta(hours=2))
    decided = make_item("invoice", status=ReviewStatus.DECIDED)
    Decision.objects.create(item=decided, outcome="approved")

    def shown(**query) -> list[str]:
        return queue_ids(rita.get(reverse("reviews:queue"), query).content.decode())

    assert shown() == [str(low.id), str(draft.id), str(high.id)]
    assert shown(type="invoice") == [str(low.id), str(high.id)]
    assert shown(reason="high_value") == [str(high.id)]
    assert shown(age="60") == [str(low.id), str(draft.id)]
    assert shown(age="240") == [str(low.id)]
    assert shown(conf_min="0.4", conf_max="0.9") == [str(draft.id)]
    assert shown(conf_min="0.9") == [str(high.id)]
    assert shown(sort="newest") == [str(high.id), str(draft.id), str(low.id)]
    assert shown(sort="confidence") == [str(low.id), str(draft.id), str(high.id)]
    assert shown(status="decided") == [str(decided.id)]
    assert set(shown(status="all")) == {str(low.id), str(high.id), str(draft.id), str(decided.id)}
    # A bad value drops that one filter instead of failing the page.
    assert shown(reason="bogus", conf_min="lots", age="7", type="invoice") == [str(low.id), str(high.id)]


def test_queue_marks_items_someone_else_is_reviewing(rita, colleague):
    taken = make_item()
    mine = make_item()
    free = make_item()
    review_item_claim(item_id=taken.id, user=colleague)
    review_item_claim(item_id=mine.id, user=User.objects.get(username="rita"))
    content = rita.get(reverse("reviews:queue")).content.decode()
    row = {i: re.search(rf'<tr id="item-{i}".*?</tr>', content, re.S)[0] for i in (taken.id, mine.id, free.id)}
    assert "Being reviewed by carl" in row[taken.id]
    assert "You have it" in row[mine.id]
    assert "Being reviewed" not in row[free.id] and "You have it" not in row[free.id]


def test_queue_htmx_request_gets_the_table_and_refreshed_counts(rita):
    make_item()
    response = rita.get(reverse("reviews:queue"), {"type": "invoice"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<nav id="queue-tabs"')
    assert 'hx-swap-oob="true"' in content
    assert 'id="queue-results"' in content
    assert "<html" not in content
    assert "HX-Request" in response["Vary"]


def test_queue_paginates_fifty_per_page(rita):
    for n in range(51):
        make_item(age=timedelta(minutes=100 - n))
    first = rita.get(reverse("reviews:queue")).content.decode()
    assert len(queue_ids(first)) == 50
    assert "1\u201350 of 51" in first
    second = rita.get(reverse("reviews:queue"), {"page": 2}).content.decode()
    assert len(queue_ids(second)) == 1


def test_queue_pages_count_at_most_the_cap_and_find_deep_pages_by_id(monkeypatch, reviewer):
    monkeypatch.setattr(selectors, "QUEUE_COUNT_CAP", 4)
    monkeypatch.setattr(selectors, "QUEUE_DEFERRED_JOIN_OFFSET", 2)  # pages after the first go through the ids
    items = [make_item(age=timedelta(minutes=100 - n)) for n in range(7)]
    queue = selectors.queue_items(user=reviewer)

    def page(number):
        return selectors.queue_page(queue, number, per_page=2)

    first = page(1)
    assert first.items == items[:2]
    # 7 match; counting stopped at the cap.
    assert (first.paginator.count, first.paginator.num_pages, first.has_next()) == ("4+", "2+", True)
    assert (first.start_index(), first.end_index()) == (1, 2)
    # Beyond the cap nothing is counted: the page knows there are at least as many as it shows, and more.
    third = page(3)
    assert third.items == items[4:6]
    assert (third.paginator.count, third.has_next(), third.previous_page_number()) == ("6+", True, 2)
    last = page(4)
    assert last.items == items[6:]
    assert (last.paginator.count, last.paginator.num_pages, last.has_next()) == (7, 4, False)
    assert page(99).number == 4  # past the end: the last page
    for bad in ("x", "-3", None, "99999999999999999999999"):
        assert page(bad).number in (1, 4), bad


def test_deep_page_keeps_next_when_an_item_is_decided_between_its_two_reads(monkeypatch, reviewer):
    monkeypatch.setattr(selectors, "QUEUE_DEFERRED_JOIN_OFFSET", 2)
    items = [make_item(age=timedelta(minutes=100 - n)) for n in range(7)]
    queue = selectors.queue_items(user=reviewer)
    decided_meanwhile = []

    def decide_after_the_id_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not decided_meanwhile and "OFFSET" in sql:
            decided_meanwhile.append(items[3].id)
            ReviewItem.objects.filter(id=items[3].id).update(status=ReviewStatus.DECIDED)
        return result

    with connection.execute_wrapper(decide_after_the_id_read):
        second = selectors.queue_page(queue, 2, per_page=2)
    assert decided_meanwhile == [items[3].id]
    # The decided item is left out, and the items after it are still a click away.
    assert second.items == [items[2]]
    assert second.has_next()


def test_queue_pager_says_when_matches_were_not_all_counted(monkeypatch, rita):
    monkeypatch.setattr(selectors, "QUEUE_COUNT_CAP", 60)
    for n in range(61):
        make_item(age=timedelta(minutes=100 - n))
    content = rita.get(reverse("reviews:queue")).content.decode()
    assert "1\u201350 of 60+" in content
    assert "Page 1 of 2+" in content


def test_queue_tabs_group_the_digits_of_large_counts(rita):
    make_item("invoice")
    pending_count_add(output_type="invoice", delta=12_344)  # as if 12,345 were pending
    content = rita.get(reverse("reviews:queue")).content.decode()
    assert content.count('<span class="type-tab__count">12,345</span>') == 2  # the type's tab and "All types"


def test_queue_tabs_are_live_and_each_reviewer_sees_their_types(rita, finance):
    make_item("invoice")
    make_item("draft")

    def tabs(user):
        return {count.output_type: count.pending for count in selectors.queue_counts(user=user)}

    assert tabs(User.objects.get(username="rita")) == {"invoice": 1, "draft": 1}
    assert tabs(finance) == {"invoice": 1}
    make_item("invoice")
    assert tabs(finance) == {"invoice": 2}
    decide(item_id=make_item("draft").id, user=finance, outcome="approved")
    assert tabs(User.objects.get(username="rita")) == {"invoice": 2, "draft": 1}


def test_queue_query_count_does_not_grow_with_items(rita, colleague, django_assert_num_queries):
    make_item("invoice")
    with CaptureQueriesContext(connection) as one_item:
        rita.get(reverse("reviews:queue"))
    for n in range(29):
        item = make_item("draft" if n % 2 else "invoice", due_at=timezone.now() - timedelta(minutes=n))
        if n % 3 == 0:
            review_item_claim(item_id=item.id, user=colleague)
    with django_assert_num_queries(len(one_item.captured_queries)):
        content = rita.get(reverse("reviews:queue")).content.decode()
    assert len(queue_ids(content)) == 30
    assert "Being reviewed by carl" in content


def test_bulk_selection_is_offered_only_for_one_type(rita):
    item = make_item()
    everything = rita.get(reverse("reviews:queue")).content.decode()
    assert 'name="items"' not in everything
    assert "pick one type" in everything
    one_type = rita.get(reverse("reviews:queue"), {"type": "invoice"}).content.decode()
    assert f'name="items" value="{item.id}"' in one_type
    assert 'name="output_type" value="invoice"' in one_type
    assert "hx-confirm" in one_type and "hx-disabled-elt" in one_type


def test_empty_queue_says_so(rita):
    assert "The queue is clear." in rita.get(reverse("reviews:queue")).content.decode()


# ---------------------------------------------------------------- item page


def test_item_page_shows_the_output_for_reading_with_its_context(rita):
    item = make_item(age=timedelta(hours=2), reason=ReviewReason.HIGH_VALUE, due_at=timezone.now() + timedelta(hours=1))
    content = rita.get(item_url(item)).content.decode()
    read = re.search(r'<div id="output-read".*?</details>', content, re.S)[0]
    assert re.search(r"<dt[^>]*>Vendor</dt>\s*<dd[^>]*>Acme Supplies Ltd</dd>", read)
    # Amounts with their currency and two decimals; a value the model did not find says so.
    assert re.search(r"<dt[^>]*>Total Amount</dt>\s*<dd[^>]*>205.00 EUR</dd>", read)
    assert re.search(r"<dt[^>]*>Due Date</dt>\s*<dd[^>]*><span class=\"out__missing\">not found</span>", read)
    assert '<table class="table table--compact out-table">' in read
    assert re.search(r"Widgets</span></td>\s*<td class=\"num\">10</td>\s*<td class=\"num\">12.50 EUR</td>", read)
    assert '<meter class="conf__meter"' in content and "0.62" in content
    assert "High value" in content
    assert "due in 59 min" in content or "due in 1 h" in content
    assert "Check the extracted invoice against the original text." in content
    # The run's input, as written, every line numbered.
    lines = re.findall(
        r'<span class="source__no" aria-hidden="true">(\d+)</span><span class="source__content">([^<]*)', content
    )
    assert [text for _, text in lines] == item.run.inputs["raw_invoice"].splitlines()
    assert [number for number, _ in lines] == [str(n) for n in range(1, len(lines) + 1)]
    assert "review_invoice" in content
    assert reverse("engine:run_detail", args=[item.run_id]) in content


def test_a_flows_own_reason_reads_as_its_declared_label(rita):
    item = make_item(reason="thin_research")

    assert "Written on thin research</span>" in rita.get(reverse("reviews:queue")).content.decode()
    assert "Written on thin research</span>" in rita.get(item_url(item)).content.decode()


def test_item_page_names_the_model_that_produced_the_output(rita):
    item = make_item()
    # Each LLM call of the run before the pause, and one after it (a later step) that must not be listed.
    for model, offset in (("demo", -60), ("demo", -30), ("openai/gpt-4o-mini", -10), ("decision", 60)):
        Step.objects.create(
            run=item.run,
            kind=StepKind.LLM,
            method="extract",
            model=model,
            started_at=item.created_at + timedelta(seconds=offset),
        )

    content = rita.get(item_url(item)).content.decode()

    produced = re.search(r"<dt>Produced by</dt><dd>(.*?)</dd>", content)[1]
    assert produced == "demo model, openai/gpt-4o-mini"


def test_item_page_escapes_hostile_output_inputs_and_decisions(rita, colleague):
    hostile = invoice_output(
        vendor=HOSTILE_SCRIPT,
        invoice_number=HOSTILE_ATTR,
        line_items=[{"description": HOSTILE_ATTR, "quantity": 1, "unit_price": 1, "amount": 1}],
    )
    run = FlowRun.objects.create(
        flow_name="invoice_processing", status=RunStatus.WAITING_REVIEW, inputs={"raw_invoice": HOSTILE_SCRIPT}
    )
    earlier = make_item(run=run, output=hostile, status=ReviewStatus.DECIDED)
    Decision.objects.create(item=earlier, outcome="rejected", comment=HOSTILE_ATTR, user=colleague)
    item = make_item(run=run, output=hostile, message=HOSTILE_SCRIPT)
    for url in (item_url(item), item_url(item) + "?edit=1", item_url(earlier)):
        content = rita.get(url).content.decode()
        assert HOSTILE_SCRIPT not in content, url
        assert "<img src=x" not in content, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content, url
    # In an input's value (of the edit form, fetched when Edit is pressed), the quote cannot end the attribute.
    edit_form = rita.get(item_url(item), {"edit": "1"}, headers={**HTMX, "HX-Target": "edit-slot"}).content.decode()
    assert 'value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in edit_form


def claim_url(item: ReviewItem) -> str:
    return reverse("reviews:claim", args=[item.id])


def test_looking_claims_nothing_and_working_on_it_claims_it(rita, reviewer, colleague):
    item = make_item()
    content = rita.get(item_url(item)).content.decode()
    item.refresh_from_db()
    assert item.claimed_by is None
    assert "Work on this" in content and "You have this item" not in content
    assert not ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.CLAIMED).exists()

    response = rita.post(claim_url(item))
    assert response.status_code == 302 and response["Location"] == item_url(item)
    item.refresh_from_db()
    assert item.claimed_by == reviewer
    assert item.claim_expires_at > timezone.now() + timedelta(minutes=4)
    assert ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.CLAIMED, user=reviewer).count() == 1
    assert "You have this item until" in rita.get(item_url(item)).content.decode()

    other = client_for(colleague).get(item_url(item)).content.decode()
    assert "Being reviewed by rita" in other
    assert 'data-key="a"' in other  # the buttons are still there, under the warning
    client_for(colleague).get(item_url(item), {"edit": "1"})
    item.refresh_from_db()
    assert item.claimed_by == reviewer
    # Opening the edit form renews the claim without logging another one; the audit trail shows the claim.
    again = rita.get(item_url(item), {"edit": "1"}).content.decode()
    assert ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.CLAIMED).count() == 1
    trail = re.search(r'<ol class="events">.*?</ol>', again, re.S)[0]
    assert "Opened and claimed" in trail and "rita" in trail


def test_opening_the_reject_form_claims_the_item(rita, reviewer):
    item = make_item()
    rita.get(item_url(item), {"reject": "1"})
    item.refresh_from_db()
    assert item.claimed_by == reviewer


def test_claim_heartbeat_renews_the_claim_and_returns_only_the_banner(rita, reviewer):
    item = make_item()
    rita.post(claim_url(item))
    ReviewItem.objects.filter(id=item.id).update(claim_expires_at=timezone.now() + timedelta(seconds=30))
    response = rita.post(claim_url(item), headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="claim-banner"')
    assert "You have this item until" in content
    assert "review-main" not in content
    item.refresh_from_db()
    assert item.claim_expires_at > timezone.now() + timedelta(minutes=4)


def test_the_banner_fragment_claims_nothing(rita):
    item = make_item()
    response = rita.get(item_url(item), headers={**HTMX, "HX-Target": "claim-banner"})
    assert response.content.decode().lstrip().startswith('<div id="claim-banner"')
    item.refresh_from_db()
    assert item.claimed_by is None


def test_claim_expires_and_passes_to_the_next_reviewer(rita, reviewer, colleague):
    item = make_item()
    review_item_claim(item_id=item.id, user=colleague)
    ReviewItem.objects.filter(id=item.id).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    content = rita.get(item_url(item)).content.decode()
    assert "Being reviewed by" not in content
    rita.post(claim_url(item))
    item.refresh_from_db()
    assert item.claimed_by == reviewer


def test_item_page_lists_earlier_decisions_on_the_run(rita, colleague):
    first = make_item(method="extract")
    Decision.objects.create(
        item=first, outcome="rejected", comment="wrong vendor", reason_code="wrong_data", user=colleague
    )
    ReviewItem.objects.filter(id=first.id).update(status=ReviewStatus.DECIDED)
    second = make_item(run=first.run)
    content = rita.get(item_url(second)).content.decode()
    panel = re.search(r"Other reviews in this run.*?</section>", content, re.S)[0]
    assert item_url(first) in panel
    assert "rejected" in panel and "carl" in panel and "wrong vendor" in panel


def test_item_page_hides_what_of_the_run_a_scoped_reviewer_may_not_see(finance, colleague):
    # A run that sent two output types to review: a reviewer of one sees neither the other's item nor the run.
    run = FlowRun.objects.create(flow_name="counter", status=RunStatus.WAITING_REVIEW, inputs={})
    draft = make_item("draft", run=run, method="check_draft", status=ReviewStatus.DECIDED)
    Decision.objects.create(item=draft, outcome="rejected", comment="DRAFT-NOTE", user=colleague)
    invoice = make_item(run=run)
    content = client_for(finance).get(item_url(invoice)).content.decode()
    panel = re.search(r"Other reviews in this run.*?</section>", content, re.S)[0]
    assert item_url(draft) not in panel and "check_draft" not in panel and "DRAFT-NOTE" not in content
    assert reverse("engine:run_detail", args=[run.id]) not in content
    # A reviewer of every type sees both, and the link to the run.
    everything = client_for(make_user("rex")).get(item_url(invoice)).content.decode()
    assert item_url(draft) in everything and reverse("engine:run_detail", args=[run.id]) in everything


def test_item_page_query_count_does_not_grow_with_lines_events_or_earlier_items(
    rita, colleague, django_assert_num_queries
):
    small = make_item(output=invoice_output(line_items=[]))
    with CaptureQueriesContext(connection) as baseline:
        rita.get(item_url(small))
    lines = [{"description": f"line {n}", "quantity": 1, "unit_price": n, "amount": n} for n in range(40)]
    big = make_item(output=invoice_output(line_items=lines))
    for _ in range(6):
        earlier = make_item(run=big.run, status=ReviewStatus.DECIDED)
        Decision.objects.create(item=earlier, outcome="approved", user=colleague)
    for _ in range(10):
        ReviewEvent.objects.create(item=big, kind=ReviewEventKind.NOTIFIED, user=colleague, detail={"to": "x"})
    with django_assert_num_queries(len(baseline.captured_queries)):
        content = rita.get(item_url(big)).content.decode()
    assert "line 39" in content


def test_edit_form_is_generated_from_the_schema_and_prefilled(rita):
    item = make_item()
    # Not on the page until asked for: Edit (e) fetches it into its slot with htmx, or opens ?edit=1.
    content = rita.get(item_url(item)).content.decode()
    assert 'id="edit-form"' not in content
    assert '<div id="edit-slot">' in content
    assert f'hx-get="{item_url(item)}?edit=1" hx-target="#edit-slot"' in content
    response = rita.get(item_url(item), {"edit": "1"}, headers={**HTMX, "HX-Target": "edit-slot"})
    form = response.content.decode()
    assert form.lstrip().startswith('<form id="edit-form"') and form.rstrip().endswith("</form>")
    assert "HX-Request" in response["Vary"]
    assert 'name="output.vendor" id="sf-vendor" value="Acme Supplies Ltd"' in form
    assert '<input type="date" name="output.invoice_date" id="sf-invoice_date" value="2026-10-01"' in form
    assert 'name="output.due_date" id="sf-due_date" value=""' in form
    assert 'name="output.line_items.1.amount" id="sf-line_items-1-amount" value="80"' in form
    assert 'name="output.line_items.2.__extra"' in form  # one blank row to add an entry without JS
    assert '<template data-row-template="output.line_items" data-token="__n1__">' in form
    assert 'name="output.confidence"' in form and 'title="Between 0 and 1"' in form
    opened = rita.get(item_url(item), {"edit": "1"}).content.decode()
    assert re.search(r'<form id="edit-form"[^>]*novalidate>', opened)
    assert re.search(r'<div id="output-read" class="out-read" hidden>', opened)
    assert 'hx-target="#edit-slot"' not in opened  # already there: Edit only shows it


def test_edit_form_asked_for_after_the_item_was_decided_reloads_the_page(rita, colleague):
    item = make_item()
    client_for(colleague).post(decide_url(item), {"outcome": "approved"})
    response = rita.get(item_url(item), {"edit": "1"}, headers={**HTMX, "HX-Target": "edit-slot"})
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"


def test_reject_panel_lists_the_types_reasons(rita):
    AutonomyPolicy.objects.create(output_type="invoice", reject_reasons=["duplicate", "wrong_total"])
    item = make_item()
    content = rita.get(item_url(item), {"reject": "1"}).content.decode()
    panel = re.search(r'<form id="reject-form".*?</form>', content, re.S)[0]
    assert "novalidate>" in panel  # open, not hidden
    assert '<option value="duplicate">Duplicate</option>' in panel
    assert '<option value="wrong_total">Wrong total</option>' in panel


def test_decided_item_is_read_only_with_its_decision_and_changes(rita, colleague):
    item = make_item(status=ReviewStatus.DECIDED)
    Decision.objects.create(
        item=item,
        outcome="approved",
        edited_output=invoice_output(total_amount=210.0),
        diff=[{"path": "total_amount", "before": 205.0, "after": 210.0}],
        comment="total was off",
        user=colleague,
    )
    content = rita.get(item_url(item)).content.decode()
    assert 'id="edit-form"' not in content
    assert 'id="reject-form"' not in content
    assert 'data-key="a"' not in content
    assert "Changed by carl" in content
    assert re.search(r"Total Amount</dt>\s*<dd[^>]*>210.00 EUR</dd>", content)  # reads as decided
    change = r'<td class="mono">total_amount</td>\s*<td class="diff__before">205.00 EUR</td>\s*'
    assert re.search(change + r'<td class="diff__after">210.00 EUR</td>', content)
    assert "total was off" in content
    assert 'class="tag">edited</span>' in content
    item.refresh_from_db()
    assert item.claimed_by is None  # a decided item is not claimed by opening it


def test_keyboard_help_and_shortcut_targets_are_in_the_pages(rita):
    item = make_item()
    following = make_item()
    queue = rita.get(reverse("reviews:queue")).content.decode()
    page = rita.get(item_url(item)).content.decode()
    for content in (queue, page):
        assert '<dialog id="keys-help"' in content
        assert "Keyboard shortcuts" in content
        assert '<script src="/static/js/review-keys.js" defer></script>' in content
    assert "data-keynav" in queue
    for key in ("a", "e", "r", "j", "u"):
        assert f'data-key="{key}"' in page, key
    assert f'href="{item_url(following)}" rel="next" data-key="j"' in page
    assert '<script src="/static/js/review-form.js" defer></script>' in page


def test_pages_have_no_inline_script_style_or_handlers(rita):
    item = make_item()
    pages = [
        rita.get(reverse("reviews:queue")),
        rita.get(reverse("reviews:queue"), {"type": "invoice"}),
        rita.get(item_url(item), {"edit": "1"}),
        rita.get(item_url(item), {"reject": "1"}),
        rita.post(decide_url(item), edit_post(item, {"output.total_amount": "abc"}), headers=HTMX),
    ]
    for response in pages:
        content = response.content.decode()
        assert "script-src 'self'" in response["Content-Security-Policy"]
        for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", content, re.S):
            assert "src=" in tag and not body.strip(), tag
        assert "<style" not in content
        assert not re.search(r"\sstyle=", content)
        assert not re.search(r"\son[a-z]+=", content)


# ---------------------------------------------------------------- deciding


def test_approve_decides_and_goes_to_the_next_item(rita, reviewer):
    item = make_item(age=timedelta(hours=2))
    following = make_item(age=timedelta(hours=1))
    response = rita.post(decide_url(item), {"outcome": "approved"})
    assert response.status_code == 302
    assert response["Location"] == item_url(following)
    item.refresh_from_db()
    assert item.status == ReviewStatus.DECIDED
    assert (item.decision.outcome, item.decision.user, item.decision.edited_output) == ("approved", reviewer, None)
    assert "Approved: invoice" in rita.get(response["Location"]).content.decode()


def test_htmx_approval_answers_with_hx_redirect_keeping_the_type(rita):
    item = make_item("draft", age=timedelta(hours=3))
    make_item("invoice", age=timedelta(hours=2))
    following = make_item("draft", age=timedelta(hours=1))
    response = rita.post(decide_url(item), {"outcome": "approved", "type": "draft"}, headers=HTMX)
    assert response.status_code == 200
    # The list goes on with the next item, as the list's query string.
    assert response["HX-Redirect"] == f"{item_url(following)}?list=type%3Ddraft"


def test_deciding_the_last_item_goes_back_to_the_queue(rita):
    item = make_item()
    response = rita.post(decide_url(item), {"outcome": "approved", "type": "invoice"}, headers=HTMX)
    assert response["HX-Redirect"] == reverse("reviews:queue") + "?type=invoice"


def test_next_item_skips_items_others_are_reviewing(rita, colleague):
    taken = make_item(age=timedelta(hours=2))
    free = make_item(age=timedelta(hours=1))
    review_item_claim(item_id=taken.id, user=colleague)
    assert rita.get(reverse("reviews:next"))["Location"] == item_url(free)
    assert rita.get(reverse("reviews:next"), {"after": str(free.id)})["Location"] == reverse("reviews:queue")
    assert rita.get(reverse("reviews:next"), {"type": "draft"})["Location"] == reverse("reviews:queue") + "?type=draft"


def test_invalid_edit_is_422_with_the_error_next_to_the_field_and_the_item_stays_pending(rita):
    item = make_item()
    data = edit_post(
        item, {"output.total_amount": "abc", "output.line_items.0.quantity": "ten", "output.confidence": "1.5"}
    )
    response = rita.post(decide_url(item), data, headers=HTMX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#review-main"
    content = response.content.decode()
    total = re.search(r'<div class="field sf-field sf-field--number field--error">.*?</div>', content, re.S)[0]
    assert 'name="output.total_amount"' in total and 'value="abc"' in total
    assert '<ul class="errorlist" id="sf-total_amount-errors"><li>Enter a number.</li></ul>' in total
    assert 'aria-invalid="true"' in total
    assert re.search(r'value="ten".*?<li>Enter a number.</li>', content, re.S)
    # What the output model says about the fields the form could read shows in the same round.
    assert re.search(r'name="output.confidence".*?<li>Input should be less than or equal to 1</li>', content, re.S)
    assert re.search(r'<form id="edit-form"[^>]*novalidate>', content)  # the form stays open
    assert "the item is still pending" in content
    assert status_of(item) == ReviewStatus.PENDING
    assert not Decision.objects.exists()


def test_edit_refused_by_the_output_model_shows_its_errors_by_field(rita):
    item = make_item()
    data = edit_post(item, {"output.confidence": "1.5", "output.line_items.1.description": ""})
    data.pop("output.line_items.1.description")
    response = rita.post(decide_url(item), data)
    assert response.status_code == 422
    content = response.content.decode()
    confidence = re.search(r'name="output.confidence".*?</ul>', content, re.S)[0]
    assert "Input should be less than or equal to 1" in confidence
    assert status_of(item) == ReviewStatus.PENDING


def test_edit_beyond_the_bounds_of_the_output_model_is_refused_next_to_the_field(rita):
    item = make_item()
    data = edit_post(item, {"output.vendor": "x" * 201, "output.line_items.1.amount": "-80"})
    response = rita.post(decide_url(item), data)

    assert response.status_code == 422
    content = response.content.decode()
    vendor = re.search(r'name="output.vendor".*?</ul>', content, re.S)[0]
    assert "String should have at most 200 characters" in vendor
    amount = re.search(r'name="output.line_items.1.amount".*?</ul>', content, re.S)[0]
    assert "Input should be greater than or equal to 0" in amount
    assert status_of(item) == ReviewStatus.PENDING
    assert not Decision.objects.exists()


def test_edit_form_shows_the_output_models_bounds_on_its_inputs(rita):
    item = make_item()
    form = rita.get(item_url(item), {"edit": "1"}, headers={**HTMX, "HX-Target": "edit-slot"}).content.decode()

    assert re.search(r'<input type="text" name="output.vendor" [^>]*maxlength="200"', form)
    assert re.search(r'name="output.line_items.0.description" [^>]*maxlength="1000"', form)
    assert re.search(r'name="output.total_amount" [^>]*title="At least 0"', form)
    assert re.search(r'name="output.line_items.0.amount" [^>]*title="At least 0"', form)


def test_a_long_text_field_keeps_its_maxlength_in_a_textarea():
    schema = {"type": "object", "properties": {"body": {"type": "string", "maxLength": 5000}}}
    assert re.search(r'<textarea name="output.body" [^>]*maxlength="5000"', edit_form_html(schema, {"body": "b"}))


def test_valid_edit_is_decided_with_a_field_diff(rita, reviewer):
    item = make_item()
    data = edit_post(
        item,
        {
            "output.total_amount": "215.5",
            "output.due_date": "2026-10-31",
            "output.line_items.0.__delete": "1",
            "output.line_items.2.description": "Shipping",
            "output.line_items.2.amount": "10.5",
        },
        comment="added shipping",
    )
    response = rita.post(decide_url(item), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    decision = Decision.objects.get(item=item)
    assert decision.outcome == "approved"
    assert decision.comment == "added shipping"
    assert decision.edited_output["total_amount"] == 215.5
    assert decision.edited_output["due_date"] == "2026-10-31"
    assert decision.edited_output["line_items"] == [
        {"description": "Gadgets", "quantity": 2.0, "unit_price": 40.0, "amount": 80.0},
        {"description": "Shipping", "quantity": 1.0, "unit_price": 0.0, "amount": 10.5},
    ]
    paths = {change["path"] for change in decision.diff}
    assert {"total_amount", "due_date", "line_items[0].description", "line_items[1].description"} <= paths
    assert status_of(item) == ReviewStatus.DECIDED


def test_edit_saved_unchanged_is_a_plain_approval(rita):
    item = make_item()
    assert rita.post(decide_url(item), edit_post(item)).status_code == 302
    decision = Decision.objects.get(item=item)
    assert (decision.outcome, decision.edited_output, decision.diff) == ("approved", None, [])


def test_reject_without_a_reason_is_a_form_error(rita):
    item = make_item()
    response = rita.post(decide_url(item), {"outcome": "rejected", "comment": "nope"}, headers=HTMX)
    assert response.status_code == 422
    content = response.content.decode()
    panel = re.search(r'<form id="reject-form".*?</form>', content, re.S)[0]
    assert "novalidate>" in panel  # kept open
    assert "Choose why you reject this output." in panel
    assert ">nope</textarea>" in panel
    assert status_of(item) == ReviewStatus.PENDING


def test_reject_with_a_reason_is_decided(rita, reviewer):
    item = make_item()
    response = rita.post(decide_url(item), {"outcome": "rejected", "reason_code": "wrong_data", "comment": "bad"})
    assert response.status_code == 302
    decision = Decision.objects.get(item=item)
    assert (decision.outcome, decision.reason_code, decision.comment, decision.user) == (
        "rejected",
        "wrong_data",
        "bad",
        reviewer,
    )


def test_reject_with_an_unknown_reason_is_refused(rita):
    item = make_item()
    response = rita.post(decide_url(item), {"outcome": "rejected", "reason_code": "made_up"})
    assert response.status_code == 422
    assert status_of(item) == ReviewStatus.PENDING


def test_further_outcomes_get_their_own_buttons(rita):
    item = make_item(outcomes=["approved", "rejected", "escalate"])
    content = rita.get(item_url(item)).content.decode()
    assert '<button type="submit" name="outcome" value="escalate"' in content
    assert rita.post(decide_url(item), {"outcome": "escalate"}).status_code == 302
    assert Decision.objects.get(item=item).outcome == "escalate"
    other = make_item()
    assert rita.post(decide_url(other), {"outcome": "escalate"}).status_code == 422


def test_second_decision_gets_409_already_decided_by(rita, colleague):
    item = make_item()
    assert client_for(colleague).post(decide_url(item), {"outcome": "approved"}).status_code == 302
    response = rita.post(decide_url(item), {"outcome": "rejected", "reason_code": "other"}, headers=HTMX)
    assert response.status_code == 409
    content = response.content.decode()
    assert "Already decided by carl at" in content
    assert 'id="edit-form"' not in content  # the page now shows the decision, read-only
    plain = rita.post(decide_url(item), {"outcome": "approved"})
    assert plain.status_code == 409
    assert "Already decided by carl" in plain.content.decode()
    assert Decision.objects.get(item=item).outcome == "approved"


def test_decide_query_count_does_not_depend_on_the_item(rita, colleague, django_assert_num_queries):
    AutonomyPolicy.objects.create(output_type="invoice")  # created on first use, which costs extra queries once
    first = make_item(output=invoice_output(line_items=[]))
    make_item(age=timedelta(days=1))
    with CaptureQueriesContext(connection) as baseline:
        assert rita.post(decide_url(first), {"outcome": "approved"}).status_code == 302
    lines = [{"description": f"l{n}", "quantity": 1, "unit_price": 1, "amount": 1} for n in range(30)]
    second = make_item(output=invoice_output(line_items=lines))
    for _ in range(5):
        earlier = make_item(run=second.run, status=ReviewStatus.DECIDED)
        Decision.objects.create(item=earlier, outcome="approved", user=colleague)
    with django_assert_num_queries(len(baseline.captured_queries)):
        assert rita.post(decide_url(second), {"outcome": "approved"}).status_code == 302


def test_release_gives_the_item_back(rita, reviewer):
    item = make_item()
    rita.post(claim_url(item))
    response = rita.post(reverse("reviews:release", args=[item.id]), {"type": "invoice"}, headers=HTMX)
    assert response["HX-Redirect"] == reverse("reviews:queue") + "?type=invoice"
    item.refresh_from_db()
    assert item.claimed_by is None
    assert ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.RELEASED, user=reviewer).exists()


# ---------------------------------------------------------------- bulk approval


def test_bulk_approve_decides_each_selected_item_of_the_type_once(rita, reviewer, colleague):
    first = make_item()
    second = make_item()
    already = make_item()
    client_for(colleague).post(decide_url(already), {"outcome": "approved"})
    draft = make_item("draft")
    untouched = make_item()
    back = reverse("reviews:queue") + "?type=invoice"
    response = rita.post(
        reverse("reviews:bulk"),
        {"output_type": "invoice", "items": [first.id, second.id, already.id, draft.id], "next": back},
    )
    assert response["Location"] == back
    for item in (first, second):
        assert Decision.objects.get(item=item).user == reviewer
        assert ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.DECIDED).count() == 1
    assert Decision.objects.get(item=already).user == colleague
    assert status_of(draft) == ReviewStatus.PENDING
    assert status_of(untouched) == ReviewStatus.PENDING
    content = rita.get(back).content.decode()
    assert "Approved 2 invoice items" in content
    assert "Skipped 2" in content and "Already decided by carl" in content and "Not an item of type invoice" in content


def test_bulk_approve_needs_permission_for_the_type(finance):
    draft = make_item("draft")
    response = client_for(finance).post(reverse("reviews:bulk"), {"output_type": "draft", "items": [draft.id]})
    assert response.status_code == 403
    assert status_of(draft) == ReviewStatus.PENDING


def test_bulk_approve_without_a_selection_explains_and_never_leaves_the_site(rita):
    response = rita.post(
        reverse("reviews:bulk"), {"output_type": "invoice", "next": "https://evil.example/"}, headers=HTMX
    )
    assert response["HX-Redirect"] == reverse("reviews:queue") + "?type=invoice"
    assert "Select at least one item." in rita.get(reverse("reviews:queue")).content.decode()


# ---------------------------------------------------------------- end to end through real flows


@pytest.mark.django_db(transaction=True)
def test_approving_in_the_browser_resumes_the_paused_run_once():
    reviewer = make_user("rita", "reviewer", "draft")
    run = run_create(flow_name="emit_review", inputs={"title": "Invoice 7", "amount": 120.0})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    client = client_for(reviewer)
    assert "Being reviewed" not in client.get(item_url(item)).content.decode()
    response = client.post(decide_url(item), {"outcome": "approved", "type": "draft"}, headers=HTMX)
    assert response["HX-Redirect"] == reverse("reviews:queue") + "?type=draft"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"published": {"title": "Invoice 7", "amount": 120.0, "confidence": 0.4}}
    again = client.post(decide_url(item), {"outcome": "approved"}, headers=HTMX)
    assert again.status_code == 409
    assert Decision.objects.filter(item=item).count() == 1


@pytest.mark.django_db(transaction=True)
def test_correcting_an_invoice_in_the_browser_completes_the_run_with_the_correction():
    reviewer = make_user("fiona", "reviewer", "invoice")
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": RAW_INVOICE})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    client = client_for(reviewer)
    assert item.output["vendor"] in client.get(item_url(item)).content.decode()
    bad = client.post(decide_url(item), edit_post(item, {"output.total_amount": "two hundred"}), headers=HTMX)
    assert bad.status_code == 422
    assert status_of(item) == ReviewStatus.PENDING
    # The invoice has an error finding (see RAW_INVOICE): approving it on the page needs the tick naming it.
    confirm = confirmation_key(approval_confirmations(reason=item.reason, findings=item.findings))
    good = client.post(
        decide_url(item), {**edit_post(item, {"output.total_amount": "125"}), "confirm": confirm}, headers=HTMX
    )
    assert good.status_code == 200, good.content.decode()[:2000]
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["invoice"]["total_amount"] == 125.0
    assert Decision.objects.get(item=item).diff[0]["path"] == "total_amount"


# ---------------------------------------------------------------- the generated form, unit by unit


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str = ""


class Line(BaseModel):
    sku: str
    qty: int = 1
    price: float = 0
    taxable: bool = True
    kind: Literal["good", "service"] = "good"


class Everything(BaseModel):
    title: str = Field(description="Shown on the invoice")
    notes: str = ""
    count: int
    ratio: float = Field(ge=0, le=1)
    active: bool
    verified: bool | None = None
    color: Color
    mode: Literal["a", "b"] = "a"
    maybe_color: Color | None = None
    issued: datetime.date
    paid_on: datetime.date | None = None
    stamp: datetime.datetime
    rating: int | None = None
    address: Address
    billing: Address | None = None
    lines: list[Line] = []
    tags: list[str] = []
    extra: dict[str, int] = {}


EVERYTHING = Everything(
    title='Q3 "special" <b>order</b>',
    notes="first line\nsecond line",
    count=7,
    ratio=0.25,
    active=False,
    verified=True,
    color=Color.GREEN,
    mode="b",
    issued=datetime.date(2026, 10, 1),
    stamp=datetime.datetime(2026, 10, 1, 12, 30, tzinfo=datetime.UTC),
    address=Address(street="1 Main St", city="Springfield"),
    lines=[Line(sku="A-1", qty=2, price=9.99, taxable=False, kind="service"), Line(sku="B-2")],
    tags=["urgent", "eu"],
    extra={"x": 1},
)


@pytest.mark.parametrize(
    "model, value",
    [
        (Everything, EVERYTHING.model_dump(mode="json")),
        (InvoiceData, invoice_output()),
        (InvoiceData, invoice_output(line_items=[], invoice_date=None, vendor="")),
        (Draft, {"title": "Draft", "amount": 1e-07, "confidence": 1.0}),
    ],
)
def test_round_trip_output_to_form_to_post_to_the_same_output(model, value):
    schema = model.model_json_schema()
    posted = browser_submit(edit_form_html(schema, value))
    parsed = schema_form.parse_form(schema, posted, original=value)
    assert parsed.errors == []
    assert parsed.value == value
    assert model.model_validate(parsed.value).model_dump(mode="json") == value


def test_round_trip_without_a_schema_infers_the_fields():
    value = {"name": "x", "n": 3, "ok": True, "rows": [{"a": "1", "b": 2.5}], "tags": ["t"], "meta": None}
    posted = browser_submit(edit_form_html(None, value))
    assert schema_form.parse_form(None, posted, original=value).value == value


def test_every_schema_type_gets_its_input():
    tree = schema_form.build_form(Everything.model_json_schema(), EVERYTHING.model_dump(mode="json"))
    kinds = {field.path[0]: field.kind for field in tree.children}
    assert kinds == {
        "title": "text",
        "notes": "textarea",
        "count": "integer",
        "ratio": "number",
        "active": "boolean",
        "verified": "tristate",
        "color": "enum",
        "mode": "enum",
        "maybe_color": "enum",
        "issued": "date",
        "paid_on": "date",
        "stamp": "datetime",
        "rating": "integer",
        "address": "object",
        "billing": "object",
        "lines": "table",
        "tags": "lines",
        "extra": "json",
    }
    by_name = {field.path[0]: field for field in tree.children}
    assert by_name["title"].label == "Title" and by_name["title"].required
    assert by_name["title"].help == "Shown on the invoice"
    assert by_name["ratio"].bounds == "Between 0 and 1"
    assert [key for key, _, _ in by_name["maybe_color"].options] == ["", "red", "green"]
    assert [key for key, _, _ in by_name["color"].options] == ["red", "green"]
    assert by_name["billing"].nullable and not by_name["address"].nullable
    assert [column.label for column in by_name["lines"].columns] == ["Sku", "Qty", "Price", "Taxable", "Kind"]
    assert [row.index for row in by_name["lines"].rows] == ["0", "1", "2"]
    assert by_name["lines"].rows[-1].extra
    assert by_name["lines"].rows[0].fields[0].name == "output.lines.0.sku"


def test_parse_coerces_types_and_reports_what_it_cannot_read():
    schema = Everything.model_json_schema()
    value = EVERYTHING.model_dump(mode="json")
    posted = browser_submit(edit_form_html(schema, value))
    posted.update(
        {
            "output.count": ["3.5"],
            "output.ratio": ["nan"],
            "output.color": ["purple"],
            "output.issued": ["01/10/2026"],
            "output.stamp": ["noon"],
            "output.extra": ["{bad"],
            "output.lines.0.qty": ["two"],
            "output.rating": [""],
            "output.paid_on": [""],
            "output.verified": [""],
        }
    )
    parsed = schema_form.parse_form(schema, posted, original=value)
    errors = {tuple(e["loc"]): e["msg"] for e in parsed.errors}
    assert errors == {
        ("count",): "Enter a whole number.",
        ("ratio",): "Enter a number.",
        ("color",): "Select one of the options.",
        ("issued",): "Enter a date as YYYY-MM-DD.",
        ("stamp",): "Enter a date and time as YYYY-MM-DDTHH:MM[:SS][±HH:MM].",
        ("extra",): "Enter valid JSON (Expecting property name enclosed in double quotes, line 1).",
        ("lines", 0, "qty"): "Enter a whole number.",
    }
    assert (parsed.value["rating"], parsed.value["paid_on"], parsed.value["verified"]) == (None, None, None)
    # Shown again as typed, next to their errors.
    tree = schema_form.build_form(schema, parsed.raw, errors=parsed.errors, original=value)
    fields = {field.path[0]: field for field in tree.children}
    assert (fields["count"].input_value, fields["count"].errors) == ("3.5", ["Enter a whole number."])
    assert fields["lines"].rows[0].fields[1].input_value == "two"
    assert fields["lines"].rows[0].fields[1].errors == ["Enter a whole number."]


def test_rows_are_renumbered_after_removal_gaps_and_blank_new_rows():
    schema = InvoiceData.model_json_schema()
    row = {"quantity": "1", "unit_price": "0", "amount": "0"}

    def post_row(index: int, description: str, **extra: str) -> dict:
        values = {**row, "description": description, "__row": "1", **extra}
        return {f"output.line_items.{index}.{key}": [value] for key, value in values.items()}

    posted = {
        **post_row(0, "kept"),
        **post_row(3, "removed", __delete="1"),
        **post_row(7, "after a gap"),
        **post_row(9, "", __extra="1"),  # the blank row offered for adding, left blank
        **post_row(12, "added", __extra="1"),
    }
    parsed = schema_form.parse_form(schema, posted, original=invoice_output())
    assert [line["description"] for line in parsed.value["line_items"]] == ["kept", "after a gap", "added"]
    errors = [{"loc": ["line_items", 1, "amount"], "msg": "too big"}]
    tree = schema_form.build_form(schema, parsed.raw, errors=errors, original=invoice_output())
    lines = next(field for field in tree.children if field.path == ("line_items",))
    assert [r.fields[0].input_value for r in lines.rows] == ["kept", "after a gap", "added", ""]
    assert lines.rows[1].fields[3].errors == ["too big"]
    assert lines.rows[1].fields[3].name == "output.line_items.1.amount"


def test_errors_go_to_the_field_they_name_or_the_nearest_enclosing_one():
    schema = Everything.model_json_schema()
    value = EVERYTHING.model_dump(mode="json")
    errors = [
        {"loc": ["address", "street"], "msg": "street!"},
        {"loc": ["lines", 1], "msg": "row!"},
        {"loc": ["lines", 0, "kind", "literal"], "msg": "kind!"},
        {"loc": ["unknown", "deep"], "msg": "somewhere"},
        {"loc": [], "msg": "whole"},
    ]
    tree = schema_form.build_form(schema, value, errors=errors)
    fields = {field.path[0]: field for field in tree.children}
    assert fields["address"].children[0].errors == ["street!"]
    assert fields["lines"].rows[1].errors == ["row!"]
    assert fields["lines"].rows[0].fields[4].errors == ["kind!"]
    assert tree.errors == ["somewhere", "whole"]
    assert tree.has_errors and fields["lines"].has_errors and not fields["title"].has_errors


def test_read_view_formats_values_for_people():
    tree = schema_form.build_form(Everything.model_json_schema(), EVERYTHING.model_dump(mode="json"), extra_rows=0)
    html = render_to_string("reviews/fields/read.html", {"field": tree})
    assert "Q3 &quot;special&quot; &lt;b&gt;order&lt;/b&gt;" in html
    assert "<b>order" not in html
    assert re.search(r"Active</dt>\s*<dd[^>]*><span class=\"out__bool out__bool--no\">No</span>", html)
    assert '<span class="tag">urgent</span><span class="tag">eu</span>' in html
    assert re.search(r"<td class=\"num\">9.99</td>", html)
    assert "first line\nsecond line" in html
    assert schema_form.display_value(schema_form.Spec("number", ""), 84000.0) == "84,000"
    assert schema_form.display_value(schema_form.Spec("number", ""), 1234.5) == "1,234.5"


def test_stored_schema_keeps_the_models_field_order_whatever_the_database():
    assert INVOICE_SCHEMA["propertyOrder"] == list(InvoiceData.model_fields)
    scrambled = {**INVOICE_SCHEMA, "properties": dict(reversed(list(INVOICE_SCHEMA["properties"].items())))}
    spec = schema_form.root_spec(scrambled, None)
    assert [name for name, _ in spec.properties] == list(InvoiceData.model_fields)
