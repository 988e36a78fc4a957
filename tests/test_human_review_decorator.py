"""`@human_review` + `review_decision`: a flow gets the reviewer's decision with its own validated model."""

import pytest
from crewai.flow.human_feedback import HumanFeedbackResult

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.reviews.decorators import review_decision
from reviewconsole.reviews.schemas import output_schema
from reviewconsole.reviews.services import EditValidationError, decide
from tests.engine_flows import Draft
from tests.paused_runs import finished_run, paused_item

pytestmark = pytest.mark.django_db(transaction=True)

ORIGINAL = {"title": "Invoice 7", "amount": 120.0, "confidence": 0.4}


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="pw")


def test_decorated_step_pauses_into_a_typed_item():
    item = paused_item("decorated_review")
    assert item.output_type == "typed_draft"
    assert item.uses_emit is False
    assert item.outcomes == ["approved", "rejected"]
    assert item.message == "Check the typed draft"
    assert item.output == ORIGINAL
    assert item.confidence == 0.4
    assert item.schema["title"] == "Draft"
    assert output_schema("typed_draft") is Draft


def test_unchanged_approval_gives_the_flow_the_original_draft(reviewer, side_effects):
    item = paused_item("decorated_review")
    decide(item_id=item.id, user=reviewer, outcome="approved", comment="fine")
    run = finished_run(item)
    assert run.result == {
        "published": ORIGINAL,
        "output_class": "Draft",
        "decision": {
            "outcome": "approved",
            "edited": False,
            "comment": "fine",
            "reason_code": "",
            "reviewer": "rita",
            "expired": False,
        },
    }
    assert side_effects() == ["draft", "publish"]


def test_edited_approval_gives_the_flow_the_validated_edit(reviewer, side_effects):
    item = paused_item("decorated_review")
    edit = {"title": "Invoice 7", "amount": "125.5", "confidence": 0.4}
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edit, comment="fixed total")
    run = finished_run(item)
    assert run.result["output_class"] == "Draft"
    assert run.result["published"] == {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4}
    assert run.result["decision"]["edited"] is True
    assert run.result["decision"]["comment"] == "fixed total"
    assert run.state["final"]["amount"] == 125.5
    assert side_effects() == ["draft", "publish"]


def test_invalid_edit_never_reaches_the_flow(reviewer, side_effects):
    item = paused_item("decorated_review")
    with pytest.raises(EditValidationError, match="amount"):
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output={"title": "x", "amount": "many"})
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.WAITING_REVIEW
    assert side_effects() == ["draft"]


def test_rejection_routes_to_the_rejected_branch(reviewer, side_effects):
    item = paused_item("decorated_review")
    decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="incomplete", comment="missing lines")
    run = finished_run(item)
    assert run.result["discarded"] is True
    assert run.result["output_class"] == "Draft"
    assert run.result["decision"]["outcome"] == "rejected"
    assert run.result["decision"]["reason_code"] == "incomplete"
    assert run.result["decision"]["comment"] == "missing lines"
    assert side_effects() == ["draft", "discard"]


@pytest.mark.parametrize(
    ("decision", "edit", "expected"),
    [
        ("approved", None, {"published": ORIGINAL, "output_class": "Draft"}),
        (
            "approved",
            {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4},
            {"published": {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4}, "output_class": "Draft"},
        ),
    ],
)
def test_emit_flow_gets_its_own_model_back_after_resume(reviewer, side_effects, decision, edit, expected):
    item = paused_item("typed_emit_review")
    assert item.uses_emit is True
    decide(item_id=item.id, user=reviewer, outcome=decision, edited_output=edit)
    assert finished_run(item).result == expected
    assert side_effects() == ["draft", "publish"]


def test_emit_flow_rejection_gets_its_own_model_back(reviewer, side_effects):
    item = paused_item("typed_emit_review")
    decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="other", comment="nope")
    assert finished_run(item).result == {"discarded": True, "output_class": "Draft", "feedback": "nope"}
    assert side_effects() == ["draft", "discard"]


def test_review_decision_reads_the_facts_from_metadata_and_the_comment_from_feedback():
    facts = {"outcome": "approved", "edited": True, "reason_code": "", "reviewer": "rita", "expired": False}
    # After a replay the output comes back as the dict the checkpoint recorded.
    result = HumanFeedbackResult(output={"title": "T", "amount": "3.5"}, feedback="fixed the total", metadata=facts)
    decision = review_decision(result, Draft)
    assert decision.output == Draft(title="T", amount=3.5)
    assert decision.comment == "fixed the total"
    assert (decision.outcome, decision.edited, decision.reviewer, decision.expired) == ("approved", True, "rita", False)
