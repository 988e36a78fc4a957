"""The statistics of gradual autonomy: the one core every figure goes through. Pure functions, no Django.

What is measured. The accuracy of the outputs a threshold t would auto-process: the outputs of a type with
confidence at or above t that no rule forces to review. The evidence is human verdicts (`Observation`).

Two populations. A review a rule forced (high value, a flow's own rule, a failed check) says nothing about
what autonomy would let through: forced outputs are never auto-processed, and a rule picks them because they
differ from the rest. Their verdicts are left out of every figure here about autonomy; they keep their own.

Strata. Verdicts are grouped by whole percent of confidence. A stratum stands for the outputs its verdicts
were drawn from: the sum of 1/p over them, p being the chance the output had of review (1 under full review,
the audit rate above a threshold). That count is exact where everything was reviewed and unbiased where only
audits were. Within a stratum every verdict counts once, whatever its p: with no drift within the evidence
window, an audit sample and a full review of outputs of the same confidence measure the same accuracy. So
the thousands of verdicts given before a threshold was lowered keep counting when only audits come after,
instead of being drowned by audit weights of 1/p pooled across eras. Across strata, each one weighs by the
outputs it stands for, so a few audits above a threshold are not outnumbered by many reviews below it.
Above a threshold those counts are averaged over five-percent cells (`smoothed`): one audit more or less in
a one-percent stratum would otherwise double its weight.

Intervals and tests. A stratified estimate has the variance of a binomial proportion on Kish's effective
size n_eff = N² / Σ N_s²/m_s (N_s outputs, m_s verdicts per stratum). Bounds and p-values are exact binomial
ones (Clopper-Pearson) on n_eff verdicts of which accuracy x n_eff were right: the Korn-Graubard interval for
survey proportions. When every verdict has the same weight, as under full review, this is the exact binomial
test itself.

The recommendation (`recommend`) tests, for each candidate threshold from the strictest down, the hypothesis
"the outputs it would auto-process are less than `target` accurate", each at 5%, and stops at the first it
cannot reject: fixed-sequence testing, as in Learn then Test (Angelopoulos, Bates et al., 2021). Testing in a
fixed order controls the chance of recommending any unsafe threshold at 5%, the search included, without a
correction. The order may depend on confidences and review probabilities, never on verdicts, so it starts at
the highest threshold whose evidence is large enough to pass with a few errors (see `_start`).

The guard (`RegressionMonitor`) is a one-sided Bernoulli CUSUM whose limit is computed exactly, by dynamic
programming over its integer states, so that it fires falsely at most `GUARD_ALPHA` of the time within
`GUARD_HORIZON` audits at exactly the target accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import betainc, betaincinv

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
# Confidences such as 0.29 are 28.999… after *100 in binary floating point; the nudge puts them in the
# stratum their decimal value names (the same rule as the SQL that buckets gate decisions).
BUCKET_EPSILON = 1e-9
PERCENTS = range(101)  # candidate thresholds 0.00, 0.01, … 1.00
# Where the test sequence starts (see `_start`). Tuned with `simulate_reviews --seeds`.
START_LEAST = 2
START_MOST = 8
START_SHARE = 4
# Percents per cell over which audit counts are averaged (see `smoothed`).
SMOOTHING_WIDTH = 5
# The guard: false alarms at most GUARD_ALPHA within GUARD_HORIZON audits at exactly the target accuracy,
# tuned to detect a drop of GUARD_DROP (a smaller drop is found too, more slowly).
GUARD_ALPHA = 0.025
GUARD_HORIZON = 2000
GUARD_DROP = 0.10
# Verdicts the guard sees before it may fire, at most: min_samples guards granting autonomy, and must not
# delay taking it back; the CUSUM's limit alone keeps false alarms at GUARD_ALPHA.
GUARD_MIN_VERDICTS = 20


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Observation:
    """One human verdict: the output's confidence, whether it was right, the chance it had of being reviewed,
    and whether a rule forced the review."""

    confidence: float
    correct: bool
    review_probability: float
    forced: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.confidence):
            raise ValueError(f"confidence must be a finite number, not {self.confidence!r}")
        if not (math.isfinite(self.review_probability) and 0 < self.review_probability <= 1):
            raise ValueError(f"review_probability must be in (0, 1], not {self.review_probability!r}")


@dataclass
class Stratum:
    """The verdicts on outputs whose confidence is in one whole percent, and the outputs they stand for."""

    outputs: float = 0.0
    reviewed: int = 0
    correct: int = 0
    confidence_sum: float = 0.0

    def add(self, other: Stratum) -> None:
        self.outputs += other.outputs
        self.reviewed += other.reviewed
        self.correct += other.correct
        self.confidence_sum += other.confidence_sum


def percent_of(confidence: float) -> int:
    """The stratum of a confidence: its whole percent, 0 to 100."""
    return min(100, max(0, int(confidence * 100 + BUCKET_EPSILON)))


def strata_of(observations: Iterable[Observation]) -> dict[int, Stratum]:
    """The strata of the observations no rule forced, by whole percent of confidence."""
    strata: dict[int, Stratum] = {}
    for observation in observations:
        if observation.forced:
            continue
        stratum = strata.setdefault(percent_of(observation.confidence), Stratum())
        stratum.outputs += 1 / observation.review_probability
        stratum.reviewed += 1
        stratum.correct += int(observation.correct)
        stratum.confidence_sum += observation.confidence
    return strata


@dataclass(frozen=True)
class Estimate:
    """Accuracy of the outputs some strata stand for, with exact 95% bounds on the effective size.

    `ci_low`/`ci_high`: two-sided 95% interval. `lower_bound`: one-sided 95% lower bound, the one the
    recommendation compares with the target.
    """

    outputs: float
    reviewed: int
    correct: int
    n_eff: float
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    lower_bound: float | None


def _columns(strata: Iterable[Stratum]) -> tuple[np.ndarray, ...]:
    """Running totals over strata in the order given: outputs, reviewed, correct, accuracy, effective size."""
    rows = [(s.outputs, s.reviewed, s.correct) for s in strata if s.reviewed > 0 and s.outputs > 0]
    data = np.array(rows, dtype=float).reshape(-1, 3)
    outputs, reviewed, correct = data[:, 0], data[:, 1], data[:, 2]
    total_outputs = np.cumsum(outputs)
    total_reviewed = np.cumsum(reviewed)
    accuracy = np.cumsum(outputs * correct / np.maximum(reviewed, 1)) / np.maximum(total_outputs, 1e-300)
    variance_units = np.cumsum(outputs * outputs / np.maximum(reviewed, 1))
    n_eff = np.minimum(total_reviewed, total_outputs * total_outputs / np.maximum(variance_units, 1e-300))
    return total_outputs, total_reviewed, np.cumsum(correct), np.clip(accuracy, 0.0, 1.0), n_eff


def _bounds(accuracy: np.ndarray, n_eff: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) lower and upper bounds at level `alpha` each side, on the effective size."""
    x = accuracy * n_eff
    with np.errstate(all="ignore"):
        low = np.where(x > 0, betaincinv(np.maximum(x, 1e-12), n_eff - x + 1, alpha), 0.0)
        high = np.where(n_eff - x > 0, betaincinv(x + 1, np.maximum(n_eff - x, 1e-12), 1 - alpha), 1.0)
    return np.nan_to_num(low, nan=0.0), np.nan_to_num(high, nan=1.0)


def p_values(accuracy: np.ndarray, n_eff: np.ndarray, target: float) -> np.ndarray:
    """P(at least accuracy x n_eff right of n_eff | accuracy exactly `target`): the exact binomial test of
    "less than `target` accurate" (its upper tail, I_target(x, n - x + 1), extended to a real n and x)."""
    if target <= 0:
        return np.zeros_like(accuracy)
    if target >= 1:
        return np.ones_like(accuracy)
    x = accuracy * n_eff
    with np.errstate(all="ignore"):
        values = np.where(x > 0, betainc(np.maximum(x, 1e-12), n_eff - x + 1, target), 1.0)
    return np.nan_to_num(values, nan=1.0)


def estimate(strata: Iterable[Stratum]) -> Estimate:
    """Accuracy over all of `strata` together, each weighed by the outputs it stands for."""
    strata = [s for s in strata if s.reviewed > 0 and s.outputs > 0]
    if not strata:
        return Estimate(0.0, 0, 0, 0.0, None, None, None, None)
    outputs, reviewed, correct, accuracy, n_eff = (column[-1:] for column in _columns(strata))
    low, high = _bounds(accuracy, n_eff, ALPHA / 2)
    lower, _ = _bounds(accuracy, n_eff, ALPHA)
    return Estimate(
        outputs=float(outputs[0]),
        reviewed=int(reviewed[0]),
        correct=int(correct[0]),
        n_eff=float(n_eff[0]),
        accuracy=float(accuracy[0]),
        ci_low=float(low[0]),
        ci_high=float(high[0]),
        lower_bound=float(lower[0]),
    )


def smoothed(strata: Mapping[int, Stratum]) -> dict[int, Stratum]:
    """The strata with the outputs each stands for averaged over cells of SMOOTHING_WIDTH percents.

    Above a lowered threshold a one-percent stratum holds a handful of audits, each standing for 1/p outputs,
    so whether one lands in it or not doubles or halves its count: noise that narrows the effective size and
    lets one wrong audit weigh twenty-fold. Over five percents the audits' share is steady, and accuracy
    hardly changes. Cells never straddle the lowest stratum with an audit (the threshold, where the share of
    outputs reviewed jumps), and strata where everything was reviewed are left as they are.
    """
    live = {p: s for p, s in strata.items() if s.reviewed > 0 and s.outputs > 0}
    audited = [p for p, s in live.items() if s.outputs > s.reviewed * (1 + 1e-9)]
    boundary = min(audited, default=len(PERCENTS))
    cells: dict[tuple[bool, int], list[int]] = {}
    for percent in live:
        cells.setdefault((percent >= boundary, percent // SMOOTHING_WIDTH), []).append(percent)
    result = dict(strata)
    for (above, _), members in cells.items():
        if not above:
            continue
        ratio = sum(live[p].outputs for p in members) / sum(live[p].reviewed for p in members)
        for percent in members:
            stratum = live[percent]
            result[percent] = Stratum(
                stratum.reviewed * ratio, stratum.reviewed, stratum.correct, stratum.confidence_sum
            )
    return result


def at_or_above(strata: Mapping[int, Stratum], threshold: float) -> list[Stratum]:
    """The strata of outputs a threshold would auto-process."""
    first = percent_of(threshold)
    return [stratum for percent, stratum in smoothed(strata).items() if percent >= first]


def proportion(successes: int, n: int) -> Estimate:
    """A plain share with its exact 95% interval: every item counts once (the review work, autonomy rates)."""
    return estimate([Stratum(outputs=n, reviewed=n, correct=successes)]) if n > 0 else estimate([])


@dataclass(frozen=True)
class Quantile:
    """A quantile of a sample with its exact, distribution-free 95% interval (None where the sample is too small)."""

    n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None


def quantile(values: Iterable[float], q: float) -> Quantile:
    """The `q` quantile of `values` (nearest rank, the median of the middle two for q = 0.5) and its interval.

    The interval [x₍ₗ₎, x₍ᵤ₎] between order statistics holds the true quantile with probability
    P(l ≤ B < u), B ~ Binomial(n, q), whatever the distribution: l is the largest rank with P(B < l) ≤ alpha/2 and u
    the smallest with P(B ≥ u) ≤ alpha/2, so the coverage is at least 95%. A bound the sample cannot give (too few
    values beyond the quantile) is None.
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be between 0 and 1, not {q!r}")
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Quantile(0, None, None, None)
    middle = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    value = middle if q == 0.5 else ordered[max(0, math.ceil(q * n) - 1)]
    # P(B ≤ k) for k = 0..n, from the regularized incomplete beta: P(B ≤ k) = I_{1-q}(n - k, k + 1).
    ks = np.arange(n + 1)
    with np.errstate(all="ignore"):
        cdf = np.where(ks < n, betainc(np.maximum(n - ks, 1e-300), ks + 1, 1 - q), 1.0)
    half = ALPHA / 2
    # Ranks are 1-based. Lower l: the largest with P(B ≤ l - 1) ≤ alpha/2; upper u: the smallest with
    # P(B ≤ u - 1) ≥ 1 - alpha/2.
    below = np.nonzero(cdf <= half)[0]
    low_rank = int(below[-1]) + 1 if below.size else 0
    above = np.nonzero(cdf >= 1 - half)[0]
    high_rank = int(above[0]) + 1 if above.size else n + 1
    return Quantile(
        n=n,
        value=float(value),
        ci_low=float(ordered[low_rank - 1]) if 1 <= low_rank <= n else None,
        ci_high=float(ordered[high_rank - 1]) if 1 <= high_rank <= n else None,
    )


# --------------------------------------------------------------------------- recommendation


@dataclass(frozen=True)
class Candidate:
    """The evidence at or above one candidate threshold, and what the test sequence made of it."""

    threshold: float
    outputs: float
    reviewed: int
    correct: int
    n_eff: float
    accuracy: float
    ci_low: float
    ci_high: float
    lower_bound: float
    p_value: float
    eligible: bool  # reviewed >= min_samples
    tested: bool  # reached by the test sequence
    passes: bool  # tested, and "less accurate than target" rejected


@dataclass(frozen=True)
class Needed:
    """More evidence that would let a threshold pass: `correct` more right verdicts at or above `threshold`."""

    correct: int
    threshold: float


@dataclass(frozen=True)
class Recommendation:
    threshold: float | None
    chosen: Candidate | None
    candidates: list[Candidate]  # from 1.00 down, where some verdict sits
    start: float | None  # the first threshold tested
    target: float
    min_samples: int
    reviewed: int
    needed: Needed | None
    reason: str
    guarantee: str


def perfect_run(target: float) -> float:
    """Verdicts an unbroken run of correct ones needs to pass at 95%: 59 at a 95% target, 299 at 99%."""
    if target <= 0:
        return 1.0
    if target >= 1:
        return math.inf
    return math.log(ALPHA) / math.log(target)


def _start(outputs: np.ndarray, n_eff: np.ndarray, eligible: np.ndarray, target: float) -> int | None:
    """Where the test sequence starts: the highest candidate with enough verdicts to pass with a few errors.

    That is START_MOST perfect runs of effective verdicts, or, sooner, START_LEAST of them once the candidate
    covers 1/START_SHARE of the outputs: a share of the outputs, not of the verdicts, so that reviews below a
    threshold that was lowered do not push the start down into outputs the top ones do not speak for. When
    no candidate qualifies, the one with the most evidence, if it can pass at all. Only counts decide it,
    never verdicts, which keeps the fixed sequence valid.
    """
    perfect = perfect_run(target)
    enough = (n_eff >= START_MOST * perfect) | (
        (outputs >= outputs[-1] / START_SHARE) & (n_eff >= START_LEAST * perfect)
    )
    ready = np.flatnonzero(eligible & enough)
    if len(ready):
        return int(ready[0])
    able = np.flatnonzero(eligible & (n_eff >= perfect))
    return int(able[np.argmax(n_eff[able])]) if len(able) else None


@dataclass(frozen=True)
class _Sequence:
    """The candidates' running totals from 1.00 down, where the test starts, and how many pass."""

    percents: list[int]
    columns: tuple[np.ndarray, ...]
    p: np.ndarray
    eligible: np.ndarray
    start: int | None
    passing: int


def _sequence(strata: Mapping[int, Stratum], *, target: float, min_samples: int, lowest: float | None) -> _Sequence:
    floor = 0 if lowest is None else math.ceil(lowest * 100 - 1e-6)
    strata = smoothed(strata)
    percents = [p for p in reversed(PERCENTS) if p >= floor and p in strata]
    percents = [p for p in percents if strata[p].reviewed > 0 and strata[p].outputs > 0]
    columns = _columns(strata[p] for p in percents)
    _, reviewed, _, accuracy, n_eff = columns
    p = p_values(accuracy, n_eff, target)
    eligible = reviewed >= min_samples
    start = _start(columns[0], n_eff, eligible, target) if len(percents) else None
    passing = 0
    if start is not None:
        failures = np.flatnonzero(p[start:] > ALPHA)
        passing = int(failures[0]) if len(failures) else len(percents) - start
    return _Sequence(percents, columns, p, eligible, start, passing)


def _candidates(
    strata: Mapping[int, Stratum], *, target: float, min_samples: int, lowest: float | None
) -> tuple[list[Candidate], int | None]:
    """Every candidate from 1.00 down (to `lowest`), tested in sequence; and the index of the start."""
    sequence = _sequence(strata, target=target, min_samples=min_samples, lowest=lowest)
    outputs, reviewed, correct, accuracy, n_eff = sequence.columns
    low, high = _bounds(accuracy, n_eff, ALPHA / 2)
    lower, _ = _bounds(accuracy, n_eff, ALPHA)
    start, passing = sequence.start, sequence.passing
    candidates = [
        Candidate(
            threshold=percent / 100,
            outputs=float(outputs[i]),
            reviewed=int(reviewed[i]),
            correct=int(correct[i]),
            n_eff=float(n_eff[i]),
            accuracy=float(accuracy[i]),
            ci_low=float(low[i]),
            ci_high=float(high[i]),
            lower_bound=float(lower[i]),
            p_value=float(sequence.p[i]),
            eligible=bool(sequence.eligible[i]),
            tested=start is not None and start <= i <= start + passing,
            passes=start is not None and start <= i < start + passing,
        )
        for i, percent in enumerate(sequence.percents)
    ]
    return candidates, start


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def guarantee_text(target: float) -> str:
    return (
        f"With 95% confidence, the outputs at or above a recommended threshold that no rule forces to review are "
        f"at least {_pct(target)} accurate — the search over thresholds included. This assumes outputs are "
        f"independent, audits are drawn at random, and accuracy did not drift within the evidence window."
    )


def _passes_with(strata: Mapping[int, Stratum], extra: int, percent: int, target: float, min_samples: int) -> bool:
    more = dict(strata)
    stratum = Stratum()
    if percent in more:
        stratum.add(more[percent])
    stratum.add(Stratum(outputs=extra, reviewed=extra, correct=extra, confidence_sum=extra * percent / 100))
    more[percent] = stratum
    return _sequence(more, target=target, min_samples=min_samples, lowest=None).passing > 0


def needed_evidence(
    strata: Mapping[int, Stratum], *, target: float, min_samples: int, at: Iterable[float], limit: int = 1_000_000
) -> Needed | None:
    """The fewest more correct verdicts, at one of the thresholds `at`, that would let the test pass one.

    Computed by running the test itself on the evidence plus that many correct verdicts at the threshold; None
    when no number up to `limit` would do (a target of 100% can never be shown).
    """
    best: Needed | None = None
    for threshold in dict.fromkeys(at):
        percent = percent_of(threshold)
        high = 1
        while high <= limit and not _passes_with(strata, high, percent, target, min_samples):
            high *= 2
        if high > limit:
            continue
        low = high // 2  # fails (or 0)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if _passes_with(strata, middle, percent, target, min_samples) else (middle, high)
        if best is None or high < best.correct:
            best = Needed(correct=high, threshold=percent / 100)
    return best


def recommend(
    strata: Mapping[int, Stratum], *, target: float, min_samples: int, lowest: float | None = None
) -> Recommendation:
    """The lowest threshold (in steps of 0.01) shown, with 95% confidence and the search accounted for, to
    auto-process outputs at least `target` accurate; with every candidate's evidence and the reason in words.

    `lowest`: consider only thresholds at or above it (the guard raising a threshold).
    """
    candidates, start = _candidates(strata, target=target, min_samples=min_samples, lowest=lowest)
    passing = [c for c in candidates if c.passes]
    chosen = passing[-1] if passing else None
    reviewed = candidates[-1].reviewed if candidates else 0
    common = {
        "candidates": candidates,
        "start": candidates[start].threshold if start is not None else None,
        "target": target,
        "min_samples": min_samples,
        "reviewed": reviewed,
        "guarantee": guarantee_text(target),
    }
    if chosen is not None:
        reason = (
            f"Outputs with confidence ≥ {chosen.threshold:.2f} that no rule forces to review were right "
            f"{_pct(chosen.accuracy)} of the time ({chosen.reviewed} verdicts, effective n {chosen.n_eff:.0f}; "
            f"95% lower bound {_pct(chosen.lower_bound)}): the lowest threshold that passes, testing each from "
            f"{common['start']:.2f} down against the {_pct(target)} target."
        )
        return Recommendation(threshold=chosen.threshold, chosen=chosen, needed=None, reason=reason, **common)
    # Where more verdicts would help most: where the test starts (or, before it can, the lowest candidate with
    # enough verdicts), and the candidate closest to passing; with no evidence at all, the top.
    at = [c.threshold for c in candidates if c.tested][:1] or [c.threshold for c in candidates if c.eligible][-1:]
    at += [min(candidates, key=lambda c: c.p_value).threshold] if candidates else [1.0]
    needed = needed_evidence(strata, target=target, min_samples=min_samples, at=at)
    reason = _no_pass_reason(candidates, start, needed, target=target, min_samples=min_samples)
    return Recommendation(threshold=None, chosen=None, needed=needed, reason=reason, **common)


def _no_pass_reason(
    candidates: list[Candidate], start: int | None, needed: Needed | None, *, target: float, min_samples: int
) -> str:
    if target >= 1:
        return "A 100% target can never be shown from a sample of verdicts; keep reviewing everything."
    if start is None:
        reviewed = candidates[-1].reviewed if candidates else 0
        first = f"Not enough evidence yet: {reviewed} verdicts on outputs no rule forced"
        if reviewed < min_samples:
            first += f", of the {min_samples} needed before any threshold is tested"
    else:
        first_tested = candidates[start]
        first = (
            f"No threshold passes: the test starts at {first_tested.threshold:.2f}, where outputs were right "
            f"{_pct(first_tested.accuracy)} of the time ({first_tested.reviewed} verdicts; 95% lower bound "
            f"{_pct(first_tested.lower_bound)}, under the {_pct(target)} target)"
        )
    if needed is None:
        return f"{first}. No amount of further evidence can show a {_pct(target)} target; keep reviewing everything."
    return (
        f"{first}. {needed.correct} more correct verdicts on outputs with confidence ≥ {needed.threshold:.2f} "
        f"would let a threshold pass; until then keep reviewing everything."
    )


def recommend_threshold(observations: Iterable[Observation], *, target: float, min_samples: int) -> float | None:
    """The recommended threshold for these verdicts (see `recommend`), or None when none is shown safe."""
    return recommend(strata_of(observations), target=target, min_samples=min_samples).threshold


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Band:
    """Accuracy of the outputs in one band of confidence [low, high), weighted by the outputs each verdict
    stands for, with its exact interval."""

    low: float
    high: float
    mean_confidence: float | None
    estimate: Estimate


def calibration(strata: Mapping[int, Stratum], bands: int = 10) -> list[Band]:
    """The type's accuracy per confidence band (the last one includes 1.0)."""
    width = 100 // bands
    grouped: list[list[Stratum]] = [[] for _ in range(bands)]
    for percent, stratum in smoothed(strata).items():
        grouped[min(percent // width, bands - 1)].append(stratum)
    rows = []
    for index, members in enumerate(grouped):
        reviewed = sum(s.reviewed for s in members)
        mean = sum(s.confidence_sum for s in members) / reviewed if reviewed else None
        rows.append(Band(index / bands, (index + 1) / bands, mean, estimate(members)))
    return rows


# --------------------------------------------------------------------------- the guard


@dataclass(frozen=True)
class CusumDesign:
    """A Bernoulli CUSUM on integer scores: each wrong verdict adds `error_score`, each right one takes 1 off
    (never below 0); it fires at `limit`. `false_alarm` is the exact chance of firing within `horizon`
    verdicts when accuracy is exactly `target`."""

    target: float
    shifted: float
    error_score: int
    limit: int
    horizon: int
    false_alarm: float


def _false_alarm(target: float, score: int, limit: int, horizon: int) -> float:
    """P(the CUSUM reaches `limit` within `horizon` verdicts | each is right with probability `target`)."""
    states = np.zeros(limit)
    states[0] = 1.0
    fired = 0.0
    wrong = 1 - target
    for _ in range(horizon):
        moved = np.zeros(limit)
        moved[0] = target * (states[0] + (states[1] if limit > 1 else 0.0))
        moved[1:-1] = target * states[2:]
        if score < limit:
            moved[score:] += wrong * states[: limit - score]
        fired += wrong * states[max(0, limit - score) :].sum()
        states = moved
    return float(fired)


@lru_cache(maxsize=256)
def cusum_design(target: float, *, alpha: float = GUARD_ALPHA, horizon: int = GUARD_HORIZON) -> CusumDesign:
    """The CUSUM for `target`: scores from the log-likelihood ratio of `target` against `target - GUARD_DROP`,
    and the lowest limit whose false-alarm chance within `horizon` verdicts is at most `alpha`."""
    shifted = max(target - GUARD_DROP, target / 2)
    if target >= 1:
        return CusumDesign(target, shifted, error_score=1, limit=1, horizon=horizon, false_alarm=0.0)
    if target <= 0:
        return CusumDesign(target, shifted, error_score=1, limit=horizon + 1, horizon=horizon, false_alarm=0.0)
    # A wrong verdict is log((1 - shifted)/(1 - target)) of evidence, a right one log(target/shifted) against.
    score = max(1, round(math.log((1 - shifted) / (1 - target)) / math.log(target / shifted)))
    low, high = 1, score
    while _false_alarm(target, score, high, horizon) > alpha:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _false_alarm(target, score, middle, horizon) <= alpha else (middle, high)
    return CusumDesign(target, shifted, score, high, horizon, _false_alarm(target, score, high, horizon))


class RegressionMonitor:
    """A sequential test of "the outputs let through are still `target` accurate", fed one verdict at a time.

    Feed it the verdicts on outputs at or above the current threshold (audit samples), in the order they
    come; forced reviews are ignored. `update` returns True once it has fired, and stays True: start a new
    monitor after any policy change.
    """

    def __init__(self, *, target: float, min_samples: int, alpha: float = GUARD_ALPHA, horizon: int = GUARD_HORIZON):
        self.design = cusum_design(float(target), alpha=alpha, horizon=horizon)
        self.minimum = max(1, min(int(min_samples), GUARD_MIN_VERDICTS))
        self.statistic = 0
        self.n = 0
        self.wrong = 0
        self.fired_at: int | None = None

    @property
    def fired(self) -> bool:
        return self.fired_at is not None

    def update_all(self, correct: Iterable[bool]) -> bool:
        """`update` for many verdicts at once, none of them forced: the same state, computed in arrays.

        A CUSUM that never goes below 0 is its running sum minus the lowest that sum has been (if below 0),
        so a whole window is a few array operations rather than a Python loop per verdict.
        """
        flags = np.fromiter(correct, dtype=bool)
        if self.fired or not len(flags):
            return self.fired
        scores = np.where(flags, -1, self.design.error_score)
        running = self.statistic + np.cumsum(scores)
        statistic = running - np.minimum(np.minimum.accumulate(running), 0)
        counts = self.n + np.arange(1, len(flags) + 1)
        firing = np.flatnonzero((statistic >= self.design.limit) & (counts >= self.minimum))
        last = int(firing[0]) if len(firing) else len(flags) - 1
        self.n = int(counts[last])
        self.wrong += int((~flags[: last + 1]).sum())
        self.statistic = int(statistic[last])
        if len(firing):
            self.fired_at = self.n
        return self.fired

    def update(self, observation: Observation) -> bool:
        if observation.forced or self.fired:
            return self.fired
        self.n += 1
        if observation.correct:
            self.statistic = max(0, self.statistic - 1)
        else:
            self.wrong += 1
            self.statistic += self.design.error_score
        if self.statistic >= self.design.limit and self.n >= self.minimum:
            self.fired_at = self.n
        return self.fired
