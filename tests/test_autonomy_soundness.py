"""Soundness of the recommendation and the regression guard, checked against a simulation's known truth.

The simulation's outputs are correct with a known probability accuracy(c),
so the true accuracy above a threshold, E[accuracy(c) | c ≥ t], is known.
The many-seed checks run the recommendation's own pure functions on
in-memory outcomes (fast); a DB-backed test checks the SQL path gives the
very same buckets and recommendation, and the drift test runs the real gate,
guard and notifications through the database.
"""

import random

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from reviewconsole.autonomy import simulation
from reviewconsole.autonomy.guard import (
    GUARD_REASON,
    assess_window,
    autopilot,
    autopilot_target,
    guard_check,
    window_minimum,
    window_size,
)
from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, PolicyChange, PolicyMode, Route, Verdict
from reviewconsole.autonomy.recommendation import (
    bucket_aggregates,
    buckets_from_outcomes,
    recommend,
    recommendation_from_buckets,
    verdicts_queryset,
)
from reviewconsole.autonomy.services import policy_ensure, policy_update
from reviewconsole.autonomy.tasks import check_autonomy

TARGET = 0.95
MIN_SAMPLES = 50
SEEDS = range(1, 21)
CURVE = simulation.Curve.parse(simulation.DEFAULT_CURVE)
DISTRIBUTION = simulation.ConfidenceDistribution.parse(simulation.DEFAULT_DISTRIBUTION)
TYPE = simulation.sim_type("soundness")


def true_accuracy(threshold: float) -> float:
    return simulation.true_accuracy_above(CURVE, DISTRIBUTION, threshold)


def recommended(reviewed: list[tuple[float, bool, float]]) -> float | None:
    return recommendation_from_buckets(buckets_from_outcomes(reviewed), target=TARGET, min_samples=MIN_SAMPLES)[
        "threshold"
    ]


# --------------------------------------------------------------------------- recommendation, many seeds


def test_the_curve_crosses_the_target_where_documented():
    assert CURVE.accuracy(0.8) == pytest.approx(0.95, abs=0.002)
    # The true boundary for thresholds: the lowest t whose outputs above are 95% right on average.
    boundary = min(t / 100 for t in range(101) if true_accuracy(t / 100) >= TARGET)
    assert 0.6 < boundary < 0.8


def test_recommended_threshold_is_truly_accurate_in_at_least_19_of_20_seeds():
    """Everything reviewed (a new type), 3,000 outputs per seed."""
    sound, recommendations = 0, 0
    for seed in SEEDS:
        outputs = simulation.generate(seed=seed, n=3000, curve=CURVE, distribution=DISTRIBUTION)
        reviewed = simulation.reviewed_in_memory(outputs, threshold=None, audit_rate=0.05, gate_seed=seed)
        threshold = recommended(reviewed)
        if threshold is None:
            sound += 1  # no autonomy granted is never unsafe
            continue
        recommendations += 1
        sound += true_accuracy(threshold) >= TARGET
    assert recommendations >= 18, "the check would be vacuous without recommendations"
    assert sound >= 19


def test_recommendation_stays_sound_with_audit_weights():
    """1,000 outputs all reviewed, then 4,000 under threshold 0.9 with 10% audits: IPW keeps it honest."""
    sound, recommendations = 0, 0
    for seed in SEEDS:
        first = simulation.generate(seed=seed, n=1000, curve=CURVE, distribution=DISTRIBUTION)
        later = simulation.generate(seed=seed + 1000, n=4000, curve=CURVE, distribution=DISTRIBUTION, start=1000)
        reviewed = simulation.reviewed_in_memory(first, threshold=None, audit_rate=0.1, gate_seed=seed)
        reviewed += simulation.reviewed_in_memory(later, threshold=0.9, audit_rate=0.1, gate_seed=seed)
        assert any(probability == 0.1 for _, _, probability in reviewed)
        threshold = recommended(reviewed)
        if threshold is None:
            sound += 1
            continue
        recommendations += 1
        sound += true_accuracy(threshold) >= TARGET
    # Heavy audit weights shrink the effective sample, so fewer seeds reach a recommendation (14 of 20).
    assert recommendations >= 10
    assert sound >= 19


def test_audit_estimate_is_unbiased_on_average():
    """Across seeds, the weighted estimate of outputs above 0.8 centres on the truth; the pooled one does not."""
    estimates, pooled = [], []
    for seed in SEEDS:
        outputs = simulation.generate(seed=seed, n=4000, curve=CURVE, distribution=DISTRIBUTION)
        reviewed = simulation.reviewed_in_memory(outputs, threshold=0.8, audit_rate=0.1, gate_seed=seed)
        audits = [r for r in reviewed if r[2] < 1]
        estimates.append(sum(correct for _, correct, _ in audits) / len(audits))
        pooled.append(sum(correct for _, correct, _ in reviewed) / len(reviewed))
    truth = true_accuracy(0.8)
    assert sum(estimates) / len(estimates) == pytest.approx(truth, abs=0.01)
    assert sum(pooled) / len(pooled) < truth - 0.05


# --------------------------------------------------------------------------- the SQL path


@pytest.mark.django_db
def test_sql_buckets_and_recommendation_equal_the_in_memory_ones():
    seed = 3
    policy_update(
        output_type=TYPE,
        changes={"threshold": 0.85, "audit_rate": 0.2, "min_samples": 30},
        by=None,
        reason="simulation set-up",
    )
    outputs = simulation.generate(seed=seed, n=1500, curve=CURVE, distribution=DISTRIBUTION)
    result = simulation.run(output_type=TYPE, outputs=outputs, gate_rng=random.Random(seed), check=False)
    sql = bucket_aggregates(verdicts_queryset(TYPE))
    memory = buckets_from_outcomes(
        simulation.reviewed_in_memory(outputs, threshold=0.85, audit_rate=0.2, gate_seed=seed)
    )
    assert result.reviewed == sum(b.n for b in memory.values())
    assert sorted(sql) == sorted(memory)
    for percent, bucket in memory.items():
        assert (sql[percent].n, sql[percent].correct) == (bucket.n, bucket.correct)
        assert sql[percent].weight == pytest.approx(bucket.weight)
        assert sql[percent].weighted_correct == pytest.approx(bucket.weighted_correct)
        assert sql[percent].weight_square == pytest.approx(bucket.weight_square)
    from_sql = recommend(TYPE)
    from_memory = recommendation_from_buckets(memory, target=TARGET, min_samples=30)
    assert from_sql["threshold"] == from_memory["threshold"]
    assert from_sql["ci_low"] == pytest.approx(from_memory["ci_low"])
    assert GateDecision.objects.filter(output_type=TYPE, route=Route.AUTO_APPROVED).count() == result.auto > 0


# --------------------------------------------------------------------------- the regression guard


@pytest.fixture
def managers(django_user_model):
    group, _ = Group.objects.get_or_create(name="manager")
    mia = django_user_model.objects.create_user("mia", email="mia@example.com")
    nomail = django_user_model.objects.create_user("noemail")
    gone = django_user_model.objects.create_user("gone", email="gone@example.com", is_active=False)
    rita = django_user_model.objects.create_user("rita", email="rita@example.com")  # a reviewer, not a manager
    for user in (mia, nomail, gone):
        user.groups.add(group)
    return [mia, rita]


def run_until_change(outputs, gate_rng, piece: int = 200) -> simulation.SimulationResult:
    """Feed outputs in pieces, stopping after the first automatic change."""
    result = simulation.SimulationResult(output_type=TYPE)
    for begin in range(0, len(outputs), piece):
        simulation.run(output_type=TYPE, outputs=outputs[begin : begin + piece], gate_rng=gate_rng, result=result)
        if result.changes:
            break
    return result


@pytest.mark.django_db
def test_guard_restores_review_after_drift_within_the_window(managers, django_capture_on_commit_callbacks):
    seed = 5
    policy_update(
        output_type=TYPE,
        changes={"audit_rate": 0.1, "min_samples": MIN_SAMPLES, "target_accuracy": TARGET},
        by=None,
        reason="simulation set-up",
    )
    gate_rng = random.Random(seed)
    # Everything reviewed until there is enough evidence; a manager grants the recommendation.
    warmup = simulation.generate(seed=seed, n=2500, curve=CURVE, distribution=DISTRIBUTION)
    simulation.run(output_type=TYPE, outputs=warmup, gate_rng=gate_rng)
    granted = recommend(TYPE)["threshold"]
    assert granted is not None and true_accuracy(granted) >= TARGET
    policy_update(output_type=TYPE, changes={"threshold": granted}, by=managers[0], reason="recommended")

    # Without drift the guard holds still.
    steady = simulation.generate(seed=seed + 1, n=1500, curve=CURVE, distribution=DISTRIBUTION, start=2500)
    quiet = simulation.run(output_type=TYPE, outputs=steady, gate_rng=gate_rng)
    assert quiet.audits >= window_minimum(MIN_SAMPLES)  # the guard had enough to judge
    assert quiet.changes == []

    # Accuracy drops by 0.3 for every output from here on.
    drifted = simulation.generate(
        seed=seed + 2, n=4000, curve=CURVE, distribution=DISTRIBUTION, drift_after=4000, drift_delta=0.3, start=4000
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = run_until_change(drifted, gate_rng)
    assert len(result.changes) == 1
    change = result.changes[0]
    assert change.automatic and change.by is None
    assert change.reason.startswith(GUARD_REASON)
    assert change.changes["threshold"][0] == granted
    new = change.changes["threshold"][1]
    assert new is None or new > granted
    assert 0 < result.audits_after_drift_at_change <= window_size(MIN_SAMPLES)
    window = change.evidence["window"]
    assert window["fires"] and window["upper_99"] < TARGET and window["ci_high"] < window["upper_99"]
    assert window["n"] >= window_minimum(MIN_SAMPLES) and window["threshold"] == granted
    assert change.evidence["kind"] == "regression_guard"
    assert [m.to for m in mail.outbox] == [["mia@example.com"]]
    assert TYPE in mail.outbox[0].subject and GUARD_REASON in mail.outbox[0].body
    assert AutonomyPolicy.objects.get(output_type=TYPE).threshold == new


def audits(count: int, confidence: float, *, correct: int, threshold: float | None, probability: float = 0.1) -> None:
    GateDecision.objects.bulk_create(
        GateDecision(
            output_type=TYPE,
            confidence=confidence,
            threshold=threshold,
            route=Route.HUMAN_REVIEW,
            reason="audit_sample",
            audit=True,
            review_probability=probability,
            verdict=Verdict.CORRECT if index < correct else Verdict.INCORRECT,
        )
        for index in range(count)
    )


@pytest.mark.django_db
def test_guard_needs_a_threshold_and_enough_verdicts():
    policy_ensure(output_type=TYPE)
    audits(40, 0.9, correct=0, threshold=None)
    assert guard_check(TYPE) is None  # full review already
    policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=None, reason="t")
    assert guard_check(TYPE) is None  # those verdicts were gated under another threshold
    audits(window_minimum(MIN_SAMPLES) - 1, 0.9, correct=0, threshold=0.8)
    assert guard_check(TYPE) is None  # too few to judge
    audits(1, 0.9, correct=0, threshold=0.8)
    assert guard_check(TYPE) is not None


@pytest.mark.django_db
def test_guard_holds_while_the_interval_reaches_target():
    policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=None, reason="t")
    # 96/100: the lower bound (90.2%) is below target but the interval still reaches it.
    audits(100, 0.9, correct=96, threshold=0.8)
    assert guard_check(TYPE) is None
    assert not PolicyChange.objects.filter(automatic=True).exists()


@pytest.mark.django_db
def test_guard_raises_to_a_higher_threshold_the_window_shows_safe(managers, django_capture_on_commit_callbacks):
    policy_update(output_type=TYPE, changes={"threshold": 0.8, "min_samples": 20}, by=None, reason="t")
    audits(20, 0.82, correct=0, threshold=0.8)
    audits(80, 0.95, correct=80, threshold=0.8)
    with django_capture_on_commit_callbacks(execute=True):
        change = guard_check(TYPE)
    assert change.changes == {"threshold": [0.8, 0.95]}
    assert "raised to 0.95" in change.reason
    assert change.evidence["recommendation_in_window"]["threshold"] == 0.95
    assert change.evidence["window"]["n"] == 100 and change.evidence["window"]["accuracy"] == pytest.approx(0.8)
    assert len(mail.outbox) == 1
    assert guard_check(TYPE) is None  # above 0.95 nothing has been gated yet


@pytest.mark.django_db
def test_guard_window_is_the_latest_verdicts():
    policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=None, reason="t")
    audits(100, 0.9, correct=50, threshold=0.8)  # old and bad
    audits(window_size(MIN_SAMPLES), 0.9, correct=window_size(MIN_SAMPLES), threshold=0.8)  # recent and good
    assert guard_check(TYPE) is None


def test_assess_window_is_pure():
    buckets = buckets_from_outcomes([(0.9, i < 20, 0.1) for i in range(30)])
    result = assess_window(buckets, target=TARGET, min_samples=MIN_SAMPLES)
    assert (result["n"], result["correct"], result["minimum"]) == (30, 20, 25)
    assert result["fires"] and result["upper_99"] < TARGET


# --------------------------------------------------------------------------- autopilot


def test_autopilot_target_clamps_only_towards_more_review():
    assert autopilot_target(None, 0.7, 0.5, 1.0) == 0.7
    assert autopilot_target(0.8, None, 0.5, 1.0) == 0.8
    assert autopilot_target(0.3, None, 0.5, 1.0) == 0.5  # clamped up: more review, safe
    assert autopilot_target(0.95, None, 0.5, 0.9) is None  # 0.9 is not shown safe: stay in full review
    assert autopilot_target(0.95, 0.92, 0.5, 0.9) == 0.92  # nor lowered to it
    assert autopilot_target(0.95, 0.6, 0.5, 0.9) == 0.9  # but raising 0.6 to 0.9 is an improvement


@pytest.mark.django_db
def test_autopilot_applies_the_recommendation_in_auto_mode_only(managers, django_capture_on_commit_callbacks):
    policy_ensure(output_type=TYPE)
    audits(200, 0.9, correct=200, threshold=None, probability=1.0)
    assert autopilot(TYPE) is None  # manual mode
    policy_update(output_type=TYPE, changes={"mode": PolicyMode.AUTO, "auto_min_threshold": 0.6}, by=None, reason="t")
    with django_capture_on_commit_callbacks(execute=True):
        change = autopilot(TYPE)
    assert change.changes == {"threshold": [None, 0.9]}
    assert change.automatic and change.reason.startswith("Autopilot")
    assert change.evidence["recommendation"]["threshold"] == 0.9
    assert change.evidence["bounds"] == [0.6, 1.0]
    assert len(mail.outbox) == 1
    assert autopilot(TYPE) is None  # already there


@pytest.mark.django_db
def test_autopilot_does_not_regrant_from_evidence_older_than_the_guard():
    policy_update(output_type=TYPE, changes={"mode": PolicyMode.AUTO, "threshold": 0.8}, by=None, reason="t")
    audits(200, 0.9, correct=200, threshold=None, probability=1.0)  # old, good evidence
    audits(40, 0.9, correct=10, threshold=0.8)  # the regression
    changes = check_autonomy(TYPE)
    assert [c.changes for c in changes] == [{"threshold": [0.8, None]}]
    assert check_autonomy(TYPE) == []  # the old evidence does not bring autonomy straight back
    # Fresh evidence after the regression does.
    audits(200, 0.93, correct=200, threshold=None, probability=1.0)
    (change,) = check_autonomy(TYPE)
    assert change.changes == {"threshold": [None, 0.93]}
    assert change.evidence["after_gate_decision_id"] is not None


# --------------------------------------------------------------------------- the command


@pytest.mark.django_db
def test_simulate_reviews_is_labelled_deterministic_and_stays_in_its_sim_type():
    from io import StringIO

    from django.core.management import call_command

    def simulate(*args: str) -> str:
        out = StringIO()
        call_command("simulate_reviews", "--type", "invoice", "--seed", "3", *args, stdout=out)
        return out.getvalue()

    first = simulate("--n", "500")
    assert first.startswith("SIMULATION")
    assert "sim_invoice" in first and "calibration" in first
    assert set(GateDecision.objects.values_list("output_type", flat=True)) == {"sim_invoice"}
    assert GateDecision.objects.count() == 500
    assert simulate("--n", "500") == first  # the same seed, the same run (earlier data replaced)
    assert GateDecision.objects.count() == 500
    assert not AutonomyPolicy.objects.filter(output_type="invoice").exists()

    granting = simulate("--n", "1800", "--grant-after", "1500", "--days", "10")
    (grant,) = PolicyChange.objects.filter(policy__output_type="sim_invoice", reason__contains="manager")
    assert f"granted after 1500: threshold {grant.changes['threshold'][1]}" in granting
    assert GateDecision.objects.filter(route=Route.AUTO_APPROVED).exists()
