"""Reads for review items, shared by pages and the JSON API."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from reviewconsole.engine.checks import CheckContext, run_checks
from reviewconsole.reviews.models import (
    Decision,
    PendingCount,
    ReviewerScope,
    ReviewEvent,
    ReviewItem,
    ReviewItemKey,
    ReviewStatus,
)
from reviewconsole.reviews.search import query_words


def scoped_output_types(user: Any) -> set[str] | None:
    """The output types `user` is limited to by their ReviewerScope rows: None (no rows, or a superuser) for every type.

    The limit holds for everything of a type, not only for deciding it: the engine asks
    this (through `engine.selectors.register_output_type_scope`) to hide runs and flows.
    """
    if not user.is_authenticated or user.is_superuser:
        return None
    # A page asks several times (permission check, counts, queue, neighbours); like Django's permission
    # cache, the answer is kept on the user object, which lives for one request.
    if not hasattr(user, "_review_scopes"):
        user._review_scopes = set(ReviewerScope.objects.filter(user=user).values_list("output_type", flat=True))
    return set(user._review_scopes) or None


def reviewable_output_types(user: Any) -> set[str] | None:
    """Output types the user may review: None for every type, an empty set for none."""
    if not user.is_authenticated or not user.has_perm("reviews.review_item"):
        return set()
    return scoped_output_types(user)


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
    """An item with what its page shows beside it: the run, the claim, the decision, the first of two approvals,
    the gate decision (its flow version and model)."""
    return ReviewItem.objects.select_related(
        "run", "claimed_by", "decision__user", "first_approval__user", "gate_decision"
    ).get(id=item_id)


def item_events(*, item_id: Any) -> QuerySet[ReviewEvent]:
    return ReviewEvent.objects.filter(item_id=item_id).select_related("user").order_by("at", "id")


def review_items_of_run(*, run_id: Any) -> QuerySet[ReviewItem]:
    """A run's review items with their decisions, oldest first (the run's page and API)."""
    return ReviewItem.objects.filter(run_id=run_id).select_related("decision__user").order_by("created_at")


def run_earlier_items(*, item: ReviewItem, user: Any) -> QuerySet[ReviewItem]:
    """Other review items of the same run that `user` may see, with their decisions."""
    return (
        items_visible_to(user)
        .filter(run_id=item.run_id)
        .exclude(id=item.id)
        .select_related("decision__user")
        .order_by("created_at")
    )


def item_findings(*, item: ReviewItem, output: Any) -> list[dict[str, Any]]:
    """The type's checks on `output` as an edit of `item`: against the item's run inputs, and with only the
    outputs created before the item as earlier ones (the item never finds itself, nor later copies)."""
    context = CheckContext(inputs=item.run.inputs, run_id=item.run_id, item_id=item.id, before=item.created_at)
    return run_checks(item.output_type, output, context)


def items_sharing_keys(
    *, output_type: str, keys: list[str], context: CheckContext
) -> dict[str, tuple[str | None, str]]:
    """For each key, the earliest other output of the type with it: {key: (item id, run id)}, the item id None
    for an output the gate let through without review.

    One seek of `review_item_key_idx` per key (a handful per output), so the cost does not grow with the
    number of items. Items of the run being checked are not "other" (a re-run of a step, or the item itself).
    """
    found: dict[str, tuple[str, str]] = {}
    for key in keys:
        rows = ReviewItemKey.objects.filter(output_type=output_type, key=key)
        if context.before is not None:
            rows = rows.filter(created_at__lt=context.before)
        if context.run_id is not None:
            rows = rows.exclude(run_id=context.run_id)
        first = rows.order_by("created_at").values_list("item_id", "run_id").first()
        if first is not None:
            found[key] = (str(first[0]) if first[0] is not None else None, str(first[1]))
    return found


FINDINGS_FILTERS = {"errors": {"error_count__gt": 0}, "any": {"finding_count__gt": 0}}

# Each sort as its keys: (field, descending, nullable). Nullable keys sort their nulls last either way, on every
# database; the last key is unique, so the order is total and an item's place in it can be sought (`seek`).
SORT_KEYS: dict[str, tuple[tuple[str, bool, bool], ...]] = {
    "oldest": (("created_at", False, False), ("id", False, False)),
    "newest": (("created_at", True, False), ("id", True, False)),
    "confidence": (("confidence", False, True), ("created_at", False, False), ("id", False, False)),
    "-confidence": (("confidence", True, True), ("created_at", False, False), ("id", False, False)),
}


def _ordering(sort: str, *, backwards: bool = False) -> list[Any]:
    """The order_by of a sort, or of its reverse (nulls then first)."""
    ordering = []
    for field, descending, nullable in SORT_KEYS.get(sort, SORT_KEYS["oldest"]):
        down = descending != backwards
        if nullable:
            nulls = {"nulls_first": True} if backwards else {"nulls_last": True}
            ordering.append(F(field).desc(**nulls) if down else F(field).asc(**nulls))
        else:
            ordering.append(f"-{field}" if down else field)
    return ordering


QUEUE_SORTS = {name: tuple(_ordering(name)) for name in SORT_KEYS}


def _beyond(item: ReviewItem, sort: str, *, backwards: bool = False) -> Q:
    """The rows after `item` in `sort` (before it, `backwards`): a keyset condition, so that the next row is
    found by seeking the sort's index from the item rather than by reading the list up to it."""
    beyond = Q(pk__in=[])
    equal = Q()
    for field, descending, nullable in SORT_KEYS.get(sort, SORT_KEYS["oldest"]):
        value = getattr(item, field)
        if value is None:
            # Nulls sort last: before a null come every value and earlier nulls; after it, only later nulls.
            if backwards:
                beyond |= equal & Q(**{f"{field}__isnull": False})
            equal &= Q(**{f"{field}__isnull": True})
            continue
        step = Q(**{f"{field}__{'gt' if descending == backwards else 'lt'}": value})
        if nullable and not backwards:
            step |= Q(**{f"{field}__isnull": True})
        beyond |= equal & step
        equal &= Q(**{field: value})
    # The plain range of the first key beside the OR lets the sort's index seek to the item instead of
    # walking the list up to it.
    first, descending, nullable = SORT_KEYS.get(sort, SORT_KEYS["oldest"])[0]
    value = getattr(item, first)
    if value is not None:
        bound = Q(**{f"{first}__{'gte' if descending == backwards else 'lte'}": value})
        if nullable and not backwards:
            bound |= Q(**{f"{first}__isnull": True})
        beyond &= bound
    return beyond


def seek(items: QuerySet[ReviewItem], item: ReviewItem, sort: str, *, backwards: bool = False) -> ReviewItem | None:
    """The row of `items` just after `item` in `sort` (just before it, `backwards`), without loading the list."""
    beyond = items.filter(_beyond(item, sort, backwards=backwards))
    return beyond.order_by(*_ordering(sort, backwards=backwards)).first()


def position_in(items: QuerySet[ReviewItem], item: ReviewItem, sort: str) -> tuple[int, int, bool]:
    """Where `item` stands in `items` sorted by `sort`: (1-based place, total, whether the total is capped).

    Both are counts of an index range, stopped at QUEUE_COUNT_CAP like the queue's pager (a place past it is
    QUEUE_COUNT_CAP + 1); the place is that of the item, or of the slot it would take if it has left the list.
    """
    before = items.filter(_beyond(item, sort, backwards=True)).order_by()[:QUEUE_COUNT_CAP].count()
    total = items.order_by()[: QUEUE_COUNT_CAP + 1].count()
    return before + 1, min(total, QUEUE_COUNT_CAP), total > QUEUE_COUNT_CAP


def queue_items(
    *,
    user: Any,
    status: str = "pending",
    output_type: str = "",
    reason: str = "",
    older_than_minutes: int | None = None,
    confidence_min: float | None = None,
    confidence_max: float | None = None,
    findings: str = "",
    sort: str = "oldest",
    query: str = "",
) -> QuerySet[ReviewItem]:
    """The review queue as `user` may see it, filtered; oldest first by default.

    `findings`: "errors" for items with an error finding, "any" for items with any finding. `query`: items
    whose search text (`search.search_text`: summary, output and run input) holds each of its words.
    Heavy JSON and text columns (output, schema, findings, search text) are deferred: list pages show only
    the counts and the summary.
    """
    items = items_visible_to(user).select_related("claimed_by")
    items = items.defer("output", "schema", "message", "findings", "search_text")
    for word in query_words(query):
        items = items.filter(search_text__contains=word)
    if findings in FINDINGS_FILTERS:
        items = items.filter(**FINDINGS_FILTERS[findings])
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


QUEUE_PAGE_SIZE = 50
# Matches are counted up to this many, and only from the first pages; beyond, the pager says "10,000+".
QUEUE_COUNT_CAP = 10_000
# Keeps OFFSET far inside PostgreSQL's bigint whatever page number a URL asks for.
QUEUE_MAX_PAGE = 1_000_000
# From this many rows skipped, a page is found by its ids first (see `_page_rows`).
QUEUE_DEFERRED_JOIN_OFFSET = 1_000


class CappedCount(Subquery):
    """The number of rows of a sliced subquery: a count that stops at the slice's end."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS capped)"
    output_field = IntegerField()


@dataclass(frozen=True)
class PendingOfType:
    """A queue tab: the pending items of one output type (or of all the user's, for the first tab)."""

    output_type: str
    pending: int
    overdue: int
    # More than QUEUE_COUNT_CAP are overdue; `overdue` is then the cap.
    overdue_more: bool = False
    oldest: datetime | None = None

    @property
    def pending_label(self) -> str:
        return f"{self.pending:,}"

    @property
    def overdue_label(self) -> str:
        return f"{self.overdue:,}{'+' if self.overdue_more else ''}"


def queue_counts(*, user: Any) -> list[PendingOfType]:
    """The pending, overdue and oldest items of each output type the user may review, in one query.

    Pending counts come from `PendingCount`; overdue ones are counted up to QUEUE_COUNT_CAP from the
    partial due-date index, and the oldest item is the first entry of the pending-by-type index.
    """
    return _queue_counts(reviewable_output_types(user))


def queue_counts_all() -> list[PendingOfType]:
    """`queue_counts` of every output type, for no one in particular (the metrics)."""
    return _queue_counts(None)


def _queue_counts(allowed: set[str] | None) -> list[PendingOfType]:
    counts = PendingCount.objects.filter(pending__gt=0)
    if allowed is not None:
        counts = counts.filter(output_type__in=allowed)
    of_type = ReviewItem.objects.filter(status=ReviewStatus.PENDING, output_type=OuterRef("output_type"))
    rows = counts.order_by("output_type").annotate(
        overdue=CappedCount(of_type.filter(due_at__lt=timezone.now()).values("id")[: QUEUE_COUNT_CAP + 1]),
        oldest=Subquery(of_type.order_by("created_at").values("created_at")[:1]),
    )
    return [
        PendingOfType(
            output_type=row.output_type,
            pending=row.pending,
            overdue=min(row.overdue, QUEUE_COUNT_CAP),
            overdue_more=row.overdue > QUEUE_COUNT_CAP,
            oldest=row.oldest,
        )
        for row in rows
    ]


def queue_totals(counts: list[PendingOfType]) -> PendingOfType:
    """The first tab: every type's counts added up."""
    return PendingOfType(
        output_type="",
        pending=sum(count.pending for count in counts),
        overdue=sum(count.overdue for count in counts),
        overdue_more=any(count.overdue_more for count in counts),
    )


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, with what the shared pager (`_pager.html`) reads of it.

    `counted` matches are known to exist, and `more` says whether others follow. The pager reads
    `page.paginator.count` and `.num_pages`: display values here, "10,000+" when `more`.
    """

    items: list[ReviewItem]
    number: int
    per_page: int
    counted: int
    more: bool

    def __iter__(self) -> Iterator[ReviewItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paginator(self) -> QueuePage:
        return self

    @property
    def count(self) -> int | str:
        return f"{self.counted:,}+" if self.more else self.counted

    @property
    def _pages(self) -> int:
        return max(1, math.ceil(self.counted / self.per_page))

    @property
    def num_pages(self) -> int | str:
        return f"{self._pages:,}+" if self.more else self._pages

    def has_previous(self) -> bool:
        return self.number > 1

    def has_next(self) -> bool:
        return self.more or self.number < self._pages

    def previous_page_number(self) -> int:
        return self.number - 1

    def next_page_number(self) -> int:
        return self.number + 1

    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.items)


def _page_number(value: Any) -> int:
    try:
        return min(max(int(value), 1), QUEUE_MAX_PAGE)
    except (TypeError, ValueError):
        return 1


def _page_rows(items: QuerySet[ReviewItem], number: int, per_page: int) -> tuple[list[ReviewItem], bool]:
    """The items of page `number`, and whether any follow.

    Deep pages are found by the ids alone, which a covering index yields without reading the wide rows the
    OFFSET skips, and only their own rows are read in full ("deferred join"). Near the start, skipping
    rows costs less than the second query.
    """
    offset = (number - 1) * per_page
    if offset < QUEUE_DEFERRED_JOIN_OFFSET:
        rows = list(items[offset : offset + per_page + 1])
        return rows[:per_page], len(rows) > per_page
    ids = list(items.values_list("id", flat=True)[offset : offset + per_page + 1])
    page_ids = ids[:per_page]
    rows = {row.id: row for row in items.filter(id__in=page_ids).order_by()} if page_ids else {}
    # An item decided between the two reads is left out rather than shown in a stale state; whether more
    # follow was known from the ids.
    return [rows[pk] for pk in page_ids if pk in rows], len(ids) > per_page


def queue_page(items: QuerySet[ReviewItem], page: Any, *, per_page: int = QUEUE_PAGE_SIZE) -> QueuePage:
    """Page `page` of `items` (the last one if past the end, the first if not a number), in one to four queries.

    Nothing counts the whole filtered queue: the last page knows its total, and a page with more after it
    counts up to QUEUE_COUNT_CAP matches, or none when it lies beyond them (it then shows "at least").
    """
    number = _page_number(page)
    rows, more = _page_rows(items, number, per_page)
    if not rows and not more and number > 1:
        # Past the end: the last page, found by counting what there is (fewer than the rows skipped).
        number = max(1, math.ceil(items.order_by()[: (number - 1) * per_page].count() / per_page))
        rows, more = _page_rows(items, number, per_page)
    counted = (number - 1) * per_page + len(rows)
    if more and number * per_page < QUEUE_COUNT_CAP:
        counted = items.order_by()[: QUEUE_COUNT_CAP + 1].count()
        more = counted > QUEUE_COUNT_CAP
        counted = min(counted, QUEUE_COUNT_CAP)
    return QueuePage(items=rows, number=number, per_page=per_page, counted=counted, more=more)


def next_item_for(*, user: Any, after: ReviewItem | None = None, **filters: Any) -> ReviewItem | None:
    """The next pending item the user may take in their list (`filters`: the keyword arguments of
    `queue_items`, its sort among them): the first one after `after` in the list's order, else the list's first.

    One the user may take is unclaimed, or claimed by them, or with a lapsed claim; not one they gave the first
    of two approvals (four eyes), which only someone else can complete.
    """
    items = queue_items(user=user, **{**filters, "status": ReviewStatus.PENDING}).filter(
        Q(claimed_by__isnull=True) | Q(claimed_by=user) | Q(claim_expires_at__lt=timezone.now())
    )
    items = items.exclude(first_approval__user=user)
    if after is None:
        return items.first()
    items = items.exclude(id=after.id)
    return seek(items, after, filters.get("sort", "oldest")) or items.first()


def items_resumed_since(since: datetime) -> QuerySet[ReviewItem]:
    """Items decided since `since` whose run has resumed (`review_decided_idx` bounds it to the window)."""
    return ReviewItem.objects.filter(status=ReviewStatus.DECIDED, decided_at__gte=since, resumed_at__isnull=False)


def decision_counts_since(since: datetime) -> list[dict[str, Any]]:
    """Decisions of items decided since `since`, per output type and outcome (`review_decided_idx`, then each
    item's decision by its unique key)."""
    return list(
        Decision.objects.filter(item__status=ReviewStatus.DECIDED, item__decided_at__gte=since)
        .values("output_type", "outcome")
        .order_by("output_type", "outcome")
        .annotate(count=Count("id"))
    )
