"""Sums over gate decisions, read from the daily rollups where they hold the day and live everywhere else.

Why. Every dashboard figure is a sum over a type's gate decisions (counts, sums of inverse-probability weights
and of their squares, confidence sums); over a million decisions each takes 100-300 ms on PostgreSQL. The
rollups (`models.GateRollup`, `models.GateBucketRollup`) hold the same sums per type and local day.

Why it stays exact. A sum splits over any partition of the rows. `coverage` partitions a type's decisions by
(type, day): the days the rollup holds (up to `RollupState.rolled_through`, minus the days a late verdict marked
stale since) are read from the rollups, everything else — today, days not rolled up yet, stale days, and the
part of a `since` day before its midnight — live from GateDecision. A `Measure` is one sum with the same meaning
on both sides: `live()` aggregates gate decisions, `rolled()` adds up the rollup column that the refresh filled
with that very aggregate (`ROLLUP_SUMS`, `live_aggregate`). Float sums may differ in the last bits, as any two
orders of summing do; counts are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, F, FloatField, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Floor, NullIf
from django.utils import timezone

from reviewconsole.autonomy.models import GateBucketRollup, GateRollup, RollupState, StaleRollupDay

# Confidences such as 0.29 are 28.999… after *100 in binary floating point;
# the nudge puts them in the bucket their decimal value names.
BUCKET_EPSILON = 1e-9
# The reasons the gate gives its own routing; a flow may not force a review under one of them (reviewers
# would read the flow's rule as the policy's doing).
GATE_REASONS = ["", "low_confidence", "audit_sample", "always_review"]
# Reviews a rule forced (`GateDecision.forced`): never auto-processed, so never evidence about autonomy.
FORCED = Q(forced=True)
UNFORCED = Q(forced=False)


def counted_verdicts() -> Q:
    """The verdicts the type's policy counts as evidence: the one filter every accuracy figure applies.

    A verdict is left out when the policy says so (`GateDecision.excluded`: a marked approval under
    `exclude_marked_approvals`); `verdict_record` and `evidence_exclusions_apply` keep the flag, and the rollups
    group by it, so the filter reads the same on gate decisions and on rollup rows. Compose it with other
    filters of the evidence (`&`); it says nothing about forced reviews, which have their own figures.
    """
    return Q(excluded=False)


COUNTED = counted_verdicts()
WEIGHTED = Q(review_probability__gt=0)

# What each rollup groups by (besides type and day), and the sums it keeps (see `live_aggregate`).
ROLLUP_KEYS: dict[type[GateRollup | GateBucketRollup], tuple[str, ...]] = {
    GateRollup: ("flow_version", "route", "forced", "audit", "verdict", "reject_reason", "marked", "excluded"),
    GateBucketRollup: ("flow_version", "bucket", "forced", "verdict", "excluded"),
}
ROLLUP_SUMS: dict[type[GateRollup | GateBucketRollup], tuple[str, ...]] = {
    GateRollup: ("n", "n_weighted", "weight", "weight_square"),
    GateBucketRollup: ("n", "n_weighted", "weight", "weight_square", "confidence_sum"),
}


def weight_expression() -> Any:
    """1 / review_probability in SQL; NULLIF keeps a zero probability from dividing (it is NULL, so skipped)."""
    return Value(1.0) / NullIf(F("review_probability"), Value(0.0))


def bucket_expression() -> Any:
    """The whole percent of confidence in SQL (NULL without one), unclamped: the rollup's `bucket`."""
    return Cast(Floor(F("confidence") * Value(100.0) + Value(BUCKET_EPSILON)), output_field=IntegerField())


def _both(first: Q | None, second: Q | None) -> Q | None:
    if first is None or second is None:
        return first if second is None else second
    return first & second


def live_aggregate(column: str, condition: Q | None = None) -> Any:
    """The aggregate over gate decisions that rollup `column` holds, restricted to `condition`."""
    if column == "n":
        return Count("id", filter=condition)
    if column == "n_weighted":
        return Count("id", filter=_both(WEIGHTED, condition))
    if column == "confidence_sum":
        return Sum("confidence", filter=_both(WEIGHTED, condition), output_field=FloatField())
    weight = weight_expression()
    if column == "weight":
        return Sum(weight, filter=_both(WEIGHTED, condition), output_field=FloatField())
    if column == "weight_square":
        return Sum(weight * weight, filter=_both(WEIGHTED, condition), output_field=FloatField())
    raise ValueError(f"no rollup column {column!r}")


@dataclass(frozen=True)
class Measure:
    """One sum over gate decisions: rollup `column` over the decisions matching `condition`.

    `condition` may only use fields the gate decisions and the rollup read share (flow_version, route, forced,
    audit, verdict, reject_reason, marked, excluded; bucket, as an annotation on the live side).
    """

    column: str
    condition: Q | None = None

    def live(self) -> Any:
        return live_aggregate(self.column, self.condition)

    def rolled(self) -> Any:
        return Sum(self.column, filter=self.condition)


def local_zone() -> Any:
    """Rollup days are days in the default time zone, whatever zone a request activated."""
    return timezone.get_default_timezone()


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), local_zone())


def day_of(moment: datetime) -> date:
    return timezone.localtime(moment, local_zone()).date()


def day_ranges(pairs: Iterable[tuple[str, date]]) -> tuple[Q, Q]:
    """For (type, day) pairs: a Q over gate decisions created on them, and a Q over rollup rows of them.

    Consecutive days of a type become one created_at range, so a week of stale days is one index range scan.
    """
    by_type: dict[str, list[date]] = {}
    for output_type, day in pairs:
        by_type.setdefault(output_type, []).append(day)
    decisions, rollups = Q(), Q()
    for output_type, days in sorted(by_type.items()):
        days = sorted(set(days))
        rollups |= Q(output_type=output_type, day__in=days)
        first = previous = days[0]
        for day in [*days[1:], None]:
            if day is not None and day == previous + timedelta(days=1):
                previous = day
                continue
            span = Q(created_at__gte=day_start(first), created_at__lt=day_start(previous + timedelta(days=1)))
            decisions |= Q(output_type=output_type) & span
            if day is not None:
                first = previous = day
    return decisions, rollups


@dataclass(frozen=True)
class Coverage:
    """Where the decisions created since a moment are read from.

    `live`: a Q over GateDecision for the rows to aggregate live. `rolled`: a Q over the rollups for the rows
    to add (None: nothing is rolled up). `rolled_decisions`: a Q over GateDecision for the decisions the
    rolled rows stand for (what-if reads the one bucket it cannot split from those).
    """

    live: Q
    rolled: Q | None = None
    rolled_decisions: Q | None = None


def coverage(since: datetime | None = None, output_types: Sequence[str] | None = None) -> Coverage:
    """The split for decisions created since `since` (all when None) of `output_types` (all when None). Two queries."""
    everything = Coverage(live=Q() if since is None else Q(created_at__gte=since))
    state = RollupState.objects.filter(pk=1).values("rolled_through", "time_zone").first()
    if state is None or state["rolled_through"] is None or state["time_zone"] != str(local_zone()):
        return everything
    last = state["rolled_through"]
    first = None
    if since is not None:
        first = day_of(since)
        if day_start(first) < since:  # the rest of that day is read live
            first += timedelta(days=1)
        if first > last:
            return everything
    stale = StaleRollupDay.objects.filter(day__lte=last)
    if first is not None:
        stale = stale.filter(day__gte=first)
    if output_types is not None:
        stale = stale.filter(output_type__in=output_types)
    stale_decisions, stale_rollups = day_ranges(stale.values_list("output_type", "day").distinct())
    after = day_start(last + timedelta(days=1))
    live = Q(created_at__gte=after) | stale_decisions
    rolled = Q(day__lte=last)
    rolled_decisions = Q(created_at__lt=after)
    if first is not None:
        rolled &= Q(day__gte=first)
        rolled_decisions &= Q(created_at__gte=day_start(first))
        if since < day_start(first):
            live |= Q(created_at__gte=since, created_at__lt=day_start(first))
    if stale_rollups:
        rolled &= ~stale_rollups
        rolled_decisions &= ~stale_decisions
    return Coverage(live=live, rolled=rolled, rolled_decisions=rolled_decisions)


def sums(
    queryset: QuerySet[Any],
    measures: Mapping[str, Measure],
    *,
    rolled: bool = False,
    group_by: Sequence[str] = (),
    into: dict[tuple[Any, ...], dict[str, Any]] | None = None,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Each measure over `queryset` (gate decisions, or rollup rows when `rolled`), per `group_by` key. One query.

    The queryset must already be filtered and carry the `group_by` fields (annotations on gate decisions where
    they have no such field). Without `group_by` the one key is `()`. Adds to `into` when given.
    """
    result: dict[tuple[Any, ...], dict[str, Any]] = {} if into is None else into
    expressions = {name: measure.rolled() if rolled else measure.live() for name, measure in measures.items()}
    if group_by:
        rows: Iterable[dict[str, Any]] = queryset.values(*group_by).annotate(**expressions).order_by()
    else:
        rows = [queryset.aggregate(**expressions)]
    for row in rows:
        total = result.setdefault(tuple(row[key] for key in group_by), dict.fromkeys(measures, 0))
        for name in measures:
            total[name] += row[name] or 0
    return result


def totals(
    live: QuerySet[Any],
    rolled: QuerySet[Any] | None,
    measures: Mapping[str, Measure],
    group_by: Sequence[str] = (),
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """`sums` over the live gate decisions plus the rolled-up rows (when there are any). One or two queries."""
    result = sums(live, measures, group_by=group_by)
    return result if rolled is None else sums(rolled, measures, rolled=True, group_by=group_by, into=result)
