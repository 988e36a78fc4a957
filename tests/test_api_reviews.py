"""The JSON API for review items: the queue, one item, and deciding it, end to end through a paused run."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.crypto import get_random_string

from reviewconsole.engine.models import PendingFeedback, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus

pytestmark = pytest.mark.django_db

REVIEWS_URL = "/api/v1/reviews"

HIGH_VALUE_INVOICE = """Vendor: Globex
Invoice Number: GX-1
Invoice Date: 2026-10-20
Currency: USD
Turbine | 1 | 84,000.00 | 84,000.00
Total: 84,000.00
"""

INVOICE_OUTPUT = {
    "vendor": "Globex",
    "invoice_number": "GX-1",
    "invoice_date": "2026-10-20",
    "due_date": None,
    "currency": "USD",
    "line_items": [{"description": "Turbine", "quantity": 1.0, "unit_price": 84000.0, "amount": 84000.0}],
    "total_amount": 84000.0,
    "confidence": 0.97,
}


def grant(username: str, role: str, *output_types: str) -> User:
    options = {"output_types": ",".join(output_types)} if output_types else {}
    call_command("grant", username, "--role", role, stdout=io.StringIO(), stderr=io.StringIO(), **options)
    return User.objects.get(username=username)


def bearer_client(user: User) -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {api_token_create(user=user)}"})


def session_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, url: str, body: object, **kwargs):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **kwargs)


def decision_url(item_id) -> str:
    return f"{REVIEWS_URL}/{item_id}/decision"


def add_item(
    output_type: str = "invoice", *, output: dict | None = None, decided_by: User | None = None, **fields
) -> ReviewItem:
    """A review item on a queued run, as a paused flow would leave it (no flow execution needed)."""
    run = run_create(flow_name="counter", inputs={})
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run,
        pending=pending,
        method="review",
        output_type=output_type,
        output=dict(INVOICE_OUTPUT) if output is None else output,
        schema={"type": "object", "title": output_type},
        outcomes=["approved", "rejected"],
        **{"status": ReviewStatus.DECIDED if decided_by else ReviewStatus.PENDING, **fields},
    )
    if decided_by:
        Decision.objects.create(item=item, outcome="approved", comment="fine", user=decided_by)
    return item


@pytest.fixture
def finance() -> User:
    return grant("rita", "reviewer", "invoice")


@pytest.fixture
def drafts() -> User:
    return grant("dan", "reviewer", "draft")


@pytest.fixture
def outsider() -> User:
    return User.objects.create_user("otto", password="pw")


@pytest.fixture
def finance_client(finance) -> Client:
    return session_client(finance)


# --- acceptance ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_high_value_invoice_is_reviewed_corrected_and_completed_through_the_api():
    manager = bearer_client(grant("maria", "manager"))
    finance = bearer_client(grant("rita", "reviewer", "invoice"))
    drafts = bearer_client(grant("dan", "reviewer", "draft"))
    outsider = bearer_client(User.objects.create_user("otto"))

    created = post_json(manager, "/api/v1/flows/invoice_processing/runs", {"raw_invoice": HIGH_VALUE_INVOICE})
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    run = manager.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == RunStatus.WAITING_REVIEW, run["error"]

    # The finance reviewer finds it in the queue: pending, flagged high value, with the extracted invoice.
    [listed] = finance.get(f"{REVIEWS_URL}?status=pending&output_type=invoice").json()["results"]
    assert (listed["run_id"], listed["status"], listed["reason"]) == (run_id, "pending", "high_value")
    assert listed["output"]["total_amount"] == 84000.0
    assert listed["outcomes"] == ["approved", "rejected"]
    assert listed["schema"]["properties"]["total_amount"]["type"] == "number"
    # The bounds an edit must respect are in the schema API clients read.
    assert listed["schema"]["properties"]["total_amount"]["minimum"] == 0
    assert listed["schema"]["properties"]["vendor"]["maxLength"] == 200
    assert listed["url"] == f"http://testserver/reviews/{listed['id']}/"
    item_url = f"{REVIEWS_URL}/{listed['id']}"
    assert finance.get(item_url).json() == listed

    # A reviewer of another type does not see it; someone without the review permission is refused.
    assert drafts.get(f"{REVIEWS_URL}?status=pending").json()["results"] == []
    assert drafts.get(item_url).status_code == 404
    assert post_json(drafts, f"{item_url}/decision", {"outcome": "approved"}).status_code == 404
    assert outsider.get(item_url).status_code == 403
    assert post_json(outsider, f"{item_url}/decision", {"outcome": "approved"}).status_code == 403

    # An invalid edit is refused naming the field, and changes nothing.
    bad = dict(listed["output"], total_amount="lots")
    response = post_json(finance, f"{item_url}/decision", {"outcome": "approved", "edited_output": bad})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "edited_output", "total_amount"]
    assert error["type"] == "float_parsing"
    assert finance.get(item_url).json()["status"] == "pending"
    assert manager.get(f"/api/v1/runs/{run_id}").json()["status"] == RunStatus.WAITING_REVIEW

    # High value needs four eyes: the corrected approval is the first of two. It answers 200, the item stays
    # pending and awaits a second approver, and the run still waits.
    edited = dict(listed["output"], total_amount=84500.0)
    response = post_json(
        finance, f"{item_url}/decision", {"outcome": "approved", "edited_output": edited, "comment": "freight"}
    )
    assert response.status_code == 200, response.content
    first = response.json()
    assert first["item_id"] == listed["id"]
    assert (first["outcome"], first["user"], first["status"], first["awaiting_second_approval"]) == (
        "approved",
        "rita",
        "pending",
        True,
    )
    assert first["diff"] == [{"path": "total_amount", "before": 84000.0, "after": 84500.0}]
    detail = finance.get(item_url).json()
    assert (detail["status"], detail["awaiting_second_approval"], detail["decision"]) == ("pending", True, None)
    assert detail["first_approval"] == {
        "user": "rita",
        "at": first["at"],
        "outcome": "approved",
        "edited": True,
        "edited_output": first["edited_output"],
        "diff": first["diff"],
        "comment": "freight",
    }
    assert manager.get(f"/api/v1/runs/{run_id}").json()["status"] == RunStatus.WAITING_REVIEW

    # The same reviewer cannot be the second approver.
    response = post_json(finance, f"{item_url}/decision", {"outcome": "approved"})
    assert response.status_code == 409
    assert "needs a second approver" in response.json()["detail"]
    assert not Decision.objects.exists()

    # Another invoice reviewer approves as is: that confirms the first approver's correction, and the run
    # completes with it.
    second = bearer_client(grant("sam", "reviewer", "invoice"))
    response = post_json(second, f"{item_url}/decision", {"outcome": "approved"})
    assert response.status_code == 200, response.content
    decision = response.json()
    assert (decision["outcome"], decision["user"], decision["status"], decision["awaiting_second_approval"]) == (
        "approved",
        "sam",
        "decided",
        False,
    )
    assert decision["edited_output"]["total_amount"] == 84500.0
    assert decision["diff"] == [{"path": "total_amount", "before": 84000.0, "after": 84500.0}]
    run = manager.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == RunStatus.COMPLETED, run["error"]
    assert run["result"]["stage"] == "approved"
    assert run["result"]["invoice"]["total_amount"] == 84500.0
    assert run["reviews"][0]["decision"]["user"] == "sam"

    # The item is decided once; a further answer is a conflict naming who decided and when.
    response = post_json(finance, f"{item_url}/decision", {"outcome": "rejected", "reason_code": "wrong_data"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Already decided by sam at ")
    assert Decision.objects.get().outcome == "approved"
    detail = finance.get(item_url).json()
    assert (detail["status"], detail["awaiting_second_approval"]) == ("decided", False)
    assert detail["decision"]["edited_output"]["total_amount"] == 84500.0
    assert detail["first_approval"]["user"] == "rita"


# --- authentication and permission -----------------------------------------------------------------------------


def test_requests_without_credentials_get_401():
    item = add_item()
    client = Client(enforce_csrf_checks=True)
    assert client.get(REVIEWS_URL).status_code == 401
    assert client.get(f"{REVIEWS_URL}/{item.id}").status_code == 401
    assert post_json(client, decision_url(item.id), {"outcome": "approved"}).status_code == 401


def test_user_without_review_permission_gets_403(outsider):
    item = add_item()
    client = session_client(outsider)
    response = client.get(REVIEWS_URL)
    assert response.status_code == 403
    assert response.json() == {"detail": "You need the 'reviews.review_item' permission."}
    assert client.get(f"{REVIEWS_URL}/{item.id}").status_code == 403
    assert post_json(client, decision_url(item.id), {"outcome": "approved"}).status_code == 403
    assert ReviewItem.objects.get().status == ReviewStatus.PENDING


def test_items_of_types_outside_ones_scope_are_404(drafts):
    item = add_item("invoice")
    client = session_client(drafts)
    response = client.get(f"{REVIEWS_URL}/{item.id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found"}
    assert post_json(client, decision_url(item.id), {"outcome": "approved"}).status_code == 404
    assert ReviewItem.objects.get().status == ReviewStatus.PENDING


@pytest.mark.parametrize("item_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_unknown_or_malformed_item_id_is_404(finance_client, item_id):
    assert finance_client.get(f"{REVIEWS_URL}/{item_id}").json() == {"detail": "Not found"}
    assert post_json(finance_client, decision_url(item_id), {"outcome": "approved"}).status_code == 404


def test_token_auth_decides_without_csrf(finance):
    item = add_item()
    response = post_json(bearer_client(finance), decision_url(item.id), {"outcome": "approved"})
    assert response.status_code == 200, response.content
    assert Decision.objects.get().user == finance


def test_session_decision_needs_the_csrf_token(finance):
    item = add_item()
    client = Client(enforce_csrf_checks=True)
    client.force_login(finance)
    response = post_json(client, decision_url(item.id), {"outcome": "approved"})
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check Failed"}
    assert ReviewItem.objects.get().status == ReviewStatus.PENDING

    secret = get_random_string(32)
    client.cookies["csrftoken"] = secret
    response = post_json(client, decision_url(item.id), {"outcome": "approved"}, headers={"X-CSRFToken": secret})
    assert response.status_code == 200


# --- listing ---------------------------------------------------------------------------------------------------


def test_list_filters_by_status_and_output_type_within_ones_scope(finance, outsider):
    now = timezone.now()
    pending = add_item("invoice")
    decided = add_item("invoice", decided_by=outsider)
    add_item("draft")
    ReviewItem.objects.filter(id=decided.id).update(created_at=now + timedelta(seconds=1))
    client = session_client(finance)

    def ids(query: str = "") -> list[str]:
        response = client.get(f"{REVIEWS_URL}?{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    # The draft item is outside rita's scope, whatever the filter.
    assert ids() == ids("status=&output_type=") == [str(pending.id), str(decided.id)]
    assert ids("status=pending") == [str(pending.id)]
    assert ids("status=decided") == [str(decided.id)]
    assert ids("output_type=invoice&status=pending") == [str(pending.id)]
    assert ids("output_type=draft") == []


def test_reviewer_without_scopes_sees_every_type():
    invoice, draft = add_item("invoice"), add_item("draft")
    client = session_client(grant("una", "reviewer"))
    listed = {item["id"] for item in client.get(f"{REVIEWS_URL}?status=pending").json()["results"]}
    assert listed == {str(invoice.id), str(draft.id)}
    assert client.get(f"{REVIEWS_URL}/{draft.id}").status_code == 200


def test_list_pages_oldest_first_with_a_next_cursor(finance_client):
    items = [add_item() for _ in range(3)]
    for offset, item in enumerate(items):
        ReviewItem.objects.filter(id=item.id).update(created_at=timezone.now() + timedelta(seconds=offset))

    first = finance_client.get(f"{REVIEWS_URL}?page_size=2").json()
    assert [item["id"] for item in first["results"]] == [str(items[0].id), str(items[1].id)]
    assert first["next"]
    second = finance_client.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == [str(items[2].id)]
    assert second["next"] is None


def test_list_rejects_an_unknown_status_with_422(finance_client):
    response = finance_client.get(f"{REVIEWS_URL}?status=exploded")
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "status"]]


def test_list_uses_the_same_number_of_queries_for_1_and_20_items(finance_client, outsider, django_assert_num_queries):
    add_item()
    with CaptureQueriesContext(connection) as one_item:
        assert len(finance_client.get(REVIEWS_URL).json()["results"]) == 1

    for i in range(19):
        add_item(decided_by=outsider if i % 2 else None, claimed_by=outsider)
    with django_assert_num_queries(len(one_item)):
        results = finance_client.get(REVIEWS_URL).json()["results"]
    assert len(results) == 20
    assert any(item["decision"] for item in results) and all(item["claimed_by"] == "otto" for item in results[1:])


# --- one item --------------------------------------------------------------------------------------------------


def test_detail_has_the_fields_a_client_needs(finance_client, finance):
    item = add_item(confidence=0.42, message="Check it", claimed_by=finance)
    response = finance_client.get(f"{REVIEWS_URL}/{item.id}")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": str(item.id),
        "run_id": str(item.run_id),
        "method": "review",
        "output_type": "invoice",
        "reason": "flow_requested",
        "reason_label": "Requested by the flow",
        "confidence": 0.42,
        "message": "Check it",
        "status": "pending",
        "output": INVOICE_OUTPUT,
        "schema": {"type": "object", "title": "invoice"},
        "outcomes": ["approved", "rejected"],
        "findings": [],
        # Stored when a paused flow creates the item; this one was written directly.
        "summary": [],
        "claimed_by": "rita",
        "created_at": body["created_at"],
        "due_at": None,
        "expires_at": None,
        "decided_at": None,
        "awaiting_second_approval": False,
        "first_approval": None,
        "decision": None,
        "url": f"http://testserver/reviews/{item.id}/",
    }
    assert body["created_at"].startswith(str(item.created_at.year))


def test_detail_of_a_decided_item_includes_the_decision(finance_client, outsider):
    item = add_item(decided_by=outsider)
    decision = finance_client.get(f"{REVIEWS_URL}/{item.id}").json()["decision"]
    assert decision["item_id"] == str(item.id)
    assert (decision["outcome"], decision["user"], decision["comment"], decision["status"]) == (
        "approved",
        "otto",
        "fine",
        "decided",
    )
    assert decision["diff"] == [] and decision["edited_output"] is None


def test_detail_uses_the_same_number_of_queries_pending_or_decided(finance_client, outsider, django_assert_num_queries):
    pending = add_item()
    decided = add_item(decided_by=outsider, claimed_by=outsider)
    with CaptureQueriesContext(connection) as pending_queries:
        assert finance_client.get(f"{REVIEWS_URL}/{pending.id}").status_code == 200
    with django_assert_num_queries(len(pending_queries)):
        assert finance_client.get(f"{REVIEWS_URL}/{decided.id}").json()["decision"]["user"] == "otto"


# --- deciding --------------------------------------------------------------------------------------------------


def test_approval_returns_the_decision(finance_client):
    item = add_item()
    response = post_json(finance_client, decision_url(item.id), {"outcome": "approved", "comment": "ok"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "item_id": str(item.id),
        "outcome": "approved",
        "edited_output": None,
        "diff": [],
        "comment": "ok",
        "reason_code": "",
        "user": "rita",
        "at": body["at"],
        "status": "decided",
        "awaiting_second_approval": False,
        # Decided through the API without opening the item: no handling time, and nothing to mark.
        "handling_seconds": None,
        "mark": "",
    }
    assert ReviewItem.objects.get().status == ReviewStatus.DECIDED


def test_rejection_with_a_reason_code(finance_client):
    item = add_item()
    response = post_json(finance_client, decision_url(item.id), {"outcome": "rejected", "reason_code": "wrong_data"})
    assert response.status_code == 200
    assert (response.json()["outcome"], response.json()["reason_code"]) == ("rejected", "wrong_data")


def test_unknown_outcome_is_422_naming_outcome(finance_client):
    item = add_item()
    response = post_json(finance_client, decision_url(item.id), {"outcome": "maybe"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "outcome"]
    assert "Unknown outcome 'maybe'" in error["msg"] and "approved, rejected" in error["msg"]
    assert ReviewItem.objects.get().status == ReviewStatus.PENDING


@pytest.mark.parametrize("reason_code", [None, "", "because"])
def test_rejection_without_a_valid_reason_is_422_naming_reason_code(finance_client, reason_code):
    item = add_item()
    body = {"outcome": "rejected"} if reason_code is None else {"outcome": "rejected", "reason_code": reason_code}
    response = post_json(finance_client, decision_url(item.id), body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "reason_code"]
    assert "wrong_data" in error["msg"]
    assert not Decision.objects.exists()


def test_rejection_carrying_an_edit_is_422_naming_edited_output(finance_client):
    item = add_item()
    body = {"outcome": "rejected", "reason_code": "wrong_data", "edited_output": INVOICE_OUTPUT}
    response = post_json(finance_client, decision_url(item.id), body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "edited_output"]]


def test_invalid_edit_names_every_bad_field(finance_client):
    item = add_item()
    row = {"description": "x", "quantity": 1, "unit_price": 2, "amount": "many"}
    edit = dict(INVOICE_OUTPUT, total_amount="lots", line_items=[row])
    response = post_json(finance_client, decision_url(item.id), {"outcome": "approved", "edited_output": edit})
    assert response.status_code == 422
    locs = sorted(error["loc"] for error in response.json()["detail"])
    assert locs == [
        ["body", "edited_output", "line_items", 0, "amount"],
        ["body", "edited_output", "total_amount"],
    ]
    assert ReviewItem.objects.get().status == ReviewStatus.PENDING


def assert_still_pending(item: ReviewItem) -> None:
    item.refresh_from_db()
    assert item.status == ReviewStatus.PENDING
    assert not Decision.objects.exists()


def test_an_empty_edit_is_422_naming_every_field_it_would_blank(finance_client):
    item = add_item()
    response = post_json(finance_client, decision_url(item.id), {"outcome": "approved", "edited_output": {}})

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [error["loc"] for error in errors] == [["body", "edited_output", name] for name in INVOICE_OUTPUT]
    assert {error["msg"] for error in errors} == {"Field required"}
    assert_still_pending(item)


def test_unknown_fields_are_422_naming_each_at_any_depth(finance_client):
    item = add_item()
    row = dict(INVOICE_OUTPUT["line_items"][0], discount=5)
    edit = dict(INVOICE_OUTPUT, foo="bar", line_items=[row])
    response = post_json(finance_client, decision_url(item.id), {"outcome": "approved", "edited_output": edit})

    assert response.status_code == 422
    assert [(error["loc"], error["msg"]) for error in response.json()["detail"]] == [
        (["body", "edited_output", "foo"], "unknown field"),
        (["body", "edited_output", "line_items", 0, "discount"], "unknown field"),
    ]
    assert_still_pending(item)


LINE = INVOICE_OUTPUT["line_items"][0]


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"vendor": "x" * 1_000_000}, ["vendor"], "at most 200 characters"),
        ({"line_items": [LINE] * 10_000}, ["line_items"], "at most 500 items"),
        (
            {"line_items": [LINE] * 3 + [dict(LINE, amount=-5.0)]},
            ["line_items", 3, "amount"],
            "greater than or equal to 0",
        ),
        ({"total_amount": -84000.0}, ["total_amount"], "greater than or equal to 0"),
    ],
    ids=["a 1 MB vendor", "10,000 line items", "a negative line amount", "a negative total"],
)
def test_an_edit_beyond_the_bounds_the_invoice_model_declares_is_422(finance_client, change, loc, message):
    item = add_item()
    edit = dict(INVOICE_OUTPUT, **change)
    response = post_json(finance_client, decision_url(item.id), {"outcome": "approved", "edited_output": edit})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "edited_output", *loc]
    assert message in error["msg"]
    assert_still_pending(item)


def test_edit_of_a_type_without_a_model_must_be_an_object():
    item = add_item("misc", output={"a": 1})
    client = session_client(grant("una", "reviewer"))
    response = post_json(client, decision_url(item.id), {"outcome": "approved", "edited_output": [1]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "edited_output"]
    assert "JSON object" in error["msg"]


def test_missing_outcome_is_422_naming_it(finance_client):
    item = add_item()
    response = post_json(finance_client, decision_url(item.id), {"comment": "hm"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][0] == "body" and error["loc"][-1] == "outcome"
    assert error["type"] == "missing"


def test_malformed_json_is_400(finance_client):
    item = add_item()
    response = post_json(finance_client, decision_url(item.id), '{"outcome": ')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON body")
    assert ReviewItem.objects.get().status == ReviewStatus.PENDING


@pytest.mark.parametrize("body", ["[1, 2]", '"approved"'])
def test_body_that_is_not_an_object_is_422(finance_client, body):
    item = add_item()
    assert post_json(finance_client, decision_url(item.id), body).status_code == 422


def test_second_decision_is_409_naming_who_decided(finance_client, outsider):
    item = add_item(decided_by=outsider)
    ReviewItem.objects.filter(id=item.id).update(decided_at=timezone.now())
    response = post_json(finance_client, decision_url(item.id), {"outcome": "maybe"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Already decided by otto at ")


def test_deciding_a_cancelled_item_is_409(finance_client):
    item = add_item(status=ReviewStatus.CANCELLED)
    response = post_json(finance_client, decision_url(item.id), {"outcome": "approved"})
    assert response.status_code == 409
    assert response.json() == {"detail": "The run was cancelled; this item can no longer be decided"}


# --- OpenAPI ---------------------------------------------------------------------------------------------------


def test_openapi_document_lists_the_review_paths(finance_client):
    document = finance_client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/reviews", "/api/v1/reviews/{item_id}", "/api/v1/reviews/{item_id}/decision"} <= set(
        document["paths"]
    )
    assert "schema" in document["components"]["schemas"]["ReviewItemOut"]["properties"]
    assert {"409", "422"} <= set(document["paths"]["/api/v1/reviews/{item_id}/decision"]["post"]["responses"])
