"""Four eyes (maker-checker): items whose review reason the policy names need two different approvers.

The rules, applied by `services.decide`:

- The first approval (any outcome but a rejection, with or without an edit) is recorded as a FirstApproval;
  the item stays pending, in the queue and in its type's pending count, marked as awaiting a second
  approval. Nothing is decided: the flow does not resume and no verdict is recorded.
- The first approver cannot give the second approval (`NeedsSecondApproverError`, 409 in the API and the
  page). Any other reviewer of the type can.
- A second approval as is confirms the first approver's version: the flow gets their edit, if they made one.
  A second approver who edits has the last word: their edit is the output, its diff taken against the AI's
  output like any edit. Either way the Decision is the second approver's, and so is the verdict.
- Either of them may reject, which decides the item at once; a rejection by the first approver after their
  own approval is an ordinary rejection (they changed their mind, and stopping an output needs no second
  person).
- Bulk approval never approves such an item (`decide_bulk` skips it, saying why): a bulk approval is not a
  deliberate check of one item, so it can be neither of the two.
"""

from __future__ import annotations

from typing import Any

from reviewconsole.autonomy.models import DEFAULT_FOUR_EYES_REASONS, AutonomyPolicy
from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.engine.encoding import to_json
from reviewconsole.reviews.models import FirstApproval, ReviewEvent, ReviewEventKind, ReviewItem, ReviewStatus

SECOND_APPROVER_MESSAGE = "This item needs a second approver: you gave its first approval, someone else must approve it"
BULK_SKIP_MESSAGE = "Needs two approvers (four eyes): open it to approve"


def policy_reasons(policy: AutonomyPolicy | None) -> set[str]:
    """The review reasons whose items need two approvers under `policy` (None: a type with no policy yet)."""
    return set(policy.four_eyes_reasons or ()) if policy is not None else set(DEFAULT_FOUR_EYES_REASONS)


def four_eyes_reasons(*, output_type: str) -> set[str]:
    """The review reasons of the type whose items need two approvers."""
    return policy_reasons(policy_ensure(output_type=output_type))


def needs_four_eyes(item: ReviewItem) -> bool:
    return item.reason in four_eyes_reasons(output_type=item.output_type)


def first_approval_of(*, item_id: Any) -> FirstApproval | None:
    """The item's first approval as committed now (read under the run's lock, so no concurrent one is missed)."""
    return FirstApproval.objects.select_related("user").filter(item_id=item_id).first()


def is_first_approver(first: FirstApproval, user: Any) -> bool:
    return first.user_id == getattr(user, "pk", None)


def first_approval_record(
    *, item: ReviewItem, user: Any, outcome: str, edited_output: Any, diff: list[dict[str, Any]], comment: str
) -> FirstApproval | None:
    """Record the first of two approvals; None if the item is no longer pending.

    Call inside the decision's transaction, holding the run's row. Side effects: the item's claim released
    (by a conditional update on its pending state, so others can open it for the second approval); a
    FirstApproval; a `first_approved` event. The item stays pending and nothing is enqueued.
    """
    if not ReviewItem.objects.filter(id=item.id, status=ReviewStatus.PENDING).update(
        claimed_by=None, claim_expires_at=None
    ):
        return None
    user = user if getattr(user, "pk", None) else None
    first = FirstApproval.objects.create(
        item=item, outcome=outcome, edited_output=edited_output, diff=diff, comment=comment, user=user
    )
    ReviewEvent.objects.create(
        item=item,
        kind=ReviewEventKind.FIRST_APPROVED,
        user=user,
        detail=to_json({"outcome": outcome, "changed": [change["path"] for change in diff]}),
    )
    item.claimed_by, item.claim_expires_at = None, None
    return first


def awaiting_second_approval(item: ReviewItem) -> bool:
    """Whether the item has its first approval and waits for a second (needs `first_approval` loaded)."""
    return item.status == ReviewStatus.PENDING and getattr(item, "first_approval", None) is not None


def output_under_review(item: ReviewItem) -> Any:
    """What an approval as is would send on: the first approver's edit while it awaits the second, else the
    AI's output."""
    first = getattr(item, "first_approval", None) if item.status == ReviewStatus.PENDING else None
    return first.edited_output if first is not None and first.edited_output is not None else item.output
