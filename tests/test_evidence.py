"""Properties of the statistics core (`reviewconsole.autonomy.evidence`), checked on generated evidence.

Compared with scipy's exact binomial test and Clopper-Pearson interval where the core claims to be exact.
"""

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from reviewconsole.autonomy.evidence import (
    ALPHA,
    GUARD_ALPHA,
    Observation,
    RegressionMonitor,
    Stratum,
    _false_alarm,
    calibration,
    cusum_design,
    estimate,
    percent_of,
    recommend,
    recommend_threshold,
    strata_of,
)

PROBABILITIES = (1.0, 0.5, 0.2, 0.05)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def evidence(draw, *, probabilities=PROBABILITIES, max_groups: int = 12, max_count: int = 120) -> list[Observation]:
    """Observations in groups of identical ones, so that a few draws make hundreds of verdicts, mostly right
    at high confidence as real evidence is, so that thresholds do pass."""
    groups = draw(
        st.lists(
            st.tuples(
                st.integers(0, 100),
                st.floats(0.5, 1.0),
                st.sampled_from(probabilities),
                st.integers(1, max_count),
            ),
            min_size=1,
            max_size=max_groups,
        )
    )
    observations = []
    for percent, accuracy, probability, count in groups:
        right = round(count * accuracy)
        observations += [Observation(percent / 100, True, probability)] * right
        observations += [Observation(percent / 100, False, probability)] * (count - right)
    return draw(st.permutations(observations))


targets = st.sampled_from([0.6, 0.8, 0.9, 0.95])
min_samples = st.integers(1, 60)


# --------------------------------------------------------------------------- observations and strata


@pytest.mark.parametrize(
    "args",
    [
        (math.nan, True, 1.0),
        (math.inf, True, 1.0),
        (0.9, True, 0.0),
        (0.9, True, -0.1),
        (0.9, True, 1.5),
        (0.9, True, math.nan),
    ],
)
def test_invalid_observations_raise_value_error(args):
    with pytest.raises(ValueError):
        Observation(*args)


def test_observation_is_constructible_positionally():
    observation = Observation(0.9, True, 0.05, True)
    assert (observation.confidence, observation.correct, observation.review_probability, observation.forced) == (
        0.9,
        True,
        0.05,
        True,
    )


@SETTINGS
@given(st.lists(st.floats(0, 1), max_size=50))
def test_a_confidence_falls_in_the_stratum_its_decimal_value_names(confidences):
    for confidence in confidences:
        percent = percent_of(confidence)
        assert 0 <= percent <= 100
        assert percent / 100 <= confidence + 1e-9 and (percent == 100 or confidence < (percent + 1) / 100)
    assert [percent_of(p / 100) for p in range(101)] == list(range(101))


# --------------------------------------------------------------------------- the recommendation


@SETTINGS
@given(evidence(), evidence(), targets, min_samples)
def test_forced_observations_never_change_the_recommendation(observations, others, target, minimum):
    forced = [Observation(o.confidence, o.correct, o.review_probability, forced=True) for o in others]
    plain = recommend_threshold(observations, target=target, min_samples=minimum)
    assert recommend_threshold(observations + forced, target=target, min_samples=minimum) == plain
    assert recommend_threshold(forced + observations, target=target, min_samples=minimum) == plain


@SETTINGS
@given(evidence(), targets, min_samples)
def test_the_chosen_threshold_and_every_one_tested_before_it_pass_at_five_percent(observations, target, minimum):
    result = recommend(strata_of(observations), target=target, min_samples=minimum)
    assert result.threshold == recommend_threshold(observations, target=target, min_samples=minimum)
    tested = [c for c in result.candidates if c.tested]
    if result.threshold is None:
        assert result.chosen is None
        assert not any(c.passes for c in result.candidates)
        return
    assert result.threshold == pytest.approx(round(result.threshold * 100) / 100)
    assert result.chosen.threshold == result.threshold
    assert result.chosen.p_value <= ALPHA and result.chosen.eligible
    # Fixed-sequence testing: every candidate from the start down to the chosen one was tested and passed; the
    # next one down (if any) was tested and failed, and nothing below it was tested.
    from_start = [c for c in result.candidates if result.start >= c.threshold >= result.threshold]
    assert from_start and all(c.tested and c.passes and c.p_value <= ALPHA for c in from_start)
    below = [c for c in result.candidates if c.threshold < result.threshold]
    if below:
        assert below[0].tested and not below[0].passes and below[0].p_value > ALPHA
        assert not any(c.tested for c in below[1:])
    assert tested == [*from_start, *below[:1]]


@SETTINGS
@given(evidence(probabilities=(1.0,)), targets, min_samples, st.floats(0, 1))
def test_a_wrong_verdict_never_lowers_a_p_value_under_full_review(observations, target, minimum, confidence):
    """Under full review each candidate's test is an exact binomial one: one more wrong verdict can only make
    "less accurate than target" harder to reject. (The recommendation itself can go down: the start of the
    sequence depends on how much evidence there is, and one more verdict of either kind can move it.)"""
    before = recommend(strata_of(observations), target=target, min_samples=minimum)
    after = recommend(strata_of([*observations, Observation(confidence, False, 1.0)]), target=target, min_samples=1)
    p_before = {c.threshold: c.p_value for c in before.candidates}
    for candidate in after.candidates:
        if candidate.threshold in p_before:
            assert candidate.p_value >= p_before[candidate.threshold] - 1e-12


@SETTINGS
@given(evidence(probabilities=(1.0,)), targets)
def test_under_full_review_every_candidate_is_the_exact_binomial_test(observations, target):
    result = recommend(strata_of(observations), target=target, min_samples=1)
    for c in result.candidates:
        assert c.n_eff == c.reviewed == c.outputs
        exact = binomtest(c.correct, c.reviewed, target, alternative="greater")
        assert c.p_value == pytest.approx(exact.pvalue, rel=1e-6, abs=1e-12)
        one_sided = exact.proportion_ci(confidence_level=1 - ALPHA, method="exact")  # one-sided: "greater"
        assert c.lower_bound == pytest.approx(one_sided.low, abs=1e-9)


@SETTINGS
@given(st.integers(1, 400), st.integers(1, 20), st.data())
def test_duplicated_observations_count_once_each_at_full_review(n, copies, data):
    """k copies of a verdict at p=1 are k verdicts: the same figures as k·n distinct binomial trials."""
    correct = data.draw(st.integers(0, n))
    observations = [Observation(0.9, True, 1.0)] * correct + [Observation(0.9, False, 1.0)] * (n - correct)
    result = estimate(strata_of(observations * copies).values())
    exact = binomtest(correct * copies, n * copies).proportion_ci(confidence_level=0.95, method="exact")
    assert (result.reviewed, result.correct, result.n_eff) == (n * copies, correct * copies, n * copies)
    assert result.ci_low == pytest.approx(exact.low, abs=1e-9)
    assert result.ci_high == pytest.approx(exact.high, abs=1e-9)


# --------------------------------------------------------------------------- estimates


@SETTINGS
@given(st.integers(1, 2000), st.data())
def test_estimate_with_one_weight_is_clopper_pearson(n, data):
    correct = data.draw(st.integers(0, n))
    result = estimate([Stratum(outputs=n, reviewed=n, correct=correct)])
    exact = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="exact")
    assert result.accuracy == pytest.approx(correct / n)
    assert result.ci_low == pytest.approx(exact.low, abs=1e-9)
    assert result.ci_high == pytest.approx(exact.high, abs=1e-9)


@SETTINGS
@given(evidence())
def test_bounds_contain_the_estimate(observations):
    strata = strata_of(observations)
    for threshold in [None, *(p / 100 for p in range(0, 101, 10))]:
        chosen = strata.values() if threshold is None else [s for p, s in strata.items() if p >= threshold * 100]
        result = estimate(chosen)
        if result.accuracy is None:
            assert result.reviewed == 0
            continue
        assert 0 <= result.ci_low <= result.lower_bound <= result.accuracy <= result.ci_high <= 1
        assert 0 < result.n_eff <= result.reviewed


@SETTINGS
@given(evidence())
def test_audit_weights_count_the_outputs_each_stratum_stands_for(observations):
    strata = strata_of(observations)
    for percent, stratum in strata.items():
        members = [o for o in observations if percent_of(o.confidence) == percent]
        assert stratum.reviewed == len(members)
        assert stratum.correct == sum(o.correct for o in members)
        assert stratum.outputs == pytest.approx(sum(1 / o.review_probability for o in members))


# --------------------------------------------------------------------------- calibration


@SETTINGS
@given(evidence(), st.sampled_from([1, 2, 4, 5, 10, 20]))
def test_calibration_bands_partition_the_strata(observations, bands):
    strata = strata_of(observations)
    rows = calibration(strata, bands)
    assert len(rows) == bands
    assert rows[0].low == 0 and rows[-1].high == 1
    assert all(a.high == pytest.approx(b.low) for a, b in itertools.pairwise(rows))
    assert sum(row.estimate.reviewed for row in rows) == sum(s.reviewed for s in strata.values())
    assert sum(row.estimate.outputs for row in rows) == pytest.approx(sum(s.outputs for s in strata.values()))
    for row in rows:
        inside = [s for p, s in strata.items() if row.low <= p / 100 + 1e-9 < row.high or (p == 100 and row.high == 1)]
        assert row.estimate.reviewed == sum(s.reviewed for s in inside)
        assert row.estimate.correct == sum(s.correct for s in inside)


# --------------------------------------------------------------------------- the guard


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=300), st.sampled_from([0.8, 0.9, 0.95]))
def test_the_monitor_ignores_forced_verdicts_and_stays_fired(verdicts, target):
    plain = RegressionMonitor(target=target, min_samples=10)
    mixed = RegressionMonitor(target=target, min_samples=10)
    fired = False
    for correct, forced in verdicts:
        now = plain.update(Observation(0.99, correct, 0.05))
        assert not fired or now, "once fired, the monitor stays fired"
        fired = now
        mixed.update(Observation(0.99, not correct, 1.0, forced=True))  # the opposite verdict, forced: ignored
        assert mixed.update(Observation(0.99, correct, 0.05)) == now
        if forced:
            assert mixed.update(Observation(0.5, False, 1.0, forced=True)) == now
    assert (plain.n, plain.wrong, plain.fired_at) == (mixed.n, mixed.wrong, mixed.fired_at)
    if fired:
        assert plain.update(Observation(0.99, True, 0.05)) and plain.update(Observation(0.99, True, 0.05))


@SETTINGS
@given(
    st.lists(st.booleans(), max_size=400),
    st.integers(min_value=0, max_value=400),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    st.integers(min_value=1, max_value=60),
)
def test_the_monitor_fed_in_arrays_equals_the_monitor_fed_one_by_one(verdicts, cut, target, min_samples):
    one_by_one = RegressionMonitor(target=target, min_samples=min_samples)
    for correct in verdicts:
        one_by_one.update(Observation(0.99, correct, 0.05))
    in_arrays = RegressionMonitor(target=target, min_samples=min_samples)
    in_arrays.update_all(verdicts[:cut])  # in two parts: the second starts from the first one's state
    assert in_arrays.update_all(verdicts[cut:]) == one_by_one.fired
    state = ("n", "wrong", "statistic", "fired_at")
    assert [getattr(in_arrays, k) for k in state] == [getattr(one_by_one, k) for k in state]


def test_the_monitor_fires_on_a_run_of_errors():
    monitor = RegressionMonitor(target=0.95, min_samples=50)
    assert any(monitor.update(Observation(0.99, False, 0.05)) for _ in range(100))


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99])
def test_cusum_limit_is_the_lowest_with_false_alarms_at_most_alpha(target):
    design = cusum_design(target)
    assert design.false_alarm <= GUARD_ALPHA
    assert design.false_alarm == pytest.approx(_false_alarm(target, design.error_score, design.limit, 2000))
    assert _false_alarm(target, design.error_score, design.limit - 1, 2000) > GUARD_ALPHA


@pytest.mark.parametrize(("target", "score", "limit"), [(0.9, 3, 4), (0.8, 2, 5), (0.7, 1, 2), (0.95, 5, 5)])
def test_false_alarm_chance_is_exact(target, score, limit):
    """The dynamic programme against every sequence of 12 verdicts, weighted by its probability."""
    horizon = 12
    total = 0.0
    for sequence in itertools.product([True, False], repeat=horizon):
        statistic = 0
        for correct in sequence:
            statistic = max(0, statistic - 1) if correct else statistic + score
            if statistic >= limit:
                wrong = sequence.count(False)
                total += target ** (horizon - wrong) * (1 - target) ** wrong
                break
    assert _false_alarm(target, score, limit, horizon) == pytest.approx(total, rel=1e-9, abs=1e-15)
