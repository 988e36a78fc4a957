"""Threshold recommendation and what-if, from verdicts bucketed by confidence.

The database does the heavy part in one GROUP BY: verdicts of a type bucketed
by whole percent of confidence, with counts and inverse-probability weight
sums (from the daily rollups for past days, live for the rest: see rollup.py).
Everything after that is pure Python over at most 101 buckets
(`candidates_from_buckets`, `choose_threshold`), so the simulation can run the
very same rule on in-memory outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from reviewconsole.autonomy.models import AutonomyPolicy, GateBucketRollup, GateDecision, Verdict
from reviewconsole.autonomy.rollup import BUCKET_EPSILON, UNFORCED, Measure, bucket_expression, coverage, sums, totals
from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.autonomy.statistics import Rate, weighted_wilson, wilson

PERCENTS = range(101)  # candidate thresholds 0.00, 0.01, … 1.00
VERDICTS = [Verdict.CORRECT, Verdict.INCORRECT]
CORRECT = Q(verdict=Verdict.CORRECT)
# Per bucket, over the verdicts a weighted estimate can use (those with a review probability above zero).
BUCKET_MEASURES = {
    "verdicts": Measure("n_weighted"),
    "correct": Measure("n_weighted", CORRECT),
    "w": Measure("weight"),
    "wc": Measure("weight", CORRECT),
    "w2": Measure("weight_square"),
    "c": Measure("confidence_sum"),
}


@dataclass
class Bucket:
    """Verdicts on outputs whose confidence is in [percent/100, (percent+1)/100)."""

    n: int = 0
    correct: int = 0
    # Sums of w = 1 / review_probability over the verdicts, of w·correct, and of w².
    weight: float = 0.0
    weighted_correct: float = 0.0
    weight_square: float = 0.0
    confidence_sum: float = 0.0

    def add(self, other: Bucket) -> None:
        self.confidence_sum += other.confidence_sum
        self.n += other.n
        self.correct += other.correct
        self.weight += other.weight
        self.weighted_correct += other.weighted_correct
        self.weight_square += other.weight_square

    def rate(self) -> Rate:
        """Weighted accuracy with its Wilson interval on Kish's effective sample size."""
        return weighted_wilson(self.weight, self.weighted_correct, self.weight_square)


@dataclass(frozen=True)
class Candidate:
    """The verdicts at or above one candidate threshold."""

    threshold: float
    n: int
    correct: int
    n_eff: float
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    eligible: bool  # n >= min_samples
    passes: bool  # eligible and ci_low >= target

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("n_eff", "accuracy", "ci_low", "ci_high"):
            if data[key] is not None:
                data[key] = round(data[key], 6)
        return data


def percent_of(confidence: float) -> int:
    """The bucket of a confidence, the same rule as the SQL in `bucket_aggregates`."""
    return min(100, max(0, int(confidence * 100 + BUCKET_EPSILON)))


def weight_of(review_probability: float) -> float:
    return 1.0 / review_probability


def buckets_from_outcomes(outcomes: Iterable[tuple[float, bool, float]]) -> dict[int, Bucket]:
    """Buckets from in-memory (confidence, correct, review_probability) triples (simulation, tests)."""
    buckets: dict[int, Bucket] = {}
    for confidence, correct, probability in outcomes:
        if probability <= 0:
            continue
        w = weight_of(probability)
        bucket = buckets.setdefault(percent_of(confidence), Bucket())
        bucket.add(Bucket(1, int(correct), w, w * correct, w * w, confidence))
    return buckets


def candidates_from_buckets(
    buckets: Mapping[int, Bucket], *, target: float, min_samples: int, lowest: float | None = None
) -> list[Candidate]:
    """Candidate thresholds from 1.00 down to 0.00 (or down to `lowest`), with cumulative statistics.

    Only whole-percent thresholds at which some reviewed output sits are
    candidates. Between two observed confidences every threshold selects the
    same reviewed outputs, and the lowest of them would extend autonomy to
    confidences no reviewer has seen.
    """
    running = Bucket()
    candidates = []
    for percent in reversed(PERCENTS):
        threshold = percent / 100
        if lowest is not None and threshold < lowest - BUCKET_EPSILON:
            break
        if percent not in buckets or buckets[percent].n == 0:
            continue
        running.add(buckets[percent])
        rate = running.rate()
        eligible = running.n >= min_samples
        candidates.append(
            Candidate(
                threshold=threshold,
                n=running.n,
                correct=running.correct,
                n_eff=rate.n,
                accuracy=rate.value,
                ci_low=rate.low,
                ci_high=rate.high,
                eligible=eligible,
                passes=eligible and rate.low is not None and rate.low >= target,
            )
        )
    return candidates


def choose_threshold(candidates: list[Candidate]) -> Candidate | None:
    """The lowest threshold whose at-or-above outputs pass (n >= min_samples, lower bound >= target).

    Why the plain rule and not a more conservative one. The 101 candidates
    are overlapping tests, and taking the lowest pass could pick a low
    threshold that had a lucky run — a multiple-comparison effect. Measured
    with the simulation (300 seeds per curve, every output reviewed), the
    chosen threshold's true accuracy E[acc(c) | c >= t] fell short of target
    in 1.0-1.3% of seeds on the default curve (2,000-5,000 outputs) and at
    most 3.3% on flat or late-rising curves: the nested candidates are so
    correlated that the inflation stays within the 2.5% one bound allows, far
    under the 1-in-20 the acceptance test tolerates. A fixed-sequence variant
    (scan down from 1.00, stop at the first failure after a pass) cut that to
    0.3-2.7% but raised the average threshold (0.77 → 0.82 on the default
    curve with 2,000 outputs) and made it erratic: one wrong output among the
    ~80 at the very top stopped the scan at 0.93-0.97. The soundness test
    (tests/test_autonomy_soundness.py) keeps the plain rule honest.
    """
    passing = [c for c in candidates if c.passes]
    return min(passing, key=lambda c: c.threshold) if passing else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def recommendation_from_buckets(
    buckets: Mapping[int, Bucket], *, target: float, min_samples: int, lowest: float | None = None
) -> dict[str, Any]:
    """The recommendation and its evidence, from bucket aggregates (pure)."""
    candidates = candidates_from_buckets(buckets, target=target, min_samples=min_samples, lowest=lowest)
    chosen = choose_threshold(candidates)
    total = candidates[-1] if candidates else None
    reviewed = total.n if total else 0
    result: dict[str, Any] = {
        "threshold": None,
        "accuracy": None,
        "ci_low": None,
        "ci_high": None,
        "n": 0,
        "n_eff": 0.0,
        "target_accuracy": target,
        "min_samples": min_samples,
        "reviewed": reviewed,
        "reason": "",
        "evidence": [c.as_dict() for c in candidates if c.n > 0],
    }
    if chosen is not None:
        result.update(
            threshold=chosen.threshold,
            accuracy=chosen.accuracy,
            ci_low=chosen.ci_low,
            ci_high=chosen.ci_high,
            n=chosen.n,
            n_eff=chosen.n_eff,
            reason=(
                f"Outputs with confidence ≥ {chosen.threshold:.2f} were right {_pct(chosen.accuracy)} of the time "
                f"(95% CI {_pct(chosen.ci_low)} to {_pct(chosen.ci_high)}, n={chosen.n}, "
                f"effective n={chosen.n_eff:.0f}): the lowest threshold whose lower bound reaches the "
                f"{_pct(target)} target with at least {min_samples} reviewed outputs."
            ),
        )
        return result
    eligible = [c for c in candidates if c.eligible]
    if not eligible:
        result["reason"] = (
            f"Not enough reviewed outputs yet: {reviewed} of the {min_samples} needed at or above any threshold."
        )
    else:
        best = max(eligible, key=lambda c: c.ci_low or 0.0)
        result["reason"] = (
            f"No threshold reaches the {_pct(target)} target on the lower bound; the best is "
            f"{best.threshold:.2f} with {_pct(best.accuracy)} (lower bound {_pct(best.ci_low)}, n={best.n}). "
            f"Keep reviewing everything."
        )
    return result


# --------------------------------------------------------------------------- database


def verdicts_queryset(output_type: str) -> QuerySet[GateDecision]:
    """Verdicts with a confidence and a sampling probability (the rows an estimate can use)."""
    return GateDecision.objects.filter(output_type=output_type, verdict__in=VERDICTS, confidence__isnull=False).filter(
        review_probability__gt=0
    )


def _buckets(rows: Mapping[tuple[Any, ...], Mapping[str, Any]]) -> dict[int, Bucket]:
    buckets: dict[int, Bucket] = {}
    for (bucket,), row in rows.items():
        percent = min(100, max(0, int(bucket)))
        buckets.setdefault(percent, Bucket()).add(
            Bucket(row["verdicts"], row["correct"], row["w"], row["wc"], row["w2"], row["c"])
        )
    return buckets


def bucket_aggregates(queryset: QuerySet[GateDecision]) -> dict[int, Bucket]:
    """One GROUP BY over the verdicts in `queryset` (live rows only), by whole percent of confidence."""
    return _buckets(sums(queryset.annotate(bucket=bucket_expression()), BUCKET_MEASURES, group_by=["bucket"]))


def type_buckets(output_type: str, since: datetime | None = None) -> dict[int, Bucket]:
    """The buckets of a type's verdicts on outputs created since `since`: rollups plus live rows. Up to four queries."""
    cover = coverage(since, [output_type])
    live = verdicts_queryset(output_type).filter(cover.live).annotate(bucket=bucket_expression())
    rolled = None
    if cover.rolled is not None:
        rolled = GateBucketRollup.objects.filter(
            cover.rolled, output_type=output_type, verdict__in=VERDICTS, bucket__isnull=False
        )
    return _buckets(totals(live, rolled, BUCKET_MEASURES, ["bucket"]))


def recommend(
    output_type: str,
    *,
    since: datetime | None = None,
    after_id: int | None = None,
    policy: AutonomyPolicy | None = None,
    buckets: Mapping[int, Bucket] | None = None,
) -> dict[str, Any]:
    """The recommended threshold for a type, with the evidence for each candidate.

    Returns {output_type, threshold (None when no threshold is safe), accuracy,
    ci_low, ci_high, n, n_eff, target_accuracy, min_samples, reviewed,
    current_threshold, reason, evidence: [{threshold, n, correct, n_eff,
    accuracy, ci_low, ci_high, eligible, passes}, …] from 1.00 down}.
    `since` / `after_id` restrict the verdicts to outputs created after a
    moment / a gate decision (the regression guard uses this so evidence from
    before a regression does not re-grant autonomy; the rollups know no ids, so
    that case is read live). `buckets`: `type_buckets(output_type, since)`
    when the caller already has them. Up to five queries.
    """
    policy = policy or policy_ensure(output_type=output_type)
    if buckets is None and after_id is None:
        buckets = type_buckets(output_type, since)
    elif buckets is None:
        queryset = verdicts_queryset(output_type).filter(id__gt=after_id)
        buckets = bucket_aggregates(queryset if since is None else queryset.filter(created_at__gte=since))
    result = recommendation_from_buckets(buckets, target=policy.target_accuracy, min_samples=policy.min_samples)
    return {"output_type": output_type, "current_threshold": policy.threshold, **result}


def _what_if_measures(above: Q, *, everything: bool) -> dict[str, Measure]:
    """What-if's sums, `above` the threshold; `everything`: also the decisions and eligible ones (all rows)."""
    verdict_above = above & Q(verdict__in=VERDICTS)
    measures = {
        "above": Measure("n", above & UNFORCED),
        "verdicts": Measure("n_weighted", verdict_above),
        "w": Measure("weight", verdict_above),
        "wc": Measure("weight", verdict_above & CORRECT),
        "w2": Measure("weight_square", verdict_above),
    }
    return {"decisions": Measure("n"), "eligible": Measure("n", UNFORCED), **measures} if everything else measures


def what_if(output_type: str, threshold: float, *, since: datetime | None = None) -> dict[str, Any]:
    """What a threshold would have done over past gate decisions of the type.

    Returns {output_type, threshold, decisions (all gate decisions), eligible
    (not sent to review by a business rule), above (eligible with confidence ≥
    threshold), auto_share (+ auto_share_ci_low/high: share of all decisions
    auto-processed, after the audit rate), expected_auto, accuracy (weighted, +
    ci_low/ci_high, n, n_eff of the verdicts at or above the threshold),
    expected_errors (+ expected_errors_low/high from the accuracy interval),
    audit_rate}. Up to seven queries.

    Outputs a flow forced to review (high value and the like) stay reviewed
    whatever the threshold, so they never count as auto-processed.

    From the rollups, whole buckets above (or below) the threshold's bucket
    are wholly above (below) it: the bucket is a monotonic function of
    confidence. The threshold's own bucket is split by reading its rolled-up
    decisions live (an index range of one percent of confidence).
    """
    policy = policy_ensure(output_type=output_type)
    lowest = threshold - BUCKET_EPSILON
    # The bucket `lowest` falls in, by the arithmetic of `bucket_expression` (IEEE doubles on both sides).
    boundary = math.floor(lowest * 100.0 + BUCKET_EPSILON)
    cover = coverage(since, [output_type])
    decisions = GateDecision.objects.filter(output_type=output_type)
    row = sums(decisions.filter(cover.live), _what_if_measures(Q(confidence__gte=lowest), everything=True))
    if cover.rolled is not None:
        split = (
            decisions.filter(cover.rolled_decisions, confidence__gte=lowest, confidence__lt=(boundary + 2) / 100)
            .annotate(bucket=bucket_expression())
            .filter(bucket=boundary)
        )
        sums(split, _what_if_measures(Q(confidence__gte=lowest), everything=False), into=row)
        rolled = GateBucketRollup.objects.filter(cover.rolled, output_type=output_type)
        sums(rolled, _what_if_measures(Q(bucket__gt=boundary), everything=True), rolled=True, into=row)
    row = row[()]
    accuracy = weighted_wilson(row["w"], row["wc"], row["w2"])
    expected_auto = row["above"] * (1 - policy.audit_rate)
    share = wilson(expected_auto, row["decisions"])

    def errors(acc: float | None) -> float | None:
        return None if acc is None else expected_auto * (1 - acc)

    return {
        "output_type": output_type,
        "threshold": threshold,
        "audit_rate": policy.audit_rate,
        "decisions": row["decisions"],
        "eligible": row["eligible"],
        "above": row["above"],
        "expected_auto": expected_auto,
        "auto_share": share.value,
        "auto_share_ci_low": share.low,
        "auto_share_ci_high": share.high,
        "n": row["verdicts"],
        "n_eff": accuracy.n,
        "accuracy": accuracy.value,
        "ci_low": accuracy.low,
        "ci_high": accuracy.high,
        "expected_errors": errors(accuracy.value),
        # Fewer errors pass when accuracy is at its upper bound, more at its lower.
        "expected_errors_low": errors(accuracy.high),
        "expected_errors_high": errors(accuracy.low),
    }
