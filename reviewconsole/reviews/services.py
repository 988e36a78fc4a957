"""Writes for review items. `decide()` is the only way an item gets a decision."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from reviewconsole.autonomy.services import gate_decision_attach, policy_ensure, verdict_record, verdict_withdraw
from reviewconsole.engine import services as engine_services
from reviewconsole.engine.checks import CheckContext, run_checks
from reviewconsole.engine.encoding import to_json
from reviewconsole.engine.enqueue import enqueue_on_commit
from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus
from reviewconsole.engine.summaries import summarize
from reviewconsole.reviews import four_eyes, reliability
from reviewconsole.reviews.confirmations import approval_confirmations, bulk_skip_reason
from reviewconsole.reviews.diff import field_diff
from reviewconsole.reviews.models import (
    Decision,
    FirstApproval,
    ReviewerPreference,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    ReviewStatus,
)
from reviewconsole.reviews.output_keys import output_keys_record
from reviewconsole.reviews.pending_counts import pending_count_add
from reviewconsole.reviews.schemas import REVIEW_METADATA_KEY, InvalidEdit, validated_edit
from reviewconsole.reviews.search import search_text
from reviewconsole.reviews.selectors import item_findings

logger = logging.getLogger(__name__)

REJECT_OUTCOME = "rejected"
CLAIM_MINUTES = 5


class DecisionError(Exception):
    """A decision that cannot be applied; the message names the problem, `field` the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AlreadyDecidedError(DecisionError):
    """The item can no longer be decided: decided by someone else, expired, or its run was cancelled."""

    def __init__(self, item: ReviewItem) -> None:
        decision = getattr(item, "decision", None)
        if decision is not None and item.status == ReviewStatus.DECIDED:
            who = decision.user.get_username() if decision.user else "the system"
            message = f"Already decided by {who} at {decision.at:%Y-%m-%d %H:%M:%S %Z}"
        elif item.status == ReviewStatus.CANCELLED:
            message = "The run was cancelled; this item can no longer be decided"
        else:
            message = f"This item is {item.get_status_display().lower()}; it can no longer be decided"
        super().__init__(message)


class NeedsSecondApproverError(DecisionError):
    """The first approver of a four-eyes item tried to approve it again (see `four_eyes`)."""

    def __init__(self) -> None:
        super().__init__(four_eyes.SECOND_APPROVER_MESSAGE, field="outcome")


class UndoRefusedError(DecisionError):
    """An undo that cannot be applied; nothing was changed. `status` is the HTTP answer (409, or 403)."""

    status = 409


class UndoTooLateError(UndoRefusedError):
    def __init__(self, message: str = "Too late to undo: the flow has resumed") -> None:
        super().__init__(message)


class UndoNotYoursError(UndoRefusedError):
    status = 403

    def __init__(self) -> None:
        super().__init__("Too late to undo: only the person who decided can undo")


class EditValidationError(DecisionError):
    """The edited output does not validate against the output type's model."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg']}" for e in errors)
        super().__init__(f"Invalid edit: {fields}", field="edited_output")


def _log(item_id: Any, kind: ReviewEventKind, user: Any = None, **detail: Any) -> None:
    ReviewEvent.objects.create(
        item_id=item_id, kind=kind, user=user if getattr(user, "pk", None) else None, detail=to_json(detail)
    )


def review_item_create_for_pause(*, run_id: Any, pending: PendingFeedback, context: Any, state: dict) -> ReviewItem:
    """Create the review item for a paused run (called inside the pause transaction).

    Side effects: the run moves running → waiting_review with the paused
    state; a ReviewItem with deadlines from its type's policy, linked to the
    gate decision that sent it (one is recorded if the flow did not ask the
    gate); the findings of its type's checks and its duplicate-lookup keys
    (`_checked`); a `created` event; the type's pending count; the new-item
    notification is enqueued on commit. If the run was cancelled while the
    step ran, the item is created cancelled (a `cancelled` event, no count):
    its cancel found no item, nobody may decide on a cancelled run, and a
    retry reopens it like any cancelled item.
    """
    review = (context.metadata or {}).get(REVIEW_METADATA_KEY, {})
    output_type = review.get("output_type", "unspecified")
    # The run's row first, the order every writer of a run and its items keeps (see engine run_lock).
    paused = engine_services.run_pause(run_id=run_id, note=f"waiting for review of {context.method_name}", state=state)
    item = ReviewItem.objects.create(
        run_id=run_id,
        pending=pending,
        method=context.method_name,
        output_type=output_type,
        reason=review.get("reason", "flow_requested"),
        confidence=review.get("confidence"),
        message=context.message or "",
        output=to_json(context.method_output),
        schema=review.get("schema"),
        outcomes=review.get("outcomes") or list(context.emit or ["approved", REJECT_OUTCOME]),
        uses_emit=bool(context.emit),
        status=ReviewStatus.PENDING if paused else ReviewStatus.CANCELLED,
        source_spans=review.get("source_spans") or {},
        **_deadlines(output_type),
    )
    _checked(item)
    gate_decision = gate_decision_attach(item=item)
    if gate_decision.reason and gate_decision.reason != item.reason:
        # The gate knows why the output was sent (threshold, audit, business rule).
        item.reason = gate_decision.reason
        item.confidence = item.confidence if item.confidence is not None else gate_decision.confidence
        item.save(update_fields=["reason", "confidence"])
    _log(item.id, ReviewEventKind.CREATED, reason=item.reason)
    if not paused:
        _log(item.id, ReviewEventKind.CANCELLED)
        return item
    enqueue_on_commit("reviewconsole.reviews.tasks.notify_new_item", str(item.id))
    pending_count_add(output_type=output_type, delta=1)
    return item


def _checked(item: ReviewItem) -> None:
    """Run the type's checks on a new item's output, store the findings and the summary a queue row shows
    (with the text the search reads), and key the output for later duplicate lookups. The lookup runs before
    the item's own keys are written, so it finds only others."""
    inputs = FlowRun.objects.filter(id=item.run_id).values_list("inputs", flat=True).first() or {}
    item.set_findings(run_checks(item.output_type, item.output, CheckContext(inputs=inputs, run_id=item.run_id)))
    item.summary = summarize(item.output_type, item.output, item.findings)
    item.search_text = search_text(summary=item.summary, output=item.output, inputs=inputs)
    item.save(update_fields=["findings", "finding_count", "error_count", "summary", "search_text"])
    output_keys_record(
        output_type=item.output_type, output=item.output, run_id=item.run_id, created_at=item.created_at, item=item
    )


def _deadlines(output_type: str) -> dict[str, Any]:
    """The SLA and expiry of an item entering the queue now, from its type's policy."""
    policy = policy_ensure(output_type=output_type)
    now = timezone.now()
    return {
        "due_at": now + timedelta(minutes=policy.sla_minutes) if policy.sla_minutes else None,
        "expires_at": now + timedelta(minutes=policy.expiry_minutes) if policy.expiry_minutes else None,
    }


def review_item_claim(*, item_id: Any, user: Any) -> bool:
    """Claim an open item for CLAIM_MINUTES so others see it is being reviewed.

    Side effects: the claim fields, by a conditional update that succeeds only
    when nobody else holds a live claim (and never for the first approver of an
    item awaiting its second approval, see `four_eyes`); a `claimed` event when
    newly claimed. Returns whether `user` now holds the claim.
    """
    now = timezone.now()
    with transaction.atomic():
        held_by_user = ReviewItem.objects.filter(
            id=item_id, claimed_by=user, claim_expires_at__gte=now, status=ReviewStatus.PENDING
        ).exists()
        claimed = (
            ReviewItem.objects.filter(id=item_id, status=ReviewStatus.PENDING)
            .filter(Q(claimed_by__isnull=True) | Q(claim_expires_at__lt=now) | Q(claimed_by=user))
            # Its first approver cannot give the second approval (four eyes): their claim would only keep others off.
            .exclude(first_approval__user=user)
            .update(claimed_by=user, claim_expires_at=now + timedelta(minutes=CLAIM_MINUTES))
        )
        if claimed and not held_by_user:
            _log(item_id, ReviewEventKind.CLAIMED, user)
    return bool(claimed)


def review_item_release(*, item_id: Any, user: Any) -> None:
    """Give up one's own claim (the reviewer skipped the item)."""
    with transaction.atomic():
        if ReviewItem.objects.filter(id=item_id, claimed_by=user).update(claimed_by=None, claim_expires_at=None):
            _log(item_id, ReviewEventKind.RELEASED, user)


def _validated_edit(item: ReviewItem, edited_output: Any) -> Any:
    """The edit as the type's model dumps it, or EditValidationError naming each bad field.

    Strict: unknown fields are refused and no declared field may be left out (the rule is
    `schemas.validated_edit`'s), so an edit can neither blank the output nor pass as approved unchanged.
    """
    try:
        return to_json(validated_edit(item.output_type, edited_output, output=item.output, schema=item.schema))
    except InvalidEdit as error:
        raise EditValidationError(error.errors) from None


def decide(
    *,
    item_id: Any,
    user: Any,
    outcome: str,
    edited_output: Any = None,
    comment: str = "",
    reason_code: str = "",
    bulk: bool = False,
    opened_at: datetime | None = None,
) -> Decision | FirstApproval:
    """Record the one decision on a pending item and queue the flow's resume.

    An approval of an item whose review reason needs four eyes (see `four_eyes`) is first recorded as its
    FirstApproval, returned instead of a Decision: the item stays pending and nothing resumes. The first
    approver's second approval raises NeedsSecondApproverError; another reviewer's approval is the decision.

    Checks, before anything is written: the outcome is one of the item's; a
    rejection has a reason code from the type's list; an edit validates
    against the type's model. Side effects: the item moves pending → decided
    by a conditional update, under the lock of its run's row (of two
    concurrent callers exactly one wins, the other gets AlreadyDecidedError;
    a decision and a cancel of the run serialize: one that comes second is
    refused); a Decision with the field-level diff; the
    verdict on the item's gate decision; a `decided` event (with an edit, the
    findings of the type's checks on the edited output); the type's pending
    count; `resume_flow` (on the queue workers serve first, stamped on the
    run as its outstanding task) and the type's autonomy check (regression
    guard, autopilot) enqueued on commit. A person's decision holds the
    resume back for `UNDO_SECONDS` (`resume_not_before`, see
    `review_item_undo`). The decision's handling time and
    mark (`bulk`: part of a bulk approval; `opened_at`: when the reviewer's
    page showed the item), and perhaps a blind second review, come from
    `reliability`. An edit's summary and search text replace the item's, so
    the queue shows and finds the output as decided.
    """
    item = ReviewItem.objects.select_related("decision__user").get(id=item_id)
    if item.status != ReviewStatus.PENDING:
        raise AlreadyDecidedError(item)
    if outcome not in item.outcomes:
        raise DecisionError(
            f"Unknown outcome '{outcome}'; expected one of: {', '.join(item.outcomes)}", field="outcome"
        )
    reasons = policy_ensure(output_type=item.output_type).reject_reasons
    if outcome == REJECT_OUTCOME and reasons and reason_code not in reasons:
        raise DecisionError(f"A rejection needs a reason code, one of: {', '.join(reasons)}", field="reason_code")
    diff: list[dict[str, Any]] = []
    edit_sent = edited_output is not None
    edit_findings: list[dict[str, Any]] | None = None
    if edited_output is not None:
        if outcome == REJECT_OUTCOME:
            raise DecisionError("A rejection cannot carry an edited output", field="edited_output")
        edited_output = _validated_edit(item, edited_output)
        diff = field_diff(item.output, edited_output)
        if not diff:
            edited_output = None  # saved unchanged: an approval as it stands
        else:
            edit_findings = item_findings(item=item, output=edited_output)

    with transaction.atomic():
        # The run's row first, as a cancel takes it: a concurrent cancel either committed before (the item is
        # cancelled and refused below) or waits for this decision (and then refuses, see
        # review_items_cancel_for_run), so a decision is never recorded for a run that was cancelled meanwhile.
        engine_services.run_lock(run_id=item.run_id)
        # Under the run's lock, so that of two concurrent first approvals the second sees the first.
        if outcome != REJECT_OUTCOME and four_eyes.needs_four_eyes(item):
            first = four_eyes.first_approval_of(item_id=item.id)
            if first is None:
                recorded = four_eyes.first_approval_record(
                    item=item, user=user, outcome=outcome, edited_output=edited_output, diff=diff, comment=comment
                )
                if recorded is None:
                    raise AlreadyDecidedError(ReviewItem.objects.select_related("decision__user").get(id=item_id))
                return recorded
            if four_eyes.is_first_approver(first, user):
                raise NeedsSecondApproverError
            if not edit_sent:
                edited_output, diff = first.edited_output, first.diff
                if edited_output is not None:
                    edit_findings = item_findings(item=item, output=edited_output)
        # The resume next, ahead of new runs, and ahead of the autonomy check below: a worker free for one
        # task should take the flow on. Rolled back with the rest if the decision loses.
        engine_services.run_enqueue_resume(run_id=item.run_id, item_id=item.id)
        now = timezone.now()
        if not ReviewItem.objects.filter(id=item_id, status=ReviewStatus.PENDING).update(
            status=ReviewStatus.DECIDED,
            decided_at=now,
            resume_not_before=_undo_window_end(now, user),
            claimed_by=None,
            claim_expires_at=None,
            **_summary_of_edit(item, edited_output, edit_findings),
        ):
            raise AlreadyDecidedError(ReviewItem.objects.select_related("decision__user").get(id=item_id))
        decision = Decision.objects.create(
            item=item,
            outcome=outcome,
            edited_output=edited_output,
            diff=diff,
            comment=comment,
            reason_code=reason_code if outcome == REJECT_OUTCOME else "",
            user=user if getattr(user, "pk", None) else None,
            **reliability.decision_handling(
                item=item, user=user, outcome=outcome, edited_output=edited_output, bulk=bulk, opened_at=opened_at
            ),
        )
        verdict_record(item=item, decision=decision)
        reliability.second_review_maybe_request(item=item, decision=decision)
        checked = {"findings": edit_findings} if edit_findings is not None else {}
        _log(item.id, ReviewEventKind.DECIDED, user, outcome=outcome, changed=[c["path"] for c in diff], **checked)
        enqueue_on_commit("reviewconsole.autonomy.tasks.check_autonomy", item.output_type)
        pending_count_add(output_type=item.output_type, delta=-1)
    return decision


def _summary_of_edit(item: ReviewItem, edited_output: Any, findings: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The summary and search text of an edited output, as update fields; none for an approval as it stands."""
    if edited_output is None:
        return {}
    summary = summarize(item.output_type, edited_output, findings or [])
    inputs = FlowRun.objects.filter(id=item.run_id).values_list("inputs", flat=True).first() or {}
    return {"summary": summary, "search_text": search_text(summary=summary, output=edited_output, inputs=inputs)}


def reviewer_shortcuts_set(*, user: Any, enabled: bool) -> None:
    """Turn the user's single-key shortcuts on or off. Side effect: their ReviewerPreference row."""
    ReviewerPreference.objects.update_or_create(user=user, defaults={"shortcuts_enabled": enabled})


@dataclass
class BulkResult:
    decided: list[str]
    skipped: dict[str, str]


def decide_bulk(*, item_ids: list[Any], user: Any, output_type: str, outcome: str = "approved") -> BulkResult:
    """Decide several items of one type, each individually and exactly once.

    An item that another reviewer decided meanwhile, or of another type, is
    skipped with the reason; the others still go through. So is an item whose
    review reason needs four eyes (`four_eyes`: never approved in bulk), and
    one whose approval must be deliberate (error findings, high value: see
    `confirmations`): a bulk approval cannot confirm anything, so such an item
    is left for its own page.
    """
    result = BulkResult(decided=[], skipped={})
    rows = ReviewItem.objects.filter(id__in=item_ids).values_list("id", "output_type", "reason", "findings")
    found = {str(pk): (kind, reason, findings) for pk, kind, reason, findings in rows}
    needs_two = four_eyes.four_eyes_reasons(output_type=output_type)
    for item_id in item_ids:
        key = str(item_id)
        kind, reason, findings = found.get(key, (None, "", []))
        needed = approval_confirmations(reason=reason, findings=findings) if outcome != REJECT_OUTCOME else []
        if kind is None:
            result.skipped[key] = "No such item"
        elif kind != output_type:
            result.skipped[key] = f"Not an item of type {output_type}"
        elif reason in needs_two and outcome != REJECT_OUTCOME:
            result.skipped[key] = four_eyes.BULK_SKIP_MESSAGE
        elif needed:
            result.skipped[key] = bulk_skip_reason(needed)
        else:
            try:
                decide(item_id=item_id, user=user, outcome=outcome, bulk=True)
                result.decided.append(key)
            except DecisionError as error:
                result.skipped[key] = str(error)
    return result


def review_items_expire_overdue() -> int:
    """Decide items past their expiry with their type's default outcome.

    Side effects per item: pending → expired by a conditional update; a
    Decision by nobody (not a human verdict); an `expired` event; the type's
    pending count; the flow's resume enqueued.
    """
    now = timezone.now()
    expired = 0
    overdue = ReviewItem.objects.filter(status=ReviewStatus.PENDING, expires_at__lt=now)
    for item in overdue.only("id", "run_id", "output_type", "outcomes", "created_at"):
        policy = policy_ensure(output_type=item.output_type)
        outcome = _expiry_outcome(policy.expiry_outcome, item.outcomes)
        with transaction.atomic():
            # Like a decision: the run's row first, then the resume.
            engine_services.run_lock(run_id=item.run_id)
            engine_services.run_enqueue_resume(run_id=item.run_id, item_id=item.id)
            if not ReviewItem.objects.filter(id=item.id, status=ReviewStatus.PENDING).update(
                status=ReviewStatus.EXPIRED, decided_at=now, claimed_by=None, claim_expires_at=None
            ):
                transaction.set_rollback(True)
                continue
            Decision.objects.create(item=item, outcome=outcome, comment="Expired without a decision")
            _log(item.id, ReviewEventKind.EXPIRED, outcome=outcome)
            pending_count_add(output_type=item.output_type, delta=-1)
        expired += 1
    return expired


def _expiry_outcome(configured: str, outcomes: list[str]) -> str:
    """The policy's choice, else rejection: nobody checked the output, so it must not pass as approved."""
    if configured in outcomes:
        return configured
    return REJECT_OUTCOME if REJECT_OUTCOME in outcomes else outcomes[-1]


def _undo_window_end(now: Any, user: Any) -> Any:
    """Until when a decision taken now by `user` may be undone; None when it may not (undo off, no person)."""
    if not settings.UNDO_SECONDS or not getattr(user, "pk", None):
        return None
    return now + timedelta(seconds=settings.UNDO_SECONDS)


def _resumable(now: Any) -> Q:
    """Items whose decision may be taken into the flow at `now`: decided or expired, not resumed, not held."""
    return Q(status__in=[ReviewStatus.DECIDED, ReviewStatus.EXPIRED], resumed_at__isnull=True) & (
        Q(resume_not_before__isnull=True) | Q(resume_not_before__lte=now)
    )


def review_item_claim_resume(*, item_id: Any, worker: str) -> Any:
    """Take a decided item's run for resuming; None if another worker has it, it is done or undone, or its
    decision is still held back for undo (`review_items_release_held_resumes` queues it again after).

    Side effects: the run moves waiting_review → running, then item.resumed_at is set by a conditional update
    (`_resumable`), in one transaction, rolled back if that update finds nothing. Taking the run's row first,
    as an undo does, makes the two serialize: an undo committed first leaves the item pending, and this claim
    is rolled back; a claim committed first leaves the item resumed, and the undo is refused.
    """
    now = timezone.now()
    item = ReviewItem.objects.filter(_resumable(now), id=item_id).values("run_id").first()
    if item is None:
        return None
    with transaction.atomic():
        if not engine_services.run_claim_for_resume(
            run_id=item["run_id"], worker=worker, note=f"resuming after review {item_id}"
        ):
            return None
        if not ReviewItem.objects.filter(_resumable(now), id=item_id).update(resumed_at=now):
            transaction.set_rollback(True)
            return None
    return item["run_id"]


def review_items_release_held_resumes() -> int:
    """Queue `resume_flow` again for decisions whose undo window has ended; every worker's heartbeat calls it.

    A decision queues its resume at once, but a worker that takes it within the undo window leaves it
    (`review_item_claim_resume`): django-q2 cannot deliver a task later, and a worker that slept through the
    window would be held from other work. The run's task stamp, older than the window's end, tells which
    decisions are in that case; requeued, the stamp is newer, so each is queued once. Queueing from the
    database, not from a timer in the process that decided, survives that process being killed: any live
    worker releases it, and if the requeued task is lost too the lost-resume sweeper queues it after a lease.
    Side effects per item: the run's `enqueued_at` restamped (a conditional update: one worker wins),
    `resume_flow` enqueued on commit. Returns how many.
    """
    if not settings.UNDO_SECONDS:
        return 0  # nothing is held back; one a web process with another setting held is queued by the sweeper
    due = ReviewItem.objects.filter(
        status=ReviewStatus.DECIDED,
        resumed_at__isnull=True,
        resume_not_before__lte=timezone.now(),
        run__status=RunStatus.WAITING_REVIEW,
        run__enqueued_at__lt=F("resume_not_before"),
    ).values_list("run_id", "id", "run__enqueued_at")
    released = 0
    for run_id, item_id, enqueued_at in due:
        with transaction.atomic():
            released += engine_services.run_enqueue_resume(run_id=run_id, item_id=item_id, requeue_of=enqueued_at)
    return released


def review_item_undo(*, item_id: Any, user: Any) -> ReviewItem:
    """Take back `user`'s decision, or their first approval of a four-eyes item, within `UNDO_SECONDS`.

    A decision can be undone while its resume is held back: until its window ends and only while no worker
    has claimed the resume (the run's row is taken first, as the claim takes it, so of the two exactly one
    wins). Refusals change nothing: UndoNotYoursError (someone else's decision), UndoTooLateError (the
    window has ended, or the flow has resumed), DecisionError (nothing to undo). ReviewItem.DoesNotExist for
    no such item.

    Side effects of undoing a decision: the item decided → pending by a conditional update, claimed by the
    undoer so they can decide again (unless they gave its first approval, see `four_eyes`); the Decision
    deleted, with the blind second review it drew; the verdict withdrawn from the gate decision (rollups
    marked stale); an `undone` event; the type's pending count. The queued resume task finds the item
    pending and returns. A four-eyes item keeps its first approval when its second approval is undone.
    Of a first approval: the FirstApproval deleted, the item claimed by the undoer; an `undone` event.
    """
    run_id, output_type = ReviewItem.objects.filter(id=item_id).values_list("run_id", "output_type").get()
    now = timezone.now()
    with transaction.atomic():
        engine_services.run_lock(run_id=run_id)
        decision = Decision.objects.filter(item_id=item_id).first()
        first = four_eyes.first_approval_of(item_id=item_id)
        if decision is None and first is None:
            raise DecisionError("Nothing to undo: this item has no decision")
        given = decision or first
        if given.user_id is None:
            raise DecisionError("Nothing to undo: this item expired without a decision")
        if given.user_id != getattr(user, "pk", None):
            raise UndoNotYoursError
        claim = {"claimed_by": user, "claim_expires_at": now + timedelta(minutes=CLAIM_MINUTES)}
        if decision is None:
            if first.at + timedelta(seconds=settings.UNDO_SECONDS) <= now:
                raise UndoTooLateError("Too late to undo: the first approval was given before the undo window")
            if not ReviewItem.objects.filter(id=item_id, status=ReviewStatus.PENDING).update(**claim):
                raise UndoTooLateError
            first.delete()
            _log(item_id, ReviewEventKind.UNDONE, user, outcome=first.outcome, first_approval=True)
        else:
            if first is not None and four_eyes.is_first_approver(first, user):
                claim = {"claimed_by": None, "claim_expires_at": None}
            if not ReviewItem.objects.filter(
                id=item_id, status=ReviewStatus.DECIDED, resumed_at__isnull=True, resume_not_before__gt=now
            ).update(status=ReviewStatus.PENDING, decided_at=None, resume_not_before=None, **claim):
                raise UndoTooLateError
            item = ReviewItem.objects.get(id=item_id)
            decision.delete()
            verdict_withdraw(item=item)
            reliability.second_review_withdraw(item_id=item_id)
            _log(item_id, ReviewEventKind.UNDONE, user, outcome=decision.outcome)
            pending_count_add(output_type=output_type, delta=1)
    return ReviewItem.objects.get(id=item_id)


def review_items_requeue_lost_resumes() -> int:
    """Queue `resume_flow` again for decided items whose resume task was lost with a worker cluster.

    Such an item is decided (or expired) and not resumed, and its run still waits for review; the engine
    tells which of the waiting runs' tasks have left the broker and were not claimed within a lease
    (`runs_with_lost_task`). Side effects per item: the run's `enqueued_at` restamped (a conditional update:
    one sweeper wins), a note on its timeline, `resume_flow` enqueued on commit. Returns how many.
    """
    lost = engine_services.runs_with_lost_task(RunStatus.WAITING_REVIEW, first=True)
    if not lost:
        return 0
    items = dict(
        ReviewItem.objects.filter(
            run_id__in=[run_id for run_id, _ in lost],
            status__in=[ReviewStatus.DECIDED, ReviewStatus.EXPIRED],
            resumed_at__isnull=True,
        ).values_list("run_id", "id")
    )
    requeued = 0
    for run_id, enqueued_at in lost:
        if run_id not in items:
            continue  # the resume was claimed meanwhile
        with transaction.atomic():
            if engine_services.run_enqueue_resume(run_id=run_id, item_id=items[run_id], requeue_of=enqueued_at):
                engine_services.run_log_requeue(run_id=run_id, status=RunStatus.WAITING_REVIEW, task="resume_flow")
                requeued += 1
    return requeued


def review_items_purge_data(*, run_ids: list[Any]) -> int:
    """Empty the output and source spans the runs' review items hold, for retention; how many items.

    Only finished runs are purged, so their items are decided, expired or cancelled: nothing on the item
    pages needs the output any more, and the decision (with its diff) and verdict stay for the figures.
    Side effects: the items' `output` nulled and `source_spans` emptied.
    """
    return ReviewItem.objects.filter(run_id__in=run_ids).update(output=None, source_spans={})


def review_items_cancel_for_run(*, run_id: Any) -> int:
    """Cancel the run's pending items, so nobody decides on a cancelled run.

    Called inside the run's cancel transaction, which holds the run's row, so
    no decision or expiry of its items runs meanwhile. A decision already
    taken but not yet resumed refuses the cancel (RunStateError; the caller's
    transaction is rolled back): it was accepted first and must be applied.
    Side effects: each pending item cancelled, with a `cancelled` event; the
    types' pending counts.
    """
    awaiting_resume = ReviewItem.objects.filter(
        run_id=run_id,
        status__in=[ReviewStatus.DECIDED, ReviewStatus.EXPIRED],
        resumed_at__isnull=True,
        pending__cleared_at__isnull=True,
    )
    if awaiting_resume.exists():
        raise engine_services.RunStateError(
            "A decision on this run is being applied; cancel the run once it is running again."
        )
    cancelled: Counter[str] = Counter()
    pending = ReviewItem.objects.filter(run_id=run_id, status=ReviewStatus.PENDING)
    for item_id, output_type in pending.values_list("id", "output_type"):
        if ReviewItem.objects.filter(id=item_id, status=ReviewStatus.PENDING).update(
            status=ReviewStatus.CANCELLED, claimed_by=None, claim_expires_at=None
        ):
            _log(item_id, ReviewEventKind.CANCELLED)
            cancelled[output_type] += 1
    # In the order of their keys, as every writer that holds several count rows takes them.
    for output_type in sorted(cancelled):
        pending_count_add(output_type=output_type, delta=-cancelled[output_type])
    return cancelled.total()


def review_items_reopen_for_run(*, run_id: Any) -> bool:
    """Put back in the queue the cancelled item of the run's open pause; False if it has none.

    Called inside a retry's transaction, which holds the run's row. The item
    is reopened rather than replaced: it is the review of the same paused
    output (one item per pause), its gate decision has no verdict yet and
    stays linked, and running the step again would repeat its side effects.
    Side effects: the item pending again, unclaimed, with deadlines counted
    from now; a `reopened` event; the type's pending count.
    """
    item = (
        ReviewItem.objects.filter(run_id=run_id, status=ReviewStatus.CANCELLED, pending__cleared_at__isnull=True)
        .only("id", "output_type")
        .first()
    )
    if item is None:
        return False
    ReviewItem.objects.filter(id=item.id, status=ReviewStatus.CANCELLED).update(
        status=ReviewStatus.PENDING, claimed_by=None, claim_expires_at=None, **_deadlines(item.output_type)
    )
    _log(item.id, ReviewEventKind.REOPENED)
    pending_count_add(output_type=item.output_type, delta=1)
    return True
