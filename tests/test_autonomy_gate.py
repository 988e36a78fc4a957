"""The autonomy gate's routes, its idempotence per run step, and policy changes with their history."""

import random

import pytest
from crewai.flow.flow_context import current_flow_method_name

from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, PolicyChange, Route
from reviewconsole.autonomy.services import PolicyError, gate, gate_decision_attach, policy_ensure, policy_update
from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.reviews.models import ReviewItem

pytestmark = pytest.mark.django_db

TYPE = "gate_test"


def set_policy(**changes):
    return policy_update(output_type=TYPE, changes=changes, by=None, reason="test set-up")


def only_decision() -> GateDecision:
    return GateDecision.objects.get(output_type=TYPE)


def test_a_new_type_reviews_everything_whatever_the_confidence():
    assert gate(TYPE, 0.99) == Route.HUMAN_REVIEW
    decision = only_decision()
    assert decision.reason == "always_review"
    assert decision.threshold is None
    assert decision.review_probability == 1.0
    assert not decision.audit


def test_above_threshold_without_audits_is_auto_approved_with_no_chance_of_review():
    set_policy(threshold=0.5, audit_rate=0.0)
    assert gate(TYPE, 0.9) == Route.AUTO_APPROVED
    decision = only_decision()
    assert (decision.route, decision.reason, decision.threshold) == (Route.AUTO_APPROVED, "", 0.5)
    assert decision.review_probability == 0.0


def test_below_threshold_and_missing_confidence_are_reviewed():
    set_policy(threshold=0.5, audit_rate=0.0)
    assert gate(TYPE, 0.49) == Route.HUMAN_REVIEW
    assert gate(TYPE, None) == Route.HUMAN_REVIEW
    assert set(GateDecision.objects.values_list("reason", "review_probability")) == {("low_confidence", 1.0)}


def test_threshold_itself_is_auto_approved():
    set_policy(threshold=0.8, audit_rate=0.0)
    assert gate(TYPE, 0.8) == Route.AUTO_APPROVED


def test_always_review_wins_over_the_threshold():
    set_policy(threshold=0.1, audit_rate=0.0, always_review=True)
    assert gate(TYPE, 0.99) == Route.HUMAN_REVIEW
    assert only_decision().reason == "always_review"


def test_force_review_records_the_flows_reason():
    set_policy(threshold=0.1, audit_rate=0.0)
    assert gate(TYPE, 0.99, force_review=True, reason="high_value") == Route.HUMAN_REVIEW
    assert gate(TYPE, 0.99, force_review=True) == Route.HUMAN_REVIEW
    # A forced review cannot pass for the gate's own routing: reviewers read the reason.
    with pytest.raises(ValueError, match="'low_confidence' is a reason the gate gives itself"):
        gate(TYPE, 0.2, force_review=True, reason="low_confidence")
    reasons = list(GateDecision.objects.order_by("id").values_list("reason", "review_probability", "audit"))
    assert reasons == [("high_value", 1.0, False), ("flow_requested", 1.0, False)]


def test_only_a_rule_forces_a_review_the_gates_own_routing_does_not():
    """The gate's routing is a sample of what autonomy would decide; a rule's forced review is not."""
    gate(TYPE, 0.99)  # no threshold yet: full review
    set_policy(threshold=0.5, audit_rate=1.0)
    gate(TYPE, 0.2)
    gate(TYPE, 0.9)
    gate(TYPE, 0.9, force_review=True, reason="high_value")
    gate(TYPE, None, force_review=True)
    set_policy(always_review=True)
    gate(TYPE, 0.9)
    assert list(GateDecision.objects.order_by("id").values_list("reason", "forced")) == [
        ("always_review", False),
        ("low_confidence", False),
        ("audit_sample", False),
        ("high_value", True),
        ("flow_requested", True),
        ("always_review", False),
    ]


def paused_item(run: FlowRun) -> ReviewItem:
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    return ReviewItem.objects.create(
        run=run, pending=pending, method="review", output_type=TYPE, confidence=0.7, outcomes=["approved"]
    )


def test_a_review_the_flow_asked_for_without_the_gate_is_forced():
    set_policy(threshold=0.5, audit_rate=0.0)
    asked = FlowRun.objects.create(flow_name="gate_test")
    routed = GateDecision.objects.create(
        output_type=TYPE, confidence=0.3, route=Route.HUMAN_REVIEW, reason="low_confidence", run=asked
    )
    assert gate_decision_attach(item=paused_item(asked)) == routed
    routed.refresh_from_db()
    assert not routed.forced
    unasked = paused_item(FlowRun.objects.create(flow_name="gate_test"))
    recorded = gate_decision_attach(item=unasked)
    assert (recorded.reason, recorded.forced, recorded.review_item) == ("flow_requested", True, unasked)


def test_audit_samples_follow_the_seeded_rng_and_record_their_probability():
    set_policy(threshold=0.5, audit_rate=0.3)
    rng = random.Random(11)
    routes = [gate(TYPE, 0.9, rng=rng) for _ in range(200)]
    replay = random.Random(11)
    expected = [Route.HUMAN_REVIEW if replay.random() < 0.3 else Route.AUTO_APPROVED for _ in range(200)]
    assert routes == expected
    audits = GateDecision.objects.filter(audit=True)
    assert audits.count() == expected.count(Route.HUMAN_REVIEW) > 0
    assert set(audits.values_list("reason", flat=True)) == {"audit_sample"}
    # Every above-threshold output had the same chance of review, audited or not.
    assert set(GateDecision.objects.values_list("review_probability", flat=True)) == {0.3}


def test_the_same_run_step_asking_twice_gets_the_first_decision():
    run = FlowRun.objects.create(flow_name="invoice_processing")
    execution_token = current_execution.set(Execution(run_id=str(run.id), occurrences={"validate": 1}))
    method_token = current_flow_method_name.set("validate")
    try:
        assert gate(TYPE, 0.9) == Route.HUMAN_REVIEW  # reviews everything at first
        set_policy(threshold=0.5, audit_rate=0.0)
        # A re-executed step (a retry after a crash) must not flip its route.
        assert gate(TYPE, 0.9) == Route.HUMAN_REVIEW
        decision = only_decision()
        assert decision.step_key == "validate#1"
        assert str(decision.run_id) == str(run.id)
        # The method's second occurrence in the run is a new question.
        current_execution.get().occurrences["validate"] = 2
        assert gate(TYPE, 0.9) == Route.AUTO_APPROVED
    finally:
        current_flow_method_name.reset(method_token)
        current_execution.reset(execution_token)
    assert GateDecision.objects.filter(output_type=TYPE).count() == 2


@pytest.mark.parametrize(
    ("changes", "reason", "message"),
    [
        ({"threshold": 1.5}, "too high", "threshold must be between 0 and 1"),
        ({"threshold": -0.1}, "too low", "threshold must be between 0 and 1"),
        ({"audit_rate": 2}, "too many audits", "audit_rate must be between 0 and 1"),
        ({"threshold": 0.8}, "  ", "reason is required"),
        ({"colour": "blue"}, "not a field", "unknown field: colour"),
        ({"auto_min_threshold": 0.9, "auto_max_threshold": 0.8}, "crossed", "must not exceed"),
    ],
)
def test_invalid_policy_changes_are_refused(changes, reason, message):
    policy_ensure(output_type=TYPE)
    with pytest.raises(PolicyError, match=message):
        policy_update(output_type=TYPE, changes=changes, by=None, reason=reason)
    assert not PolicyChange.objects.exists()
    assert AutonomyPolicy.objects.get(output_type=TYPE).threshold is None


def test_policy_changes_record_from_to_who_and_whether_automatic(django_user_model):
    manager = django_user_model.objects.create_user("mia")
    first = policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=manager, reason="looks good")
    assert first.changes == {"threshold": [None, 0.8]}
    assert (first.by, first.automatic, first.reason) == (manager, False, "looks good")
    assert policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=manager, reason="again") is None
    second = policy_update(
        output_type=TYPE,
        changes={"threshold": None, "audit_rate": 0.05},
        by=None,
        reason="Regression guard: test",
        automatic=True,
        evidence={"n": 100},
    )
    assert second.changes == {"threshold": [0.8, None]}  # audit_rate was already 0.05
    assert (second.by, second.automatic, second.evidence) == (None, True, {"n": 100})
    assert list(AutonomyPolicy.objects.get(output_type=TYPE).changes.all()) == [second, first]
