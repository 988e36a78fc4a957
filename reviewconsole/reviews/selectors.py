"""Reads for review items, shared by pages and the JSON API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Min, Q, QuerySet
from django.utils import timezone

from reviewconsole.reviews.models import ReviewerScope, ReviewEvent, ReviewItem


def reviewable_output_types(user: Any) -> set[str] | None:
    """Output types the user may review: None for every type, an empty set for none."""
    if not user.is_authenticated or not user.has_perm("reviews.review_item"):
        return set()
    if user.is_superuser:
        return None
    scoped = set(ReviewerScope.objects.filter(user=user).values_list("output_type", flat=True))
    return scoped or None


def can_review(user: Any, output_type: str) -> bool:
    allowed = reviewable_output_types(user)
    return allowed is None or output_type in allowed


def items_visible_to(user: Any) -> QuerySet[ReviewItem]:
    """Every item of the types the user may review."""
    allowed = reviewable_output_types(user)
    items = ReviewItem.objects.all()
    if allowed is not None:
        items = items.filter(output_type__in=allowed)
    return items


def item_detail(*, item_id: Any) -> ReviewItem:
    return ReviewItem.objects.select_related("run", "claimed_by", "decision__user").get(id=item_id)


def item_events(*, item_id: Any) -> QuerySet[ReviewEvent]:
    return ReviewEvent.objects.filter(item_id=item_id).select_related("user").order_by("at", "id")


def run_earlier_items(*, item: ReviewItem) -> QuerySet[ReviewItem]:
    """Other review items of the same run, with their decisions."""
    return (
        ReviewItem.objects.filter(run_id=item.run_id)
        .exclude(id=item.id)
        .select_related("decision__user")
        .order_by("created_at")
    )


QUEUE_SORTS = {
    "oldest": ("created_at", "id"),
    "newest": ("-created_at", "-id"),
    # Items without a confidence sort last either way, on every database.
    "confidence": (F("confidence").asc(nulls_last=True), "created_at", "id"),
    "-confidence": (F("confidence").desc(nulls_last=True), "created_at", "id"),
}


def queue_items(
    *,
    user: Any,
    status: str = "pending",
    output_type: str = "",
    reason: str = "",
    older_than_minutes: int | None = None,
    confidence_min: float | None = None,
    confidence_max: float | None = None,
    sort: str = "oldest",
) -> QuerySet[ReviewItem]:
    """The review queue as `user` may see it, filtered; oldest first by default.

    Heavy JSON columns (output, schema) are deferred: list pages never show them.
    """
    items = items_visible_to(user).select_related("claimed_by").defer("output", "schema", "message")
    if status:
        items = items.filter(status=status)
    if output_type:
        items = items.filter(output_type=output_type)
    if reason:
        items = items.filter(reason=reason)
    if older_than_minutes:
        items = items.filter(created_at__lte=timezone.now() - timedelta(minutes=older_than_minutes))
    if confidence_min is not None:
        items = items.filter(confidence__gte=confidence_min)
    if confidence_max is not None:
        items = items.filter(confidence__lte=confidence_max)
    return items.order_by(*QUEUE_SORTS.get(sort, QUEUE_SORTS["oldest"]))


def queue_counts(*, user: Any) -> list[dict[str, Any]]:
    """Pending and overdue items per output type the user may review, in one query."""
    rows = (
        items_visible_to(user)
        .filter(status="pending")
        .values("output_type")
        .annotate(
            pending=Count("id"),
            overdue=Count("id", filter=Q(due_at__lt=timezone.now())),
            oldest=Min("created_at"),
        )
        .order_by("output_type")
    )
    return list(rows)


def next_item_for(*, user: Any, after: ReviewItem | None = None, output_type: str = "") -> ReviewItem | None:
    """The oldest pending item the user may take: unclaimed, or claimed by them, or with a lapsed claim."""
    items = queue_items(user=user, output_type=output_type).filter(
        Q(claimed_by__isnull=True) | Q(claimed_by=user) | Q(claim_expires_at__lt=timezone.now())
    )
    if after is not None:
        items = items.exclude(id=after.id)
    return items.first()
