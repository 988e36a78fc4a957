"""Reads of autonomy policies and the statistics behind them.

Every figure is an SQL aggregate over indexed columns of GateDecision (plus
FieldError, ReviewItem and Decision for their own figures): a fixed, small
number of queries per call whatever the data size. Every rate comes with its
n and a Wilson 95% interval, flattened into `<name>`, `<name>_ci_low`,
`<name>_ci_high` (or `ci_low`/`ci_high` for a row's main rate).

Weights. A verdict on an output that had probability p of being reviewed
stands for 1/p outputs: 1 below the threshold or when a rule forced review,
1/audit_rate for an audit sample. Figures about the outputs themselves (the
accuracy of what was auto-processed) use these weights; figures about the
review work (how many reviewed outputs were right) do not.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from django.db.models import (
    Avg,
    Count,
    DateField,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone

from reviewconsole.autonomy.models import AutonomyPolicy, FieldError, GateDecision, Route, Verdict
from reviewconsole.autonomy.recommendation import Bucket, bucket_aggregates, verdicts_queryset, weight_expression
from reviewconsole.autonomy.statistics import Rate, weighted_wilson, wilson

VERDICTS = [Verdict.CORRECT, Verdict.INCORRECT]
HAS_VERDICT = Q(verdict__in=VERDICTS)
# Decided reviews whose time to decision is reported, when no `since` is given.
DECISION_TIME_DAYS = 30


def policies_by_type(output_types: list[str]) -> dict[str, AutonomyPolicy]:
    return {p.output_type: p for p in AutonomyPolicy.objects.filter(output_type__in=output_types)}


def _accuracy(rate: Rate) -> dict[str, float | None]:
    return {"accuracy": rate.value, "ci_low": rate.low, "ci_high": rate.high}


def _decisions(output_type: str, since: datetime | None) -> QuerySet[GateDecision]:
    decisions = GateDecision.objects.filter(output_type=output_type)
    return decisions.filter(created_at__gte=since) if since is not None else decisions


def type_summary(output_type: str, since: datetime | None = None) -> dict[str, Any]:
    """Headline figures of one output type, from gate decisions created since `since`. One query.

    Returns {output_type, total, auto, routed (sent to review), reviewed
    (with a verdict), pending_verdict, correct, accuracy + ci_low/ci_high (of
    reviewed outputs, unweighted), audited, audited_correct,
    auto_accuracy_estimate + _ci_low/_ci_high/_n_eff (weighted accuracy of
    audit samples: the estimate for auto-processed outputs),
    estimated_accuracy + _ci_low/_ci_high/_n_eff (weighted over every
    verdict: all outputs, reviewed or not), autonomy_rate + _ci_low/_ci_high/_n
    (share auto-processed)}.
    """
    weight = weight_expression()
    weighted = HAS_VERDICT & Q(review_probability__gt=0)
    audited = weighted & Q(audit=True)
    correct = Q(verdict=Verdict.CORRECT)
    row = _decisions(output_type, since).aggregate(
        total=Count("id"),
        auto=Count("id", filter=Q(route=Route.AUTO_APPROVED)),
        routed=Count("id", filter=Q(route=Route.HUMAN_REVIEW)),
        reviewed=Count("id", filter=HAS_VERDICT),
        correct=Count("id", filter=correct),
        audited=Count("id", filter=audited),
        audited_correct=Count("id", filter=audited & correct),
        aw=Sum(weight, filter=audited, output_field=FloatField()),
        awc=Sum(weight, filter=audited & correct, output_field=FloatField()),
        aw2=Sum(weight * weight, filter=audited, output_field=FloatField()),
        w=Sum(weight, filter=weighted, output_field=FloatField()),
        wc=Sum(weight, filter=weighted & correct, output_field=FloatField()),
        w2=Sum(weight * weight, filter=weighted, output_field=FloatField()),
    )
    accuracy = wilson(row["correct"], row["reviewed"])
    auto_estimate = weighted_wilson(row["aw"] or 0.0, row["awc"] or 0.0, row["aw2"] or 0.0)
    overall = weighted_wilson(row["w"] or 0.0, row["wc"] or 0.0, row["w2"] or 0.0)
    autonomy = wilson(row["auto"], row["total"])
    return {
        "output_type": output_type,
        "since": since,
        "total": row["total"],
        "auto": row["auto"],
        "routed": row["routed"],
        "reviewed": row["reviewed"],
        "pending_verdict": row["routed"] - row["reviewed"],
        "correct": row["correct"],
        **_accuracy(accuracy),
        "audited": row["audited"],
        "audited_correct": row["audited_correct"],
        "auto_accuracy_estimate": auto_estimate.value,
        "auto_accuracy_ci_low": auto_estimate.low,
        "auto_accuracy_ci_high": auto_estimate.high,
        "auto_accuracy_n_eff": auto_estimate.n,
        "estimated_accuracy": overall.value,
        "estimated_accuracy_ci_low": overall.low,
        "estimated_accuracy_ci_high": overall.high,
        "estimated_accuracy_n_eff": overall.n,
        "autonomy_rate": autonomy.value,
        "autonomy_ci_low": autonomy.low,
        "autonomy_ci_high": autonomy.high,
        "autonomy_n": row["total"],
    }


def calibration(output_type: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Accuracy per confidence band [0, 0.1), …, [0.9, 1.0], the type's calibration. One query.

    Each band: {band (0-9), low, high, n, correct, accuracy + ci_low/ci_high
    (unweighted), mean_confidence, weighted_accuracy + weighted_ci_low/high
    and n_eff (by inverse review probability: differs only in a band where
    some outputs were audit samples)}. Bands are built from the same
    per-percent buckets as the recommendation, so the two always agree.
    """
    queryset = verdicts_queryset(output_type)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    buckets = bucket_aggregates(queryset)
    bands = [Bucket() for _ in range(10)]
    for percent, bucket in buckets.items():
        bands[min(percent // 10, 9)].add(bucket)
    rows = []
    for index, band in enumerate(bands):
        weighted = band.rate()
        rows.append(
            {
                "band": index,
                "low": index / 10,
                "high": (index + 1) / 10,
                "n": band.n,
                "correct": band.correct,
                **_accuracy(wilson(band.correct, band.n)),
                "mean_confidence": band.confidence_sum / band.n if band.n else None,
                "weighted_accuracy": weighted.value,
                "weighted_ci_low": weighted.low,
                "weighted_ci_high": weighted.high,
                "n_eff": weighted.n,
            }
        )
    return rows


def _reviewed_count(output_type: str, since: datetime | None) -> int:
    verdicts = GateDecision.objects.filter(HAS_VERDICT, output_type=output_type)
    if since is not None:
        verdicts = verdicts.filter(verdict_at__gte=since)
    return verdicts.count()


def field_error_rates(output_type: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per field, the share of reviewed outputs a reviewer corrected it in; most-corrected first. Two queries.

    Each row: {field, errors, n (reviewed outputs), rate, ci_low, ci_high}.
    `since` counts verdicts given since then.
    """
    n = _reviewed_count(output_type, since)
    errors = FieldError.objects.filter(output_type=output_type)
    if since is not None:
        errors = errors.filter(created_at__gte=since)
    # Count distinct decisions: one output corrected twice in a field is one error.
    rows = errors.values("field").annotate(errors=Count("gate_decision", distinct=True)).order_by("-errors", "field")
    result = []
    for row in rows:
        rate = wilson(row["errors"], n)
        result.append({"field": row["field"], "errors": row["errors"], "n": n, **_rate_row(rate)})
    return result


def _rate_row(rate: Rate) -> dict[str, float | None]:
    return {"rate": rate.value, "ci_low": rate.low, "ci_high": rate.high}


def reject_reason_rates(output_type: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per reject reason, the share of reviewed outputs rejected for it. Two queries.

    Each row: {reason, rejections, n (reviewed outputs), rate, ci_low,
    ci_high}; every reason of the type's policy is listed, unused ones with
    0, then any reason no longer in the policy; most frequent first.
    """
    verdicts = GateDecision.objects.filter(HAS_VERDICT, output_type=output_type)
    if since is not None:
        verdicts = verdicts.filter(verdict_at__gte=since)
    # One GROUP BY gives both the counts per reason and (summed) the reviewed total.
    counts = {
        row["reject_reason"]: row["n"]
        for row in verdicts.values("reject_reason").annotate(n=Count("id")).order_by("reject_reason")
    }
    n = sum(counts.values())
    policy = AutonomyPolicy.objects.filter(output_type=output_type).values_list("reject_reasons", flat=True).first()
    reasons = list(policy or []) + sorted(r for r in counts if r and r not in (policy or []))
    rows = [
        {"reason": r, "rejections": counts.get(r, 0), "n": n, **_rate_row(wilson(counts.get(r, 0), n))} for r in reasons
    ]
    return sorted(rows, key=lambda row: -row["rejections"])


def trend(output_type: str, period: str = "day", since: datetime | None = None) -> list[dict[str, Any]]:
    """Per day or week (weeks start on Monday), from the first period with data to the last. One query.

    Each row: {period (a date), total, auto, autonomy_rate +
    autonomy_ci_low/high, reviewed, correct, accuracy + ci_low/ci_high}.
    Periods without decisions in between are included with zeros, so a chart
    shows the gap.
    """
    if period not in ("day", "week"):
        raise ValueError("period must be 'day' or 'week'")
    truncate = TruncDate("created_at") if period == "day" else TruncWeek("created_at", output_field=DateField())
    rows = (
        _decisions(output_type, since)
        .annotate(period=truncate)
        .values("period")
        .annotate(
            total=Count("id"),
            auto=Count("id", filter=Q(route=Route.AUTO_APPROVED)),
            reviewed=Count("id", filter=HAS_VERDICT),
            correct=Count("id", filter=Q(verdict=Verdict.CORRECT)),
        )
        .order_by("period")
    )
    by_period: dict[date, dict[str, int]] = {}
    for row in rows:
        day = row["period"].date() if isinstance(row["period"], datetime) else row["period"]
        by_period[day] = row
    if not by_period:
        return []
    step = timedelta(days=1 if period == "day" else 7)
    result = []
    day, last = min(by_period), max(by_period)
    while day <= last:
        row = by_period.get(day, {"total": 0, "auto": 0, "reviewed": 0, "correct": 0})
        autonomy = wilson(row["auto"], row["total"])
        result.append(
            {
                "period": day,
                "total": row["total"],
                "auto": row["auto"],
                "autonomy_rate": autonomy.value,
                "autonomy_ci_low": autonomy.low,
                "autonomy_ci_high": autonomy.high,
                "reviewed": row["reviewed"],
                "correct": row["correct"],
                **_accuracy(wilson(row["correct"], row["reviewed"])),
            }
        )
        day += step
    return result


def _seconds(value: Any) -> float | None:
    """A duration aggregate as seconds: a timedelta on both backends, a number of microseconds on some."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000


def queue_health(output_type: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """The review queue of a type (or all types): depth, age, and time to decision. Three queries.

    Returns {output_type, pending, oldest_created_at, oldest_age_seconds,
    overdue (past their SLA), decided, avg_decision_seconds,
    median_decision_seconds, since}. Time to decision covers items a person
    decided (not expired or cancelled) since `since`, by default the last
    30 days.
    """
    from reviewconsole.reviews.models import ReviewItem, ReviewStatus

    now = timezone.now()
    items = ReviewItem.objects.all()
    if output_type is not None:
        items = items.filter(output_type=output_type)
    queue = items.filter(status=ReviewStatus.PENDING).aggregate(
        pending=Count("id"), oldest=Min("created_at"), overdue=Count("id", filter=Q(due_at__lt=now))
    )
    since = since if since is not None else now - timedelta(days=DECISION_TIME_DAYS)
    decided = items.filter(status=ReviewStatus.DECIDED, decided_at__gte=since, decided_at__isnull=False)
    # Datetime subtraction is native on PostgreSQL and emulated by Django on
    # SQLite; both give a DurationField the ORM turns back into a timedelta.
    duration = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    times = decided.aggregate(n=Count("id"), avg=Avg(duration))
    middle = None
    if times["n"]:
        # The median is the middle row by duration: one ordered, offset read
        # (at most two for an even count), the same SQL on both backends.
        lower = (times["n"] - 1) // 2
        values = list(
            decided.annotate(duration=duration)
            .order_by("duration")
            .values_list("duration", flat=True)[lower : lower + 2 - times["n"] % 2]
        )
        middle = median(_seconds(v) or 0.0 for v in values)
    return {
        "output_type": output_type,
        "pending": queue["pending"],
        "oldest_created_at": queue["oldest"],
        "oldest_age_seconds": (now - queue["oldest"]).total_seconds() if queue["oldest"] else None,
        "overdue": queue["overdue"],
        "decided": times["n"],
        "avg_decision_seconds": _seconds(times["avg"]),
        "median_decision_seconds": middle,
        "since": since,
    }


def reviewer_throughput(output_type: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Decisions per reviewer since `since` (all time when None), busiest first. One query.

    Each row: {user_id, username, decisions, approved (unchanged), edited,
    rejected, avg_decision_seconds (item created → decided), first_at,
    last_at, per_day (decisions per day over the period since `since`, or
    between the reviewer's first and last decision)}. Expired items have no
    reviewer and are not counted.
    """
    from reviewconsole.reviews.models import Decision
    from reviewconsole.reviews.services import REJECT_OUTCOME

    decisions = Decision.objects.filter(user__isnull=False)
    if output_type is not None:
        decisions = decisions.filter(item__output_type=output_type)
    if since is not None:
        decisions = decisions.filter(at__gte=since)
    duration = ExpressionWrapper(F("at") - F("item__created_at"), output_field=DurationField())
    rejected = Q(outcome=REJECT_OUTCOME)
    edited = Q(edited_output__isnull=False) & ~rejected
    rows = (
        decisions.values("user_id", "user__username")
        .annotate(
            decisions=Count("id"),
            edited=Count("id", filter=edited),
            rejected=Count("id", filter=rejected),
            avg=Avg(duration),
            first_at=Min("at"),
            last_at=Max("at"),
        )
        .order_by("-decisions", "user__username")
    )
    now = timezone.now()
    result = []
    for row in rows:
        start = since or row["first_at"]
        days = max((now if since else row["last_at"]) - start, timedelta(days=1)).total_seconds() / 86400
        result.append(
            {
                "user_id": row["user_id"],
                "username": row["user__username"],
                "decisions": row["decisions"],
                "approved": row["decisions"] - row["edited"] - row["rejected"],
                "edited": row["edited"],
                "rejected": row["rejected"],
                "avg_decision_seconds": _seconds(row["avg"]),
                "first_at": row["first_at"],
                "last_at": row["last_at"],
                "per_day": row["decisions"] / days,
            }
        )
    return result


def overview(since: datetime | None = None) -> list[dict[str, Any]]:
    """One row per output type for the dashboard, in type order. Three queries.

    Each row: {output_type, threshold, mode, always_review, audit_rate,
    target_accuracy, total, auto, autonomy_rate + autonomy_ci_low/high,
    reviewed, correct, accuracy + ci_low/ci_high (of reviewed outputs),
    auto_accuracy_estimate + _ci_low/_ci_high/_n_eff (weighted, of audit
    samples), pending, oldest_pending_age_seconds}. `since`
    limits the decision counts (not the queue) to decisions created since then.
    """
    from reviewconsole.reviews.models import ReviewItem, ReviewStatus

    policies = list(AutonomyPolicy.objects.order_by("output_type"))
    weight = weight_expression()
    audited = HAS_VERDICT & Q(audit=True, review_probability__gt=0)
    decisions = GateDecision.objects.all()
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    counts = {
        row["output_type"]: row
        for row in decisions.values("output_type")
        .annotate(
            total=Count("id"),
            auto=Count("id", filter=Q(route=Route.AUTO_APPROVED)),
            reviewed=Count("id", filter=HAS_VERDICT),
            correct=Count("id", filter=Q(verdict=Verdict.CORRECT)),
            aw=Sum(weight, filter=audited, output_field=FloatField()),
            awc=Sum(weight, filter=audited & Q(verdict=Verdict.CORRECT), output_field=FloatField()),
            aw2=Sum(weight * weight, filter=audited, output_field=FloatField()),
        )
        .order_by()
    }
    queues = {
        row["output_type"]: row
        for row in ReviewItem.objects.filter(status=ReviewStatus.PENDING)
        .values("output_type")
        .annotate(pending=Count("id"), oldest=Min("created_at"))
        .order_by()
    }
    now = timezone.now()
    zero = {"total": 0, "auto": 0, "reviewed": 0, "correct": 0, "aw": 0.0, "awc": 0.0, "aw2": 0.0}
    rows = []
    for policy in policies:
        count = counts.get(policy.output_type, zero)
        queue = queues.get(policy.output_type, {"pending": 0, "oldest": None})
        accuracy = wilson(count["correct"], count["reviewed"])
        autonomy = wilson(count["auto"], count["total"])
        auto_estimate = weighted_wilson(count["aw"] or 0.0, count["awc"] or 0.0, count["aw2"] or 0.0)
        rows.append(
            {
                "output_type": policy.output_type,
                "threshold": policy.threshold,
                "mode": policy.mode,
                "always_review": policy.always_review,
                "audit_rate": policy.audit_rate,
                "target_accuracy": policy.target_accuracy,
                "total": count["total"],
                "auto": count["auto"],
                "autonomy_rate": autonomy.value,
                "autonomy_ci_low": autonomy.low,
                "autonomy_ci_high": autonomy.high,
                "reviewed": count["reviewed"],
                "correct": count["correct"],
                **_accuracy(accuracy),
                "auto_accuracy_estimate": auto_estimate.value,
                "auto_accuracy_ci_low": auto_estimate.low,
                "auto_accuracy_ci_high": auto_estimate.high,
                "auto_accuracy_n_eff": auto_estimate.n,
                "pending": queue["pending"],
                "oldest_pending_age_seconds": (now - queue["oldest"]).total_seconds() if queue["oldest"] else None,
            }
        )
    return rows


def trends_by_type(output_types: list[str], days: int) -> dict[str, list[dict[str, Any]]]:
    """Per type, the last `days` days as trend rows (autonomy rate, accuracy), every day present. One query.

    The overview's sparklines of every type come from this one GROUP BY; `trend` would be one query per type.
    """
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    counts = (
        GateDecision.objects.filter(output_type__in=output_types, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("output_type", "day")
        .annotate(
            total=Count("id"),
            auto=Count("id", filter=Q(route=Route.AUTO_APPROVED)),
            reviewed=Count("id", filter=Q(verdict__in=[Verdict.CORRECT, Verdict.INCORRECT])),
            correct=Count("id", filter=Q(verdict=Verdict.CORRECT)),
        )
        .order_by()
    )
    by_key: dict[tuple[str, date], dict[str, int]] = {}
    for row in counts:
        day = row["day"].date() if isinstance(row["day"], datetime) else row["day"]
        by_key[(row["output_type"], day)] = row
    zero = {"total": 0, "auto": 0, "reviewed": 0, "correct": 0}
    result: dict[str, list[dict[str, Any]]] = {}
    for output_type in output_types:
        rows = []
        for offset in range(days):
            day = start + timedelta(days=offset)
            row = by_key.get((output_type, day), zero)
            autonomy = wilson(row["auto"], row["total"])
            accuracy = wilson(row["correct"], row["reviewed"])
            rows.append(
                {
                    "period": day,
                    "total": row["total"],
                    "auto": row["auto"],
                    "autonomy_rate": autonomy.value,
                    "reviewed": row["reviewed"],
                    "correct": row["correct"],
                    "accuracy": accuracy.value,
                }
            )
        # Leading days before the type's first output say nothing; drop them.
        while rows and not rows[0]["total"]:
            rows.pop(0)
        result[output_type] = rows
    return result
