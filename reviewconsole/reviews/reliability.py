"""Reviewer reliability, the writes: handling time and marks of a decision, blind second reviews, adjudication.

A verdict is only as good as the review behind it. Each decision records how long its reviewer had the item open
(`handling_seconds`: from their latest claim of it, made by opening its page, to the decision) and is marked
when it may be a rubber stamp: an approval given in bulk, or sooner than `settings.FAST_APPROVAL_SECONDS` after
opening. The type's policy may leave marked approvals out of the evidence (`autonomy.services.verdict_record`).

A share of decided items (`AutonomyPolicy.second_review_rate`) is reviewed again, blind, by someone else. The
second review changes no run; it measures agreement. A disagreement waits for a manager, whose ruling replaces
the first verdict in every accuracy figure (`autonomy.services.verdict_adjudicate`).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from reviewconsole.autonomy.services import policy_ensure, verdict_adjudicate
from reviewconsole.reviews.diff import field_diff
from reviewconsole.reviews.models import (
    Decision,
    DecisionMark,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    SecondReview,
    SecondReviewStatus,
)

# Which decision a manager upholds when adjudicating a disagreement.
UPHOLD_FIRST, UPHOLD_SECOND = "first", "second"


class SecondReviewError(Exception):
    """A second review or adjudication that cannot be applied; `field` names the input at fault, `conflict` a
    state that moved on (given already, adjudicated already)."""

    def __init__(self, message: str, field: str | None = None, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict


def _approves(item: ReviewItem, outcome: str, edited_output: Any) -> bool:
    """An approval of the output as it stands: the item's first (approving) outcome, without an edit."""
    return outcome == item.outcomes[0] and edited_output is None


def decision_handling(
    *, item: ReviewItem, user: Any, outcome: str, edited_output: Any, bulk: bool, opened_at: datetime | None = None
) -> dict[str, Any]:
    """`handling_seconds` and `mark` for the decision `user` is about to record on `item`. At most one query.

    Handling time runs from when the user's page showed the item (`opened_at`, sent back by the page) or else
    from their latest claim of it (starting work on it claims it) to now; None when they never opened it (a
    bulk approval from the queue, a decision through the API). A bulk approval is
    marked bulk; another approval faster than FAST_APPROVAL_SECONDS is marked fast. Edits and rejections are
    never marked: they show the reviewer looked.
    """
    opened = opened_at
    if opened is None and getattr(user, "pk", None):
        opened = (
            ReviewEvent.objects.filter(item_id=item.id, kind=ReviewEventKind.CLAIMED, user=user)
            .order_by("-at", "-id")
            .values_list("at", flat=True)
            .first()
        )
    seconds = (timezone.now() - opened).total_seconds() if opened is not None else None
    mark = ""
    if _approves(item, outcome, edited_output):
        if bulk:
            mark = DecisionMark.BULK
        elif seconds is not None and seconds < settings.FAST_APPROVAL_SECONDS:
            mark = DecisionMark.FAST
    return {"handling_seconds": seconds, "mark": mark}


def second_review_maybe_request(*, item: ReviewItem, decision: Decision, rng: random.Random | None = None) -> bool:
    """Send a random share (the type's `second_review_rate`) of human decisions to a blind second review.

    Call in the decision's transaction. Side effects: a pending SecondReview when drawn. The second reviewer
    sees it once the flow has resumed (`reliability_selectors.second_reviews_for`): it never holds a run up.
    """
    if decision.user_id is None:
        return False
    rate = policy_ensure(output_type=item.output_type).second_review_rate
    if rate <= 0 or (rng or random).random() >= rate:
        return False
    SecondReview.objects.create(item=item, output_type=item.output_type, first_user_id=decision.user_id)
    return True


def second_review_withdraw(*, item_id: Any) -> None:
    """Drop the blind second review an undone decision drew (call in the undo's transaction).

    Nobody can have given it: a second reviewer sees it only once the flow has resumed, which an undo rules out.
    """
    SecondReview.objects.filter(item_id=item_id, status=SecondReviewStatus.PENDING).delete()


def _same_output(first: Any, second: Any) -> bool:
    return not field_diff(first, second)


def second_review_give(
    *,
    item_id: Any,
    user: Any,
    outcome: str,
    edited_output: Any = None,
    comment: str = "",
) -> SecondReview:
    """Record the blind second review of an item and whether it agrees with the first decision.

    Agreement means the same outcome and the same output (an edit equal to the original is no edit). Checks:
    the outcome is one of the item's; an edit validates against the type's model (as in `decide`); the user is
    not the first reviewer. Side effects: the SecondReview moves pending → agreed or disagreed by a conditional
    update (of two concurrent second reviewers exactly one wins, the other gets a conflict).
    """
    from reviewconsole.reviews.services import REJECT_OUTCOME, _validated_edit

    second = SecondReview.objects.select_related("item__decision").filter(item_id=item_id).first()
    if second is None:
        raise SecondReviewError("This item has no second review")
    item = second.item
    if second.first_user_id is not None and second.first_user_id == getattr(user, "pk", None):
        raise SecondReviewError("You decided this item: a second review must be someone else's")
    if second.status != SecondReviewStatus.PENDING:
        raise SecondReviewError("The second review of this item was given already", conflict=True)
    if outcome not in item.outcomes:
        raise SecondReviewError(
            f"Unknown outcome '{outcome}'; expected one of: {', '.join(item.outcomes)}", field="outcome"
        )
    if edited_output is not None:
        if outcome == REJECT_OUTCOME:
            raise SecondReviewError("A rejection cannot carry an edited output", field="edited_output")
        edited_output = _validated_edit(item, edited_output)
        if _same_output(item.output, edited_output):
            edited_output = None
    first = item.decision
    agreed = outcome == first.outcome and _same_output(first.edited_output, edited_output)
    status = SecondReviewStatus.AGREED if agreed else SecondReviewStatus.DISAGREED
    with transaction.atomic():
        if not SecondReview.objects.filter(pk=second.pk, status=SecondReviewStatus.PENDING).update(
            status=status,
            user=user,
            outcome=outcome,
            edited_output=edited_output,
            comment=comment,
            agreed=agreed,
            at=timezone.now(),
        ):
            raise SecondReviewError("The second review of this item was given already", conflict=True)
    second.refresh_from_db()
    return second


def second_review_adjudicate(*, item_id: Any, user: Any, upheld: str, note: str = "") -> SecondReview:
    """A manager's ruling on a disagreement: which decision was right; it replaces the first verdict.

    Side effects: the SecondReview moves disagreed → adjudicated by a conditional update (one ruling wins);
    the item's gate decision gets the upheld decision's verdict (`verdict_adjudicate`: field errors replaced,
    rollups marked stale), counted whatever mark the first decision had. The run is not touched.
    """
    if upheld not in (UPHOLD_FIRST, UPHOLD_SECOND):
        raise SecondReviewError(f"Uphold '{UPHOLD_FIRST}' or '{UPHOLD_SECOND}'", field="upheld")
    second = SecondReview.objects.select_related("item__decision").filter(item_id=item_id).first()
    if second is None or second.status not in (SecondReviewStatus.DISAGREED, SecondReviewStatus.ADJUDICATED):
        raise SecondReviewError("This item has no disagreement to adjudicate")
    item = second.item
    first = item.decision
    if upheld == UPHOLD_FIRST:
        outcome, edited, reason = first.outcome, first.edited_output, first.reason_code
    else:
        outcome, edited, reason = second.outcome, second.edited_output, ""
    with transaction.atomic():
        if not SecondReview.objects.filter(pk=second.pk, status=SecondReviewStatus.DISAGREED).update(
            status=SecondReviewStatus.ADJUDICATED,
            adjudicated_by=user,
            adjudicated_for=upheld,
            adjudication_note=note.strip(),
            adjudicated_at=timezone.now(),
        ):
            raise SecondReviewError("This disagreement was adjudicated already", conflict=True)
        diff = field_diff(item.output, edited) if edited is not None else []
        verdict_adjudicate(item=item, outcome=outcome, edited_output=edited, diff=diff, reject_reason=reason)
    second.refresh_from_db()
    return second
