"""A run pauses into a review item and resumes exactly once with the decision."""

from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus, Step
from reviewconsole.engine.services import run_create, run_retry, runs_sweep
from reviewconsole.engine.tasks import resume_flow
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.services import AlreadyDecidedError, DecisionError, decide, review_item_claim_resume

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="pw")


@pytest.mark.parametrize("flow_name", ["emit_review", "payload_review"])
def test_pause_creates_item_and_edited_approval_completes_the_run(flow_name, reviewer, side_effects):
    run = run_create(flow_name=flow_name, inputs={"title": "Invoice 7", "amount": 120.0})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    assert item.status == ReviewStatus.PENDING
    assert item.output_type == "draft"
    assert item.output == {"title": "Invoice 7", "amount": 120.0, "confidence": 0.4}
    assert item.confidence == 0.4
    assert item.outcomes == ["approved", "rejected"]
    assert item.schema["properties"]["amount"]["type"] == "number"
    assert item.uses_emit is (flow_name == "emit_review")
    # While it waits, the run shows the state the flow paused with.
    assert run.state == {"id": str(run.id), "title": "Invoice 7", "amount": 120.0, "final": {}}
    assert run.state == PendingFeedback.objects.get(flow_uuid=str(run.id)).state

    edited = {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4}
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edited, comment="fixed total")

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"published": edited}
    assert side_effects() == ["draft", "publish"]
    assert PendingFeedback.objects.get(flow_uuid=str(run.id)).cleared_at is not None
    item.refresh_from_db()
    assert item.resumed_at is not None
    # The resumed step closes its paused row: one row, from the pause to its end, and nothing left paused.
    paused = Step.objects.filter(run=run, method="draft").values_list("status", flat=True)
    assert list(paused) == ["finished"]


def test_rejection_routes_to_the_rejected_branch(reviewer, side_effects):
    run = run_create(flow_name="emit_review", inputs={})
    item = ReviewItem.objects.get(run=run)
    decide(item_id=item.id, user=reviewer, outcome="rejected", comment="wrong vendor", reason_code="wrong_data")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result == {"discarded": True, "feedback": "wrong vendor"}
    assert side_effects() == ["draft", "discard"]


def test_second_decision_is_refused_and_resume_is_not_repeated(reviewer, django_user_model, side_effects):
    other = django_user_model.objects.create_user("otto", password="pw")
    run = run_create(flow_name="emit_review", inputs={})
    item = ReviewItem.objects.get(run=run)
    decide(item_id=item.id, user=reviewer, outcome="approved")
    with pytest.raises(AlreadyDecidedError, match="Already decided by rita at"):
        decide(item_id=item.id, user=other, outcome="rejected")
    # A redelivered resume task finds the work done and changes nothing.
    resume_flow(str(item.id))
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert side_effects() == ["draft", "publish"]
    assert run.attempts == 2


def test_unknown_outcome_is_refused_and_item_stays_pending(reviewer):
    run = run_create(flow_name="emit_review", inputs={})
    item = ReviewItem.objects.get(run=run)
    with pytest.raises(DecisionError, match="Unknown outcome 'maybe'; expected one of: approved, rejected"):
        decide(item_id=item.id, user=reviewer, outcome="maybe")
    item.refresh_from_db()
    assert item.status == ReviewStatus.PENDING
    assert not Decision.objects.filter(item=item).exists()


def test_failure_after_resume_is_retried_without_asking_again(reviewer, side_effects, monkeypatch):
    monkeypatch.setenv("FAIL_STEP", "publish")
    run = run_create(flow_name="emit_review", inputs={"title": "T", "amount": 1.0})
    item = ReviewItem.objects.get(run=run)
    edited = {"title": "T", "amount": 2.0, "confidence": 0.4}
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edited)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED

    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=run.id, actor=None)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    # The reviewed step is replayed from its checkpoint, decision and edit included.
    assert run.result == {"published": edited}
    assert side_effects() == ["draft", "publish", "publish"]
    assert ReviewItem.objects.filter(run=run).count() == 1


def test_worker_lost_while_resuming_is_recovered_by_the_sweeper(reviewer, side_effects):
    run = run_create(flow_name="emit_review", inputs={})
    item = ReviewItem.objects.get(run=run)
    with patch("django_q.tasks.async_task"):  # the resume is queued, not run inline
        decide(item_id=item.id, user=reviewer, outcome="approved")
    # A worker claims the resume and dies before applying it.
    assert review_item_claim_resume(item_id=item.id, worker="dead:1") == run.id
    FlowRun.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert runs_sweep() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"published": item.output}
    assert side_effects() == ["draft", "publish"]
