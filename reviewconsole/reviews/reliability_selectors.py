"""Reviewer reliability, the reads: second-review queues, disagreements, agreement and the reviewers' figures.

Every rate comes with its n and an exact 95% interval (`autonomy.evidence.proportion`: Clopper-Pearson), every
handling-time quantile with a distribution-free one (`evidence.quantile`). Scope: a caller limited to some output
types (ReviewerScope) sees second reviews, disagreements and reviewers' figures of those types only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet

from reviewconsole.autonomy import evidence
from reviewconsole.reviews.models import Decision, SecondReview, SecondReviewStatus
from reviewconsole.reviews.selectors import reviewable_output_types, scoped_output_types

REJECT_OUTCOME = "rejected"


def _in_types(queryset: QuerySet, allowed: set[str] | None) -> QuerySet:
    return queryset if allowed is None else queryset.filter(output_type__in=allowed)


def second_reviews_for(*, user: Any) -> QuerySet[SecondReview]:
    """Second reviews waiting for `user`: of the types they may review, not of items they decided, and only once
    the item's flow has resumed (a second review never holds a run up). Oldest first."""
    pending = SecondReview.objects.filter(status=SecondReviewStatus.PENDING, item__resumed_at__isnull=False)
    return (
        _in_types(pending, reviewable_output_types(user))
        .exclude(first_user_id=user.pk)
        .select_related("item")
        .order_by("created_at", "id")
    )


def second_review_for(*, user: Any, item_id: Any) -> SecondReview | None:
    """The second review of an item as `user` may open it: of a type they review, and not their own decision."""
    allowed = reviewable_output_types(user)
    second = SecondReview.objects.select_related("item__run").filter(item_id=item_id).first()
    if second is None or (allowed is not None and second.output_type not in allowed):
        return None
    if second.first_user_id == user.pk:
        return None
    return second


def disagreements_for(*, user: Any, adjudicated: bool = False) -> QuerySet[SecondReview]:
    """Disagreements between first and second reviews of the types `user` manages (`adjudicated`: the settled
    ones instead, newest first), with both decisions and their reviewers."""
    status = SecondReviewStatus.ADJUDICATED if adjudicated else SecondReviewStatus.DISAGREED
    rows = _in_types(SecondReview.objects.filter(status=status), scoped_output_types(user))
    rows = rows.select_related("item__decision__user", "user", "first_user", "adjudicated_by")
    return rows.order_by("-adjudicated_at", "-id") if adjudicated else rows.order_by("at", "id")


def _rate(successes: int, n: int) -> dict[str, Any]:
    estimate = evidence.proportion(successes, n)
    return {
        "n": n,
        "count": successes,
        "rate": estimate.accuracy,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
    }


def agreement_by_type(*, output_types: Iterable[str] | None = None, since: datetime | None = None) -> dict[str, Any]:
    """Per type, the share of second reviews that agreed with the first decision: {type: {n, count, rate,
    ci_low, ci_high}}. One query."""
    given = SecondReview.objects.filter(agreed__isnull=False)
    if output_types is not None:
        given = given.filter(output_type__in=list(output_types))
    if since is not None:
        given = given.filter(at__gte=since)
    rows = given.values("output_type").annotate(n=Count("id"), agreed_n=Count("id", filter=Q(agreed=True)))
    return {row["output_type"]: _rate(row["agreed_n"], row["n"]) for row in rows.order_by()}


def adjudication_counts(*, output_type: str, since: datetime | None = None) -> dict[str, int]:
    """How many first verdicts of a type a manager's adjudication replaced ({adjudicated, overturned: the second
    reviewer was upheld}) and how many disagreements still wait, for outputs created since `since`. One query."""
    rows = SecondReview.objects.filter(output_type=output_type)
    if since is not None:
        rows = rows.filter(item__created_at__gte=since)
    adjudicated = Q(status=SecondReviewStatus.ADJUDICATED)
    return rows.aggregate(
        adjudicated=Count("id", filter=adjudicated),
        overturned=Count("id", filter=adjudicated & Q(adjudicated_for="second")),
        waiting=Count("id", filter=Q(status=SecondReviewStatus.DISAGREED)),
    )


def handling_time(*, output_type: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """Seconds from opening an item to deciding it, over a type's decisions (all types when None) since `since`
    that have one: {median, p90} as `evidence.Quantile`s. One query."""
    decisions = Decision.objects.filter(handling_seconds__isnull=False)
    if output_type is not None:
        decisions = decisions.filter(output_type=output_type)
    if since is not None:
        decisions = decisions.filter(at__gte=since)
    values = list(decisions.values_list("handling_seconds", flat=True))
    return {"median": evidence.quantile(values, 0.5), "p90": evidence.quantile(values, 0.9)}


def reviewer_reliability(*, user: Any, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per reviewer, over their decisions of the types `user` may see (since `since`), busiest first. Four queries.

    Each row: {user_id, username, decisions, handling_median and handling_p90 (`evidence.Quantile`: seconds from
    opening the item to deciding, over the decisions with a handling time), agreement (second reviews of items
    they decided or second-reviewed that agreed), edited and rejected (shares of their decisions), marked (share
    of their approvals that were bulk or fast)}; every share is `_rate`'s {n, count, rate, ci_low, ci_high}.
    """
    allowed = scoped_output_types(user)
    decisions = _in_types(Decision.objects.filter(user__isnull=False), allowed)
    seconds = _in_types(SecondReview.objects.filter(agreed__isnull=False), allowed)
    if since is not None:
        decisions = decisions.filter(at__gte=since)
        seconds = seconds.filter(at__gte=since)
    rejected = Q(outcome=REJECT_OUTCOME)
    counts = {
        row["user_id"]: row
        for row in decisions.values("user_id")
        .annotate(
            decisions=Count("id"),
            edited_n=Count("id", filter=Q(edited=True) & ~rejected),
            rejected_n=Count("id", filter=rejected),
            marked_n=Count("id", filter=~Q(mark="")),
        )
        .order_by()
    }
    handling: dict[int, list[float]] = defaultdict(list)
    for user_id, value in decisions.filter(handling_seconds__isnull=False).values_list("user_id", "handling_seconds"):
        handling[user_id].append(value)
    agreement: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for first_id, second_id, agreed in seconds.values_list("first_user_id", "user_id", "agreed"):
        for reviewer in {first_id, second_id} - {None}:
            agreement[reviewer][0] += int(agreed)
            agreement[reviewer][1] += 1
    reviewers = set(counts) | set(agreement)
    names = dict(get_user_model().objects.filter(pk__in=reviewers).values_list("pk", "username"))
    rows = []
    for reviewer in reviewers:
        count = counts.get(reviewer, {"decisions": 0, "edited_n": 0, "rejected_n": 0, "marked_n": 0})
        approvals = count["decisions"] - count["edited_n"] - count["rejected_n"]
        rows.append(
            {
                "user_id": reviewer,
                "username": names.get(reviewer, "?"),
                "decisions": count["decisions"],
                "handling_median": evidence.quantile(handling[reviewer], 0.5),
                "handling_p90": evidence.quantile(handling[reviewer], 0.9),
                "agreement": _rate(*agreement[reviewer]),
                "edited": _rate(count["edited_n"], count["decisions"]),
                "rejected": _rate(count["rejected_n"], count["decisions"]),
                "marked": _rate(count["marked_n"], approvals),
            }
        )
    return sorted(rows, key=lambda row: (-row["decisions"], row["username"]))
