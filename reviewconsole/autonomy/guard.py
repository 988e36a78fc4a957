"""Regression guard and autopilot: automatic threshold changes, logged with their evidence.

The guard watches the outputs the gate lets through. Its window is the last
`window_size(min_samples)` verdicts — audit samples, plus outputs a business
rule sent to review — on outputs at or above the current threshold and gated
under it (GateDecision.threshold equals the policy's). Counting verdicts, not
days, gives every check the same statistical power whatever the volume.
Verdicts from before the threshold was set are left out on purpose: they were
all reviewed (weight 1) while audits weigh 1/audit_rate, and a window mixing a
few heavy audits with many light reviews is dominated by those few audits
while Kish's effective n still looks large — in the simulation that alone
made the guard fire on the first couple of unlucky audits.

When the guard fires. The issue's wording is "when the lower bound drops
below target". Taken literally that cannot work with the recommendation: the
recommended threshold is the lowest whose lower bound reaches target over all
the evidence, so the accuracy above it is only just above target, and the
lower bound over a window of ~100 audits is then below target almost always
(100/100 correct gives 96.3%; 99/100 gives 94.5%). In the simulation
(default curve, 5% audits) that literal rule fired in 60 of 60 runs without
any drift, at the first check. So the guard uses hysteresis: autonomy is
granted when the lower bound reaches target (the recommendation) and taken
back when the window shows the accuracy is below target, not merely that it
has not re-proved it: when the window's upper bound is below target. That
bound is taken at 99% rather than 95% because the guard looks again after
every verdict, and each look is another chance of a false alarm; the
evidence still reports the usual 95% interval. Measured over 60 simulated
runs of 8,000 outputs after a grant (default curve, 5% audits):

    trigger              false alarms   drop 0.3 found after   drop 0.1
    lower 95% < target      60 of 60       (fires at once)        -
    upper 95% < target       7 of 60       13 audits (max 49)    51
    upper 99% < target       2 of 60       19 audits (max 53)    60

("found after": median number of audits of drifted outputs.)
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max

from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, PolicyChange, PolicyMode, Verdict
from reviewconsole.autonomy.recommendation import (
    BUCKET_EPSILON,
    Bucket,
    bucket_aggregates,
    recommend,
    recommendation_from_buckets,
)
from reviewconsole.autonomy.services import policy_ensure, policy_update
from reviewconsole.autonomy.statistics import wilson

logger = logging.getLogger(__name__)

GUARD_REASON = "Regression guard"
AUTOPILOT_REASON = "Autopilot"
# Verdicts per window: min_samples, but at least this many.
GUARD_WINDOW = 100
# Below this many verdicts in the window, no verdict on the guard either way.
GUARD_MINIMUM_FLOOR = 10
MANAGER_GROUP = "manager"
# The trigger's confidence level: 99% two-sided, so 0.5% on the side that matters (see above).
GUARD_Z = 2.5758293035489004


def window_size(min_samples: int) -> int:
    return max(min_samples, GUARD_WINDOW)


def window_minimum(min_samples: int) -> int:
    """Verdicts needed before the guard may fire: half of min_samples, at least 10.

    Half, because taking autonomy back needs less evidence than granting it
    (an interval wholly below target is already strong evidence) and waiting
    for a full min_samples of audits at 5% would let ~1,000 outputs pass. At
    least 10, because Wilson's interval is only an approximation at tiny n:
    1 wrong out of 2 would "prove" accuracy below 95%.
    """
    return max(GUARD_MINIMUM_FLOOR, math.ceil(min_samples / 2))


def assess_window(buckets: dict[int, Bucket], *, target: float, min_samples: int) -> dict[str, Any]:
    """The guard's statistic over a window's buckets (pure): fire when the 99% upper bound is below target."""
    total = Bucket()
    for bucket in buckets.values():
        total.add(bucket)
    rate = total.rate()
    trigger = wilson(rate.value * rate.n, rate.n, z=GUARD_Z) if rate.value is not None else rate
    minimum = window_minimum(min_samples)
    fires = total.n >= minimum and trigger.high is not None and trigger.high < target
    return {
        "n": total.n,
        "correct": total.correct,
        "n_eff": rate.n,
        "accuracy": rate.value,
        "ci_low": rate.low,
        "ci_high": rate.high,
        "upper_99": trigger.high,
        "minimum": minimum,
        "target_accuracy": target,
        "fires": fires,
    }


def _window(policy: AutonomyPolicy) -> tuple[Any, int | None]:
    """The guard's window as a queryset, and the id it starts at (None when it holds every such verdict)."""
    threshold = policy.threshold
    verdicts = GateDecision.objects.filter(
        output_type=policy.output_type,
        verdict__in=[Verdict.CORRECT, Verdict.INCORRECT],
        threshold=threshold,
        confidence__gte=threshold - BUCKET_EPSILON,
        review_probability__gt=0,
    )
    size = window_size(policy.min_samples)
    start = verdicts.order_by("-id").values_list("id", flat=True)[size - 1 : size].first()
    if start is not None:
        verdicts = verdicts.filter(id__gte=start)
    return verdicts, start


def guard_check(output_type: str) -> PolicyChange | None:
    """Take autonomy back from a type whose auto-processed outputs fell below target.

    Fires when the type has a threshold and the weighted Wilson 99% upper
    bound over the window (see the module docstring) is below
    target_accuracy, with at least `window_minimum` verdicts. It then raises
    the threshold to the lowest threshold above the current one that the
    window's own verdicts show safe (same rule as the recommendation), or,
    as usually, returns the type to full review (threshold None).

    Side effects when it fires: the policy change through `policy_update`
    (automatic, by nobody, with the evidence); managers emailed on commit.
    Returns the change, or None. Four queries when it does not fire.
    """
    policy = policy_ensure(output_type=output_type)
    if policy.threshold is None or policy.always_review:
        return None
    window, start = _window(policy)
    buckets = bucket_aggregates(window)
    assessment = assess_window(buckets, target=policy.target_accuracy, min_samples=policy.min_samples)
    if not assessment["fires"]:
        return None
    # Only the window speaks for the present; the evidence behind the old
    # threshold predates the regression.
    higher = recommendation_from_buckets(
        buckets,
        target=policy.target_accuracy,
        min_samples=policy.min_samples,
        lowest=policy.threshold + 0.01,
    )
    new_threshold = higher["threshold"] if (higher["threshold"] or 0) > policy.threshold else None
    last_id = GateDecision.objects.filter(output_type=output_type).aggregate(last=Max("id"))["last"]
    accuracy, low, high, upper = (f"{assessment[k] * 100:.1f}%" for k in ("accuracy", "ci_low", "ci_high", "upper_99"))
    target = f"{policy.target_accuracy * 100:.1f}%"
    action = f"threshold raised to {new_threshold:.2f}" if new_threshold is not None else "back to full review"
    reason = (
        f"{GUARD_REASON}: outputs at or above {policy.threshold:.2f} were right {accuracy} of the time over the "
        f"last {assessment['n']} reviewed or audited (95% CI {low} to {high}; even the 99% upper bound, {upper}, "
        f"is below the {target} target); {action}."
    )
    evidence = {
        "kind": "regression_guard",
        "window": {**assessment, "threshold": policy.threshold, "first_gate_decision_id": start},
        "window_size": window_size(policy.min_samples),
        # Autopilot ignores verdicts on outputs up to here: they predate the regression.
        "last_gate_decision_id": last_id,
        "recommendation_in_window": {k: v for k, v in higher.items() if k != "evidence"},
    }
    change = policy_update(
        output_type=output_type,
        changes={"threshold": new_threshold},
        by=None,
        reason=reason,
        automatic=True,
        evidence=evidence,
    )
    if change is not None:
        logger.warning("autonomy guard: %s", reason)
        notify_managers(change)
    return change


def _last_guard_decision_id(policy: AutonomyPolicy) -> int | None:
    latest = (
        PolicyChange.objects.filter(policy=policy, automatic=True, reason__startswith=GUARD_REASON)
        .order_by("-at", "-id")
        .values_list("evidence", flat=True)
        .first()
    )
    return (latest or {}).get("last_gate_decision_id")


def autopilot_target(recommended: float | None, current: float | None, low: float, high: float) -> float | None:
    """Where autopilot moves the threshold (pure); `current` when it should not move.

    The recommendation is clamped into the manager's bounds [low, high].
    Clamping up to `low` only adds review, so it is always safe. Clamping
    down to `high` would let through outputs the evidence does not cover, so
    it is done only when it raises a lower current threshold — never to
    lower one, nor to start autonomy from full review.
    """
    if recommended is None:
        return current
    target = min(max(recommended, low), high)
    if target < recommended and (current is None or current >= target):
        return current
    return target


def autopilot(output_type: str) -> PolicyChange | None:
    """In mode `auto`, apply the recommendation within the manager's bounds, as an automatic change.

    Uses only verdicts after the latest regression-guard change, so
    autonomy taken back is not re-granted from evidence older than the
    regression. Returns the change, or None (not in auto mode, nothing to
    recommend, or already there).
    """
    policy = policy_ensure(output_type=output_type)
    if policy.mode != PolicyMode.AUTO or policy.always_review:
        return None
    after_id = _last_guard_decision_id(policy)
    rec = recommend(output_type, after_id=after_id, policy=policy)
    new = autopilot_target(rec["threshold"], policy.threshold, policy.auto_min_threshold, policy.auto_max_threshold)
    if new == policy.threshold:
        return None
    bounds = f"[{policy.auto_min_threshold:.2f}, {policy.auto_max_threshold:.2f}]"
    reason = f"{AUTOPILOT_REASON}: {rec['reason']} Applied within the bounds {bounds}."
    if new != rec["threshold"]:
        reason += f" Recommendation {rec['threshold']:.2f} clamped to {new:.2f}."
    evidence = {
        "kind": "autopilot",
        "recommendation": {k: v for k, v in rec.items() if k != "evidence"},
        "candidates": rec["evidence"],
        "bounds": [policy.auto_min_threshold, policy.auto_max_threshold],
        "after_gate_decision_id": after_id,
    }
    change = policy_update(
        output_type=output_type, changes={"threshold": new}, by=None, reason=reason, automatic=True, evidence=evidence
    )
    if change is not None:
        logger.info("autonomy autopilot: %s", reason)
        notify_managers(change)
    return change


def manager_emails() -> list[str]:
    users = get_user_model().objects.filter(groups__name=MANAGER_GROUP, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def notify_managers(change: PolicyChange) -> None:
    """Email the managers about an automatic change, once the change is committed.

    A failed email is logged, not raised: the change stands either way, and a
    retried task would find nothing left to change.
    """

    def send() -> None:
        recipients = manager_emails()
        if not recipients:
            return
        diff = ", ".join(f"{field} {old} → {new}" for field, (old, new) in change.changes.items())
        try:
            send_mail(
                subject=f"Autonomy of {change.policy.output_type} changed automatically: {diff}",
                message=f"{change.reason}\n\nChange #{change.pk} at {change.at:%Y-%m-%d %H:%M:%S %Z}.",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=recipients,
            )
        except Exception:
            logger.exception("could not email managers about policy change %s", change.pk)

    transaction.on_commit(send)
