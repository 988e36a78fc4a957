"""`@human_feedback` as CrewAI's docs write it, without `provider=`: in a registered flow the review queue is
the default provider, so the step pauses into a review item instead of calling `input()` in the worker."""

from unittest.mock import patch

import pytest
from crewai.flow.flow import Flow, listen, start
from crewai.flow.flow_config import flow_config
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from django.urls import reverse
from pydantic import BaseModel

from reviewconsole.engine.default_feedback import install_default_feedback_provider
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.registry import FlowSpec, get_flow
from reviewconsole.engine.services import run_create, run_retry
from reviewconsole.engine.structure import FlowStructureError, check_flow_structure
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.schemas import output_schema
from reviewconsole.reviews.services import decide
from tests.engine_flows import Draft
from tests.paused_runs import finished_run, paused_item

pytestmark = pytest.mark.django_db(transaction=True)

ORIGINAL = {"title": "Invoice 7", "amount": 120.0, "confidence": 0.4}
EDITED = {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4}


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="pw")


def result_of(item: ReviewItem) -> dict:
    return finished_run(item).result


def facts(outcome: str, *, edited: bool = False, reason_code: str = "") -> dict:
    return {"outcome": outcome, "edited": edited, "reason_code": reason_code, "reviewer": "rita", "expired": False}


@pytest.mark.parametrize(
    ("flow_name", "output_type", "uses_emit"),
    [("plain_feedback", "plain_draft", False), ("plain_emit_feedback", "plain_memo", True)],
)
def test_a_step_without_provider_pauses_into_a_typed_review_item(flow_name, output_type, uses_emit, side_effects):
    item = paused_item(flow_name)
    assert item.output_type == output_type
    assert item.uses_emit is uses_emit
    assert item.output == ORIGINAL
    assert item.outcomes == ["approved", "rejected"]
    assert item.schema["title"] == "Draft"
    assert item.reason == "flow_requested"
    # Edits are validated by the step's own model, in any process: its return annotation names it.
    assert output_schema(output_type) is Draft
    assert side_effects() == ["draft"]


@pytest.mark.parametrize("flow_name", ["plain_feedback", "plain_emit_feedback"])
def test_approval_gives_the_comment_as_feedback_and_the_facts_in_metadata(flow_name, reviewer, side_effects):
    item = paused_item(flow_name)
    decide(item_id=item.id, user=reviewer, outcome="approved", comment="looks right")
    assert result_of(item) == {
        "published": {
            "output_class": "Draft",
            "output": ORIGINAL,
            "feedback": "looks right",
            "facts": facts("approved"),
        }
    }
    assert side_effects() == ["draft", "publish"]


@pytest.mark.parametrize("flow_name", ["plain_feedback", "plain_emit_feedback"])
def test_an_edit_reaches_the_flow_as_its_model(flow_name, reviewer, side_effects):
    item = paused_item(flow_name)
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=EDITED, comment="fixed total")
    published = result_of(item)["published"]
    assert published == {
        "output_class": "Draft",
        "output": EDITED,
        "feedback": "fixed total",
        "facts": facts("approved", edited=True),
    }
    assert side_effects() == ["draft", "publish"]


@pytest.mark.parametrize("flow_name", ["plain_feedback", "plain_emit_feedback"])
def test_rejection_routes_to_the_rejected_branch_with_its_reason(flow_name, reviewer, side_effects):
    item = paused_item(flow_name)
    decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="wrong_data", comment="wrong vendor")
    assert result_of(item) == {
        "discarded": {
            "output_class": "Draft",
            "output": ORIGINAL,
            "feedback": "wrong vendor",
            "facts": facts("rejected", reason_code="wrong_data"),
        }
    }
    assert side_effects() == ["draft", "discard"]


def test_a_retry_after_the_resume_replays_the_decision(reviewer, side_effects, monkeypatch):
    monkeypatch.setenv("FAIL_STEP", "publish")
    item = paused_item("plain_emit_feedback")
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=EDITED, comment="fixed total")
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.FAILED

    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=item.run_id, actor=None)
    published = result_of(item)["published"]
    # The reviewed step is replayed from its checkpoint: the comment, the facts and the edit come back.
    assert published["feedback"] == "fixed total"
    assert published["facts"] == facts("approved", edited=True)
    assert published["output"] == EDITED
    assert side_effects() == ["draft", "publish", "publish"]
    assert ReviewItem.objects.filter(run_id=item.run_id).count() == 1


class Inputs(BaseModel):
    topic: str = ""


class State(BaseModel):
    id: str = ""
    topic: str = ""


class Note(BaseModel):
    text: str = ""


def spec_for(flow_class: type, output_types: tuple[str, ...]) -> FlowSpec:
    return FlowSpec(name="sample", title="Sample", flow_class=flow_class, input_model=Inputs, output_types=output_types)


def _plain_flow(metadata: dict | None = None) -> type:
    @persist()
    class Plain(Flow[State]):
        @start()
        @human_feedback(message="Check", metadata=metadata)
        def write(self) -> Note:
            return Note(text="x")

        @listen(write)
        def done(self) -> None:
            pass

    return Plain


def test_a_plain_step_in_a_flow_of_several_output_types_must_name_its_own():
    with pytest.raises(
        FlowStructureError,
        match=r"Flow 'sample': 'write' pauses for review with @human_feedback, but the flow declares several "
        r"output types \(invoice, receipt\); name one with @human_feedback\(\.\.\., metadata=",
    ):
        check_flow_structure(spec_for(_plain_flow(), ("invoice", "receipt")))
    check_flow_structure(spec_for(_plain_flow({"output_type": "receipt"}), ("invoice", "receipt")))


def test_a_plain_step_needs_a_declared_output_type():
    with pytest.raises(FlowStructureError, match=r"'write' pauses for review .* declares no output type"):
        check_flow_structure(spec_for(_plain_flow(), ()))
    with pytest.raises(FlowStructureError, match=r"'write' names output type 'memo' .* does not declare"):
        check_flow_structure(spec_for(_plain_flow({"output_type": "memo"}), ("invoice",)))


def test_a_flow_declaring_no_output_type_pauses_with_its_own_name(reviewer, side_effects):
    """As CrewAI's docs write it: no `output_types=`, no provider; scopes still see the type it declares."""
    assert get_flow("docs_feedback").output_types == ("docs_feedback",)
    item = paused_item("docs_feedback")
    assert (item.output_type, item.uses_emit, item.output) == ("docs_feedback", True, ORIGINAL)
    decide(item_id=item.id, user=reviewer, outcome="rejected", comment="wrong vendor", reason_code="other")
    assert result_of(item)["discarded"]["feedback"] == "wrong vendor"
    assert side_effects() == ["draft", "discard"]


def test_a_flow_without_persist_is_checkpointed_and_retries_from_its_checkpoints(reviewer, side_effects, monkeypatch):
    """CrewAI's docs seldom write `@persist()`; a registered flow is made durable without it."""
    monkeypatch.setenv("FAIL_STEP", "publish")
    item = paused_item("docs_feedback")
    decide(item_id=item.id, user=reviewer, outcome="approved", comment="fine")
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.FAILED
    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=item.run_id, actor=None)
    assert result_of(item)["published"]["feedback"] == "fine"
    # The reviewed step is replayed, not asked again: one item, one draft.
    assert side_effects() == ["draft", "publish", "publish"]
    assert ReviewItem.objects.filter(run_id=item.run_id).count() == 1


def test_a_flow_the_engine_does_not_run_keeps_crewais_console(monkeypatch):
    """The default is the engine's for its own runs only: another flow in the process still asks its console."""
    monkeypatch.setattr(flow_config, "hitl_provider", None)
    install_default_feedback_provider()
    install_default_feedback_provider()
    assert flow_config.hitl_provider.fallback is None

    @persist()
    class Outside(Flow[State]):
        @start()
        @human_feedback(message="Check")
        def write(self) -> str:
            return "draft"

        @listen(write)
        def done(self, result: HumanFeedbackResult) -> str:
            return result.feedback

    with patch("builtins.input", return_value="typed at the console"):
        assert Outside().kickoff() == "typed at the console"


def test_an_output_that_is_not_an_object_is_not_offered_for_editing(admin_client, admin_user):
    """A plain step returning a str pauses a str: there are no fields to edit, and an edit must be an object."""
    run = run_create(flow_name="conf_feedback_default", inputs={"topic": "solar"})
    draft = ReviewItem.objects.get(run=run)
    assert 'data-key="e"' in admin_client.get(reverse("reviews:item", args=[draft.id])).content.decode()
    decide(item_id=draft.id, user=admin_user, outcome="approved", comment="ok")
    note = ReviewItem.objects.filter(run=run).exclude(id=draft.id).get()
    assert note.output == "approved: On solar"
    for query in ("", "?edit=1"):
        page = admin_client.get(reverse("reviews:item", args=[note.id]) + query)
        assert page.status_code == 200
        assert 'data-key="e"' not in page.content.decode()
        assert 'id="edit-form"' not in page.content.decode()
