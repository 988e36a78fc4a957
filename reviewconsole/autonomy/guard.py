"""Regression guard and autopilot: automatic threshold changes, logged with their evidence.

The guard watches the outputs the gate lets through, through `evidence.RegressionMonitor`: a sequential test
(a CUSUM) whose chance of a false alarm is bounded over a whole horizon of verdicts, not at each look, so
looking after every verdict does not make it cry wolf. It is fed, in the order they were given (verdict_at,
id), the verdicts on outputs at or above the current threshold, gated under that threshold (their
GateDecision.threshold is the policy's), not forced by a rule, of the flow versions whose evidence counts now
(`versions.evidence_filter`), since the policy's latest change of any kind.
In practice these are the audit samples. After any policy change the monitor starts afresh: the evidence it
weighed was about another regime.

When it fires, the guard raises the threshold to the lowest above the current one that the window's own
verdicts show safe (`evidence.recommend`, the same test as the recommendation), or returns the type to full
review; the change is logged as automatic with the monitor's evidence, and managers are emailed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max, QuerySet

from reviewconsole.autonomy import evidence
from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, PolicyChange, PolicyMode, Verdict
from reviewconsole.autonomy.recommendation import (
    BUCKET_EPSILON,
    VERDICTS,
    recommend,
    recommendation_dict,
    strata_aggregate,
)
from reviewconsole.autonomy.rollup import COUNTED
from reviewconsole.autonomy.services import policy_ensure, policy_update
from reviewconsole.autonomy.versions import evidence_filter

logger = logging.getLogger(__name__)

GUARD_REASON = "Regression guard"
AUTOPILOT_REASON = "Autopilot"
MANAGER_GROUP = "manager"


def watched_since(policy: AutonomyPolicy) -> datetime:
    """When the guard's window starts: the policy's latest change of any kind, else its creation. One query."""
    changed = PolicyChange.objects.filter(policy=policy).order_by("-at", "-id").values_list("at", flat=True).first()
    return changed or policy.created_at


def watched_since_label(policy: AutonomyPolicy, since: datetime) -> str:
    """What the guard's window starts at, in words: a change, or the policy's creation when it never changed."""
    return "since the policy was created" if since == policy.created_at else "since the last policy change"


def guard_window(policy: AutonomyPolicy, since: datetime | None = None) -> QuerySet[GateDecision]:
    """The verdicts the guard watches (see the module docstring); `since`: `watched_since(policy)`."""
    threshold = policy.threshold
    if threshold is None:
        return GateDecision.objects.none()
    return GateDecision.objects.filter(
        COUNTED,
        evidence_filter(policy.evidence_versions),
        output_type=policy.output_type,
        verdict__in=VERDICTS,
        threshold=threshold,
        confidence__gte=threshold - BUCKET_EPSILON,
        review_probability__gt=0,
        forced=False,
        verdict_at__gte=since if since is not None else watched_since(policy),
    )


def guard_state(policy: AutonomyPolicy) -> dict[str, Any]:
    """The monitor over the guard's window, as the page and the change log show it. Two queries.

    Returns {active (a threshold is set and the type is not on full review), since, threshold,
    target_accuracy, n (verdicts watched), wrong, statistic, limit, error_score, minimum (verdicts before it
    may fire), false_alarm (the design's chance of a false alarm within `horizon` verdicts at target),
    horizon, fired, fired_at}.
    """
    since = watched_since(policy)
    monitor = evidence.RegressionMonitor(target=policy.target_accuracy, min_samples=policy.min_samples)
    active = policy.threshold is not None and not policy.always_review
    if active:
        verdicts = guard_window(policy, since).order_by("verdict_at", "id").values_list("verdict", flat=True)
        monitor.update_all(verdict == Verdict.CORRECT for verdict in verdicts.iterator(chunk_size=5000))
    design = monitor.design
    return {
        "active": active,
        "since": since,
        "since_label": watched_since_label(policy, since),
        "threshold": policy.threshold,
        "target_accuracy": policy.target_accuracy,
        "n": monitor.n,
        "wrong": monitor.wrong,
        "statistic": monitor.statistic,
        "limit": design.limit,
        "error_score": design.error_score,
        "minimum": monitor.minimum,
        "false_alarm": design.false_alarm,
        "horizon": design.horizon,
        "fired": monitor.fired,
        "fired_at": monitor.fired_at,
    }


def guard_check(output_type: str) -> PolicyChange | None:
    """Take autonomy back from a type whose auto-processed outputs fell below target.

    Fires when the type has a threshold and the regression monitor over the guard's window fires (see the
    module docstring). It then raises the threshold to the lowest above the current one that the window's own
    verdicts show safe (`evidence.recommend`), or, as usually, returns the type to full review (threshold None).

    Side effects when it fires: the policy change through `policy_update` (automatic, by nobody, with the
    monitor's evidence); managers emailed on commit. Returns the change, or None. Three queries when it does
    not fire.
    """
    policy = policy_ensure(output_type=output_type)
    if policy.threshold is None or policy.always_review:
        return None
    state = guard_state(policy)
    if not state["fired"]:
        return None
    # Only the window speaks for the present; the evidence behind the old threshold predates the regression.
    window = guard_window(policy, state["since"])
    higher = evidence.recommend(
        strata_aggregate(window),
        target=policy.target_accuracy,
        min_samples=policy.min_samples,
        lowest=policy.threshold + 0.01,
    )
    new_threshold = higher.threshold if (higher.threshold or 0) > policy.threshold else None
    last_id = GateDecision.objects.filter(output_type=output_type).aggregate(last=Max("id"))["last"]
    target = f"{policy.target_accuracy * 100:.1f}%"
    action = f"threshold raised to {new_threshold:.2f}" if new_threshold is not None else "back to full review"
    reason = (
        f"{GUARD_REASON}: {state['wrong']} of the {state['n']} audited outputs at or above {policy.threshold:.2f} "
        f"since the last policy change were wrong; the regression monitor reached {state['statistic']} (limit "
        f"{state['limit']}), which at a true {target} accuracy happens in at most "
        f"{state['false_alarm'] * 100:.1f}% of runs of {state['horizon']} audits; {action}."
    )
    evidence_log = {
        "kind": "regression_guard",
        "monitor": {k: v for k, v in state.items() if k != "since"},
        "window": {"threshold": policy.threshold, "since": state["since"].isoformat()},
        # Autopilot ignores verdicts on outputs up to here: they predate the regression.
        "last_gate_decision_id": last_id,
        "recommendation_in_window": {k: v for k, v in recommendation_dict(higher).items() if k != "evidence"},
    }
    change = policy_update(
        output_type=output_type,
        changes={"threshold": new_threshold},
        by=None,
        reason=reason,
        automatic=True,
        evidence=evidence_log,
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
    rec = recommend(output_type, after_id=after_id, policy=policy, where=evidence_filter(policy.evidence_versions))
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
