"""Reads of autonomy policies and the statistics behind them.

Every figure is an SQL aggregate: over the daily rollups for the past days
they hold, plus GateDecision live for today and any day not rolled up or
stale (see rollup.py; the result is the same as over GateDecision alone),
and over FieldError, ReviewItem and Decision for their own figures. A fixed,
small number of queries per call whatever the data size. The statistics are
`evidence`'s: every rate comes with its n and an exact 95% interval, flattened
into `<name>`, `<name>_ci_low`, `<name>_ci_high` (or `ci_low`/`ci_high` for a
row's main rate).

Populations. Verdicts on outputs a rule forced to review (`GateDecision.forced`)
say nothing about what a threshold would let through: every accuracy figure
leaves them out, and they keep their own (`forced_*`).

Weights. A verdict on an output that had probability p of being reviewed
stands for 1/p outputs: 1 below the threshold, 1/audit_rate for an audit
sample. Figures about the outputs themselves (the accuracy of what was
auto-processed) use these weights, stratified by confidence; figures about the
review work (how many reviewed outputs were right) do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from reviewconsole.autonomy import evidence
from reviewconsole.autonomy.evidence import Estimate, Stratum
from reviewconsole.autonomy.guard import GUARD_REASON
from reviewconsole.autonomy.models import (
    AutonomyPolicy,
    FieldError,
    GateDecision,
    GateRollup,
    PolicyChange,
    Route,
    Verdict,
)
from reviewconsole.autonomy.recommendation import type_strata
from reviewconsole.autonomy.rollup import (
    COUNTED,
    FORCED,
    UNFORCED,
    Measure,
    coverage,
    day_start,
    local_zone,
    sums,
    totals,
)

VERDICTS = [Verdict.CORRECT, Verdict.INCORRECT]
# Every verdict given, counted or not (what the queue's work and the "left out" counts read).
GIVEN = Q(verdict__in=VERDICTS)
# The verdicts the accuracy figures count: given, and not left out by the policy (`rollup.counted_verdicts`).
HAS_VERDICT = GIVEN & COUNTED
CORRECT = Q(verdict=Verdict.CORRECT) & COUNTED
AUTO = Q(route=Route.AUTO_APPROVED)
AUDITED = HAS_VERDICT & Q(audit=True) & UNFORCED
# The counts of the overview and the trends. Accuracy figures count the verdicts no rule forced: what a
# threshold decides about; forced reviews have their own figures (`FORCED_COUNTS`).
COUNTS = {
    "total": Measure("n"),
    "auto": Measure("n", AUTO),
    "reviewed": Measure("n", HAS_VERDICT & UNFORCED),
    "correct": Measure("n", CORRECT & UNFORCED),
}
# The audited estimate of auto-processed outputs: the audit samples, as one stratum of the outputs they
# stand for (1 / review probability each).
AUDITS = {
    "audited": Measure("n_weighted", AUDITED),
    "audited_correct": Measure("n_weighted", AUDITED & CORRECT),
    "audited_outputs": Measure("weight", AUDITED),
}
FORCED_COUNTS = {
    "forced_outputs": Measure("n", FORCED),
    "forced_reviewed": Measure("n", FORCED & HAS_VERDICT),
    "forced_correct": Measure("n", FORCED & CORRECT),
}
# What each rule of the policy left out of the accuracy figures, and the marked approvals it could leave out.
LEFT_OUT = {
    "marked_bulk": Measure("n", GIVEN & Q(marked="bulk")),
    "marked_fast": Measure("n", GIVEN & Q(marked="fast")),
    "excluded_bulk": Measure("n", GIVEN & Q(marked="bulk", excluded=True)),
    "excluded_fast": Measure("n", GIVEN & Q(marked="fast", excluded=True)),
}
SUMMARY = {
    **COUNTS,
    **AUDITS,
    **FORCED_COUNTS,
    **LEFT_OUT,
    "routed": Measure("n", Q(route=Route.HUMAN_REVIEW)),
    "all_reviewed": Measure("n", GIVEN),
}
# Decided reviews whose time to decision is reported, when no `since` is given.
DECISION_TIME_DAYS = 30


def policies_by_type(output_types: list[str]) -> dict[str, AutonomyPolicy]:
    return {p.output_type: p for p in AutonomyPolicy.objects.filter(output_type__in=output_types)}


def _accuracy(rate: Estimate, prefix: str = "") -> dict[str, float | None]:
    """An estimate as `accuracy`, `ci_low`, `ci_high` (each after `prefix`)."""
    return {f"{prefix}accuracy": rate.accuracy, f"{prefix}ci_low": rate.ci_low, f"{prefix}ci_high": rate.ci_high}


def audit_estimate(row: Mapping[str, Any]) -> Estimate:
    """The accuracy of auto-processed outputs from the audit samples in `row` (`AUDITS` sums), via the core."""
    return evidence.estimate([Stratum(row["audited_outputs"], row["audited"], row["audited_correct"])])


def gate_totals(
    measures: Mapping[str, Measure],
    *,
    since: datetime | None = None,
    output_types: Sequence[str] | None = None,
    where: Q | None = None,
    group_by: Sequence[str] = (),
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """`measures` over the gate decisions created since `since` of `output_types` (all when None) matching
    `where`, per `group_by` key (fields shared by GateDecision and GateRollup, or "day"). Three or four queries.
    """
    cover = coverage(since, output_types)
    rows = Q() if output_types is None else Q(output_type__in=output_types)
    if where is not None:
        rows &= where
    live = GateDecision.objects.filter(cover.live, rows)
    rolled = None if cover.rolled is None else GateRollup.objects.filter(cover.rolled, rows)
    if "day" in group_by:
        live = live.annotate(day=TruncDate("created_at", tzinfo=local_zone()))
    return totals(live, rolled, measures, group_by)


SAME_WINDOW: Any = object()


def type_summary(
    output_type: str,
    since: datetime | None = None,
    *,
    strata: Mapping[int, Stratum] | None = None,
    audits_since: datetime | None = SAME_WINDOW,
    where: Q | None = None,
) -> dict[str, Any]:
    """Headline figures of one output type, from gate decisions created since `since`. Up to eight queries.

    Returns {output_type, total, auto, routed (sent to review), reviewed (verdicts on outputs no rule
    forced), pending_verdict, correct, accuracy + ci_low/ci_high (of those reviewed outputs, unweighted),
    audited, audited_correct, auto_accuracy_estimate + _ci_low/_ci_high/_n_eff (audit samples: the estimate
    for auto-processed outputs), estimated_accuracy + _ci_low/_ci_high/_n_eff (over the strata of every verdict
    no rule forced, each weighed by the outputs it stands for), autonomy_rate + _ci_low/_ci_high/_n (share
    auto-processed), forced (decisions a rule forced to review), forced_reviewed, forced_correct,
    forced_accuracy + forced_ci_low/high (their own figures, never part of the others), marked_bulk and
    marked_fast (verdicts on bulk and fast approvals), excluded_bulk and excluded_fast (of them, those the policy
    leaves out of every figure above)}. Every interval is
    exact. `strata`: `type_strata(output_type, since)` when the caller has them. `audits_since`: read the
    estimate for auto-processed outputs over decisions created since then instead (the recent window, so a
    drift shows); `audits_since` in the result says which. `where`: only the decisions it matches (a version's
    evidence, `versions.evidence_filter`).
    """
    row = gate_totals(SUMMARY, since=since, output_types=[output_type], where=where)[()]
    if strata is None:
        strata = type_strata(output_type, since, where)
    audits = row
    if audits_since is SAME_WINDOW or audits_since == since:
        audits_since = since
    else:
        audits = gate_totals(AUDITS, since=audits_since, output_types=[output_type], where=where)[()]
    auto_estimate = audit_estimate(audits)
    overall = evidence.estimate(strata.values())
    autonomy = evidence.proportion(row["auto"], row["total"])
    return {
        "output_type": output_type,
        "since": since,
        "total": row["total"],
        "auto": row["auto"],
        "routed": row["routed"],
        "reviewed": row["reviewed"],
        "pending_verdict": row["routed"] - row["all_reviewed"],
        "correct": row["correct"],
        **_accuracy(evidence.proportion(row["correct"], row["reviewed"])),
        "audited": audits["audited"],
        "audited_correct": audits["audited_correct"],
        "auto_accuracy_estimate": auto_estimate.accuracy,
        "auto_accuracy_ci_low": auto_estimate.ci_low,
        "auto_accuracy_ci_high": auto_estimate.ci_high,
        "auto_accuracy_n_eff": auto_estimate.n_eff,
        "audits_since": audits_since,
        "estimated_accuracy": overall.accuracy,
        "estimated_accuracy_ci_low": overall.ci_low,
        "estimated_accuracy_ci_high": overall.ci_high,
        "estimated_accuracy_n_eff": overall.n_eff,
        "autonomy_rate": autonomy.accuracy,
        "autonomy_ci_low": autonomy.ci_low,
        "autonomy_ci_high": autonomy.ci_high,
        "autonomy_n": row["total"],
        "forced": row["forced_outputs"],
        "forced_reviewed": row["forced_reviewed"],
        "forced_correct": row["forced_correct"],
        **_accuracy(evidence.proportion(row["forced_correct"], row["forced_reviewed"]), "forced_"),
        **{name: row[name] for name in LEFT_OUT},
    }


def calibration(output_type: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Accuracy per confidence band [0, 0.1), …, [0.9, 1.0], the type's calibration. Up to four queries.

    Each band: {band (0-9), low, high, n (verdicts), correct, outputs (the outputs they stand for),
    accuracy + ci_low/ci_high and n_eff (`evidence.calibration`: each percent of confidence weighed by the
    outputs it stands for, exact interval), mean_confidence}. Forced verdicts are left out. Bands are built
    from the same strata as the recommendation, so the two always agree.
    """
    return calibration_bands(type_strata(output_type, since))


def calibration_bands(strata: Mapping[int, Stratum]) -> list[dict[str, Any]]:
    """`calibration` from the type's strata (pure): a page that also recommends aggregates them once."""
    rows = []
    for index, band in enumerate(evidence.calibration(strata)):
        rows.append(
            {
                "band": index,
                "low": band.low,
                "high": band.high,
                "n": band.estimate.reviewed,
                "correct": band.estimate.correct,
                "outputs": band.estimate.outputs,
                **_accuracy(band.estimate),
                "n_eff": band.estimate.n_eff,
                "mean_confidence": band.mean_confidence,
            }
        )
    return rows


def _verdict_counts(
    output_type: str, since: datetime | None, group_by: Sequence[str] = (), where: Q | None = None
) -> dict[tuple[Any, ...], int]:
    """Verdicts on a type's outputs given since `since` (all when None) matching `where`, per `group_by` key; no
    zero counts."""
    measures = {"verdicts": Measure("n")}
    verdicts_where = HAS_VERDICT if where is None else HAS_VERDICT & where
    if since is None:
        rows = gate_totals(measures, output_types=[output_type], where=verdicts_where, group_by=group_by)
    else:
        # Counted by when the verdict was given, which no rollup is keyed by: read live.
        verdicts = GateDecision.objects.filter(verdicts_where, output_type=output_type, verdict_at__gte=since)
        rows = sums(verdicts, measures, group_by=group_by)
    return {key: row["verdicts"] for key, row in rows.items() if row["verdicts"]}


def field_error_rates(output_type: str, since: datetime | None = None, where: Q | None = None) -> list[dict[str, Any]]:
    """Per field, the share of reviewed outputs a reviewer corrected it in; most-corrected first. Up to five queries.

    Each row: {field, errors, n (reviewed outputs), rate, ci_low, ci_high}.
    `since` counts verdicts given since then; `where` (a Q over fields FieldError shares with the gate decisions,
    such as `versions.evidence_filter`) only those it matches.
    """
    n = sum(_verdict_counts(output_type, since, where=where).values())
    errors = FieldError.objects.filter(output_type=output_type)
    if where is not None:
        errors = errors.filter(where)
    if since is not None:
        errors = errors.filter(created_at__gte=since)
    # Count distinct decisions: one output corrected twice in a field is one error.
    rows = errors.values("field").annotate(errors=Count("gate_decision", distinct=True)).order_by("-errors", "field")
    result = []
    for row in rows:
        rate = evidence.proportion(row["errors"], n)
        result.append({"field": row["field"], "errors": row["errors"], "n": n, **_rate_row(rate)})
    return result


def _rate_row(rate: Estimate) -> dict[str, float | None]:
    return {"rate": rate.accuracy, "ci_low": rate.ci_low, "ci_high": rate.ci_high}


def reject_reason_rates(
    output_type: str, since: datetime | None = None, where: Q | None = None
) -> list[dict[str, Any]]:
    """Per reject reason, the share of reviewed outputs rejected for it. Up to five queries.

    Each row: {reason, rejections, n (reviewed outputs), rate, ci_low,
    ci_high}; every reason of the type's policy is listed, unused ones with
    0, then any reason no longer in the policy; most frequent first. `where`: only verdicts on gate decisions
    it matches.
    """
    # One GROUP BY gives both the counts per reason and (summed) the reviewed total.
    counts = {r: n for (r,), n in _verdict_counts(output_type, since, ["reject_reason"], where).items()}
    n = sum(counts.values())
    policy = AutonomyPolicy.objects.filter(output_type=output_type).values_list("reject_reasons", flat=True).first()
    reasons = list(policy or []) + sorted(r for r in counts if r and r not in (policy or []))
    rows = [
        {"reason": r, "rejections": counts.get(r, 0), "n": n, **_rate_row(evidence.proportion(counts.get(r, 0), n))}
        for r in reasons
    ]
    return sorted(rows, key=lambda row: -row["rejections"])


def _daily_counts(
    output_types: list[str], since: datetime | None, where: Q | None = None
) -> dict[tuple[date, str], dict[str, int]]:
    """COUNTS per (local day, type) of the decisions created since `since` matching `where`."""
    rows = gate_totals(COUNTS, since=since, output_types=output_types, where=where, group_by=["day", "output_type"])
    # SQLite gives TruncDate back as a datetime on some versions.
    return {(day.date() if isinstance(day, datetime) else day, t): row for (day, t), row in rows.items()}


def trend(
    output_type: str, period: str = "day", since: datetime | None = None, where: Q | None = None
) -> list[dict[str, Any]]:
    """Per day or week (weeks start on Monday), from the first period with data to the last. Up to four queries.

    Each row: {period (a date), total, auto, autonomy_rate +
    autonomy_ci_low/high, reviewed, correct, accuracy + ci_low/ci_high}.
    Periods without decisions in between are included with zeros, so a chart
    shows the gap. `where`: only the decisions it matches.
    """
    if period not in ("day", "week"):
        raise ValueError("period must be 'day' or 'week'")
    by_period: dict[date, dict[str, int]] = {}
    for (day, *_), row in _daily_counts([output_type], since, where).items():
        # Weeks are summed from days (the rollups are daily); the same Monday TruncWeek gives.
        start = day - timedelta(days=day.weekday()) if period == "week" else day
        total = by_period.setdefault(start, dict.fromkeys(COUNTS, 0))
        for name in COUNTS:
            total[name] += row[name]
    if not by_period:
        return []
    step = timedelta(days=1 if period == "day" else 7)
    result = []
    day, last = min(by_period), max(by_period)
    while day <= last:
        row = by_period.get(day, {"total": 0, "auto": 0, "reviewed": 0, "correct": 0})
        autonomy = evidence.proportion(row["auto"], row["total"])
        result.append(
            {
                "period": day,
                "total": row["total"],
                "auto": row["auto"],
                "autonomy_rate": autonomy.accuracy,
                "autonomy_ci_low": autonomy.ci_low,
                "autonomy_ci_high": autonomy.ci_high,
                "reviewed": row["reviewed"],
                "correct": row["correct"],
                **_accuracy(evidence.proportion(row["correct"], row["reviewed"])),
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


def _items(output_type: str | None) -> QuerySet:
    from reviewconsole.reviews.models import ReviewItem

    items = ReviewItem.objects.all()
    return items if output_type is None else items.filter(output_type=output_type)


def queue_depth(output_type: str | None = None) -> dict[str, Any]:
    """The pending queue of a type (or all types) now. One query, on the pending-queue indexes.

    Returns {output_type, pending, oldest_created_at, oldest_age_seconds, overdue (past their SLA)}.
    """
    from reviewconsole.reviews.models import ReviewStatus

    now = timezone.now()
    queue = (
        _items(output_type)
        .filter(status=ReviewStatus.PENDING)
        .aggregate(pending=Count("id"), oldest=Min("created_at"), overdue=Count("id", filter=Q(due_at__lt=now)))
    )
    return {
        "output_type": output_type,
        "pending": queue["pending"],
        "oldest_created_at": queue["oldest"],
        "oldest_age_seconds": (now - queue["oldest"]).total_seconds() if queue["oldest"] else None,
        "overdue": queue["overdue"],
    }


class _MiddleDurations(Aggregate):
    """PostgreSQL: the two middle values of a duration, lower and upper, in one ordered-set aggregate.

    `percentile_disc(f)` returns the value at 1-based position ceil(f·n) in order. At f = 0.5 that is the lower
    middle: (n + 1) // 2. At f = 0.5 + 1e-12 it is n // 2 + 1, the upper middle, for an even n and the same
    middle for an odd one, as long as 1e-12·n stays within (0, 0.5] — any n below 5·10¹¹ — and above the
    rounding of the product (n · 2⁻⁵³, far smaller). The median is the mean of the two: the same values
    the ordered OFFSET read gives, without sending every duration through a second scan and sort.

    The durations are sorted as float seconds (`date_part`), which PostgreSQL sorts in a fraction of the time
    it takes for intervals. The order is the same: each step of the conversion is a monotonic rounding, and
    durations a microsecond apart stay far more than one float step apart for any span under a century. The
    values are within a float step of the exact seconds, so `_exact_seconds` gives them back to the microsecond.
    """

    function = "PERCENTILE_DISC"
    template = (
        "%(function)s(ARRAY[0.5, 0.500000000001]::float8[]) WITHIN GROUP (ORDER BY date_part('epoch', %(expressions)s))"
    )
    output_field = ArrayField(FloatField())


def _exact_seconds(value: float) -> float:
    """Float seconds back to the exact microsecond, as `timedelta.total_seconds()` gives them."""
    return timedelta(microseconds=round(value * 1_000_000)).total_seconds()


def queue_health(output_type: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """The review queue of a type (or all types): depth, age, and time to decision. Two queries (three on SQLite).

    Returns `queue_depth` plus {decided, avg_decision_seconds,
    median_decision_seconds, since}. Time to decision covers items a person
    decided (not expired or cancelled) since `since`, by default the last
    30 days. Both read the decided-items indexes alone (no table rows).
    """
    from reviewconsole.reviews.models import ReviewStatus

    since = since if since is not None else timezone.now() - timedelta(days=DECISION_TIME_DAYS)
    decided = _items(output_type).filter(status=ReviewStatus.DECIDED, decided_at__gte=since, decided_at__isnull=False)
    # Datetime subtraction is native on PostgreSQL and emulated by Django on
    # SQLite; both give a DurationField the ORM turns back into a timedelta.
    duration = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    if connection.vendor == "postgresql":
        times = decided.aggregate(n=Count("id"), avg=Avg(duration), middles=_MiddleDurations(duration))
        middles = times["middles"] or []
        return _queue_health(output_type, since, times, median(_exact_seconds(v) for v in middles) if middles else None)
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
    return _queue_health(output_type, since, times, middle)


def _queue_health(output_type: str | None, since: datetime, times: Mapping[str, Any], middle: float | None) -> dict:
    return {
        **queue_depth(output_type),
        "decided": times["n"],
        "avg_decision_seconds": _seconds(times["avg"]),
        "median_decision_seconds": middle,
        "since": since,
    }


def reviewer_throughput(output_type: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Decisions per reviewer since `since` (all time when None), busiest first. Two queries.

    Each row: {user_id, username, decisions, approved (unchanged), edited,
    rejected, avg_decision_seconds (item created → decided), first_at,
    last_at, per_day (decisions per day over the period since `since`, or
    between the reviewer's first and last decision)}. Expired items have no
    reviewer and are not counted.
    """
    from reviewconsole.reviews.models import Decision
    from reviewconsole.reviews.services import REJECT_OUTCOME

    # Every column read here is on a decision_*_at_idx index (the item's type and creation time are copied onto
    # the decision, hence no join to the items), so the rows of the period come from the index alone; the counts
    # count rows or `at`, not `id`, which the index does not hold.
    decisions = Decision.objects.filter(user__isnull=False)
    if output_type is not None:
        decisions = decisions.filter(output_type=output_type)
    if since is not None:
        decisions = decisions.filter(at__gte=since)
    duration = ExpressionWrapper(F("at") - F("item_created_at"), output_field=DurationField())
    rejected = Q(outcome=REJECT_OUTCOME)
    edited = Q(edited=True) & ~rejected
    # Grouped by the user's id alone, the names read afterwards for the few reviewers: joining the users into the
    # aggregate would carry a name through every decision row and hash it.
    rows = list(
        decisions.values("user_id").annotate(
            decisions=Count("*"),
            n_edited=Count("at", filter=edited),
            n_rejected=Count("at", filter=rejected),
            avg=Avg(duration),
            first_at=Min("at"),
            last_at=Max("at"),
        )
    )
    # In the database's order of names (its collation, not Python's), for reviewers with as many decisions.
    users = get_user_model().objects.filter(pk__in=[row["user_id"] for row in rows]).order_by("username")
    names = dict(users.values_list("pk", "username"))
    rank = {pk: index for index, pk in enumerate(names)}
    now = timezone.now()
    result = []
    for row in sorted(rows, key=lambda row: (-row["decisions"], rank[row["user_id"]])):
        start = since or row["first_at"]
        days = max((now if since else row["last_at"]) - start, timedelta(days=1)).total_seconds() / 86400
        result.append(
            {
                "user_id": row["user_id"],
                "username": names[row["user_id"]],
                "decisions": row["decisions"],
                "approved": row["decisions"] - row["n_edited"] - row["n_rejected"],
                "edited": row["n_edited"],
                "rejected": row["n_rejected"],
                "avg_decision_seconds": _seconds(row["avg"]),
                "first_at": row["first_at"],
                "last_at": row["last_at"],
                "per_day": row["decisions"] / days,
            }
        )
    return result


def overview(since: datetime | None = None) -> list[dict[str, Any]]:
    """One row per output type for the dashboard, in type order. Up to six queries.

    Each row: {output_type, threshold, mode, always_review, audit_rate,
    target_accuracy, total, auto, autonomy_rate + autonomy_ci_low/high,
    reviewed, correct, accuracy + ci_low/ci_high (of reviewed outputs),
    auto_accuracy_estimate + _ci_low/_ci_high/_n_eff (weighted, of audit
    samples), pending, oldest_pending_age_seconds}. `since`
    limits the decision counts (not the queue) to decisions created since then.
    """
    from reviewconsole.reviews.models import ReviewItem, ReviewStatus

    policies = list(AutonomyPolicy.objects.order_by("output_type"))
    measures = {**COUNTS, **AUDITS}
    counts = {t: row for (t,), row in gate_totals(measures, since=since, group_by=["output_type"]).items()}
    queues = {
        row["output_type"]: row
        for row in ReviewItem.objects.filter(status=ReviewStatus.PENDING)
        .values("output_type")
        .annotate(pending=Count("id"), oldest=Min("created_at"))
        .order_by()
    }
    now = timezone.now()
    zero = dict.fromkeys(measures, 0)
    rows = []
    for policy in policies:
        count = counts.get(policy.output_type, zero)
        queue = queues.get(policy.output_type, {"pending": 0, "oldest": None})
        accuracy = evidence.proportion(count["correct"], count["reviewed"])
        autonomy = evidence.proportion(count["auto"], count["total"])
        auto_estimate = audit_estimate(count)
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
                "autonomy_rate": autonomy.accuracy,
                "autonomy_ci_low": autonomy.ci_low,
                "autonomy_ci_high": autonomy.ci_high,
                "reviewed": count["reviewed"],
                "correct": count["correct"],
                **_accuracy(accuracy),
                "auto_accuracy_estimate": auto_estimate.accuracy,
                "auto_accuracy_ci_low": auto_estimate.ci_low,
                "auto_accuracy_ci_high": auto_estimate.ci_high,
                "auto_accuracy_n_eff": auto_estimate.n_eff,
                "pending": queue["pending"],
                "oldest_pending_age_seconds": (now - queue["oldest"]).total_seconds() if queue["oldest"] else None,
            }
        )
    return rows


def trends_by_type(output_types: list[str], days: int) -> dict[str, list[dict[str, Any]]]:
    """Per type, the last `days` days as trend rows (autonomy rate, accuracy), every day present. Up to four queries.

    The overview's sparklines of every type come from this one GROUP BY; `trend` would be one query per type.
    """
    today = timezone.localdate(timezone=local_zone())
    start = today - timedelta(days=days - 1)
    by_key = {(t, day): row for (day, t), row in _daily_counts(output_types, day_start(start)).items()}
    zero = dict.fromkeys(COUNTS, 0)
    result: dict[str, list[dict[str, Any]]] = {}
    for output_type in output_types:
        rows = []
        for offset in range(days):
            day = start + timedelta(days=offset)
            row = by_key.get((output_type, day), zero)
            # Sparklines show the plain shares: no interval is drawn, so none is computed.
            autonomy = row["auto"] / row["total"] if row["total"] else None
            accuracy = row["correct"] / row["reviewed"] if row["reviewed"] else None
            rows.append(
                {
                    "period": day,
                    "total": row["total"],
                    "auto": row["auto"],
                    "autonomy_rate": autonomy,
                    "reviewed": row["reviewed"],
                    "correct": row["correct"],
                    "accuracy": accuracy,
                }
            )
        # Leading days before the type's first output say nothing; drop them.
        while rows and not rows[0]["total"]:
            rows.pop(0)
        result[output_type] = rows
    return result


def guard_firing_counts() -> dict[str, int]:
    """How many times the regression guard has changed each output type's policy (the change log, all time)."""
    rows = (
        PolicyChange.objects.filter(automatic=True, reason__startswith=GUARD_REASON)
        .order_by()
        .values_list("policy__output_type")
        .annotate(count=Count("id"))
    )
    return dict(rows)
