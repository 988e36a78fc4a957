"""Review reasons are open codes: flows declare their own with a label, the API lists them, nothing 500s on them."""

import pytest
from django.test import Client

from reviewconsole.autonomy.models import GateDecision
from reviewconsole.autonomy.rollup import FORCED
from reviewconsole.autonomy.services import gate
from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.models import PendingFeedback
from reviewconsole.engine.registry import register_flow
from reviewconsole.engine.services import run_create
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.reasons import UndeclaredReasonError, reason_label, review_reasons
from tests.people import user_in_role

pytestmark = pytest.mark.django_db


def add_item(reason: str, output_type: str = "article_draft") -> ReviewItem:
    run = run_create(flow_name="content_production", inputs={"topic": "Quasicrystals"}, enqueue=False)
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review_draft", context={}, state={})
    return ReviewItem.objects.create(
        run=run, pending=pending, method="review_draft", output_type=output_type, reason=reason, output={}
    )


@pytest.fixture
def manager_api() -> Client:
    user = user_in_role("mona", "manager")
    return Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"})


def test_items_with_a_flows_own_reason_read_through_the_api(manager_api):
    item = add_item("thin_research")

    listed = manager_api.get("/api/v1/reviews")
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert (row["reason"], row["reason_label"]) == ("thin_research", "Written on thin research")
    assert manager_api.get(f"/api/v1/reviews/{item.id}").json()["reason"] == "thin_research"

    run = manager_api.get(f"/api/v1/runs/{item.run_id}")
    assert run.status_code == 200
    assert [review["reason"] for review in run.json()["reviews"]] == ["thin_research"]


def test_the_api_lists_every_known_reason_with_its_label_and_declaring_flows(manager_api):
    response = manager_api.get("/api/v1/reviews/reasons")
    assert response.status_code == 200
    reasons = {row["code"]: row for row in response.json()}
    assert reasons["high_value"] == {"code": "high_value", "label": "High value", "built_in": True, "flows": []}
    assert reasons["unreadable"] == {
        "code": "unreadable",
        "label": "Still unreadable after re-reading",
        "built_in": False,
        "flows": ["invoice_processing"],
    }
    assert {"thin_research", "revision", "executive_contact"} <= set(reasons)

    flows = {flow["name"]: flow for flow in manager_api.get("/api/v1/flows").json()}
    assert flows["lead_enrichment"]["review_reasons"] == {"executive_contact": "First email to an executive"}


def test_the_reason_is_documented_as_an_open_string(manager_api):
    schemas = manager_api.get("/api/v1/openapi.json").json()["components"]["schemas"]
    for name in ("ReviewItemOut", "ReviewOut"):
        reason = schemas[name]["properties"]["reason"]
        assert reason["type"] == "string" and "enum" not in reason and "$ref" not in reason
        assert "/api/v1/reviews/reasons" in reason["description"]


def test_pages_show_the_declared_label_and_a_retired_code_as_words():
    client = Client()
    client.force_login(user_in_role("rita"))
    item = add_item("executive_contact", output_type="outreach_email")
    add_item("retired_rule")  # stored before its flow stopped declaring it

    queue = client.get("/reviews/").content.decode()
    assert "First email to an executive</span>" in queue
    assert "Retired rule</span>" in queue
    assert "First email to an executive</span>" in client.get(f"/reviews/{item.id}/").content.decode()
    assert "First email to an executive</td>" in client.get(f"/runs/{item.run_id}/").content.decode()
    # The queue's reason filter offers the flows' reasons too.
    assert '<option value="executive_contact">First email to an executive</option>' in queue


def test_a_flow_may_force_review_only_with_a_reason_it_declares():
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": "Vendor: Acme"}, enqueue=False)
    token = current_execution.set(Execution(run_id=str(run.id), flow_name="invoice_processing"))
    try:
        assert gate("invoice", 0.9, force_review=True, reason="unreadable") == "human_review"
        # Declared, but by another flow: a typo or a copy-paste, refused before anything is recorded.
        with pytest.raises(UndeclaredReasonError, match=r"'thin_research' .* flow 'invoice_processing'"):
            gate("invoice", 0.9, force_review=True, reason="thin_research")
    finally:
        current_execution.reset(token)
    with pytest.raises(UndeclaredReasonError, match="review_reasons="):
        gate("invoice", 0.9, force_review=True, reason="made_up")
    assert list(GateDecision.objects.values_list("reason", flat=True)) == ["unreadable"]


def test_a_declared_reason_counts_as_forced_in_the_statistics():
    gate("invoice", 0.99, force_review=True, reason="unreadable")
    gate("invoice", 0.2)
    assert list(GateDecision.objects.filter(FORCED).values_list("reason", flat=True)) == ["unreadable"]


@pytest.mark.parametrize(
    ("reasons", "message"),
    [
        ({"Bad Code": "Label"}, "must be a lowercase code"),
        ({"a_reason_code_that_is_too_long": "Label"}, "at most 20 characters"),
        ({"no_label": " "}, "needs a label"),
    ],
)
def test_malformed_declarations_are_refused_at_registration(reasons, message):
    with pytest.raises(ValueError, match=message):
        register_flow(name="broken", title="Broken", inputs=object, review_reasons=reasons)


def test_a_flow_cannot_relabel_a_built_in_reason():
    assert review_reasons()["high_value"].label == "High value"
    assert reason_label("high_value") == "High value"
