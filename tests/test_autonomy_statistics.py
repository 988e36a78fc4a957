"""Autonomy statistics: intervals, selectors, recommendation and what-if, query counts, and the acceptance run."""

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from scipy.stats import beta

from reviewconsole.autonomy import evidence, recommendation, selectors
from reviewconsole.autonomy.models import AutonomyPolicy, FieldError, GateDecision, Route, StaleRollupDay, Verdict
from reviewconsole.autonomy.services import policy_ensure, policy_update, rollup_refresh
from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.services import decide

TYPE = "stats_test"

CLEAN = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""


def decisions(
    count: int,
    confidence: float | None = 0.5,
    *,
    correct: int | None = None,
    route: str = Route.HUMAN_REVIEW,
    probability: float = 1.0,
    audit: bool = False,
    reason: str = "low_confidence",
    forced: bool = False,
    reject_reason: str = "",
    verdict: bool = True,
    output_type: str = TYPE,
    threshold: float | None = None,
) -> list[GateDecision]:
    """`count` gate decisions; the first `correct` of them (default all) have a correct verdict, the rest not."""
    correct = count if correct is None else correct
    rows = []
    for index in range(count):
        has_verdict = verdict and route == Route.HUMAN_REVIEW
        rows.append(
            GateDecision(
                output_type=output_type,
                confidence=confidence,
                threshold=threshold,
                route=route,
                reason=reason if route == Route.HUMAN_REVIEW else "",
                forced=forced,
                audit=audit,
                review_probability=probability,
                verdict=(Verdict.CORRECT if index < correct else Verdict.INCORRECT) if has_verdict else "",
                reject_reason=reject_reason if has_verdict and index >= correct else "",
                verdict_at=timezone.now() if has_verdict else None,
            )
        )
    return GateDecision.objects.bulk_create(rows)


# --------------------------------------------------------------------------- intervals


class Exact:
    """The Clopper-Pearson 95% interval of `successes` of `n`, from the beta quantiles directly."""

    def __init__(self, successes: float, n: float):
        self.low = 0.0 if successes == 0 else float(beta.ppf(0.025, successes, n - successes + 1))
        self.high = 1.0 if successes == n else float(beta.ppf(0.975, successes + 1, n - successes))


def exact(successes: float, n: float) -> Exact:
    return Exact(successes, n)


def test_plain_shares_have_exact_intervals():
    # 12 of 12: the lower bound is 0.025^(1/12), where Wilson said 0.7575.
    assert round(evidence.proportion(12, 12).ci_low, 4) == round(0.025 ** (1 / 12), 4) == 0.7354
    assert evidence.proportion(12, 12).ci_high == 1.0
    rate = evidence.proportion(8, 10)
    assert (round(rate.ci_low, 4), round(rate.ci_high, 4)) == (0.4439, 0.9748)
    assert rate.accuracy == 0.8 and rate.reviewed == 10
    empty = evidence.proportion(0, 0)
    assert (empty.accuracy, empty.ci_low, empty.ci_high, empty.reviewed) == (None, None, None, 0)
    assert evidence.proportion(0, 5).ci_low == 0.0


def test_stratified_estimate_uses_the_effective_sample_size():
    # Equal weights: the same interval as the plain share.
    same = evidence.estimate([evidence.Stratum(outputs=24, reviewed=12, correct=12)])
    assert same.n_eff == pytest.approx(12)
    assert same.ci_low == pytest.approx(exact(12, 12).low)
    # 10 outputs reviewed (all correct) and 5 audits standing for 100 (4 correct).
    rate = evidence.estimate(
        [evidence.Stratum(outputs=10, reviewed=10, correct=10), evidence.Stratum(outputs=100, reviewed=5, correct=4)]
    )
    assert rate.accuracy == pytest.approx(90 / 110)
    assert rate.n_eff == pytest.approx(110**2 / (10**2 / 10 + 100**2 / 5))  # ~6, not 15: the audits carry it
    assert rate.ci_low == pytest.approx(exact(rate.accuracy * rate.n_eff, rate.n_eff).low)
    assert evidence.estimate([]).accuracy is None


# --------------------------------------------------------------------------- selectors


@pytest.mark.django_db
def test_type_summary_counts_and_inverse_probability_weighting():
    decisions(10, 0.4, correct=8)  # reviewed below the threshold
    decisions(5, 0.9, correct=4, probability=0.1, audit=True, reason="audit_sample")
    decisions(20, 0.9, route=Route.AUTO_APPROVED, probability=0.1)
    decisions(3, 0.3, verdict=False)  # still waiting for a reviewer
    decisions(4, 0.9, output_type="other_type")
    summary = selectors.type_summary(TYPE)
    assert summary["total"] == 38
    assert (summary["auto"], summary["routed"], summary["reviewed"], summary["pending_verdict"]) == (20, 18, 15, 3)
    assert (summary["correct"], summary["accuracy"]) == (12, 12 / 15)
    assert summary["ci_low"] == pytest.approx(exact(12, 15).low)
    assert (summary["audited"], summary["audited_correct"]) == (5, 4)
    assert summary["auto_accuracy_estimate"] == pytest.approx(0.8)
    assert summary["auto_accuracy_n_eff"] == pytest.approx(5)
    assert summary["autonomy_rate"] == pytest.approx(20 / 38)
    assert summary["autonomy_n"] == 38
    assert summary["autonomy_ci_low"] == pytest.approx(exact(20, 38).low)
    # Every output: 10 reviewed at weight 1 (8 right), 5 audits standing for 50 (40 right).
    assert summary["estimated_accuracy"] == pytest.approx(48 / 60)


@pytest.mark.django_db
def test_summary_since_only_counts_newer_decisions():
    old = decisions(4, 0.4)
    GateDecision.objects.filter(id__in=[d.id for d in old]).update(created_at=timezone.now() - timedelta(days=40))
    decisions(2, 0.4)
    assert selectors.type_summary(TYPE, since=timezone.now() - timedelta(days=7))["reviewed"] == 2
    assert selectors.type_summary(TYPE)["reviewed"] == 6


@pytest.mark.django_db
def test_audit_estimate_reflects_auto_processed_accuracy_not_the_pooled_one():
    """Low-confidence outputs (reviewed, 60% right) must not drag down the estimate for the
    high-confidence ones the gate lets through (audited at 5%, 95% right)."""
    decisions(200, 0.3, correct=120)
    decisions(40, 0.9, correct=38, probability=0.05, audit=True, reason="audit_sample", threshold=0.8)
    decisions(760, 0.9, route=Route.AUTO_APPROVED, probability=0.05, threshold=0.8)
    summary = selectors.type_summary(TYPE)
    assert summary["accuracy"] == pytest.approx(158 / 240)  # pooled over reviews: 66%
    assert summary["auto_accuracy_estimate"] == pytest.approx(0.95)
    # All 1,000 outputs: 200 at 60% and 800 at 95% make 88%, which the weights recover.
    assert summary["estimated_accuracy"] == pytest.approx(0.88)
    result = recommendation.what_if(TYPE, 0.8)
    assert result["accuracy"] == pytest.approx(0.95)
    assert result["n"] == 40 and result["n_eff"] == pytest.approx(40)


@pytest.mark.django_db
def test_calibration_bands():
    decisions(4, 0.05, correct=1)
    decisions(3, 0.29, correct=2)  # 0.29 * 100 is 28.999… in floating point; still band 2
    decisions(2, 0.3)
    decisions(5, 0.95, correct=5, probability=0.5, audit=True, reason="audit_sample")
    decisions(1, 1.0)
    decisions(2, None)  # no confidence: no band
    bands = selectors.calibration(TYPE)
    assert [b["band"] for b in bands] == list(range(10))
    assert [(b["low"], b["high"]) for b in bands][:2] == [(0.0, 0.1), (0.1, 0.2)]
    by_band = {b["band"]: b for b in bands}
    assert (by_band[0]["n"], by_band[0]["correct"], by_band[0]["accuracy"]) == (4, 1, 0.25)
    assert (by_band[2]["n"], by_band[2]["correct"]) == (3, 2)
    assert (by_band[3]["n"], by_band[3]["correct"]) == (2, 2)
    assert (by_band[9]["n"], by_band[9]["correct"]) == (6, 6)
    assert by_band[9]["mean_confidence"] == pytest.approx((5 * 0.95 + 1.0) / 6)
    assert by_band[9]["n_eff"] == pytest.approx(11**2 / 21)  # five weights of 2 and one of 1
    assert by_band[0]["ci_low"] == pytest.approx(exact(1, 4).low)
    assert by_band[5]["n"] == 0 and by_band[5]["accuracy"] is None


@pytest.mark.django_db
def test_field_error_rates_from_field_errors():
    reviewed = decisions(10, 0.5, correct=6)
    wrong = reviewed[6:]
    fields = [["total_amount", "vendor"], ["total_amount"], ["total_amount"], []]
    FieldError.objects.bulk_create(
        FieldError(gate_decision=d, output_type=TYPE, field=f)
        for d, names in zip(wrong, fields, strict=True)
        for f in names
    )
    FieldError.objects.create(gate_decision=decisions(1, output_type="other")[0], output_type="other", field="vendor")
    rows = selectors.field_error_rates(TYPE)
    assert [(r["field"], r["errors"], r["n"]) for r in rows] == [("total_amount", 3, 10), ("vendor", 1, 10)]
    assert rows[0]["rate"] == pytest.approx(0.3)
    assert rows[0]["ci_low"] == pytest.approx(exact(3, 10).low)


@pytest.mark.django_db
def test_reject_reason_rates_list_every_policy_reason():
    policy_ensure(output_type=TYPE)
    decisions(7, 0.5)
    decisions(2, 0.5, correct=0, reject_reason="wrong_data")
    decisions(1, 0.5, correct=0, reject_reason="retired_reason")
    decisions(2, 0.5, correct=0)  # edited, not rejected
    rows = selectors.reject_reason_rates(TYPE)
    counts = {r["reason"]: r["rejections"] for r in rows}
    assert counts == {"wrong_data": 2, "retired_reason": 1, "incomplete": 0, "not_applicable": 0, "other": 0}
    assert rows[0]["reason"] == "wrong_data"
    assert rows[0]["n"] == 12 and rows[0]["rate"] == pytest.approx(2 / 12)
    assert rows[0]["ci_high"] == pytest.approx(exact(2, 12).high)


@pytest.mark.django_db
def test_trend_per_day_and_week_with_gaps():
    at = {
        datetime(2026, 3, 2, 12, tzinfo=UTC): decisions(2, 0.5, correct=1),  # Monday
        datetime(2026, 3, 3, 12, tzinfo=UTC): decisions(1, 0.9, route=Route.AUTO_APPROVED),
        datetime(2026, 3, 5, 23, 30, tzinfo=UTC): decisions(3, 0.5),
        datetime(2026, 3, 10, 0, 30, tzinfo=UTC): decisions(1, 0.5, correct=0),  # next week's Tuesday
    }
    for moment, rows in at.items():
        GateDecision.objects.filter(id__in=[r.id for r in rows]).update(created_at=moment)
    days = selectors.trend(TYPE, "day")
    assert [d["period"] for d in days] == [date(2026, 3, 2) + timedelta(days=i) for i in range(9)]
    by_day = {d["period"]: d for d in days}
    assert (by_day[date(2026, 3, 2)]["reviewed"], by_day[date(2026, 3, 2)]["correct"]) == (2, 1)
    assert by_day[date(2026, 3, 2)]["ci_low"] == pytest.approx(exact(1, 2).low)
    assert (by_day[date(2026, 3, 3)]["auto"], by_day[date(2026, 3, 3)]["autonomy_rate"]) == (1, 1.0)
    assert by_day[date(2026, 3, 4)]["total"] == 0 and by_day[date(2026, 3, 4)]["accuracy"] is None
    weeks = selectors.trend(TYPE, "week")
    assert [(w["period"], w["total"], w["reviewed"], w["correct"]) for w in weeks] == [
        (date(2026, 3, 2), 6, 5, 4),
        (date(2026, 3, 9), 1, 1, 0),
    ]
    since = selectors.trend(TYPE, "day", since=datetime(2026, 3, 5, tzinfo=UTC))
    assert since[0]["period"] == date(2026, 3, 5)
    with pytest.raises(ValueError, match="period"):
        selectors.trend(TYPE, "month")
    assert selectors.trend("no_such_type") == []


def review_item(output_type: str = TYPE, *, status: str = ReviewStatus.PENDING, age: timedelta = timedelta(0)):
    run = FlowRun.objects.create(flow_name="invoice_processing", status=RunStatus.WAITING_REVIEW)
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run, pending=pending, method="review", output_type=output_type, status=status, outcomes=["approved"]
    )
    ReviewItem.objects.filter(id=item.id).update(created_at=timezone.now() - age)
    item.refresh_from_db()
    return item


def decided(item: ReviewItem, user, after: timedelta, outcome: str = "approved", edited: dict | None = None):
    decided_at = item.created_at + after
    ReviewItem.objects.filter(id=item.id).update(status=ReviewStatus.DECIDED, decided_at=decided_at)
    decision = Decision.objects.create(item=item, outcome=outcome, user=user, edited_output=edited)
    Decision.objects.filter(id=decision.id).update(at=decided_at)


@pytest.mark.django_db
def test_queue_health_depth_age_and_time_to_decision(django_user_model):
    rita = django_user_model.objects.create_user("rita")
    review_item(age=timedelta(hours=5))
    overdue = review_item(age=timedelta(hours=1))
    ReviewItem.objects.filter(id=overdue.id).update(due_at=timezone.now() - timedelta(minutes=1))
    review_item("other_type", age=timedelta(days=3))
    for minutes in (10, 20, 60):
        decided(review_item(age=timedelta(hours=2)), rita, timedelta(minutes=minutes))
    review_item(status=ReviewStatus.EXPIRED, age=timedelta(hours=9))
    health = selectors.queue_health(TYPE)
    assert (health["pending"], health["overdue"], health["decided"]) == (2, 1, 3)
    assert health["oldest_age_seconds"] == pytest.approx(5 * 3600, abs=60)
    assert health["avg_decision_seconds"] == pytest.approx(30 * 60, abs=1)
    assert health["median_decision_seconds"] == pytest.approx(20 * 60, abs=1)
    decided(review_item(age=timedelta(hours=2)), rita, timedelta(minutes=30))
    health = selectors.queue_health(TYPE)
    assert health["median_decision_seconds"] == pytest.approx(25 * 60, abs=1)  # even count: mean of the middle two
    everything = selectors.queue_health()
    assert everything["pending"] == 3
    assert everything["oldest_age_seconds"] == pytest.approx(3 * 86400, abs=60)
    empty = selectors.queue_health("no_such_type")
    assert (empty["pending"], empty["oldest_age_seconds"], empty["median_decision_seconds"]) == (0, None, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "minutes",
    [
        [7],
        [7, 3],
        [5, 5, 9, 1],
        [9, 1, 5, 5, 5],
        [4, 8, 8, 15, 16, 23, 42],
        [*range(1, 12), 1000, 2, 2],
        # Over a day: PostgreSQL splits such a duration into days and a time of day.
        [19 * 1440 + 1, 3 * 1440 + 7, 1441, 1440, 2 * 1440 + 59],
    ],
    ids=["one", "two", "even-ties", "odd-ties", "odd", "even-outlier", "days"],
)
def test_queue_health_median_is_the_middle_of_the_exact_durations(django_user_model, minutes):
    """PostgreSQL picks the two middle durations in one ordered-set aggregate, SQLite by an ordered OFFSET read:
    both must give the median of the exact durations, to the microsecond, for odd and even counts and ties."""
    rita = django_user_model.objects.create_user("rita")
    # Distinct microseconds: the two middles of an even count differ, so picking a wrong neighbour shows.
    durations = [timedelta(minutes=m, microseconds=index) for index, m in enumerate(minutes)]
    for duration in durations:
        decided(review_item(age=timedelta(days=2)), rita, duration)
    health = selectors.queue_health(TYPE)
    assert health["decided"] == len(durations)
    assert health["median_decision_seconds"] == statistics.median(d.total_seconds() for d in durations)
    assert health["avg_decision_seconds"] == pytest.approx(statistics.mean(d.total_seconds() for d in durations))


@pytest.mark.django_db
def test_queue_health_reads_time_to_decision_in_one_query(django_user_model, django_assert_num_queries):
    """Count, average and median in one pass over the decided items on PostgreSQL (plus the queue's depth); SQLite,
    without ordered-set aggregates, reads the middle rows in a query of their own."""
    rita = django_user_model.objects.create_user("rita")
    for minutes in (10, 20, 30, 60):
        decided(review_item(age=timedelta(hours=2)), rita, timedelta(minutes=minutes))
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        health = selectors.queue_health(TYPE)
    assert health["median_decision_seconds"] == 25 * 60


@pytest.mark.django_db
def test_reviewer_throughput(django_user_model):
    rita = django_user_model.objects.create_user("rita")
    otto = django_user_model.objects.create_user("otto")
    for minutes in (10, 30):
        decided(review_item(age=timedelta(hours=1)), rita, timedelta(minutes=minutes))
    decided(review_item(age=timedelta(hours=1)), rita, timedelta(minutes=20), edited={"total": 1})
    decided(review_item(age=timedelta(hours=1)), otto, timedelta(minutes=5), outcome="rejected")
    decided(review_item("other_type", age=timedelta(hours=1)), otto, timedelta(minutes=5))
    rows = selectors.reviewer_throughput(TYPE, since=timezone.now() - timedelta(days=2))
    assert [(r["username"], r["decisions"], r["approved"], r["edited"], r["rejected"]) for r in rows] == [
        ("rita", 3, 2, 1, 0),
        ("otto", 1, 0, 0, 1),
    ]
    assert rows[0]["avg_decision_seconds"] == pytest.approx(20 * 60, abs=1)
    assert rows[0]["per_day"] == pytest.approx(1.5, rel=0.01)
    assert sum(r["decisions"] for r in selectors.reviewer_throughput()) == 5
    # As many decisions: by name. Decisions before `since` and expiries (nobody's) are not counted.
    cid = django_user_model.objects.create_user("cid")
    bea = django_user_model.objects.create_user("bea")
    for user in (cid, bea, cid, bea):
        decided(review_item(age=timedelta(hours=1)), user, timedelta(minutes=1))
    decided(review_item(age=timedelta(days=5)), cid, timedelta(minutes=1))
    decided(review_item(age=timedelta(hours=1)), None, timedelta(minutes=1))
    rows = selectors.reviewer_throughput(TYPE, since=timezone.now() - timedelta(days=2))
    assert [(r["username"], r["decisions"]) for r in rows] == [("rita", 3), ("bea", 2), ("cid", 2), ("otto", 1)]


@pytest.mark.django_db
def test_overview_one_row_per_type():
    policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=None, reason="test")
    policy_ensure(output_type="quiet_type")
    decisions(12, 0.5)
    decisions(8, 0.9, route=Route.AUTO_APPROVED, probability=0.05)
    decisions(2, 0.9, probability=0.05, audit=True, reason="audit_sample")
    review_item(age=timedelta(minutes=30))
    rows = {r["output_type"]: r for r in selectors.overview()}
    assert set(rows) == {TYPE, "quiet_type"}
    row = rows[TYPE]
    assert (row["threshold"], row["total"], row["auto"], row["reviewed"], row["correct"]) == (0.8, 22, 8, 14, 14)
    assert row["autonomy_rate"] == pytest.approx(8 / 22)
    assert round(row["ci_low"], 4) == round(exact(14, 14).low, 4)
    assert row["auto_accuracy_estimate"] == 1.0 and row["auto_accuracy_n_eff"] == pytest.approx(2)
    assert row["pending"] == 1 and row["oldest_pending_age_seconds"] == pytest.approx(1800, abs=60)
    assert rows["quiet_type"]["total"] == 0 and rows["quiet_type"]["accuracy"] is None


# --------------------------------------------------------------------------- recommendation and what-if


@pytest.mark.django_db
def test_recommendation_tests_from_the_strictest_threshold_down_and_stops_at_the_first_failure():
    policy_update(output_type=TYPE, changes={"min_samples": 50, "target_accuracy": 0.95}, by=None, reason="t")
    decisions(250, 0.95)  # with the 30 above: 280/280, where the test starts (enough to pass with a few errors)
    decisions(100, 0.85, correct=99)  # with the above, 379/380: passes
    decisions(100, 0.70, correct=80)  # 459/480, 95.6%: not shown above 95% - the test stops here
    decisions(30, 0.99)  # too few on their own: not tested
    rec = recommendation.recommend(TYPE)
    assert rec["threshold"] == 0.85 and rec["start"] == 0.95
    assert rec["n"] == 380 and rec["n_eff"] == pytest.approx(380)
    assert rec["accuracy"] == pytest.approx(379 / 380)
    assert rec["lower_bound"] >= 0.95 and rec["ci_low"] >= 0.95
    assert "0.85" in rec["reason"] and rec["needed"] is None
    assert "With 95% confidence" in rec["guarantee"]
    # Candidates are the confidences reviewers have seen, from the top down: 0.71 would select the
    # same reviewed outputs as 0.85 but auto-approve confidences nobody has reviewed.
    evidence = [(c["threshold"], c["n"], c["eligible"], c["tested"], c["passes"]) for c in rec["evidence"]]
    assert evidence == [
        (0.99, 30, False, False, False),
        (0.95, 280, True, True, True),
        (0.85, 380, True, True, True),
        (0.7, 480, True, True, False),
    ]
    # 0.70's own lower bound is under the target, and its exact p-value over 5%: it is where the test stops.
    at_070 = rec["evidence"][-1]
    assert at_070["lower_bound"] < 0.95 and at_070["p_value"] > 0.05


@pytest.mark.django_db
def test_recommendation_needs_min_samples_and_says_so():
    policy_ensure(output_type=TYPE)
    decisions(12, 0.9)
    rec = recommendation.recommend(TYPE)
    assert rec["threshold"] is None
    assert rec["reviewed"] == 12
    assert "Not enough evidence yet: 12 verdicts" in rec["reason"] and "of the 50 needed" in rec["reason"]
    decisions(200, 0.5, correct=150)
    rec = recommendation.recommend(TYPE)
    assert rec["threshold"] is None
    assert "No threshold passes" in rec["reason"] and "under the 95.0% target" in rec["reason"]
    # What would let one pass, from the test itself: that many more correct verdicts at 0.90 pass it,
    # one fewer does not.
    needed = rec["needed"]
    assert needed["threshold"] == 0.9 and needed["correct"] > 0
    assert f"{needed['correct']} more correct verdicts on outputs with confidence ≥ 0.90" in rec["reason"]
    decisions(needed["correct"] - 1, 0.9)
    assert recommendation.recommend(TYPE)["threshold"] is None
    decisions(1, 0.9)
    assert recommendation.recommend(TYPE)["threshold"] == 0.9


@pytest.mark.django_db
def test_recommendation_weights_audit_samples():
    """Above an old threshold only 10% were audited; each stands for 10 outputs."""
    policy_update(output_type=TYPE, changes={"min_samples": 20}, by=None, reason="t")
    decisions(300, 0.95, probability=0.1, audit=True, reason="audit_sample")
    decisions(100, 0.75, correct=50)
    rec = recommendation.recommend(TYPE)
    at_095 = rec["evidence"][0]
    assert (at_095["threshold"], at_095["n"], at_095["outputs"]) == (0.95, 300, pytest.approx(3000))
    assert at_095["n_eff"] == pytest.approx(300) and at_095["passes"]
    at_075 = next(c for c in rec["evidence"] if c["threshold"] == 0.75)
    # Weighted: the 300 audits stand for 3,000 outputs, the 100 reviews for 100: (3000 + 50) / 3100, not the
    # unweighted 350/400 (87.5%, which would fail); the effective size is Kish's over the two strata.
    assert at_075["accuracy"] == pytest.approx(3050 / 3100)
    assert at_075["n"] == 400 and at_075["n_eff"] == pytest.approx(3100**2 / (3000**2 / 300 + 100), rel=1e-5)
    assert at_075["passes"] and rec["threshold"] == 0.75


def test_sql_and_in_memory_buckets_agree_on_edges(db):
    confidences = [0.0, 0.01, 0.29, 0.3, 0.57, 0.58, 0.999, 1.0]
    for c in confidences:
        decisions(1, c)
    sql = recommendation.strata_aggregate(recommendation.verdicts_queryset(TYPE))
    memory = evidence.strata_of(evidence.Observation(c, True, 1.0) for c in confidences)
    assert sorted(sql) == sorted(memory) == [0, 1, 29, 30, 57, 58, 99, 100]
    assert sorted(sql) == sorted(recommendation.type_strata(TYPE))


@pytest.mark.django_db
def test_what_if_shares_and_expected_errors():
    policy_update(output_type=TYPE, changes={"audit_rate": 0.1}, by=None, reason="t")
    decisions(50, 0.9, correct=45)  # reviewed, 90% right
    decisions(30, 0.5, correct=15)
    decisions(20, 0.95, reason="high_value", forced=True)  # a business rule: reviewed whatever the threshold
    result = recommendation.what_if(TYPE, 0.8)
    assert (result["decisions"], result["eligible"], result["above"]) == (100, 80, 50)
    assert (result["forced"], result["forced_above"]) == (20, 20)
    assert result["expected_auto"] == pytest.approx(45)  # 10% of the 50 would still be audited
    assert result["auto_share"] == pytest.approx(0.45)
    assert result["auto_share_ci_low"] == pytest.approx(exact(45, 100).low)
    # The 20 forced reviews (all right) are not what the threshold would let through: left out.
    assert result["n"] == 50 and result["accuracy"] == pytest.approx(45 / 50)
    assert result["expected_errors"] == pytest.approx(45 * 5 / 50)
    assert result["expected_errors_low"] < result["expected_errors"] < result["expected_errors_high"]
    assert result["expected_errors_high"] == pytest.approx(45 * (1 - result["ci_low"]))
    nothing = recommendation.what_if(TYPE, 1.0)
    assert (nothing["above"], nothing["expected_errors"]) == (0, None)


# --------------------------------------------------------------------------- query counts


@pytest.mark.django_db
@pytest.mark.parametrize("rolled", [False, True], ids=["live", "rolled-up"])
@pytest.mark.parametrize("rows", [10, 200])
def test_query_counts_do_not_grow_with_data(rows, rolled, django_assert_num_queries):
    policy_ensure(output_type=TYPE)
    decisions(rows // 2, 0.4, correct=rows // 4)
    decisions(rows // 2, 0.93, probability=0.1, audit=True, reason="audit_sample")
    decisions(rows, 0.93, route=Route.AUTO_APPROVED, probability=0.1)
    # Rolled up: yesterday's decisions come from the rollups, and one of yesterday's days is stale.
    if rolled:
        GateDecision.objects.filter(id__lte=GateDecision.objects.order_by("id")[rows // 2].id).update(
            created_at=timezone.now() - timedelta(days=2)
        )
        rollup_refresh()
        StaleRollupDay.objects.create(output_type=TYPE, day=timezone.localdate() - timedelta(days=2))
    # Reading the rollup state (and the stale days) and the rolled-up sums cost two queries more.
    extra = 2 if rolled else 0
    with django_assert_num_queries(2 * (2 + extra)):  # the headline sums, and the strata
        selectors.type_summary(TYPE)
    with django_assert_num_queries(2 + extra):
        selectors.calibration(TYPE)
    with django_assert_num_queries(3 + extra):
        recommendation.recommend(TYPE)
    # + the threshold's bucket, split live; + the strata
    with django_assert_num_queries(3 + extra + (1 if rolled else 0) + 2 + extra):
        recommendation.what_if(TYPE, 0.9)
    with django_assert_num_queries(2 + extra):
        selectors.trend(TYPE, "week")
    with django_assert_num_queries(3 + extra):
        selectors.field_error_rates(TYPE)
    with django_assert_num_queries(3 + extra):
        selectors.reject_reason_rates(TYPE)
    with django_assert_num_queries(4 + extra):
        selectors.overview()


# --------------------------------------------------------------------------- acceptance, with real flows


@pytest.mark.django_db(transaction=True)
def test_acceptance_twelve_clean_invoices_then_autonomy(django_user_model):
    reviewer = django_user_model.objects.create_user("rita")

    def invoice(number: str, day: int) -> str:
        # Another number and another day: the same vendor, total and date would be a possible duplicate.
        return CLEAN.replace("INV-1042", number).replace("Invoice Date: 2026-10-01", f"Invoice Date: 2026-10-{day:02d}")

    for index in range(12):
        run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": invoice(f"INV-{index}", index + 1)})
        run.refresh_from_db()
        assert run.status == RunStatus.WAITING_REVIEW, run.error
    items = list(ReviewItem.objects.filter(output_type="invoice", status=ReviewStatus.PENDING))
    assert len(items) == 12
    assert {item.reason for item in items} == {"always_review"}  # the default policy reviews everything
    for item in items:
        decide(item_id=item.id, user=reviewer, outcome="approved")
    summary = selectors.type_summary("invoice")
    assert (summary["reviewed"], summary["correct"], summary["auto"]) == (12, 12, 0)
    assert round(summary["ci_low"], 4) == 0.7354  # exact: 0.025 ** (1 / 12)
    assert recommendation.recommend("invoice")["threshold"] is None  # 12 < min_samples

    policy_update(output_type="invoice", changes={"threshold": 0.5, "audit_rate": 0}, by=reviewer, reason="test")
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": invoice("INV-AUTO", 20)})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["reviewed"] is False
    assert not ReviewItem.objects.filter(run=run).exists()
    summary = selectors.type_summary("invoice")
    assert (summary["total"], summary["auto"], summary["reviewed"]) == (13, 1, 12)

    high = run_create(flow_name="invoice_processing", inputs={"raw_invoice": CLEAN.replace("205.00", "75,000.00")})
    high.refresh_from_db()
    assert high.status == RunStatus.WAITING_REVIEW
    assert ReviewItem.objects.get(run=high).reason == "high_value"
    assert GateDecision.objects.get(run=high).reason == "high_value"
    assert AutonomyPolicy.objects.get(output_type="invoice").threshold == 0.5
