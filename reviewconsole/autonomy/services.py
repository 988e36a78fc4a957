"""Writes for autonomy: policies and their history, the gate, verdicts."""

from __future__ import annotations

import logging
import random
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewconsole.autonomy.models import AutonomyPolicy, FieldError, GateDecision, PolicyChange, Route, Verdict

logger = logging.getLogger(__name__)

EDITABLE_POLICY_FIELDS = (
    "threshold",
    "always_review",
    "audit_rate",
    "target_accuracy",
    "min_samples",
    "mode",
    "auto_min_threshold",
    "auto_max_threshold",
    "reject_reasons",
    "sla_minutes",
    "expiry_minutes",
    "expiry_outcome",
)


class PolicyError(ValueError):
    """A policy change that cannot be applied; the message names the problem, `field` the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def policy_ensure(*, output_type: str) -> AutonomyPolicy:
    """The type's policy, created with defaults (everything reviewed) the first time the type is seen."""
    policy, _ = AutonomyPolicy.objects.get_or_create(output_type=output_type)
    return policy


def _check(field: str, value: Any) -> None:
    fraction_fields = ("audit_rate", "target_accuracy", "auto_min_threshold", "auto_max_threshold")
    if field == "threshold" and value is not None and not 0 <= value <= 1:
        raise PolicyError("threshold must be between 0 and 1, or null to review everything", field="threshold")
    if field in fraction_fields and not 0 <= value <= 1:
        raise PolicyError(f"{field} must be between 0 and 1", field=field)


def policy_update(
    *, output_type: str, changes: dict[str, Any], by: Any, reason: str, automatic: bool = False, evidence: Any = None
) -> PolicyChange | None:
    """Change policy fields and record who, when, from→to and why.

    Side effects: the policy row (locked for the change) and one PolicyChange.
    Returns None when nothing actually changed.
    """
    if not reason or not reason.strip():
        raise PolicyError("reason is required", field="reason")
    unknown = sorted(set(changes) - set(EDITABLE_POLICY_FIELDS))
    if unknown:
        raise PolicyError(f"unknown field: {', '.join(unknown)}", field=unknown[0])
    for field, value in changes.items():
        _check(field, value)
    with transaction.atomic():
        policy_ensure(output_type=output_type)
        policy = AutonomyPolicy.objects.select_for_update().get(output_type=output_type)
        diff = {f: [getattr(policy, f), v] for f, v in changes.items() if getattr(policy, f) != v}
        if not diff:
            return None
        for field, (_, new) in diff.items():
            setattr(policy, field, new)
        if policy.auto_min_threshold > policy.auto_max_threshold:
            raise PolicyError("auto_min_threshold must not exceed auto_max_threshold", field="auto_min_threshold")
        policy.save(update_fields=[*diff, "updated_at"])
        change = PolicyChange.objects.create(
            policy=policy,
            by=by if getattr(by, "pk", None) else None,
            automatic=automatic,
            changes=diff,
            reason=reason.strip(),
            evidence=evidence or {},
        )
    logger.info("policy %s changed %s (%s)", output_type, diff, "automatic" if automatic else by)
    return change


def _step_key() -> tuple[Any, str]:
    """The run and step asking, so a re-executed step gets the decision it got the first time."""
    from crewai.flow.flow_context import current_flow_method_name

    from reviewconsole.engine.context import current_execution

    execution = current_execution.get()
    method = current_flow_method_name.get()
    if execution is None or not method:
        return None, ""
    return execution.run_id, f"{method}#{execution.occurrences.get(str(method), 1)}"


def gate(
    output_type: str,
    confidence: float | None,
    *,
    force_review: bool = False,
    reason: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """Route one output: "auto_approved" or "human_review", recorded as a GateDecision.

    Business rules (high value and the like) stay in the flow, which passes
    `force_review` with its `reason`. Above the threshold, a random share
    (`audit_rate`) is still reviewed as audit samples.
    """
    run_id, step_key = _step_key()
    if step_key:
        earlier = GateDecision.objects.filter(run_id=run_id, step_key=step_key).values_list("route", flat=True)
        if earlier:
            return earlier[0]
    policy = policy_ensure(output_type=output_type)
    threshold = policy.threshold
    audit = False
    probability = 1.0
    if force_review:
        route, why = Route.HUMAN_REVIEW, reason or "flow_requested"
    elif policy.always_review or threshold is None:
        # No threshold yet is the starting point of gradual autonomy: every output is reviewed.
        route, why = Route.HUMAN_REVIEW, "always_review"
    elif confidence is None or confidence < threshold:
        route, why = Route.HUMAN_REVIEW, "low_confidence"
    else:
        probability = policy.audit_rate
        audit = (rng or random).random() < policy.audit_rate
        route, why = (Route.HUMAN_REVIEW, "audit_sample") if audit else (Route.AUTO_APPROVED, "")
    try:
        GateDecision.objects.create(
            output_type=output_type,
            confidence=confidence,
            threshold=threshold,
            route=route,
            reason=why,
            audit=audit,
            review_probability=probability,
            run_id=run_id,
            step_key=step_key,
        )
    except IntegrityError:
        # The same step asked twice at once (a redelivered task); the first answer stands.
        return GateDecision.objects.get(run_id=run_id, step_key=step_key).route
    return route


def gate_decision_attach(*, item: Any) -> GateDecision:
    """Link a new review item to the gate decision that sent it, or record one.

    A flow may send an output to review without asking the gate; its
    decision is still a measurement of the AI, so it gets a gate record too.
    """
    decision = (
        GateDecision.objects.filter(run_id=item.run_id, route=Route.HUMAN_REVIEW, review_item__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )
    if decision is None:
        policy = policy_ensure(output_type=item.output_type)
        decision = GateDecision.objects.create(
            output_type=item.output_type,
            confidence=item.confidence,
            threshold=policy.threshold,
            route=Route.HUMAN_REVIEW,
            reason=item.reason,
            run_id=item.run_id,
        )
    decision.review_item = item
    decision.save(update_fields=["review_item"])
    return decision


def verdict_record(*, item: Any, decision: Any) -> None:
    """Write the reviewer's verdict on the gate decision behind the item.

    Approved unchanged = correct; edited = incorrect, with the fields changed;
    rejected = incorrect, with its reason. The first outcome of an item is its
    approving one; any other outcome counts as incorrect. Expired items get
    no verdict (nobody looked).
    """
    from reviewconsole.reviews.diff import changed_fields

    correct = decision.outcome == item.outcomes[0] and decision.edited_output is None
    fields = changed_fields(decision.diff) if decision.edited_output is not None else []
    gate_decision = GateDecision.objects.filter(review_item=item).first()
    if gate_decision is None:
        return
    gate_decision.verdict = Verdict.CORRECT if correct else Verdict.INCORRECT
    gate_decision.error_fields = fields
    gate_decision.reject_reason = decision.reason_code
    gate_decision.verdict_at = timezone.now()
    gate_decision.save(update_fields=["verdict", "error_fields", "reject_reason", "verdict_at"])
    FieldError.objects.bulk_create(
        FieldError(gate_decision=gate_decision, output_type=item.output_type, field=field) for field in fields
    )
