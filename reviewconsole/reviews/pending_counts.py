"""Writes for the per-type pending counts the queue's tabs show (`PendingCount`)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Count, F

from reviewconsole.reviews.models import PendingCount, ReviewItem, ReviewStatus

logger = logging.getLogger(__name__)


def pending_count_add(*, output_type: str, delta: int) -> None:
    """Add `delta` to the type's pending count, inside the transaction that moved its items.

    Call it last in that transaction: from here to the commit the type's row is locked, and every other
    status change of the type waits for it.
    """
    if PendingCount.objects.filter(output_type=output_type).update(pending=F("pending") + delta):
        return
    # A type's first item: get_or_create also copes with a concurrent first item of the same type.
    PendingCount.objects.get_or_create(output_type=output_type)
    PendingCount.objects.filter(output_type=output_type).update(pending=F("pending") + delta)


def pending_counts_recount() -> dict[str, tuple[int, int]]:
    """Set each type's count from its pending items; returns the counts that were wrong, as (kept, counted).

    The count rows are locked before the items are counted, so no status change falls between the count
    and its write: one that committed before is counted, one that has not yet reached its count row
    applies its own delta after this commit.
    """
    with transaction.atomic():
        kept = dict(
            PendingCount.objects.select_for_update().order_by("output_type").values_list("output_type", "pending")
        )
        counted = dict(
            ReviewItem.objects.filter(status=ReviewStatus.PENDING)
            .values("output_type")
            .annotate(pending=Count("id"))
            .values_list("output_type", "pending")
            .order_by()
        )
        wrong = {
            output_type: (kept.get(output_type, 0), counted.get(output_type, 0))
            for output_type in sorted(kept.keys() | counted.keys())
            if kept.get(output_type, 0) != counted.get(output_type, 0)
        }
        for output_type, (_, pending) in wrong.items():
            PendingCount.objects.update_or_create(output_type=output_type, defaults={"pending": pending})
    if wrong:
        logger.warning("pending counts corrected (type: kept → counted): %s", wrong)
    return wrong
