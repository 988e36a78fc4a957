"""Threshold recommendation and what-if over a type's verdicts: the database aggregates, `evidence` decides.

The database does the heavy part in one GROUP BY: the verdicts of a type on outputs no rule forced, by whole
percent of confidence, as `evidence.Stratum`s (verdicts, correct ones, the outputs they stand for — the sum of
1/review probability — and their confidences), from the daily rollups for past days and live for the rest (see
rollup.py). Everything after that is `evidence`: the same pure functions the simulation runs in memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from reviewconsole.autonomy import evidence
from reviewconsole.autonomy.evidence import Stratum
from reviewconsole.autonomy.models import AutonomyPolicy, GateBucketRollup, GateDecision, Verdict
from reviewconsole.autonomy.rollup import (
    BUCKET_EPSILON,
    COUNTED,
    FORCED,
    UNFORCED,
    Measure,
    bucket_expression,
    coverage,
    sums,
    totals,
)
from reviewconsole.autonomy.services import policy_ensure

VERDICTS = [Verdict.CORRECT, Verdict.INCORRECT]
CORRECT = Q(verdict=Verdict.CORRECT)
# Per percent of confidence, the verdicts a stratum holds: those with a review probability above zero (the
# weighted measures count only those) on outputs no rule forced.
STRATUM_MEASURES = {
    "reviewed": Measure("n_weighted", UNFORCED),
    "correct": Measure("n_weighted", UNFORCED & CORRECT),
    "outputs": Measure("weight", UNFORCED),
    "confidence_sum": Measure("confidence_sum", UNFORCED),
}


def _rounded(data: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) and math.isfinite(v) else v for k, v in data.items()}


def candidate_dict(candidate: evidence.Candidate) -> dict[str, Any]:
    """A candidate as the API and the page read it (`n` is its verdicts)."""
    return _rounded({**asdict(candidate), "n": candidate.reviewed})


def recommendation_dict(rec: evidence.Recommendation) -> dict[str, Any]:
    """`evidence.recommend`'s result as the API, the page and the change log read it (pure)."""
    chosen = rec.chosen
    return {
        "threshold": rec.threshold,
        "accuracy": chosen.accuracy if chosen else None,
        "ci_low": chosen.ci_low if chosen else None,
        "ci_high": chosen.ci_high if chosen else None,
        "lower_bound": chosen.lower_bound if chosen else None,
        "n": chosen.reviewed if chosen else 0,
        "n_eff": chosen.n_eff if chosen else 0.0,
        "target_accuracy": rec.target,
        "min_samples": rec.min_samples,
        "reviewed": rec.reviewed,
        "start": rec.start,
        "reason": rec.reason,
        "guarantee": rec.guarantee,
        "needed": None if rec.needed is None else {"correct": rec.needed.correct, "threshold": rec.needed.threshold},
        "evidence": [candidate_dict(c) for c in rec.candidates],
    }


# --------------------------------------------------------------------------- database


def verdicts_queryset(output_type: str) -> QuerySet[GateDecision]:
    """Verdicts an estimate of autonomy can use: counted by the policy, with a confidence and a review
    probability, not forced."""
    return GateDecision.objects.filter(
        COUNTED,
        output_type=output_type,
        verdict__in=VERDICTS,
        confidence__isnull=False,
        review_probability__gt=0,
        forced=False,
    )


def _strata(rows: Mapping[tuple[Any, ...], Mapping[str, Any]]) -> dict[int, Stratum]:
    strata: dict[int, Stratum] = {}
    for (bucket,), row in rows.items():
        if not row["reviewed"]:
            continue
        percent = min(100, max(0, int(bucket)))
        strata.setdefault(percent, Stratum()).add(
            Stratum(row["outputs"], row["reviewed"], row["correct"], row["confidence_sum"])
        )
    return strata


def strata_aggregate(queryset: QuerySet[GateDecision]) -> dict[int, Stratum]:
    """One GROUP BY over the verdicts in `queryset` (live rows only), by whole percent of confidence."""
    return _strata(sums(queryset.annotate(bucket=bucket_expression()), STRATUM_MEASURES, group_by=["bucket"]))


def type_strata(output_type: str, since: datetime | None = None, where: Q | None = None) -> dict[int, Stratum]:
    """The strata of a type's verdicts on outputs created since `since` (matching `where`, a Q over fields the
    gate decisions and the bucket rollup share): rollups plus live rows. Up to four queries."""
    cover = coverage(since, [output_type])
    rows = Q() if where is None else where
    live = verdicts_queryset(output_type).filter(cover.live, rows).annotate(bucket=bucket_expression())
    rolled = None
    if cover.rolled is not None:
        rolled = GateBucketRollup.objects.filter(
            cover.rolled, rows, COUNTED, output_type=output_type, verdict__in=VERDICTS, bucket__isnull=False
        )
    return _strata(totals(live, rolled, STRATUM_MEASURES, ["bucket"]))


def recommend(
    output_type: str,
    *,
    since: datetime | None = None,
    after_id: int | None = None,
    policy: AutonomyPolicy | None = None,
    strata: Mapping[int, Stratum] | None = None,
    where: Q | None = None,
) -> dict[str, Any]:
    """The recommended threshold for a type (`evidence.recommend`), with the evidence for each candidate.

    Returns `recommendation_dict` plus {output_type, current_threshold}: threshold (None when none is shown
    safe), its accuracy, ci_low/ci_high, lower_bound, n, n_eff; target_accuracy, min_samples, reviewed, start
    (the first threshold tested), reason, guarantee, needed ({correct, threshold} when nothing passes and more
    evidence could), evidence (every candidate from 1.00 down, with its p_value, tested, passes).
    `since` / `after_id` restrict the verdicts to outputs created after a moment / a gate decision (the rollups
    know no ids, so that case is read live). `where`: only the verdicts it matches. `strata`:
    `type_strata(output_type, since, where)` when the caller has them. Up to five queries.
    """
    policy = policy or policy_ensure(output_type=output_type)
    if strata is None and after_id is None:
        strata = type_strata(output_type, since, where)
    elif strata is None:
        queryset = verdicts_queryset(output_type).filter(Q() if where is None else where, id__gt=after_id)
        strata = strata_aggregate(queryset if since is None else queryset.filter(created_at__gte=since))
    rec = evidence.recommend(strata, target=policy.target_accuracy, min_samples=policy.min_samples)
    return {"output_type": output_type, "current_threshold": policy.threshold, **recommendation_dict(rec)}


def _what_if_measures(above: Q, *, everything: bool) -> dict[str, Measure]:
    """What-if's counts `above` the threshold; `everything`: also every decision, the forced and the rest."""
    measures = {"above": Measure("n", above & UNFORCED), "forced_above": Measure("n", above & FORCED)}
    if not everything:
        return measures
    counts = {"decisions": Measure("n"), "eligible": Measure("n", UNFORCED), "forced_outputs": Measure("n", FORCED)}
    return {**counts, **measures}


def what_if(
    output_type: str,
    threshold: float,
    *,
    since: datetime | None = None,
    strata: Mapping[int, Stratum] | None = None,
    where: Q | None = None,
) -> dict[str, Any]:
    """What a threshold would have done over the gate decisions of the type created since `since`.

    Returns {output_type, threshold, decisions (all gate decisions), eligible (not forced to review by a
    rule), forced (forced; forced_above: of them with confidence ≥ threshold, reviewed whatever the
    threshold), above (eligible with confidence ≥ threshold), auto_share (+ auto_share_ci_low/high: share of
    all decisions auto-processed, after the audit rate), expected_auto, accuracy (+ ci_low/ci_high, n, n_eff:
    `evidence.estimate` over the strata at or above the threshold, forced verdicts left out), expected_errors
    (+ expected_errors_low/high from the accuracy interval), audit_rate}. `strata`: `type_strata(output_type,
    since, where)` when the caller has them. `where`: only the decisions it matches. Up to eleven queries.

    Counts are exact at any threshold. From the rollups, whole buckets above (or below) the threshold's bucket
    are wholly above (below) it: the bucket is a monotonic function of confidence. The threshold's own bucket
    is split by reading its rolled-up decisions live (an index range of one percent of confidence). The
    accuracy is the strata's, whole percents: its evidence starts at the threshold's percent.
    """
    policy = policy_ensure(output_type=output_type)
    lowest = threshold - BUCKET_EPSILON
    # The bucket `lowest` falls in, by the arithmetic of `bucket_expression` (IEEE doubles on both sides).
    boundary = math.floor(lowest * 100.0 + BUCKET_EPSILON)
    cover = coverage(since, [output_type])
    decisions = GateDecision.objects.filter(Q() if where is None else where, output_type=output_type)
    row = sums(decisions.filter(cover.live), _what_if_measures(Q(confidence__gte=lowest), everything=True))
    if cover.rolled is not None:
        split = (
            decisions.filter(cover.rolled_decisions, confidence__gte=lowest, confidence__lt=(boundary + 2) / 100)
            .annotate(bucket=bucket_expression())
            .filter(bucket=boundary)
        )
        sums(split, _what_if_measures(Q(confidence__gte=lowest), everything=False), into=row)
        rolled = GateBucketRollup.objects.filter(cover.rolled, Q() if where is None else where, output_type=output_type)
        sums(rolled, _what_if_measures(Q(bucket__gt=boundary), everything=True), rolled=True, into=row)
    row = row[()]
    if strata is None:
        strata = type_strata(output_type, since, where)
    accuracy = evidence.estimate(evidence.at_or_above(strata, threshold))
    expected_auto = row["above"] * (1 - policy.audit_rate)
    # A share of whole decisions; `expected_auto` is a mean, so the interval is indicative.
    share = evidence.proportion(expected_auto, row["decisions"])  # type: ignore[arg-type]

    def errors(acc: float | None) -> float | None:
        return None if acc is None else expected_auto * (1 - acc)

    return {
        "output_type": output_type,
        "threshold": threshold,
        "audit_rate": policy.audit_rate,
        "decisions": row["decisions"],
        "eligible": row["eligible"],
        "forced": row["forced_outputs"],
        "forced_above": row["forced_above"],
        "above": row["above"],
        "expected_auto": expected_auto,
        "auto_share": share.accuracy,
        "auto_share_ci_low": share.ci_low,
        "auto_share_ci_high": share.ci_high,
        "n": accuracy.reviewed,
        "n_eff": accuracy.n_eff,
        "accuracy": accuracy.accuracy,
        "ci_low": accuracy.ci_low,
        "ci_high": accuracy.ci_high,
        "expected_errors": errors(accuracy.accuracy),
        # Fewer errors pass when accuracy is at its upper bound, more at its lower.
        "expected_errors_low": errors(accuracy.ci_high),
        "expected_errors_high": errors(accuracy.ci_low),
    }
