"""The reviewer's list: rows that say what they are (summary fields), search, the list carried from the queue
to each item (next, j/k, the position), looking without claiming, and the shortcuts preference."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

import flows.invoices  # noqa: F401  (registers the invoice type's summary)
from reviewconsole.engine.checks import MISSING, finding
from reviewconsole.engine.models import RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.engine.summaries import NOT_FOUND, summarize
from reviewconsole.reviews import selectors
from reviewconsole.reviews.models import Decision, ReviewerPreference, ReviewItem, ReviewStatus
from reviewconsole.reviews.search import search_text
from reviewconsole.reviews.services import decide
from reviewconsole.reviews.views import OPENED_SALT
from tests.people import client_for
from tests.people import user_in_role as make_user
from tests.test_review_pages import HTMX, invoice_output, make_item

pytestmark = pytest.mark.django_db

CLEAN_INVOICE = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""


def summarized(item: ReviewItem) -> ReviewItem:
    """The item with the summary and search text its creation stores (`services._checked`)."""
    item.summary = summarize(item.output_type, item.output, item.findings)
    item.search_text = search_text(summary=item.summary, output=item.output, inputs=item.run.inputs)
    item.save(update_fields=["summary", "search_text"])
    return item


@pytest.fixture
def rita():
    return make_user("rita")


@pytest.fixture
def fiona():
    """A reviewer of invoices only."""
    return make_user("fiona", "reviewer", "invoice")


# ---------------------------------------------------------------- summaries


def test_invoice_summary_shows_vendor_number_total_with_currency_and_due_date():
    shown = summarize("invoice", invoice_output(total_amount=2805.5, due_date="2026-10-31"))
    assert [(field["label"], field["value"]) for field in shown] == [
        ("Vendor", "Acme Supplies Ltd"),
        ("Number", "INV-1042"),
        ("Total", "2,805.50 EUR"),
        ("Due", "2026-10-31"),
    ]
    assert all(field["found"] for field in shown)


def test_values_the_model_did_not_find_read_not_found_never_a_default():
    output = invoice_output(due_date=None, total_amount=0, currency="USD", invoice_number="")
    findings = [
        finding(MISSING, "error", "Total not found", field="total_amount"),
        finding(MISSING, "error", "Currency not found", field="currency"),
    ]
    shown = {field["label"]: field for field in summarize("invoice", output, findings)}
    assert shown["Total"]["value"] == NOT_FOUND and not shown["Total"]["found"]
    assert shown["Number"]["value"] == NOT_FOUND
    assert shown["Due"]["value"] == NOT_FOUND
    # A total that was found, with a currency that was not: the amount, and the currency said to be missing.
    shown = {f["label"]: f for f in summarize("invoice", invoice_output(), findings[1:])}
    assert shown["Total"]["value"] == "205.00 (currency not found)"


def test_a_type_without_a_declaration_shows_its_first_scalar_fields():
    shown = summarize("undeclared_type", {"confidence": 0.4, "title": "Draft 1", "tags": ["a"], "amount": 120.0})
    assert [(field["label"], field["value"]) for field in shown] == [("Title", "Draft 1"), ("Amount", "120.0")]
    assert summarize("undeclared_type", "just text") == []


@pytest.mark.django_db(transaction=True)
def test_an_item_from_the_invoice_flow_stores_its_summary_and_search_text():
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": CLEAN_INVOICE})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    assert [field["value"] for field in item.summary] == ["Acme Supplies Ltd", "INV-1042", "205.00 EUR", "2026-10-31"]
    assert "gadgets" in item.search_text and "205.00 eur" in item.search_text


# ---------------------------------------------------------------- search


def test_search_finds_pending_and_decided_items_by_summary_and_text_within_scope(rita, fiona):
    acme = summarized(make_item(output=invoice_output()))
    other = summarized(
        make_item(output=invoice_output(vendor="Globex", invoice_number="G-7"), inputs={"raw_invoice": "x"})
    )
    draft = summarized(make_item("draft", output={"title": "Acme launch", "amount": 1.0, "confidence": 0.5}))
    decide(item_id=acme.id, user=rita, outcome="approved")

    def found(user, query, status=""):
        return set(selectors.queue_items(user=user, status=status, query=query).values_list("id", flat=True))

    assert found(rita, "acme") == {acme.id, draft.id}
    assert found(rita, "ACME inv-1042") == {acme.id}
    assert found(rita, "widgets", status=ReviewStatus.DECIDED) == {acme.id}
    assert found(rita, "globex") == {other.id}
    # The run's input text is searched too (the invoice's source); a reviewer of invoices never finds a draft.
    assert found(rita, "invoice number") == {acme.id}
    assert found(fiona, "acme") == {acme.id}
    assert found(fiona, "launch") == set()


def test_an_edit_replaces_the_summary_and_search_text(rita):
    item = summarized(make_item(output=invoice_output(), inputs={"raw_invoice": "scanned"}))
    decide(item_id=item.id, user=rita, outcome="approved", edited_output=invoice_output(vendor="Initech"))
    item.refresh_from_db()
    assert item.summary[0] == {"label": "Vendor", "value": "Initech", "found": True}
    assert set(selectors.queue_items(user=rita, status="", query="initech").values_list("id", flat=True)) == {item.id}
    assert not selectors.queue_items(user=rita, status="", query="acme").exists()


def test_the_queue_searches_and_refuses_a_bad_query_with_the_field_error(rita, fiona):
    acme = summarized(make_item(output=invoice_output()))
    summarized(make_item(output=invoice_output(vendor="Globex"), inputs={"raw_invoice": "Globex"}))
    client = client_for(rita)
    content = client.get(reverse("reviews:queue"), {"q": "acme", "status": "all"}).content.decode()
    assert f'id="item-{acme.id}"' in content and content.count('<tr id="item-') == 1
    assert "Acme Supplies Ltd" in content and "205.00 EUR" in content and "Due</span> not found" in content
    response = client.get(reverse("reviews:queue"), {"q": "a" * 201})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Search: Ensure this value has at most 200 characters" in page and '<tr id="item-' not in page
    # However long the query string, the search is read and refused: never the whole queue instead.
    page = client.get(reverse("reviews:queue"), {"q": "a" * 5000}).content.decode()
    assert "Search: Ensure this value has at most 200 characters" in page and '<tr id="item-' not in page
    # A NUL is refused before any view reads it (`inputs.UnsafeInputMiddleware`).
    assert client.get(reverse("reviews:queue"), {"q": "acme\x00"}).status_code == 400


def test_the_api_searches_and_answers_422_to_a_bad_query(rita, fiona):
    acme = summarized(make_item(output=invoice_output()))
    summarized(make_item("draft", output={"title": "Acme launch", "amount": 1.0, "confidence": 0.5}))
    client = client_for(fiona)
    body = client.get("/api/v1/reviews", {"q": "acme"}).json()
    assert [row["id"] for row in body["results"]] == [str(acme.id)]
    assert body["results"][0]["summary"][2] == {"label": "Total", "value": "205.00 EUR", "found": True}
    assert client.get("/api/v1/reviews", {"q": "a\x00"}).status_code == 400
    assert client.get("/api/v1/reviews", {"q": "a" * 201}).status_code == 422


# ---------------------------------------------------------------- the list: seek, next, position


def list_with_confidences(*confidences):
    now = timezone.now()
    items = []
    for index, confidence in enumerate(confidences):
        item = make_item(confidence=confidence)
        # Ties in the creation time too, so that the id decides.
        ReviewItem.objects.filter(id=item.id).update(created_at=now - timedelta(minutes=index // 2))
        items.append(item)
    return items


@pytest.mark.parametrize("sort", sorted(selectors.SORT_KEYS))
def test_seek_walks_every_sort_in_the_order_of_the_list(rita, sort):
    list_with_confidences(0.72, 0.97, None, 0.72, 0.5, None, 0.97)
    items = selectors.queue_items(user=rita, sort=sort)
    expected = list(items.values_list("id", flat=True))
    walked, current = [], items.first()
    while current is not None:
        walked.append(current.id)
        current = selectors.seek(items, current, sort)
    assert walked == expected
    walked, current = [], items.last()
    while current is not None:
        walked.append(current.id)
        current = selectors.seek(items, current, sort, backwards=True)
    assert walked == expected[::-1]
    for place, item in enumerate(items, start=1):
        assert selectors.position_in(items, item, sort) == (place, len(expected), False)


def test_after_a_decision_the_next_item_is_the_next_in_the_list(rita):
    low, high, middle = list_with_confidences(0.72, 0.97, 0.80)
    response = client_for(rita).post(
        reverse("reviews:decide", args=[low.id]), {"outcome": "approved", "list": "type=invoice&sort=confidence"}
    )
    location = urlsplit(response["Location"])
    assert location.path == reverse("reviews:item", args=[middle.id])
    assert parse_qs(location.query) == {"list": ["type=invoice&sort=confidence"]}
    # Highest first, after 0.97 comes 0.80.
    assert selectors.next_item_for(user=rita, after=high, sort="-confidence") == middle


def test_next_wraps_to_the_first_of_the_list_and_skips_items_claimed_by_others(rita):
    first, second, third = list_with_confidences(0.1, 0.2, 0.3)
    carl = make_user("carl")
    ReviewItem.objects.filter(id=second.id).update(
        claimed_by=carl, claim_expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert selectors.next_item_for(user=rita, after=first, sort="confidence") == third
    assert selectors.next_item_for(user=rita, after=third, sort="confidence") == first


def test_the_item_page_says_where_it_is_and_j_k_follow_the_list(rita):
    low, high, middle = list_with_confidences(0.72, 0.97, 0.80)
    content = client_for(rita).get(reverse("reviews:item", args=[middle.id]), {"list": "type=invoice&sort=confidence"})
    page = content.content.decode()
    assert "2 of 3 in Invoices · lowest confidence first" in page
    assert f'{reverse("reviews:item", args=[low.id])}?list=type%3Dinvoice%26sort%3Dconfidence" rel="prev"' in page
    assert f'{reverse("reviews:item", args=[high.id])}?list=type%3Dinvoice%26sort%3Dconfidence" rel="next"' in page


def test_a_list_never_reaches_items_outside_the_users_scope(fiona):
    invoice = make_item(confidence=0.5)
    draft = make_item("draft", confidence=0.1)
    client = client_for(fiona)
    page = client.get(reverse("reviews:item", args=[invoice.id]), {"list": "type=draft&status=all"}).content.decode()
    assert str(draft.id) not in page
    assert selectors.next_item_for(user=fiona, output_type="draft") is None
    response = client.get(reverse("reviews:next"), {"list": "type=draft", "after": str(draft.id)})
    assert response.status_code == 302 and str(draft.id) not in response["Location"]
    assert client.get(reverse("reviews:item", args=[draft.id])).status_code == 404


def test_a_list_that_is_too_long_or_unreadable_is_the_whole_queue(rita):
    item = make_item()
    for carried in ("x" * 3000, "sort=sideways&conf_min=abc", "q=%00"):
        response = client_for(rita).get(reverse("reviews:item", args=[item.id]), {"list": carried})
        assert response.status_code == 200
        assert "1 of 1 in the queue · oldest first" in response.content.decode()


# ---------------------------------------------------------------- claims and handling time


def test_browsing_claims_nothing_and_handling_time_runs_from_the_page(rita):
    first, second = list_with_confidences(0.4, 0.5)
    client = client_for(rita)
    for item in (first, second, first):
        client.get(reverse("reviews:item", args=[item.id]), {"list": "sort=confidence"})
    assert not ReviewItem.objects.filter(claimed_by__isnull=False).exists()
    opened = signing.dumps(
        {"item": str(first.id), "at": (timezone.now() - timedelta(seconds=42)).timestamp()}, salt=OPENED_SALT
    )
    client.post(reverse("reviews:decide", args=[first.id]), {"outcome": "approved", "opened": opened})
    assert Decision.objects.get(item=first).handling_seconds >= 42
    # Another item's stamp, or a forged one, is not believed.
    client.post(reverse("reviews:decide", args=[second.id]), {"outcome": "approved", "opened": opened})
    assert Decision.objects.get(item=second).handling_seconds is None


# ---------------------------------------------------------------- shortcuts preference


def test_shortcuts_can_be_turned_off_and_stay_off_in_a_new_session(rita):
    client = client_for(rita)
    assert 'data-shortcuts="on"' in client.get(reverse("reviews:queue")).content.decode()
    response = client.post(reverse("reviews:shortcuts"), {"enabled": "0", "next": reverse("reviews:queue")})
    assert response.status_code == 302 and response["Location"] == reverse("reviews:queue")
    assert ReviewerPreference.objects.get(user=rita).shortcuts_enabled is False
    assert 'data-shortcuts="off"' in client.get(reverse("reviews:queue")).content.decode()
    assert 'data-shortcuts="off"' in client_for(rita).get(reverse("engine:run_list")).content.decode()
    # An outside `next` goes to the queue instead; a value other than 0 or 1 is refused.
    response = client.post(reverse("reviews:shortcuts"), {"enabled": "1", "next": "https://evil.example/"})
    assert response["Location"] == reverse("reviews:queue")
    assert 'data-shortcuts="on"' in client.get(reverse("reviews:queue")).content.decode()
    assert client.post(reverse("reviews:shortcuts"), {"enabled": "maybe"}).status_code == 400


def test_the_claim_route_is_scoped(fiona):
    draft = make_item("draft")
    assert client_for(fiona).post(reverse("reviews:claim", args=[draft.id]), headers=HTMX).status_code == 404
    draft.refresh_from_db()
    assert draft.claimed_by is None
