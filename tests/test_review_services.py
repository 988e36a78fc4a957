"""Review services: decisions (validation, diffs, races), claims, bulk, expiry, cancel, and queue reads."""

import threading
import uuid
from collections import Counter
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connection
from django.utils import timezone

from reviewconsole.autonomy.models import DEFAULT_REJECT_REASONS, AutonomyPolicy, GateDecision, Verdict
from reviewconsole.engine.context import current_execution
from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus
from reviewconsole.engine.services import RunStateError, run_cancel, run_claim, run_create, run_retry
from reviewconsole.engine.tasks import resume_flow
from reviewconsole.reviews import selectors, services
from reviewconsole.reviews.diff import changed_fields, field_diff
from reviewconsole.reviews.models import (
    Decision,
    PendingCount,
    ReviewerScope,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    ReviewReason,
    ReviewStatus,
)
from reviewconsole.reviews.pending_counts import pending_counts_recount
from reviewconsole.reviews.schema_form import deref
from reviewconsole.reviews.schemas import output_schema
from reviewconsole.reviews.services import (
    CLAIM_MINUTES,
    AlreadyDecidedError,
    DecisionError,
    EditValidationError,
    decide,
    decide_bulk,
    review_item_claim,
    review_item_release,
)
from reviewconsole.reviews.tasks import expire_overdue_items
from tests import engine_flows

pytestmark = pytest.mark.django_db(transaction=True)

TYPED_OUTPUT = {"title": "Invoice 7", "amount": 120.0, "confidence": 0.4}


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="pw")


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user("otto", password="pw")


def paused_item(flow_name: str = "typed_emit_review", **inputs) -> ReviewItem:
    """Run a flow to its review pause and return the pending item."""
    run = run_create(flow_name=flow_name, inputs={"title": "Invoice 7", "amount": 120.0, **inputs})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    return ReviewItem.objects.get(run=run)


def event_kinds(item: ReviewItem) -> list[str]:
    return list(ReviewEvent.objects.filter(item=item).order_by("at", "id").values_list("kind", flat=True))


def assert_nothing_written(item: ReviewItem) -> None:
    item.refresh_from_db()
    assert item.status == ReviewStatus.PENDING
    assert item.decided_at is None
    assert not Decision.objects.filter(item=item).exists()
    assert ReviewEventKind.DECIDED not in event_kinds(item)
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.WAITING_REVIEW


# --- decide: edits -----------------------------------------------------------------------------


def test_typed_item_carries_the_schema_of_its_model():
    item = paused_item()
    assert item.output_type == "typed_draft"
    assert item.output == TYPED_OUTPUT
    assert item.uses_emit is True
    assert item.schema["title"] == "Draft"
    assert set(item.schema["required"]) == {"title", "amount"}


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        ({"title": "Invoice 7", "amount": "lots", "confidence": 0.4}, "amount", "valid number"),
        ({"amount": 125.5, "confidence": 0.4}, "title", "Field required"),
    ],
)
def test_invalid_edit_names_the_field_and_writes_nothing(reviewer, side_effects, edit, field, message):
    item = paused_item()
    with pytest.raises(EditValidationError) as raised:
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edit)

    errors = raised.value.errors
    assert [e["loc"] for e in errors] == [[field]]
    assert message in errors[0]["msg"]
    assert str(raised.value).startswith(f"Invalid edit: {field}: ")
    assert message in str(raised.value)
    assert_nothing_written(item)
    assert side_effects() == ["draft"]


def test_edit_that_is_not_an_object_is_refused_by_the_model(reviewer):
    item = paused_item()
    with pytest.raises(EditValidationError) as raised:
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=["Invoice 7", 125.5])
    assert [e["loc"] for e in raised.value.errors] == [[]]
    assert str(raised.value).startswith("Invalid edit: output: ")
    assert_nothing_written(item)


def test_valid_edit_is_stored_as_the_model_dumps_it_with_a_field_diff(reviewer, side_effects):
    item = paused_item()
    # A string the model coerces: the stored edit is the model's dump, not the raw input.
    edit = {"title": "Invoice 7", "amount": "125.5", "confidence": 0.4}
    decision = decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edit, comment="fixed")

    decision.refresh_from_db()
    assert decision.edited_output == {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4}
    assert decision.diff == [{"path": "amount", "before": 120.0, "after": 125.5}]
    assert decision.user == reviewer
    assert decision.comment == "fixed"
    item.refresh_from_db()
    assert item.status == ReviewStatus.DECIDED
    assert item.decided_at is not None
    decided = ReviewEvent.objects.get(item=item, kind=ReviewEventKind.DECIDED)
    assert decided.user == reviewer
    # The edit's findings are recorded with it: this type declares no checks, so there are none.
    assert decided.detail == {"outcome": "approved", "changed": ["amount"], "findings": []}
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["published"]["amount"] == 125.5
    assert side_effects() == ["draft", "publish"]


def test_edit_identical_to_the_output_is_stored_as_unchanged(reviewer):
    item = paused_item()
    decision = decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=dict(TYPED_OUTPUT))
    decision.refresh_from_db()
    assert decision.edited_output is None
    assert decision.diff == []
    assert ReviewEvent.objects.get(item=item, kind=ReviewEventKind.DECIDED).detail["changed"] == []


def test_edit_without_a_schema_must_be_an_object(reviewer):
    item = paused_item("emit_review")
    assert item.output_type == "draft"
    with pytest.raises(EditValidationError, match="must be a JSON object"):
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=["not", "an", "object"])
    assert_nothing_written(item)


def test_edit_must_carry_every_field_the_output_has_even_one_with_a_default(reviewer, side_effects):
    item = paused_item()
    # Draft.confidence defaults to 0.5: left out, it would silently replace the output's 0.4.
    with pytest.raises(EditValidationError) as raised:
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output={"title": "Invoice 7", "amount": 1.0})

    assert raised.value.errors == [{"loc": ["confidence"], "msg": "Field required", "type": "missing"}]
    assert str(raised.value) == "Invalid edit: confidence: Field required"
    assert_nothing_written(item)
    assert side_effects() == ["draft"]


def test_unknown_field_is_refused_not_dropped(reviewer):
    item = paused_item()
    with pytest.raises(EditValidationError) as raised:
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output={**TYPED_OUTPUT, "notes": "checked"})

    assert str(raised.value) == "Invalid edit: notes: unknown field"
    assert_nothing_written(item)


def test_an_output_stored_by_an_older_model_can_still_be_edited_as_it_stands(reviewer):
    item = paused_item()
    # Stored before the model declared `confidence`, and while it still had `notes`.
    ReviewItem.objects.filter(id=item.id).update(output={"title": "Invoice 7", "amount": 120.0, "notes": "n"})

    edit = {"title": "X", "amount": 1, "notes": "n"}
    decision = decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edit)

    assert decision.edited_output == {"title": "X", "amount": 1.0, "confidence": 0.5}
    assert {change["path"] for change in decision.diff} == {"title", "amount", "confidence", "notes"}


def test_edit_of_a_type_without_a_model_is_checked_against_its_stored_schema(reviewer):
    item = paused_item("emit_review")
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}}
    ReviewItem.objects.filter(id=item.id).update(schema=schema, output={"title": "T", "n": 1})

    with pytest.raises(EditValidationError) as raised:
        decide(item_id=item.id, user=reviewer, outcome="approved", edited_output={"title": "T", "extra": 2})
    assert [(e["loc"], e["msg"]) for e in raised.value.errors] == [
        (["extra"], "unknown field"),
        (["n"], "Field required"),
    ]
    assert_nothing_written(item)


def _unbounded(node, root, path=()):
    """Paths of strings without maxLength and lists without maxItems in a JSON schema."""
    node = deref(node, root)
    for member in node.get("anyOf", []):
        yield from _unbounded(member, root, path)
    if node.get("type") == "string" and "format" not in node and "enum" not in node and "maxLength" not in node:
        yield ".".join(path)
    if node.get("type") == "array":
        if "maxItems" not in node:
            yield ".".join(path)
        yield from _unbounded(node.get("items", {}), root, (*path, "*"))
    for name, child in node.get("properties", {}).items():
        yield from _unbounded(child, root, (*path, name))


@pytest.mark.parametrize("output_type", ["invoice", "article_draft", "outreach_email"])
def test_every_sample_output_type_bounds_its_strings_and_lists(output_type):
    schema = output_schema(output_type).model_json_schema()
    assert list(_unbounded(schema, schema)) == []


# --- field_diff ----------------------------------------------------------------------------------


def test_field_diff_of_equal_values_is_empty():
    value = {"vendor": "ACME", "line_items": [{"amount": 1.0}], "meta": {"pages": 2}}
    assert field_diff(value, {"vendor": "ACME", "line_items": [{"amount": 1.0}], "meta": {"pages": 2}}) == []


def test_field_diff_names_nested_and_list_paths():
    before = {
        "vendor": "ACME",
        "line_items": [{"description": "Bolts", "amount": 10.0}, {"description": "Nuts", "amount": 5.0}],
        "address": {"city": "Berlin", "zip": "10115"},
    }
    after = {
        "vendor": "ACME",
        "line_items": [{"description": "Bolts", "amount": 12.5}, {"description": "Nuts", "amount": 5.0}],
        "address": {"city": "Hamburg", "zip": "10115"},
    }
    assert field_diff(before, after) == [
        {"path": "line_items[0].amount", "before": 10.0, "after": 12.5},
        {"path": "address.city", "before": "Berlin", "after": "Hamburg"},
    ]


def test_field_diff_of_added_and_removed_list_rows_and_keys():
    before = {"line_items": [{"amount": 1.0}, {"amount": 2.0}], "note": "x"}
    added = {"line_items": [{"amount": 1.0}, {"amount": 2.0}, {"amount": 3.0}], "note": "x", "tag": "new"}
    assert field_diff(before, added) == [
        {"path": "line_items[2]", "before": None, "after": {"amount": 3.0}},
        {"path": "tag", "before": None, "after": "new"},
    ]
    removed = {"line_items": [{"amount": 1.0}]}
    assert field_diff(before, removed) == [
        {"path": "line_items[1]", "before": {"amount": 2.0}, "after": None},
        {"path": "note", "before": "x", "after": None},
    ]


def test_field_diff_of_scalar_lists_and_type_changes():
    assert field_diff({"tags": ["a", "b"]}, {"tags": ["a", "c"]}) == [{"path": "tags[1]", "before": "b", "after": "c"}]
    assert field_diff({"amount": 1.0}, {"amount": "1.0"}) == [{"path": "amount", "before": 1.0, "after": "1.0"}]
    assert field_diff({"a": {"b": 1}}, {"a": None}) == [{"path": "a", "before": {"b": 1}, "after": None}]


def test_changed_fields_are_the_top_level_names():
    diff = [
        {"path": "line_items[2].amount", "before": 1, "after": 2},
        {"path": "line_items[0].description", "before": "a", "after": "b"},
        {"path": "address.city", "before": "x", "after": "y"},
        {"path": "total", "before": 1, "after": 2},
    ]
    assert changed_fields(diff) == ["line_items", "address", "total"]


# --- decide: rejections, outcomes, decided items ---------------------------------------------------


def test_rejection_needs_a_reason_code_from_the_default_list(reviewer, side_effects):
    item = paused_item()
    expected = "A rejection needs a reason code, one of: " + ", ".join(DEFAULT_REJECT_REASONS)
    for reason_code in ("", "bogus"):
        with pytest.raises(DecisionError) as raised:
            decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code=reason_code)
        assert str(raised.value) == expected
    assert_nothing_written(item)
    assert AutonomyPolicy.objects.get(output_type="typed_draft").reject_reasons == DEFAULT_REJECT_REASONS

    decision = decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="wrong_data", comment="no")
    decision.refresh_from_db()
    assert (decision.outcome, decision.reason_code) == ("rejected", "wrong_data")
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert side_effects() == ["draft", "discard"]


def test_rejection_reasons_come_from_the_types_policy(reviewer):
    AutonomyPolicy.objects.create(output_type="typed_draft", reject_reasons=["duplicate", "fraud"])
    item = paused_item()
    with pytest.raises(DecisionError, match=r"^A rejection needs a reason code, one of: duplicate, fraud$"):
        decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="wrong_data")
    assert decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="fraud").reason_code == "fraud"


def test_reason_code_is_not_kept_on_an_approval(reviewer):
    item = paused_item()
    decision = decide(item_id=item.id, user=reviewer, outcome="approved", reason_code="wrong_data")
    decision.refresh_from_db()
    assert decision.reason_code == ""


def test_rejection_with_an_edit_is_refused(reviewer):
    item = paused_item()
    edit = {"title": "Invoice 7", "amount": 99.0, "confidence": 0.4}
    with pytest.raises(DecisionError, match="A rejection cannot carry an edited output"):
        decide(item_id=item.id, user=reviewer, outcome="rejected", reason_code="wrong_data", edited_output=edit)
    assert_nothing_written(item)


def test_unknown_outcome_is_refused(reviewer):
    item = paused_item()
    with pytest.raises(DecisionError, match=r"^Unknown outcome 'escalate'; expected one of: approved, rejected$"):
        decide(item_id=item.id, user=reviewer, outcome="escalate")
    assert_nothing_written(item)


def test_decided_item_refuses_another_decision_naming_who_and_when(reviewer, other, side_effects):
    item = paused_item()
    first = decide(item_id=item.id, user=reviewer, outcome="approved")
    first.refresh_from_db()
    with pytest.raises(AlreadyDecidedError) as raised:
        decide(item_id=item.id, user=other, outcome="approved")
    assert str(raised.value) == f"Already decided by rita at {first.at:%Y-%m-%d %H:%M:%S %Z}"
    assert Decision.objects.filter(item=item).count() == 1
    assert side_effects() == ["draft", "publish"]


def test_expired_item_refuses_a_decision(reviewer):
    item = paused_item()
    ReviewItem.objects.filter(id=item.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_overdue_items() == 1
    with pytest.raises(AlreadyDecidedError, match=r"^This item is expired; it can no longer be decided$"):
        decide(item_id=item.id, user=reviewer, outcome="approved")
    assert Decision.objects.get(item=item).user is None


# --- concurrency ---------------------------------------------------------------------------------


def test_two_simultaneous_decisions_one_wins_and_the_flow_resumes_once(reviewer, other, side_effects):
    item = paused_item()
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def attempt(user, outcome, reason_code):
        try:
            barrier.wait(timeout=10)
            results[user.username] = decide(item_id=item.id, user=user, outcome=outcome, reason_code=reason_code)
        except Exception as error:
            results[user.username] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=attempt, args=(reviewer, "approved", "")),
        threading.Thread(target=attempt, args=(other, "rejected", "wrong_data")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    winners = [name for name, value in results.items() if isinstance(value, Decision)]
    losers = [value for value in results.values() if not isinstance(value, Decision)]
    assert len(winners) == 1, results
    assert len(losers) == 1
    assert isinstance(losers[0], AlreadyDecidedError), repr(losers[0])
    assert str(losers[0]).startswith(f"Already decided by {winners[0]} at ")

    decision = Decision.objects.get(item=item)
    assert decision.user.username == winners[0]
    assert ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.DECIDED).count() == 1
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.attempts == 2
    downstream = "publish" if decision.outcome == "approved" else "discard"
    assert side_effects() == ["draft", downstream]


# --- claims --------------------------------------------------------------------------------------


def test_claims_are_exclusive_while_live_and_logged(reviewer, other):
    item = paused_item()
    before = timezone.now()
    assert review_item_claim(item_id=item.id, user=reviewer) is True
    item.refresh_from_db()
    assert item.claimed_by == reviewer
    first_expiry = item.claim_expires_at
    lease = timedelta(minutes=CLAIM_MINUTES)
    assert before + lease <= first_expiry <= timezone.now() + lease

    assert review_item_claim(item_id=item.id, user=other) is False
    item.refresh_from_db()
    assert item.claimed_by == reviewer

    # Re-claiming one's own live claim renews it without another event.
    assert review_item_claim(item_id=item.id, user=reviewer) is True
    item.refresh_from_db()
    assert item.claim_expires_at > first_expiry
    claims = ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.CLAIMED)
    assert [e.user for e in claims] == [reviewer]

    # A lapsed claim can be taken over.
    ReviewItem.objects.filter(id=item.id).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert review_item_claim(item_id=item.id, user=other) is True
    item.refresh_from_db()
    assert item.claimed_by == other
    assert [e.user for e in claims.all()] == [reviewer, other]

    # Only the holder can release.
    review_item_release(item_id=item.id, user=reviewer)
    item.refresh_from_db()
    assert item.claimed_by == other
    review_item_release(item_id=item.id, user=other)
    item.refresh_from_db()
    assert item.claimed_by is None
    assert item.claim_expires_at is None
    released = ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.RELEASED)
    assert [e.user for e in released] == [other]
    assert event_kinds(item) == ["created", "claimed", "claimed", "released"]


def test_decided_item_cannot_be_claimed_and_its_claim_is_cleared(reviewer, other):
    item = paused_item()
    assert review_item_claim(item_id=item.id, user=reviewer)
    decide(item_id=item.id, user=reviewer, outcome="approved")
    item.refresh_from_db()
    assert item.claimed_by is None
    assert item.claim_expires_at is None
    assert review_item_claim(item_id=item.id, user=other) is False


# --- bulk ----------------------------------------------------------------------------------------


def test_decide_bulk_decides_each_item_of_the_type_once_and_skips_others(reviewer, other, side_effects):
    first, second, decided_before = (paused_item() for _ in range(3))
    draft = paused_item("emit_review")
    decide(item_id=decided_before.id, user=other, outcome="approved")
    missing = uuid.uuid4()

    result = decide_bulk(
        item_ids=[first.id, draft.id, second.id, decided_before.id, missing, first.id],
        user=reviewer,
        output_type="typed_draft",
    )

    assert result.decided == [str(first.id), str(second.id)]
    assert set(result.skipped) == {str(draft.id), str(decided_before.id), str(missing), str(first.id)}
    assert result.skipped[str(draft.id)] == "Not an item of type typed_draft"
    assert result.skipped[str(decided_before.id)].startswith("Already decided by otto at ")
    assert result.skipped[str(missing)] == "No such item"
    # An id listed twice is decided once; the repeat finds it decided.
    assert result.skipped[str(first.id)].startswith("Already decided by rita at ")

    for item in (first, second):
        decision = Decision.objects.get(item=item)
        assert (decision.outcome, decision.user) == ("approved", reviewer)
        run = FlowRun.objects.get(id=item.run_id)
        assert run.status == RunStatus.COMPLETED, run.error
        assert run.attempts == 2
    assert Decision.objects.get(item=decided_before).user == other
    draft.refresh_from_db()
    assert draft.status == ReviewStatus.PENDING
    assert FlowRun.objects.get(id=draft.run_id).status == RunStatus.WAITING_REVIEW
    effects = side_effects()
    assert effects.count("draft") == 4
    assert effects.count("publish") == 3


# --- expiry and SLA ------------------------------------------------------------------------------


def test_policy_sets_deadlines_when_the_item_is_created():
    AutonomyPolicy.objects.create(output_type="typed_draft", sla_minutes=30, expiry_minutes=120)
    item = paused_item()
    assert item.due_at - item.created_at == pytest.approx(timedelta(minutes=30), abs=timedelta(seconds=5))
    assert item.expires_at - item.created_at == pytest.approx(timedelta(minutes=120), abs=timedelta(seconds=5))

    AutonomyPolicy.objects.filter(output_type="typed_draft").update(sla_minutes=None, expiry_minutes=None)
    later = paused_item()
    assert later.due_at is None
    assert later.expires_at is None


def test_expiry_decides_with_the_policy_outcome_and_resumes_once(side_effects):
    AutonomyPolicy.objects.create(output_type="typed_draft", expiry_minutes=1, expiry_outcome="rejected")
    item = paused_item("decorated_review")
    assert item.expires_at is not None
    assert expire_overdue_items() == 0  # not due yet
    ReviewItem.objects.filter(id=item.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_overdue_items() == 1
    assert expire_overdue_items() == 0

    item.refresh_from_db()
    assert item.status == ReviewStatus.EXPIRED
    assert item.resumed_at is not None
    decision = Decision.objects.get(item=item)
    assert decision.user is None
    assert decision.outcome == "rejected"
    expired = ReviewEvent.objects.get(item=item, kind=ReviewEventKind.EXPIRED)
    assert expired.user is None
    assert expired.detail == {"outcome": "rejected"}
    assert ReviewEventKind.DECIDED not in event_kinds(item)

    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["discarded"] is True
    assert run.result["decision"]["expired"] is True
    assert run.result["decision"]["reviewer"] is None
    assert run.result["decision"]["outcome"] == "rejected"
    assert run.state["decision"]["expired"] is True
    assert side_effects() == ["draft", "discard"]


def test_expiry_of_a_payload_flow_routes_to_the_rejected_branch(side_effects):
    AutonomyPolicy.objects.create(output_type="draft", expiry_minutes=1, expiry_outcome="rejected")
    item = paused_item("payload_review")
    ReviewItem.objects.filter(id=item.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_overdue_items() == 1
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"discarded": True}
    assert side_effects() == ["draft", "discard"]


def test_decided_item_is_not_expired(reviewer):
    item = paused_item()
    decide(item_id=item.id, user=reviewer, outcome="approved")
    ReviewItem.objects.filter(id=item.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_overdue_items() == 0
    item.refresh_from_db()
    assert item.status == ReviewStatus.DECIDED


def test_queue_counts_count_pending_and_overdue_per_type(django_user_model, reviewer):
    admin = django_user_model.objects.create_superuser("admin", password="pw")
    AutonomyPolicy.objects.create(output_type="typed_draft", sla_minutes=30)
    late, _on_time, decided = (paused_item() for _ in range(3))
    paused_item("emit_review")
    ReviewItem.objects.filter(id__in=[late.id, decided.id]).update(due_at=timezone.now() - timedelta(minutes=1))
    decide(item_id=decided.id, user=reviewer, outcome="approved")

    counts = {count.output_type: count for count in selectors.queue_counts(user=admin)}
    assert set(counts) == {"draft", "typed_draft"}
    assert (counts["typed_draft"].pending, counts["typed_draft"].overdue) == (2, 1)
    assert (counts["draft"].pending, counts["draft"].overdue) == (1, 0)
    assert counts["typed_draft"].oldest == late.created_at
    totals = selectors.queue_totals(list(counts.values()))
    assert (totals.pending_label, totals.overdue_label) == ("3", "1")


def test_queue_counts_stop_counting_overdue_items_at_the_cap(monkeypatch, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="pw")
    for _ in range(4):
        paused_item()
    paused_item("emit_review")
    ReviewItem.objects.update(due_at=timezone.now() - timedelta(minutes=1))
    monkeypatch.setattr(selectors, "QUEUE_COUNT_CAP", 3)

    counts = {count.output_type: count for count in selectors.queue_counts(user=admin)}
    assert (counts["typed_draft"].pending, counts["typed_draft"].overdue_label) == (4, "3+")
    assert (counts["draft"].pending, counts["draft"].overdue_label) == (1, "1")
    assert selectors.queue_totals(list(counts.values())).overdue_label == "4+"


# --- pending counts ------------------------------------------------------------------------------


def kept_counts() -> dict[str, int]:
    return dict(PendingCount.objects.filter(pending__gt=0).values_list("output_type", "pending"))


def counted_pending() -> dict[str, int]:
    items = ReviewItem.objects.filter(status=ReviewStatus.PENDING).values_list("output_type", flat=True)
    return dict(Counter(items))


def test_pending_counts_follow_every_way_out_of_pending(reviewer, other):
    first, second, third, fourth, fifth = (paused_item() for _ in range(5))
    paused_item("emit_review")
    assert kept_counts() == counted_pending() == {"typed_draft": 5, "draft": 1}

    decide(item_id=first.id, user=reviewer, outcome="approved")
    assert kept_counts() == {"typed_draft": 4, "draft": 1}
    with pytest.raises(AlreadyDecidedError):
        decide(item_id=first.id, user=other, outcome="approved")
    with pytest.raises(EditValidationError):
        decide(item_id=second.id, user=reviewer, outcome="approved", edited_output={**TYPED_OUTPUT, "amount": "x"})
    with pytest.raises(DecisionError):
        decide(item_id=second.id, user=reviewer, outcome="rejected")  # no reason code
    assert kept_counts() == {"typed_draft": 4, "draft": 1}

    result = decide_bulk(item_ids=[second.id, third.id, first.id], user=reviewer, output_type="typed_draft")
    assert len(result.decided) == 2 and list(result.skipped) == [str(first.id)]
    assert kept_counts() == {"typed_draft": 2, "draft": 1}

    ReviewItem.objects.filter(id=fourth.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_overdue_items() == 1
    assert expire_overdue_items() == 0
    assert kept_counts() == {"typed_draft": 1, "draft": 1}

    run_cancel(run_id=fifth.run_id, actor=reviewer)
    assert kept_counts() == counted_pending() == {"draft": 1}
    assert PendingCount.objects.get(output_type="typed_draft").pending == 0


@pytest.fixture
def pool_for_nine_flows(monkeypatch):
    """On PostgreSQL, a pool with room for nine flows running inline at once in this one process.

    A worker runs one flow at a time, with a few connections (its own, the persistence's thread, a step's
    thread); nine at once here would hold the default pool of 10 and wait out its 30 s timeout.
    """
    pool = connection.settings_dict["OPTIONS"].get("pool") if connection.vendor == "postgresql" else None
    if not pool:
        yield
        return
    connection.close()
    connection.close_pool()
    monkeypatch.setitem(pool, "max_size", 40)
    yield
    connection.close()
    connection.close_pool()  # the next test's pool is built with the settings' size again


def test_pending_counts_stay_exact_under_concurrent_pauses_and_decisions(reviewer, pool_for_nine_flows):
    to_decide = [paused_item() for _ in range(6)]
    barrier = threading.Barrier(len(to_decide) + 3)
    errors: list[BaseException] = []

    def run(work):
        try:
            barrier.wait(timeout=10)
            work()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    work = [lambda item=item: decide(item_id=item.id, user=reviewer, outcome="approved") for item in to_decide]
    work += [paused_item for _ in range(3)]
    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert kept_counts() == counted_pending() == {"typed_draft": 3}


def test_recount_corrects_counts_that_drifted_and_reports_them(caplog):
    paused_item()
    paused_item()
    paused_item("emit_review")
    assert pending_counts_recount() == {}

    ReviewItem.objects.filter(output_type="draft").update(status=ReviewStatus.CANCELLED)  # behind the services' back
    PendingCount.objects.filter(output_type="typed_draft").update(pending=7)
    PendingCount.objects.create(output_type="gone", pending=2)

    assert pending_counts_recount() == {"draft": (1, 0), "gone": (2, 0), "typed_draft": (7, 2)}
    assert kept_counts() == counted_pending() == {"typed_draft": 2}
    assert "pending counts corrected" in caplog.text
    assert pending_counts_recount() == {}


# --- cancel --------------------------------------------------------------------------------------


def test_cancelling_a_waiting_run_cancels_its_item(reviewer, side_effects):
    item = paused_item()
    run_cancel(run_id=item.run_id, actor=reviewer)

    item.refresh_from_db()
    assert item.status == ReviewStatus.CANCELLED
    assert event_kinds(item) == ["created", "cancelled"]
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.CANCELLED
    with pytest.raises(AlreadyDecidedError, match=r"^The run was cancelled; this item can no longer be decided$"):
        decide(item_id=item.id, user=reviewer, outcome="approved")
    assert not Decision.objects.filter(item=item).exists()
    assert side_effects() == ["draft"]


def test_retry_of_a_run_cancelled_while_waiting_brings_its_item_back_to_the_queue(reviewer, side_effects):
    item = paused_item()
    gate_decision = GateDecision.objects.get(review_item=item)
    run_cancel(run_id=item.run_id, actor=reviewer)
    assert kept_counts() == counted_pending() == {}

    assert run_retry(run_id=item.run_id, actor=reviewer) == RunStatus.WAITING_REVIEW

    # The same item, for the same open pause, is pending again: counted, and still linked to its gate decision.
    run = FlowRun.objects.get(id=item.run_id)
    assert (run.status, run.finished_at, run.attempts) == (RunStatus.WAITING_REVIEW, None, 1)
    item.refresh_from_db()
    assert item.status == ReviewStatus.PENDING
    assert event_kinds(item) == ["created", "cancelled", "reopened"]
    assert kept_counts() == counted_pending() == {"typed_draft": 1}
    assert GateDecision.objects.get(review_item=item) == gate_decision
    assert ReviewItem.objects.filter(run=run).count() == 1

    decide(item_id=item.id, user=reviewer, outcome="approved")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["published"] == TYPED_OUTPUT
    assert side_effects() == ["draft", "publish"]  # the paused step was not run again
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.CORRECT


def test_retry_of_a_run_that_failed_resuming_a_cancelled_item_reopens_it(reviewer, side_effects):
    # What a retry queued (not reopened) did: the worker resumed the open pause and failed on its item.
    item = paused_item()
    run_cancel(run_id=item.run_id, actor=reviewer)
    FlowRun.objects.filter(id=item.run_id).update(status=RunStatus.FAILED, error="ReviewItem has no decision.")

    assert run_retry(run_id=item.run_id, actor=reviewer) == RunStatus.WAITING_REVIEW
    decide(item_id=item.id, user=reviewer, outcome="approved")
    run = FlowRun.objects.get(id=item.run_id)
    assert (run.status, run.error) == (RunStatus.COMPLETED, "")
    assert side_effects() == ["draft", "publish"]


def test_retry_of_a_run_cancelled_as_its_step_paused_reopens_the_item(reviewer, monkeypatch, side_effects):
    # The cancel commits while the step runs, so it finds no item; the step then pauses.
    record = engine_flows.side_effect

    def cancel_during(step):
        record(step)
        run_cancel(run_id=current_execution.get().run_id, actor=reviewer)

    monkeypatch.setattr(engine_flows, "side_effect", cancel_during)
    run = run_create(flow_name="typed_emit_review", inputs={"title": "Invoice 7", "amount": 120.0})
    monkeypatch.setattr(engine_flows, "side_effect", record)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    item = ReviewItem.objects.get(run=run)
    assert item.status == ReviewStatus.CANCELLED  # nobody can decide on the cancelled run
    assert kept_counts() == counted_pending() == {}

    assert run_retry(run_id=run.id, actor=reviewer) == RunStatus.WAITING_REVIEW
    decide(item_id=item.id, user=reviewer, outcome="approved")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert side_effects() == ["draft", "publish"]


def test_retry_of_a_run_cancelled_while_queued_or_running_runs_it_again(side_effects):
    queued = run_create(flow_name="counter", inputs={"label": "q", "loops": 1}, enqueue=False)
    running = run_create(flow_name="counter", inputs={"label": "r", "loops": 1}, enqueue=False)
    assert run_claim(run_id=running.id, worker="gone:1")
    for run in (queued, running):
        run_cancel(run_id=run.id, actor=None)
        assert run_retry(run_id=run.id, actor=None) == RunStatus.QUEUED
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED, run.error
    assert not ReviewItem.objects.exists()


def test_a_cancel_after_a_decision_waits_for_it_to_be_applied(reviewer):
    item = paused_item()
    with patch("reviewconsole.engine.services.enqueue_on_commit"):  # the resume has not run yet
        decide(item_id=item.id, user=reviewer, outcome="approved")

    with pytest.raises(RunStateError, match=r"^A decision on this run is being applied; cancel the run once it"):
        run_cancel(run_id=item.run_id, actor=reviewer)
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.WAITING_REVIEW

    # The decision that won is applied, and its verdict stands for it.
    resume_flow(str(item.id))
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["published"] == TYPED_OUTPUT
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.CORRECT


def assert_cancel_won(item: ReviewItem, refused: BaseException | None) -> None:
    assert isinstance(refused, AlreadyDecidedError), repr(refused)
    assert str(refused) == "The run was cancelled; this item can no longer be decided"
    item.refresh_from_db()
    assert item.status == ReviewStatus.CANCELLED
    assert not Decision.objects.filter(item=item).exists()
    assert GateDecision.objects.get(review_item=item).verdict == ""
    assert FlowRun.objects.get(id=item.run_id).status == RunStatus.CANCELLED
    assert kept_counts() == counted_pending() == {}


def test_a_cancel_between_a_decisions_checks_and_its_write_refuses_the_decision(reviewer, monkeypatch):
    item = paused_item()
    check_policy = services.policy_ensure

    def cancel_meanwhile(**kwargs):
        run_cancel(run_id=item.run_id, actor=reviewer)
        return check_policy(**kwargs)

    monkeypatch.setattr(services, "policy_ensure", cancel_meanwhile)
    with pytest.raises(AlreadyDecidedError) as refused:
        decide(item_id=item.id, user=reviewer, outcome="approved")
    assert_cancel_won(item, refused.value)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time")
def test_a_decision_made_while_a_cancel_holds_the_run_waits_and_is_refused(reviewer, monkeypatch):
    """The cancel has moved the run, not yet its item; the decision must wait for it, then be refused."""
    item = paused_item()
    cancel_items = services.review_items_cancel_for_run
    run_moved, go_on = threading.Event(), threading.Event()
    outcome: dict[str, BaseException | None] = {}

    def cancel_items_later(**kwargs):
        run_moved.set()
        assert go_on.wait(timeout=60)
        return cancel_items(**kwargs)

    monkeypatch.setattr(services, "review_items_cancel_for_run", cancel_items_later)

    def in_thread(name, work):
        try:
            work()
            outcome[name] = None
        except BaseException as error:  # reported by the assertions below
            outcome[name] = error
        finally:
            connection.close()

    def decide_once_the_run_moved():
        assert run_moved.wait(timeout=60)
        decide(item_id=item.id, user=reviewer, outcome="approved")

    threads = [
        threading.Thread(target=in_thread, args=("cancel", lambda: run_cancel(run_id=item.run_id, actor=reviewer))),
        threading.Thread(target=in_thread, args=("decide", decide_once_the_run_moved)),
    ]
    for thread in threads:
        thread.start()
    # Let the cancel go on once the decision has either finished or is waiting for a lock held by the cancel.
    with connection.cursor() as cursor:
        for _ in range(600):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if "decide" in outcome or cursor.fetchone()[0]:
                break
            threading.Event().wait(0.05)
    go_on.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    assert outcome["cancel"] is None
    assert_cancel_won(item, outcome["decide"])


# --- selectors -----------------------------------------------------------------------------------


def _with_review_perm(user):
    user.user_permissions.add(Permission.objects.get(content_type__app_label="reviews", codename="review_item"))
    return type(user).objects.get(pk=user.pk)  # fresh instance: no cached permissions


@pytest.fixture
def users(django_user_model):
    superuser = django_user_model.objects.create_superuser("admin", password="pw")
    scoped = _with_review_perm(django_user_model.objects.create_user("scoped", password="pw"))
    ReviewerScope.objects.create(user=scoped, output_type="typed_draft")
    ReviewerScope.objects.create(user=scoped, output_type="invoice")
    unscoped = _with_review_perm(django_user_model.objects.create_user("unscoped", password="pw"))
    plain = django_user_model.objects.create_user("plain", password="pw")
    return {"superuser": superuser, "scoped": scoped, "unscoped": unscoped, "plain": plain}


def test_reviewable_output_types(users):
    assert selectors.reviewable_output_types(users["superuser"]) is None
    assert selectors.reviewable_output_types(users["scoped"]) == {"typed_draft", "invoice"}
    assert selectors.reviewable_output_types(users["unscoped"]) is None
    assert selectors.reviewable_output_types(users["plain"]) == set()
    assert selectors.reviewable_output_types(AnonymousUser()) == set()
    assert selectors.can_review(users["scoped"], "invoice")
    assert not selectors.can_review(users["scoped"], "draft")
    assert selectors.can_review(users["unscoped"], "draft")
    assert not selectors.can_review(users["plain"], "draft")


def make_item(output_type="typed_draft", *, reason=ReviewReason.FLOW_REQUESTED, confidence=None, age_minutes=0):
    """A pending item without running a flow, created `age_minutes` ago."""
    run = run_create(flow_name="emit_review", inputs={}, enqueue=False)
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="draft", context={}, state={})
    item = ReviewItem.objects.create(
        run=run, pending=pending, method="draft", output_type=output_type, reason=reason, confidence=confidence
    )
    ReviewItem.objects.filter(id=item.id).update(created_at=timezone.now() - timedelta(minutes=age_minutes))
    item.refresh_from_db()
    return item


def ids(items) -> list:
    return [item.id for item in items]


def test_queue_items_filters_and_sorts(users):
    admin = users["superuser"]
    old_low = make_item(confidence=0.2, reason=ReviewReason.LOW_CONFIDENCE, age_minutes=90)
    mid_high = make_item(confidence=0.6, reason=ReviewReason.HIGH_VALUE, age_minutes=60)
    new_top = make_item(confidence=0.9, reason=ReviewReason.LOW_CONFIDENCE, age_minutes=5)
    draft = make_item("draft", confidence=0.5, age_minutes=30)
    done = make_item(confidence=0.3, age_minutes=120)
    ReviewItem.objects.filter(id=done.id).update(status=ReviewStatus.DECIDED)

    assert ids(selectors.queue_items(user=admin)) == [old_low.id, mid_high.id, draft.id, new_top.id]
    assert ids(selectors.queue_items(user=admin, sort="newest")) == [new_top.id, draft.id, mid_high.id, old_low.id]
    assert ids(selectors.queue_items(user=admin, sort="confidence")) == [old_low.id, draft.id, mid_high.id, new_top.id]
    assert ids(selectors.queue_items(user=admin, sort="-confidence")) == [new_top.id, mid_high.id, draft.id, old_low.id]
    assert ids(selectors.queue_items(user=admin, sort="bogus")) == [old_low.id, mid_high.id, draft.id, new_top.id]

    assert ids(selectors.queue_items(user=admin, output_type="draft")) == [draft.id]
    assert ids(selectors.queue_items(user=admin, reason="low_confidence")) == [old_low.id, new_top.id]
    assert ids(selectors.queue_items(user=admin, older_than_minutes=45)) == [old_low.id, mid_high.id]
    assert ids(selectors.queue_items(user=admin, confidence_min=0.5)) == [mid_high.id, draft.id, new_top.id]
    assert ids(selectors.queue_items(user=admin, confidence_max=0.5)) == [old_low.id, draft.id]
    window = selectors.queue_items(user=admin, confidence_min=0.3, confidence_max=0.7, output_type="typed_draft")
    assert ids(window) == [mid_high.id]
    assert ids(selectors.queue_items(user=admin, status="decided")) == [done.id]
    assert ids(selectors.queue_items(user=admin, status="")) == [done.id, old_low.id, mid_high.id, draft.id, new_top.id]

    # Scoped reviewers see only their types; users without the permission see nothing.
    assert ids(selectors.queue_items(user=users["scoped"])) == [old_low.id, mid_high.id, new_top.id]
    assert ids(selectors.queue_items(user=users["unscoped"])) == [old_low.id, mid_high.id, draft.id, new_top.id]
    assert ids(selectors.queue_items(user=users["plain"])) == []


def test_next_item_skips_items_claimed_by_others(users):
    me, someone = users["unscoped"], users["scoped"]
    oldest = make_item(age_minutes=30)
    middle = make_item("draft", age_minutes=20)
    newest = make_item(age_minutes=10)

    assert selectors.next_item_for(user=me) == oldest
    assert review_item_claim(item_id=oldest.id, user=someone)
    assert selectors.next_item_for(user=me) == middle
    assert selectors.next_item_for(user=me, after=middle) == newest
    assert selectors.next_item_for(user=me, output_type="typed_draft") == newest
    # The claimer still gets their own item; a lapsed claim frees it for others.
    assert selectors.next_item_for(user=someone) == oldest
    ReviewItem.objects.filter(id=oldest.id).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert selectors.next_item_for(user=me) == oldest
    # Scoped reviewers never get items of other types.
    ReviewItem.objects.filter(id__in=[oldest.id, newest.id]).update(status=ReviewStatus.DECIDED)
    assert selectors.next_item_for(user=someone) is None
    assert selectors.next_item_for(user=me) == middle
    assert selectors.next_item_for(user=users["plain"]) is None


# --- the item's fields copied onto its decision -------------------------------------------------


def test_every_decision_carries_its_items_type_and_creation_time(reviewer, side_effects):
    """Reviewer throughput reads a decision's type, its item's age and whether it was edited from the decision
    alone: each write path (a decision, an edit, a bulk decision, an expiry) must copy them from the item."""
    AutonomyPolicy.objects.create(output_type="draft", expiry_minutes=1, expiry_outcome="rejected")
    plain, edited, first, second = (paused_item() for _ in range(4))
    expiring = paused_item("payload_review")
    items = [plain, edited, first, second, expiring]
    # Created well before they are decided, so a copy of the decision's own time would not pass.
    for days, item in enumerate(items, start=1):
        ReviewItem.objects.filter(id=item.id).update(created_at=timezone.now() - timedelta(days=days))
    ReviewItem.objects.filter(id=expiring.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    decide(item_id=plain.id, user=reviewer, outcome="approved")
    edit = {"title": "Invoice 7", "amount": 125.5, "confidence": 0.4}
    decide(item_id=edited.id, user=reviewer, outcome="approved", edited_output=edit)
    assert decide_bulk(item_ids=[first.id, second.id], user=reviewer, output_type="typed_draft").decided
    assert expire_overdue_items() == 1

    for item in items:
        item.refresh_from_db()
        decision = Decision.objects.get(item=item)
        assert (decision.output_type, decision.item_created_at) == (item.output_type, item.created_at)
        assert decision.edited == (item == edited)
    assert Decision.objects.filter(item=expiring, output_type="draft", user=None).exists()
