"""The daily rollups behind the autonomy statistics: every rollup-backed figure equals the same figure computed
from the gate decisions alone, before and after refreshes, with late verdicts, `since` moments inside a day,
thresholds on bucket edges, policy changes and a change of time zone."""

import math
import random
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule

from reviewconsole.autonomy import recommendation, selectors
from reviewconsole.autonomy.evidence import percent_of
from reviewconsole.autonomy.models import (
    FieldError,
    GateBucketRollup,
    GateDecision,
    GateRollup,
    RollupState,
    Route,
    StaleRollupDay,
    Verdict,
)
from reviewconsole.autonomy.rollup import (
    FORCED,
    ROLLUP_KEYS,
    ROLLUP_SUMS,
    UNFORCED,
    Measure,
    coverage,
    day_start,
    totals,
)
from reviewconsole.autonomy.services import (
    ROLLUP_SETTLE,
    policy_ensure,
    policy_update,
    rollup_refresh,
    verdict_record,
)
from reviewconsole.autonomy.versions import evidence_filter
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.reviews.models import Decision, ReviewItem

pytestmark = pytest.mark.django_db

TYPES = ("rollup_a", "rollup_b")
DAYS = 10
# Confidences on and next to bucket edges (0.29 is 28.999… after *100), none, and out of range.
CONFIDENCES = (None, 0.0, 0.05, 0.29, 0.3, 0.5, 0.79, 0.8, 0.85, 0.8500001, 0.855, 0.86, 0.9, 0.99, 1.0)
THRESHOLDS = (0.29, 0.3, 0.8, 0.85, 0.8500001, 0.852, 0.855, 0.9, 1.0)
REASONS = ("wrong_data", "incomplete", "other")
# Flow versions: none recorded (before versions were), and two; the figures of one version read through the
# rollups must equal those read from its gate decisions alone.
VERSIONS = ("", "v1", "v2")
ONE_VERSION = evidence_filter(["v1"])
TWO_VERSIONS = evidence_filter(["", "v2"])


def make_decisions(seed: int = 1, per_day: int = 40) -> list[GateDecision]:
    """Gate decisions of two types over the last DAYS days and today, of every kind the statistics tell apart."""
    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate(timezone=timezone.get_default_timezone())
    rows, stamps = [], []
    for days_ago in range(DAYS, -1, -1):
        start = day_start(today - timedelta(days=days_ago))
        for _ in range(per_day):
            output_type = rng.choice(TYPES)
            confidence = rng.choice(CONFIDENCES)
            kind = rng.random()
            route, reason, audit, probability = Route.HUMAN_REVIEW, "low_confidence", False, 1.0
            forced = False
            if kind < 0.3:
                route, reason, probability = Route.AUTO_APPROVED, "", 0.1
            elif kind < 0.45:
                reason, audit, probability = "audit_sample", True, 0.1
            elif kind < 0.55:
                reason, forced = "high_value", True  # forced by a business rule
            elif kind < 0.6:
                probability = 0.0  # no usable sampling probability: never weighted
            reviewed = route == Route.HUMAN_REVIEW and rng.random() < 0.85
            correct = rng.random() < 0.8
            rows.append(
                GateDecision(
                    output_type=output_type,
                    flow_version=VERSIONS[len(rows) % len(VERSIONS)],
                    confidence=confidence,
                    threshold=0.8,
                    route=route,
                    reason=reason,
                    forced=forced,
                    audit=audit,
                    review_probability=probability,
                    verdict=(Verdict.CORRECT if correct else Verdict.INCORRECT) if reviewed else "",
                    reject_reason=rng.choice(REASONS) if reviewed and not correct else "",
                    verdict_at=now if reviewed else None,
                )
            )
            # Any second of the day, today's only up to now; some right at midnight.
            span = max(0.0, min(86400.0, (now - start).total_seconds() - 1))
            stamps.append(start + timedelta(seconds=0 if rng.random() < 0.05 else rng.uniform(0, span)))
    created = GateDecision.objects.bulk_create(rows)
    for decision, stamp in zip(created, stamps, strict=True):
        decision.created_at = stamp
    GateDecision.objects.bulk_update(created, ["created_at"], batch_size=500)
    FieldError.objects.bulk_create(
        FieldError(gate_decision=d, output_type=d.output_type, flow_version=d.flow_version, field=f)
        for d in created
        if d.verdict == Verdict.INCORRECT and not d.reject_reason
        for f in ("total", "vendor")[: 1 + d.id % 2]
    )
    for output_type in TYPES:
        policy_ensure(output_type=output_type)
    return created


# A moment inside a day, the same for every snapshot of a test.
SINCE = timezone.now() - timedelta(days=4, hours=5, minutes=7)


def snapshot(since: Any = SINCE) -> dict[str, Any]:
    """Every rollup-backed statistic, with and without `since`."""
    output_type = TYPES[0]
    figures: dict[str, Any] = {
        "overview": selectors.overview(),
        "overview_since": selectors.overview(since=since),
        "trends_by_type": selectors.trends_by_type(list(TYPES), 7),
        "summary": selectors.type_summary(output_type),
        "summary_since": selectors.type_summary(output_type, since),
        "calibration": selectors.calibration(output_type),
        "calibration_since": selectors.calibration(output_type, since),
        "trend_day": selectors.trend(output_type, "day"),
        "trend_week": selectors.trend(output_type, "week"),
        "trend_since": selectors.trend(output_type, "day", since),
        "field_errors": selectors.field_error_rates(output_type),
        "reject_reasons": selectors.reject_reason_rates(output_type),
        "recommend": recommendation.recommend(output_type),
        "recommend_since": recommendation.recommend(output_type, since=since),
        # The type page aggregates the buckets once for both.
        "recommend_shared": recommendation.recommend(output_type, strata=recommendation.type_strata(output_type)),
        "calibration_shared": selectors.calibration_bands(recommendation.type_strata(output_type)),
        # One version's evidence, and two versions' (one carried over to the other).
        "summary_version": selectors.type_summary(output_type, where=ONE_VERSION),
        "summary_versions_since": selectors.type_summary(output_type, since, where=TWO_VERSIONS),
        "calibration_version": selectors.calibration_bands(recommendation.type_strata(output_type, since, ONE_VERSION)),
        "trend_version": selectors.trend(output_type, "day", where=TWO_VERSIONS),
        "field_errors_version": selectors.field_error_rates(output_type, where=ONE_VERSION),
        "reject_reasons_version": selectors.reject_reason_rates(output_type, where=TWO_VERSIONS),
    }
    for threshold in THRESHOLDS:
        figures[f"what_if_{threshold}"] = recommendation.what_if(output_type, threshold)
        figures[f"what_if_{threshold}_since"] = recommendation.what_if(output_type, threshold, since=since)
        figures[f"what_if_{threshold}_version"] = recommendation.what_if(output_type, threshold, where=ONE_VERSION)
    for row in figures["overview"] + figures["overview_since"]:
        row.pop("oldest_pending_age_seconds")  # the clock moves between two snapshots
    return figures


def direct() -> dict[str, Any]:
    """The same statistics from the gate decisions alone: the rollup state hidden, inside a rolled-back savepoint."""
    with transaction.atomic():
        RollupState.objects.all().delete()
        assert coverage().rolled is None
        figures = snapshot()
        transaction.set_rollback(True)
    return figures


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (sums of sums round differently in the last bits than one sum)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert actual == expected, path


def rolled_days() -> set[tuple[str, Any]]:
    return set(GateRollup.objects.values_list("output_type", "day").distinct())


def test_a_fresh_rollup_gives_the_direct_figures():
    make_decisions()
    before = snapshot()
    now = timezone.now()
    result = rollup_refresh(now=now)
    today = timezone.localdate(now, timezone=timezone.get_default_timezone())
    # Every day that ended ROLLUP_SETTLE ago is rolled up (both types have decisions every day): all past
    # days, except yesterday in the first minutes after midnight.
    last = timezone.localdate(now - ROLLUP_SETTLE, timezone=timezone.get_default_timezone()) - timedelta(days=1)
    assert result["rebuilt"] and result["rolled_through"] == last
    past_days = {today - timedelta(days=n) for n in range(1, DAYS + 1)}
    assert {day for _, day in rolled_days()} == {day for day in past_days if day <= last}
    assert GateBucketRollup.objects.exists()
    cover = coverage()
    assert cover.rolled is not None
    # Most decisions now come from the rollup: only those after the last rolled day are read live.
    assert (
        GateDecision.objects.filter(cover.live).count()
        == GateDecision.objects.filter(created_at__gte=day_start(last + timedelta(days=1))).count()
    )
    figures = snapshot()
    assert_same(figures, before)
    assert_same(figures, direct())
    assert_same(figures["recommend_shared"], figures["recommend"])
    assert_same(figures["calibration_shared"], figures["calibration"])


def test_the_statistics_really_read_the_rollup():
    """Guard against a rollup path that silently reads everything live: a tampered rollup row shows."""
    make_decisions()
    rollup_refresh()
    honest = snapshot()
    # A row the summary's "correct" counts: a verdict no rule forced, not left out (which row comes first is up
    # to the database otherwise).
    row = GateRollup.objects.filter(output_type=TYPES[0], verdict=Verdict.CORRECT, forced=False, excluded=False)
    row = row.order_by("id").first()
    row.n += 1000
    row.save()
    bucket = GateBucketRollup.objects.filter(output_type=TYPES[0], verdict=Verdict.CORRECT, bucket=90).first()
    bucket.n_weighted += 1000
    bucket.save()
    tampered = snapshot()
    assert tampered["summary"]["correct"] == honest["summary"]["correct"] + 1000
    assert tampered["calibration"][9]["n"] == honest["calibration"][9]["n"] + 1000
    assert tampered["recommend"]["reviewed"] == honest["recommend"]["reviewed"] + 1000


def verdict_on(decision: GateDecision, *, outcome: str, reason: str = "") -> None:
    """A reviewer's decision on the item behind `decision`, through the verdict service."""
    run = FlowRun.objects.create(flow_name="rollup_test")
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run, pending=pending, method="review", output_type=decision.output_type, outcomes=["approved", "rejected"]
    )
    GateDecision.objects.filter(pk=decision.pk).update(review_item=item)
    verdict_record(item=item, decision=Decision(item=item, outcome=outcome, reason_code=reason))


def test_a_late_verdict_shows_at_once_and_survives_the_next_refresh():
    created = make_decisions()
    rollup_refresh()
    today = timezone.localdate(timezone=timezone.get_default_timezone())
    three_days_ago = today - timedelta(days=3)
    late = [
        d
        for d in created
        if d.route == Route.HUMAN_REVIEW
        and not d.verdict
        and d.review_probability > 0
        and d.confidence is not None
        and timezone.localtime(d.created_at).date() == three_days_ago
    ]
    assert len(late) >= 2, "the seed must leave decisions of three days ago without a verdict"
    before = snapshot()
    verdict_on(late[0], outcome="approved")
    verdict_on(late[1], outcome="rejected", reason="incomplete")
    # Marked stale, so read live: the figures already count both verdicts.
    assert set(StaleRollupDay.objects.values_list("output_type", "day")) == {
        (d.output_type, three_days_ago) for d in late[:2]
    }
    after = snapshot()
    assert sum(row["reviewed"] for row in after["overview"]) == sum(row["reviewed"] for row in before["overview"]) + 2
    assert_same(after, direct())
    # The refresh recomputes the stale days and drops their marks; the figures do not move.
    result = rollup_refresh()
    assert result["stale_days"] == len({d.output_type for d in late[:2]}) and not result["rebuilt"]
    assert not StaleRollupDay.objects.exists()
    assert_same(snapshot(), after)
    assert_same(snapshot(), direct())


def direct_sums(model: Any, since: Any = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Each sum `model` keeps, per (type, forced, verdict), computed in Python from the gate decisions alone."""
    decisions = GateDecision.objects.filter(output_type__in=TYPES)
    result: dict[tuple[Any, ...], dict[str, Any]] = {}
    for d in decisions if since is None else decisions.filter(created_at__gte=since):
        total = result.setdefault((d.output_type, d.forced, d.verdict), dict.fromkeys(ROLLUP_SUMS[model], 0))
        total["n"] += 1
        if d.review_probability > 0:
            weight = 1 / d.review_probability
            total["n_weighted"] += 1
            total["weight"] += weight
            total["weight_square"] += weight * weight
            if "confidence_sum" in total and d.confidence is not None:
                total["confidence_sum"] += d.confidence
    return result


def split_sums(model: Any, since: Any = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The same sums through the rollup reads: rolled-up days from `model`, the rest live."""
    cover = coverage(since, list(TYPES))
    measures = {column: Measure(column) for column in ROLLUP_SUMS[model]}
    live = GateDecision.objects.filter(cover.live, output_type__in=TYPES)
    rolled = None if cover.rolled is None else model.objects.filter(cover.rolled, output_type__in=TYPES)
    return totals(live, rolled, measures, ["output_type", "forced", "verdict"])


def conditioned_sums(model: Any, since: Any = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Measures conditioned on `forced` (what-if's eligible outputs, forced reviews' own figures), per type."""
    cover = coverage(since, list(TYPES))
    measures = {
        "n_forced": Measure("n", FORCED),
        "n_unforced": Measure("n", UNFORCED),
        "unforced_correct_weight": Measure("weight", UNFORCED & Q(verdict=Verdict.CORRECT)),
        "forced_weight_square": Measure("weight_square", FORCED),
    }
    live = GateDecision.objects.filter(cover.live, output_type__in=TYPES)
    rolled = None if cover.rolled is None else model.objects.filter(cover.rolled, output_type__in=TYPES)
    return totals(live, rolled, measures, ["output_type"])


def test_sums_split_by_forced_equal_the_direct_sums_on_rolled_stale_and_live_days():
    created = make_decisions(seed=3)
    rollup_refresh()
    today = timezone.localdate(timezone=timezone.get_default_timezone())
    three_days_ago = today - timedelta(days=3)

    def sent_to_review(forced: bool) -> GateDecision:
        return next(
            d
            for d in created
            if d.route == Route.HUMAN_REVIEW
            and d.forced == forced
            and d.review_probability > 0
            and timezone.localtime(d.created_at).date() == three_days_ago
        )

    # Late verdicts (first or changed) on a forced and an unforced decision make a rolled-up day stale.
    verdict_on(sent_to_review(True), outcome="rejected", reason="other")
    verdict_on(sent_to_review(False), outcome="approved")
    assert StaleRollupDay.objects.filter(day=three_days_ago).exists()
    cover = coverage()
    # Both populations are present where the rollup is read, on the stale day and today (read live).
    on_stale_day = GateDecision.objects.filter(created_at__gte=day_start(three_days_ago)).filter(
        created_at__lt=day_start(three_days_ago + timedelta(days=1))
    )
    for decisions in (
        GateDecision.objects.filter(cover.rolled_decisions),
        on_stale_day,
        GateDecision.objects.filter(created_at__gte=day_start(today)),
    ):
        assert set(decisions.values_list("forced", flat=True)) == {True, False}
    for model in ROLLUP_KEYS:
        assert set(model.objects.filter(n__gt=0).values_list("forced", flat=True)) == {True, False}

    def check() -> None:
        for model in ROLLUP_KEYS:
            for since in (None, SINCE):
                expected = direct_sums(model, since)
                assert_same(split_sums(model, since), expected, f"{model.__name__} since {since}")
                by_type: dict[tuple[Any, ...], dict[str, Any]] = {}
                for (output_type, forced, verdict), total in expected.items():
                    row = by_type.setdefault(
                        (output_type,),
                        {"n_forced": 0, "n_unforced": 0, "unforced_correct_weight": 0, "forced_weight_square": 0},
                    )
                    row["n_forced" if forced else "n_unforced"] += total["n"]
                    if not forced and verdict == Verdict.CORRECT:
                        row["unforced_correct_weight"] += total["weight"]
                    if forced:
                        row["forced_weight_square"] += total["weight_square"]
                assert_same(conditioned_sums(model, since), by_type, f"{model.__name__} conditioned since {since}")

    check()
    # Once the refresh recomputed the stale day, the same sums come from the rollup.
    assert rollup_refresh()["stale_days"] >= 1
    assert not StaleRollupDay.objects.exists()
    check()


def test_a_verdict_on_a_decision_of_today_marks_nothing():
    created = make_decisions()
    rollup_refresh()
    today = timezone.localdate(timezone=timezone.get_default_timezone())
    fresh = next(
        d
        for d in created
        if d.route == Route.HUMAN_REVIEW and not d.verdict and timezone.localtime(d.created_at).date() == today
    )
    verdict_on(fresh, outcome="approved")
    assert not StaleRollupDay.objects.exists()
    assert_same(snapshot(), direct())


def test_refreshes_day_by_day_roll_up_only_new_days_and_stay_exact():
    make_decisions()
    now = timezone.now()
    first = rollup_refresh(now=now - timedelta(days=5))
    assert first["rebuilt"]
    assert max(day for _, day in rolled_days()) == first["rolled_through"]
    # Days after the watermark, though past, are read live.
    assert_same(snapshot(), direct())
    second = rollup_refresh(now=now)
    assert not second["rebuilt"] and second["new_days"] == (second["rolled_through"] - first["rolled_through"]).days
    assert second["new_days"] >= 4
    assert_same(snapshot(), direct())
    rows = GateRollup.objects.count()
    again = rollup_refresh(now=now)
    assert (again["new_days"], again["stale_days"], GateRollup.objects.count()) == (0, 0, rows)


def test_a_day_is_rolled_up_only_once_it_settled():
    make_decisions()
    midnight = day_start(timezone.localdate(timezone=timezone.get_default_timezone()))
    early = rollup_refresh(now=midnight + timedelta(minutes=5))
    assert early["rolled_through"] == midnight.date() - timedelta(days=2)
    late = rollup_refresh(now=midnight + timedelta(minutes=15))
    assert late["rolled_through"] == midnight.date() - timedelta(days=1)


def test_policy_changes_leave_the_rollup_exact():
    """Each decision keeps its own threshold and probability, so a policy change touches no rolled-up row; what-if
    reads the new audit rate from the policy."""
    make_decisions()
    rollup_refresh()
    rows = sorted(GateRollup.objects.values_list("output_type", "day", "route", "verdict", "n"))
    policy_update(
        output_type=TYPES[0], changes={"threshold": 0.9, "audit_rate": 0.2}, by=None, reason="rollup test change"
    )
    assert sorted(GateRollup.objects.values_list("output_type", "day", "route", "verdict", "n")) == rows
    figures = snapshot()
    assert figures["what_if_0.9"]["audit_rate"] == 0.2
    assert_same(figures, direct())


def test_a_change_of_time_zone_reads_live_until_the_rollup_is_rebuilt(settings):
    make_decisions()
    rollup_refresh()
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: every local day shifts
    assert coverage().rolled is None
    assert_same(snapshot(), direct())
    assert rollup_refresh()["rebuilt"]
    assert RollupState.objects.get().time_zone == "Pacific/Kiritimati"
    assert coverage().rolled is not None
    assert_same(snapshot(), direct())


def test_what_if_splits_the_threshold_bucket_exactly():
    """Decisions whose confidence sits inside the threshold's own bucket, on rolled-up days, on both sides of it."""
    policy_ensure(output_type=TYPES[0])
    confidences = [0.85, 0.851, 0.8549, 0.855, 0.8551, 0.859, 0.849, 0.86]
    GateDecision.objects.bulk_create(
        GateDecision(
            output_type=TYPES[0], confidence=c, route=Route.HUMAN_REVIEW, reason="low_confidence", verdict="correct"
        )
        for c in confidences
    )
    GateDecision.objects.update(created_at=timezone.now() - timedelta(days=3))
    rollup_refresh()
    for threshold in (0.85, 0.8505, 0.855, 0.8550001, 0.86):
        result = recommendation.what_if(TYPES[0], threshold)
        expected = sum(1 for c in confidences if c >= threshold - 1e-9)
        # The counts are exact; the accuracy's evidence is the strata, whole percents from the threshold's own.
        in_strata = sum(1 for c in confidences if percent_of(c) >= percent_of(threshold))
        assert (result["above"], result["n"]) == (expected, in_strata), threshold
    assert math.isclose(recommendation.what_if(TYPES[0], 0.855)["auto_share"], 4 * 0.95 / 8)


def test_the_hourly_schedule_is_installed():
    schedule = Schedule.objects.get(func="reviewconsole.autonomy.tasks.refresh_rollups")
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.HOURLY, -1)
