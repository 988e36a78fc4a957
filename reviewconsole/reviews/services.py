"""Writes for review items. `decide()` is the only way an item gets a decision."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from reviewconsole.engine import services as engine_services
from reviewconsole.engine.models import PendingFeedback
from reviewconsole.engine.persistence import to_json
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.provider import REVIEW_METADATA_KEY


class DecisionError(Exception):
    """A decision that cannot be applied; the message names the problem."""


class AlreadyDecidedError(DecisionError):
    def __init__(self, item: ReviewItem) -> None:
        decision = getattr(item, "decision", None)
        if decision is not None:
            who = decision.user.get_username() if decision.user else "the system"
            message = f"Already decided by {who} at {decision.at:%Y-%m-%d %H:%M:%S %Z}"
        else:
            message = f"This item is {item.get_status_display().lower()}"
        super().__init__(message)


def review_item_create_for_pause(*, run_id: Any, pending: PendingFeedback, context: Any, state: dict) -> ReviewItem:
    """Create the review item for a paused run (called inside the pause transaction).

    Side effects: a ReviewItem row; the run moves running → waiting_review.
    """
    review = (context.metadata or {}).get(REVIEW_METADATA_KEY, {})
    item = ReviewItem.objects.create(
        run_id=run_id,
        pending=pending,
        method=context.method_name,
        output_type=review.get("output_type", "unspecified"),
        reason=review.get("reason", "flow_requested"),
        confidence=review.get("confidence"),
        message=context.message or "",
        output=to_json(context.method_output),
        schema=review.get("schema"),
        outcomes=review.get("outcomes") or list(context.emit or ["approved", "rejected"]),
        uses_emit=bool(context.emit),
    )
    engine_services.run_pause(run_id=run_id, note=f"waiting for review of {context.method_name}")
    return item


def decide(
    *,
    item_id: Any,
    user: Any,
    outcome: str,
    edited_output: Any = None,
    comment: str = "",
    reason_code: str = "",
) -> Decision:
    """Record the one decision on a pending item and queue the flow's resume.

    Side effects: the item moves pending → decided by a conditional update
    (of two concurrent callers exactly one wins, the other gets
    AlreadyDecidedError); a Decision row; `resume_flow` enqueued on commit.
    """
    with transaction.atomic():
        item = ReviewItem.objects.select_related("decision__user").get(id=item_id)
        if item.status != ReviewStatus.PENDING:
            raise AlreadyDecidedError(item)
        if outcome not in item.outcomes:
            raise DecisionError(f"Unknown outcome '{outcome}'; expected one of: {', '.join(item.outcomes)}")
        now = timezone.now()
        if not ReviewItem.objects.filter(id=item_id, status=ReviewStatus.PENDING).update(
            status=ReviewStatus.DECIDED, decided_at=now
        ):
            raise AlreadyDecidedError(ReviewItem.objects.select_related("decision__user").get(id=item_id))
        decision = Decision.objects.create(
            item=item,
            outcome=outcome,
            edited_output=edited_output,
            comment=comment,
            reason_code=reason_code,
            user=user if getattr(user, "pk", None) else None,
        )
        _enqueue_resume(item.id)
    return decision


def _enqueue_resume(item_id: Any) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("reviewconsole.engine.tasks.resume_flow", str(item_id), group="resume_flow")
    )


def review_item_claim_resume(*, item_id: Any, worker: str) -> Any:
    """Take a decided item's run for resuming; None if another worker has it or it is done.

    Side effects: item.resumed_at set; the run moves waiting_review → running.
    """
    with transaction.atomic():
        item = ReviewItem.objects.filter(id=item_id).values("run_id", "status", "resumed_at").first()
        if item is None or item["status"] not in (ReviewStatus.DECIDED, ReviewStatus.EXPIRED) or item["resumed_at"]:
            return None
        if not engine_services.run_claim_for_resume(
            run_id=item["run_id"], worker=worker, note=f"resuming after review {item_id}"
        ):
            return None
        ReviewItem.objects.filter(id=item_id).update(resumed_at=timezone.now())
    return item["run_id"]


def review_items_cancel_for_run(*, run_id: Any) -> int:
    """Cancel the run's pending items, so nobody decides on a cancelled run."""
    return ReviewItem.objects.filter(run_id=run_id, status=ReviewStatus.PENDING).update(status=ReviewStatus.CANCELLED)
