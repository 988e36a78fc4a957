"""The guarantees of the autonomy statistics, checked by Monte Carlo against a simulation's known truth.

Every scenario in `montecarlo.SCENARIOS` runs 200 seeds in memory through the statistics core, as
`simulate_reviews --seeds 200` does; no database is involved.
"""

import io
from functools import cache

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from reviewconsole.autonomy import montecarlo, simulation
from reviewconsole.autonomy.evidence import Observation, strata_of

SEEDS = 200
NAMES = [scenario.name for scenario in montecarlo.SCENARIOS]


@cache
def summary(name: str) -> montecarlo.ScenarioSummary:
    return montecarlo.run_scenario(montecarlo.scenario_named(name), SEEDS)


# --------------------------------------------------------------------------- the guarantees


@pytest.mark.parametrize("name", NAMES)
def test_at_most_five_percent_of_seeds_get_an_unsafe_recommendation(name):
    result = summary(name)
    assert result.seeds == len(result.results) == SEEDS
    assert result.unsafe_share <= 0.05, f"{result.unsafe} unsafe recommendations in {SEEDS} seeds"


def test_scenarios_cover_what_the_guarantees_are_about():
    kinds = {s.kind for s in montecarlo.SCENARIOS}
    assert {"recommend", "after_autonomy", "guard"} <= kinds
    assert any(s.forced_share > 0 and s.forced_lift > 0 for s in montecarlo.SCENARIOS)
    assert any(s.curve.startswith("plateau") for s in montecarlo.SCENARIOS)


def test_the_plateau_just_under_target_is_truly_unsafe_everywhere():
    """So that the plateau scenario's unsafe share measures the guarantee, not luck."""
    scenario = montecarlo.scenario_named("plateau")
    curve = montecarlo.Curve.parse(scenario.curve)
    distribution = montecarlo.ConfidenceDistribution.parse(scenario.distribution)
    assert all(montecarlo.true_accuracy_above(curve, distribution, p / 100) < scenario.target for p in range(101))


def test_a_calibrated_model_gets_a_recommendation_and_autonomy():
    result = summary("calibrated")
    assert result.scenario.n == 5000
    assert result.recommended >= 0.9 * SEEDS
    assert result.mean_auto_share >= 0.40


def test_forced_reviews_do_not_lift_the_recommendation():
    result = summary("forced")
    assert result.recommended >= 0.5 * SEEDS, "the check would be vacuous without recommendations"
    assert result.unsafe_share <= 0.05


def test_after_autonomy_a_truly_safe_threshold_is_kept():
    result = summary("after_autonomy")
    judged = sum(1 for r in result.results if r.kept is not None)
    assert judged >= 0.5 * SEEDS, "the check would be vacuous without safe thresholds to keep"
    assert result.kept_share >= 0.80


def test_after_autonomy_a_truly_safe_threshold_is_not_withdrawn():
    """Audits above a lowered threshold do not drown the evidence behind it: autonomy stays recommended."""
    result = summary("after_autonomy")
    judged = sum(1 for r in result.results if r.withdrawn is not None)
    assert judged >= 0.5 * SEEDS, "the check would be vacuous without safe thresholds to keep"
    assert result.withdrawn_share <= 0.20
    assert result.unsafe_share <= 0.05


def test_after_autonomy_a_threshold_safe_with_a_margin_is_kept():
    result = summary("after_autonomy_safe")
    judged = sum(1 for r in result.results if r.kept is not None)
    assert judged == SEEDS, "0.85 is truly safe on the default curve: every seed judges it"
    assert result.kept_share >= 0.80
    assert result.unsafe_share <= 0.05


def test_the_guard_rarely_fires_at_exactly_the_target():
    result = summary("guard_at_target")
    assert result.scenario.audits >= 2000 and result.scenario.drift_after is None
    assert result.false_alarm_share <= 0.05


def test_the_guard_finds_a_ten_point_drop_within_a_median_of_150_audits():
    result = summary("guard_drop")
    assert result.scenario.drop == pytest.approx(0.10)
    assert result.false_alarm_share <= 0.05
    assert result.median_delay <= 150


# --------------------------------------------------------------------------- the simulation's truth


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.booleans(), st.sampled_from([1.0, 0.5, 0.1, 0.05, 1 / 3])),
        max_size=300,
    )
)
def test_strata_from_arrays_are_those_of_the_core_to_the_last_bit(rows):
    verdicts = montecarlo.Verdicts(
        np.array([r[0] for r in rows], dtype=float),
        np.array([r[1] for r in rows], dtype=bool),
        np.array([r[2] for r in rows], dtype=float),
    )
    expected = strata_of(Observation(*row) for row in rows)
    assert list(montecarlo.strata_of_arrays(verdicts).items()) == list(expected.items())


@pytest.mark.parametrize(
    ("curve", "distribution", "low", "high"),
    [
        ("logistic:8:0.432", "beta:5:2", 0.5, 0.6),
        ("logistic:8:0.432", "beta:5:2", 0.0, 0.1),
        ("linear:0:1", "beta:8:1", 0.9, 1.0),
        ("plateau:0.945:0.7", "beta:5:2", 0.6, 0.8),
    ],
)
def test_band_truth_is_the_average_over_the_band(curve, distribution, low, high):
    parsed_curve = montecarlo.Curve.parse(curve)
    parsed = montecarlo.ConfidenceDistribution.parse(distribution)
    density = stats.beta(parsed.alpha, parsed.beta).pdf
    mass, _ = integrate.quad(density, low, high)
    total, _ = integrate.quad(lambda c: density(c) * parsed_curve.accuracy(c), low, high, points=[0.7])
    assert montecarlo.true_accuracy_between(parsed_curve, parsed, low, high) == pytest.approx(total / mass, abs=1e-6)


def test_the_database_simulation_reports_band_truth_as_the_band_average(monkeypatch):
    from reviewconsole.autonomy import recommendation, selectors

    curve = montecarlo.Curve.parse(montecarlo.DEFAULT_CURVE)
    distribution = montecarlo.ConfidenceDistribution.parse(montecarlo.DEFAULT_DISTRIBUTION)
    monkeypatch.setattr(recommendation, "recommend", lambda output_type: {"threshold": None})
    monkeypatch.setattr(selectors, "type_summary", lambda output_type: {})
    monkeypatch.setattr(selectors, "calibration", lambda output_type: [{"low": 0.1, "high": 0.2}])
    rows = simulation.summary_rows(output_type="t", curve=curve, distribution=distribution, drift_delta=0.1)
    (band,) = rows["bands"]
    assert band["true_accuracy"] == montecarlo.true_accuracy_between(curve, distribution, 0.1, 0.2)
    assert band["true_accuracy_drifted"] == montecarlo.true_accuracy_between(curve, distribution, 0.1, 0.2, delta=0.1)
    assert abs(band["true_accuracy"] - curve.accuracy(0.15)) > 0.002, "the midpoint is not the band's average"


def test_the_database_simulation_shares_the_monte_carlo_definitions():
    assert simulation.Curve is montecarlo.Curve
    assert simulation.ConfidenceDistribution is montecarlo.ConfidenceDistribution
    assert simulation.true_accuracy_above is montecarlo.true_accuracy_above
    outputs = simulation.generate(
        seed=4,
        n=300,
        curve=simulation.Curve.parse("linear:0.2:0.5"),
        distribution=montecarlo.ConfidenceDistribution(2, 2),
    )
    plain = montecarlo.generate(
        seed=4,
        n=300,
        curve=montecarlo.Curve.parse("linear:0.2:0.5"),
        distribution=montecarlo.ConfidenceDistribution(2, 2),
    )
    assert [(o.index, o.confidence, o.correct) for o in outputs] == [(o.index, o.confidence, o.correct) for o in plain]
    assert all(bool(o.error_fields or o.reject_reason) == (not o.correct) for o in outputs)


def test_generation_is_deterministic_and_separate_streams_differ():
    curve, distribution = montecarlo.Curve.parse("linear:0:1"), montecarlo.ConfidenceDistribution(8, 1)
    first = montecarlo.draw(seed=7, n=50, curve=curve, distribution=distribution)
    again = montecarlo.draw(seed=7, n=50, curve=curve, distribution=distribution)
    other = montecarlo.draw(seed=(7, montecarlo.LATER), n=50, curve=curve, distribution=distribution)
    assert np.array_equal(first.confidence, again.confidence) and np.array_equal(first.correct, again.correct)
    assert not np.array_equal(first.confidence, other.confidence)


# --------------------------------------------------------------------------- simulate_reviews --seeds


def test_simulate_reviews_seeds_prints_one_row_per_scenario_without_a_database():
    """Not marked django_db: any query would fail the test."""
    out = io.StringIO()
    call_command("simulate_reviews", "--seeds", "3", "--scenario", "default", "--scenario", "guard_drop", stdout=out)
    text = out.getvalue()
    assert "nothing is written" in text
    rows = [line.split() for line in text.splitlines() if line.split()[:1] in (["default"], ["guard_drop"])]
    default, guard = rows[0], rows[1]
    expected = montecarlo.run_scenario(montecarlo.scenario_named("default"), 3)
    assert default[1:3] == ["3", str(expected.recommended)]
    assert guard[-1] == f"{montecarlo.run_scenario(montecarlo.scenario_named('guard_drop'), 3).median_delay:g}"
    assert not any(line.split()[:1] == ["plateau"] for line in text.splitlines())


def test_simulate_reviews_seeds_applies_target_and_min_samples():
    out = io.StringIO()
    call_command(
        "simulate_reviews", "--seeds", "4", "--scenario", "small", "--target", "0.8", "--min-samples", "20", stdout=out
    )
    row = next(line.split() for line in out.getvalue().splitlines() if line.startswith("small"))
    changed = montecarlo.with_options(montecarlo.scenario_named("small"), target=0.8, min_samples=20)
    assert row[2] == str(montecarlo.run_scenario(changed, 4).recommended)
    assert int(row[2]) > montecarlo.run_scenario(montecarlo.scenario_named("small"), 4).recommended


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--seeds", "-3"], "--seeds must be at least 1"),
        (["--seeds", "2", "--scenario", "nope"], "no scenario named 'nope'"),
        (["--seeds", "2", "--target", "1.5"], "--target must be between 0 and 1"),
        (["--seeds", "2", "--min-samples", "0"], "--min-samples must be at least 1"),
    ],
)
def test_simulate_reviews_seeds_rejects_bad_values(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_reviews", *args, stdout=io.StringIO())
