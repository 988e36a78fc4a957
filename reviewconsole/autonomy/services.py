"""Writes for autonomy: policies and their history, the gate, verdicts."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from reviewconsole.autonomy.models import (
    POLICY_INT_MAX,
    AutonomyPolicy,
    FieldError,
    GateBucketRollup,
    GateDecision,
    GateRollup,
    PolicyChange,
    RollupState,
    Route,
    StaleRollupDay,
    Verdict,
)
from reviewconsole.autonomy.rollup import (
    GATE_REASONS,
    ROLLUP_KEYS,
    ROLLUP_SUMS,
    bucket_expression,
    day_of,
    day_ranges,
    day_start,
    live_aggregate,
    local_zone,
)
from reviewconsole.autonomy.versions import NEW_VERSION_KIND, versions_left
from reviewconsole.engine.checks import CheckContext, as_output, has_errors, run_checks
from reviewconsole.reviews.models import ReviewReason
from reviewconsole.reviews.output_keys import output_keys_record
from reviewconsole.reviews.reasons import reason_check, review_reasons

logger = logging.getLogger(__name__)

EDITABLE_POLICY_FIELDS = (
    "threshold",
    "always_review",
    "audit_rate",
    "target_accuracy",
    "min_samples",
    "mode",
    "auto_min_threshold",
    "auto_max_threshold",
    "reject_reasons",
    "four_eyes_reasons",
    "sla_minutes",
    "expiry_minutes",
    "expiry_outcome",
    "review_failed_checks",
    "exclude_marked_approvals",
    "second_review_rate",
)


COUNT_FIELDS = ("min_samples", "sla_minutes", "expiry_minutes")


class PolicyError(ValueError):
    """A policy change that cannot be applied; the message names the problem, `field` the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def policy_ensure(*, output_type: str) -> AutonomyPolicy:
    """The type's policy, created with defaults (everything reviewed) the first time the type is seen."""
    policy, _ = AutonomyPolicy.objects.get_or_create(output_type=output_type)
    return policy


def _check(field: str, value: Any) -> None:
    fraction_fields = (
        "audit_rate",
        "target_accuracy",
        "auto_min_threshold",
        "auto_max_threshold",
        "second_review_rate",
    )
    if field == "threshold" and value is not None and not 0 <= value <= 1:
        raise PolicyError("threshold must be between 0 and 1, or null to review everything", field="threshold")
    if field in fraction_fields and not 0 <= value <= 1:
        raise PolicyError(f"{field} must be between 0 and 1", field=field)
    if field in COUNT_FIELDS and value is not None and not 1 <= value <= POLICY_INT_MAX:
        raise PolicyError(f"{field} must be between 1 and {POLICY_INT_MAX}", field=field)
    if field == "four_eyes_reasons":
        review_reasons_check(field, value)


def review_reasons_check(field: str, value: Any) -> None:
    """A list of known review reasons (built in, or declared by a flow); empty turns the option off."""
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise PolicyError(f"{field} must be a list of review reason codes", field=field)
    unknown = sorted(set(value) - set(review_reasons()))
    if unknown:
        raise PolicyError(
            f"{field}: unknown review reason {', '.join(unknown)}; `GET /api/v1/reviews/reasons` lists them",
            field=field,
        )


def policy_update(
    *, output_type: str, changes: dict[str, Any], by: Any, reason: str, automatic: bool = False, evidence: Any = None
) -> PolicyChange | None:
    """Change policy fields and record who, when, from→to and why.

    Side effects: the policy row (locked for the change) and one PolicyChange; a change of
    `exclude_marked_approvals` applies to the verdicts already given (`evidence_exclusions_apply`).
    Returns None when nothing actually changed.
    """
    if not reason or not reason.strip():
        raise PolicyError("reason is required", field="reason")
    unknown = sorted(set(changes) - set(EDITABLE_POLICY_FIELDS))
    if unknown:
        raise PolicyError(f"unknown field: {', '.join(unknown)}", field=unknown[0])
    for field, value in changes.items():
        _check(field, value)
    with transaction.atomic():
        policy_ensure(output_type=output_type)
        policy = AutonomyPolicy.objects.select_for_update().get(output_type=output_type)
        diff = {f: [getattr(policy, f), v] for f, v in changes.items() if getattr(policy, f) != v}
        if not diff:
            return None
        for field, (_, new) in diff.items():
            setattr(policy, field, new)
        if policy.auto_min_threshold > policy.auto_max_threshold:
            raise PolicyError("auto_min_threshold must not exceed auto_max_threshold", field="auto_min_threshold")
        policy.save(update_fields=[*diff, "updated_at"])
        if "exclude_marked_approvals" in diff:
            evidence_exclusions_apply(policy=policy)
        change = PolicyChange.objects.create(
            policy=policy,
            by=by if getattr(by, "pk", None) else None,
            automatic=automatic,
            changes=diff,
            reason=reason.strip(),
            evidence=evidence or {},
        )
    logger.info("policy %s changed %s (%s)", output_type, diff, "automatic" if automatic else by)
    return change


# --------------------------------------------------------------------------- flow versions

NEW_VERSION_REASON = "New flow version"
CARRY_OVER_KIND = "evidence_carried_over"


def flow_version_and_model(output_type: str) -> tuple[str, str]:
    """The version of the flow that produces `output_type` now, and inside a run the model it runs on.

    The version is the one of the flow declaring the type (`registry.output_type_version`), else, for a type no
    flow declares, the version of the run's own flow; "" outside a run for such a type (a simulation). The
    model is the configured one (`LLM_MODEL`, "demo" for the demo model), "" outside a run: nothing ran.
    """
    from reviewconsole.engine import registry
    from reviewconsole.engine.context import current_execution

    version = registry.output_type_version(output_type)
    execution = current_execution.get()
    if execution is None:
        return version, ""
    from reviewconsole.llm.configured import configured_model_id

    if not version and execution.flow_name:
        try:
            version = registry.flow_version(registry.get_flow(execution.flow_name))
        except registry.UnknownFlowError:
            version = ""
    return version, configured_model_id()


def policy_version_observe(*, policy: AutonomyPolicy, version: str) -> AutonomyPolicy:
    """Record the version of the type's flow that the gate or a page sees now; a new one reviews everything.

    - The policy's version, or no version (a type no flow declares): nothing to do, no query.
    - The first version seen: recorded, with no change logged and routing left alone. The decisions made before
      versions were recorded ("") stay its evidence, as they were the evidence of the threshold set on them.
    - Another version, never seen before: the type starts again at full review (threshold null), its evidence
      is the new version's own, and an automatic PolicyChange names both versions. It stays so until a manager
      carries the old evidence over (`policy_evidence_carry_over`) or a threshold is set on new evidence.
    - A version the type has left (a worker still running old code during a deploy): nothing changes; its
      outputs are not evidence for the current version and the gate reviews them all.

    Side effects: the policy row, locked and rechecked, so two workers seeing a new version at once log one
    change; the PolicyChange. Returns the policy as it now is.
    """
    if not version or version == policy.flow_version:
        return policy
    with transaction.atomic():
        locked = AutonomyPolicy.objects.select_for_update().get(pk=policy.pk)
        old = locked.flow_version
        if version == old or version in versions_left(locked):
            return locked
        if not old:
            locked.flow_version = version
            locked.evidence_versions = [*locked.evidence_versions, version]
            locked.save(update_fields=["flow_version", "evidence_versions", "updated_at"])
            return locked
        changes: dict[str, list[Any]] = {"flow_version": [old, version]}
        if locked.threshold is not None:
            changes["threshold"] = [locked.threshold, None]
        evidence = {
            "kind": NEW_VERSION_KIND,
            "from_version": old,
            "to_version": version,
            # What the old version's evidence was: a manager carrying it over carries all of it.
            "evidence_versions": locked.evidence_versions,
        }
        locked.flow_version, locked.threshold, locked.evidence_versions = version, None, [version]
        locked.save(update_fields=["flow_version", "threshold", "evidence_versions", "updated_at"])
        reason = (
            f"{NEW_VERSION_REASON} {old} → {version}: review everything until the new version has evidence of its "
            f"own, or a manager carries the evidence of {old} over."
        )
        PolicyChange.objects.create(policy=locked, automatic=True, changes=changes, reason=reason, evidence=evidence)
    logger.warning("policy %s: %s", locked.output_type, reason)
    return locked


def policy_evidence_carry_over(*, output_type: str, from_version: str, by: Any, reason: str) -> PolicyChange:
    """A manager's word that the evidence of an earlier version holds for the flow's current version too.

    The current version's evidence then includes `from_version`'s (its own and whatever had been carried over to
    it). If the type is still on the full review the version change started, the threshold it had before comes
    back with it: the evidence it was set on counts again.

    Side effects: the policy row (locked for the change) and one PolicyChange by the manager, with both
    versions and the reason. Raises PolicyError naming the input at fault: no reason, or a version the type's
    flow has not left, or whose evidence already counts.
    """
    if not reason or not reason.strip():
        raise PolicyError("reason is required", field="reason")
    with transaction.atomic():
        policy = AutonomyPolicy.objects.select_for_update().get(output_type=output_type)
        left = versions_left(policy)
        if from_version not in left:
            raise PolicyError(f"'{from_version}' is not an earlier version of this type's flow", field="from_version")
        if from_version in policy.evidence_versions:
            raise PolicyError(f"the evidence of '{from_version}' already counts", field="from_version")
        versions = list(dict.fromkeys([*policy.evidence_versions, *left[from_version], from_version]))
        changes: dict[str, list[Any]] = {"evidence_versions": [policy.evidence_versions, versions]}
        update = ["evidence_versions"]
        # The change that left `from_version` for the version now current, if the flow went straight from one to
        # the other; its threshold comes back unless a threshold was set since.
        version_change = (
            PolicyChange.objects.filter(policy=policy, evidence__kind=NEW_VERSION_KIND)
            .filter(evidence__from_version=from_version, evidence__to_version=policy.flow_version)
            .order_by("-at", "-id")
            .first()
        )
        restored = (version_change.changes.get("threshold") or [None])[0] if version_change else None
        threshold_set_since = (
            version_change is not None
            and PolicyChange.objects.filter(
                policy=policy, id__gt=version_change.id, changes__has_key="threshold"
            ).exists()
        )
        if restored is not None and policy.threshold is None and not threshold_set_since:
            changes["threshold"] = [None, restored]
            policy.threshold = restored
            update.append("threshold")
        policy.evidence_versions = versions
        policy.save(update_fields=[*update, "updated_at"])
        change = PolicyChange.objects.create(
            policy=policy,
            by=by if getattr(by, "pk", None) else None,
            changes=changes,
            reason=reason.strip(),
            evidence={"kind": CARRY_OVER_KIND, "from_version": from_version, "to_version": policy.flow_version},
        )
    logger.info(
        "policy %s: evidence of %s carried over to %s by %s", output_type, from_version, policy.flow_version, by
    )
    return change


def _step_key() -> tuple[Any, str]:
    """The run and step asking, so a re-executed step gets the decision it got the first time."""
    from crewai.flow.flow_context import current_flow_method_name

    from reviewconsole.engine.context import current_execution

    execution = current_execution.get()
    method = current_flow_method_name.get()
    if execution is None or not method:
        return None, ""
    return execution.run_id, f"{method}#{execution.occurrences.get(str(method), 1)}"


def gate(
    output_type: str,
    confidence: float | None,
    *,
    force_review: bool = False,
    reason: str | None = None,
    output: Any = None,
    inputs: dict[str, Any] | None = None,
    rng: random.Random | None = None,
) -> str:
    """Route one output: "auto_approved" or "human_review", recorded as a GateDecision.

    Business rules (high value and the like) stay in the flow, which passes
    `force_review` with its `reason`; the decision is recorded as `forced`.
    Given the `output` (and the run's `inputs`), an output at or above the
    threshold is checked by its type's checks: with the policy's
    `review_failed_checks`, an error finding sends it to review with reason
    `check_failed`, recorded as `forced` (a rule, not the threshold, sent it).
    Above the threshold, a random share (`audit_rate`) of the rest is still
    reviewed as audit samples.
    The decision records the flow's version and the model; a version the
    policy has not seen starts the type again at full review
    (`policy_version_observe`).
    """
    if force_review and reason in GATE_REASONS:
        # Reviewers read the reason: a forced review under a gate reason would pass for the policy's doing.
        raise ValueError(f"'{reason}' is a reason the gate gives itself; name the flow's rule for a forced review")
    if force_review and reason:
        reason_check(reason)
    run_id, step_key = _step_key()
    if step_key:
        earlier = GateDecision.objects.filter(run_id=run_id, step_key=step_key).values_list("route", flat=True)
        if earlier:
            return earlier[0]
    version, model = flow_version_and_model(output_type)
    policy = policy_version_observe(policy=policy_ensure(output_type=output_type), version=version)
    threshold = policy.threshold
    audit = False
    probability = 1.0
    if force_review:
        route, why = Route.HUMAN_REVIEW, reason or "flow_requested"
    elif policy.always_review or threshold is None or version not in policy.evidence_versions:
        # No threshold yet is the starting point of gradual autonomy: every output is reviewed. So is an output
        # of a flow version the threshold has no evidence about (an old worker's, during a deploy).
        route, why = Route.HUMAN_REVIEW, "always_review"
    elif confidence is None or confidence < threshold:
        route, why = Route.HUMAN_REVIEW, "low_confidence"
    elif _fails_checks(policy, output, inputs, run_id):
        # Only an output the threshold would let through is forced by its checks: one the gate reviews anyway
        # stays in the population its routing measures.
        route, why, force_review = Route.HUMAN_REVIEW, ReviewReason.CHECK_FAILED.value, True
    else:
        probability = policy.audit_rate
        audit = (rng or random).random() < policy.audit_rate
        route, why = (Route.HUMAN_REVIEW, "audit_sample") if audit else (Route.AUTO_APPROVED, "")
    try:
        with transaction.atomic():
            decision = GateDecision.objects.create(
                output_type=output_type,
                confidence=confidence,
                threshold=threshold,
                route=route,
                reason=why,
                forced=force_review,
                audit=audit,
                review_probability=probability,
                flow_version=version,
                model=model,
                run_id=run_id,
                step_key=step_key,
            )
            if route == Route.AUTO_APPROVED and output is not None and run_id is not None:
                # An output sent to a person is keyed with its review item; one let through is keyed here, so
                # that a later copy of it is still found as a possible duplicate.
                output_keys_record(
                    output_type=output_type, output=as_output(output), run_id=run_id, created_at=decision.created_at
                )
    except IntegrityError:
        # The same step asked twice at once (a redelivered task); the first answer stands.
        return GateDecision.objects.get(run_id=run_id, step_key=step_key).route
    return route


def _fails_checks(policy: AutonomyPolicy, output: Any, inputs: dict[str, Any] | None, run_id: Any) -> bool:
    """Whether the policy refuses `output` for an error finding of its type's checks."""
    if output is None or not policy.review_failed_checks:
        return False
    return has_errors(run_checks(policy.output_type, output, CheckContext(inputs=inputs or {}, run_id=run_id)))


def gate_decision_attach(*, item: Any) -> GateDecision:
    """Link a new review item to the gate decision that sent it, or record one.

    A flow may send an output to review without asking the gate; its
    decision is still a measurement of the AI, so it gets a gate record too,
    marked `forced`: the flow's own request, not the gate's routing, sent it.
    """
    decision = (
        GateDecision.objects.filter(run_id=item.run_id, route=Route.HUMAN_REVIEW, review_item__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )
    if decision is None:
        version, model = flow_version_and_model(item.output_type)
        policy = policy_version_observe(policy=policy_ensure(output_type=item.output_type), version=version)
        decision = GateDecision.objects.create(
            output_type=item.output_type,
            confidence=item.confidence,
            threshold=policy.threshold,
            route=Route.HUMAN_REVIEW,
            reason=item.reason,
            forced=True,
            flow_version=version,
            model=model,
            run_id=item.run_id,
        )
    decision.review_item = item
    decision.save(update_fields=["review_item"])
    return decision


def verdict_record(*, item: Any, decision: Any) -> None:
    """Write the reviewer's verdict on the gate decision behind the item.

    Approved unchanged = correct (also when the item's checks found errors: the reviewer overruled them);
    edited = incorrect, with the fields changed; rejected = incorrect, with its reason. The first outcome of an
    item is its approving one; any other outcome counts as incorrect. Expired items get no verdict (nobody
    looked). The decision's mark (bulk or fast approval) is copied, and the verdict left out of the evidence
    when the type's policy says so. A verdict on an output of an earlier day marks that day stale in the
    rollups (`rollup_mark_stale`).
    """
    gate_decision = GateDecision.objects.filter(review_item=item).first()
    if gate_decision is None:
        return
    policy = policy_ensure(output_type=item.output_type)
    gate_decision.marked = decision.mark
    gate_decision.excluded = bool(decision.mark) and policy.exclude_marked_approvals
    _verdict_write(
        gate_decision,
        item=item,
        outcome=decision.outcome,
        edited_output=decision.edited_output,
        diff=decision.diff,
        reject_reason=decision.reason_code,
    )


def verdict_withdraw(*, item: Any) -> None:
    """Take back the verdict on the gate decision behind the item, as if nobody had decided it (an undo).

    Side effects: the verdict, its mark, field errors and reason cleared; the day marked stale in the rollups,
    which may already have counted the verdict.
    """
    gate_decision = GateDecision.objects.filter(review_item=item).first()
    if gate_decision is None:
        return
    gate_decision.verdict, gate_decision.error_fields, gate_decision.reject_reason = "", [], ""
    gate_decision.verdict_at, gate_decision.marked, gate_decision.excluded = None, "", False
    gate_decision.save(update_fields=["verdict", "error_fields", "reject_reason", "verdict_at", "marked", "excluded"])
    FieldError.objects.filter(gate_decision=gate_decision).delete()
    rollup_mark_stale(decisions=[gate_decision])


def _verdict_write(
    gate_decision: GateDecision, *, item: Any, outcome: str, edited_output: Any, diff: list, reject_reason: str
) -> None:
    """Set the verdict of `outcome` (with its edit) on the gate decision, its field errors, and the stale mark."""
    from reviewconsole.reviews.diff import changed_fields

    correct = outcome == item.outcomes[0] and edited_output is None
    fields = changed_fields(diff) if edited_output is not None else []
    gate_decision.verdict = Verdict.CORRECT if correct else Verdict.INCORRECT
    gate_decision.error_fields = fields
    gate_decision.reject_reason = reject_reason
    gate_decision.verdict_at = timezone.now()
    gate_decision.save(update_fields=["verdict", "error_fields", "reject_reason", "verdict_at", "marked", "excluded"])
    rollup_mark_stale(decisions=[gate_decision])
    FieldError.objects.filter(gate_decision=gate_decision).delete()
    FieldError.objects.bulk_create(
        FieldError(
            gate_decision=gate_decision,
            output_type=item.output_type,
            flow_version=gate_decision.flow_version,
            field=field,
        )
        for field in fields
    )


def verdict_adjudicate(*, item: Any, outcome: str, edited_output: Any, diff: list, reject_reason: str = "") -> None:
    """Replace the verdict on the item's gate decision by a manager's adjudication of a disagreement.

    `outcome` and `edited_output` are those of the decision the manager upheld. The adjudicated verdict counts in
    every accuracy figure, whatever mark the first decision had: a manager weighed it. Side effects: the
    verdict, its field errors (replaced) and reason; the day marked stale in the rollups.
    """
    gate_decision = GateDecision.objects.filter(review_item=item).first()
    if gate_decision is None:
        return
    gate_decision.marked = ""
    gate_decision.excluded = False
    _verdict_write(
        gate_decision, item=item, outcome=outcome, edited_output=edited_output, diff=diff, reject_reason=reject_reason
    )


def evidence_exclusions_apply(*, policy: AutonomyPolicy) -> int:
    """Apply the type's `exclude_marked_approvals` to every marked verdict already given; returns how many changed.

    Side effects: `GateDecision.excluded` of the type's marked verdicts; their days marked stale in the rollups
    (one mark per day, not per verdict). Call in the policy change's transaction.
    """
    changed = (
        GateDecision.objects.filter(output_type=policy.output_type)
        .exclude(marked="")
        .exclude(excluded=policy.exclude_marked_approvals)
    )
    days = list(
        changed.annotate(day=TruncDate("created_at", tzinfo=local_zone())).values_list("day", flat=True).distinct()
    )
    count = changed.update(excluded=policy.exclude_marked_approvals)
    today = timezone.localdate(timezone=local_zone())
    StaleRollupDay.objects.bulk_create(
        StaleRollupDay(output_type=policy.output_type, day=_as_date(day)) for day in days if _as_date(day) < today
    )
    return count


def _as_date(value: Any) -> date:
    # SQLite gives TruncDate back as a datetime on some versions.
    return value.date() if isinstance(value, datetime) else value


# --------------------------------------------------------------------------- rollups

# A day is rolled up only once it ended this long ago, so a gate decision or verdict whose transaction was
# still open at midnight (its created_at is stamped before it commits) is in the rows the refresh reads.
ROLLUP_SETTLE = timedelta(minutes=10)


def rollup_mark_stale(*, decisions: Iterable[GateDecision]) -> None:
    """Mark the days of these gate decisions stale in the rollups, after their verdicts (or days) changed.

    Verdicts arrive after the decision, often days later, and the rollups are keyed by the day the decision
    was made (the day the dashboards count it on). A marked day is read live until the next refresh
    recomputes it, so a late verdict shows at once. Today is never rolled up, so today's decisions need no mark.
    Call in the transaction that changes the decisions: the mark and the change commit together.
    """
    today = timezone.localdate(timezone=local_zone())
    days = {(decision.output_type, day_of(decision.created_at)) for decision in decisions}
    StaleRollupDay.objects.bulk_create(StaleRollupDay(output_type=t, day=day) for t, day in days if day < today)


def gate_decisions_delete(*, output_type: str) -> None:
    """Delete every gate decision of a type (a simulation starting over), and its rollup rows with them.

    Rolled-up days would otherwise keep counting the deleted decisions; with no decision left, no row is the
    exact rollup of every day.
    """
    with transaction.atomic():
        GateDecision.objects.filter(output_type=output_type).delete()
        for model in (*ROLLUP_KEYS, StaleRollupDay):
            model.objects.filter(output_type=output_type).delete()


def _roll_up(model: type[GateRollup | GateBucketRollup], decisions: QuerySet[GateDecision]) -> None:
    """INSERT … SELECT the model's per-day sums of `decisions`, in the database (no rows through Python)."""
    keys, sums = ROLLUP_KEYS[model], ROLLUP_SUMS[model]
    if "bucket" in keys:
        decisions = decisions.annotate(bucket=bucket_expression())
    totals = {f"sum_{c}": Coalesce(live_aggregate(c), Value(0), output_field=model._meta.get_field(c)) for c in sums}
    grouped = (
        decisions.annotate(day=TruncDate("created_at", tzinfo=local_zone()))
        .values("output_type", "day", *keys)
        .annotate(**totals)
        .order_by()
    )
    sql, params = grouped.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ["output_type", "day", *keys]
    target = ", ".join(quote(c) for c in [*columns, *sums])
    source = ", ".join([*(quote(c) for c in columns), *(quote(name) for name in totals)])
    # Selecting by alias from the subquery keeps the columns in order whatever order Django selects them in.
    # Only quoted names from the models are formatted in; the values stay parameters.
    statement = f"INSERT INTO {quote(model._meta.db_table)} ({target}) SELECT {source} FROM ({sql}) AS rolled"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def rollup_refresh(*, now: datetime | None = None, rebuild: bool = False) -> dict[str, Any]:
    """Bring the rollups up to date: roll up every day that ended (ROLLUP_SETTLE ago) since the last refresh,
    and recompute every day marked stale since. With `rebuild`, or after a change of time zone, start over.

    Side effects: rollup rows of those days replaced, their stale marks deleted, RollupState advanced; one
    transaction, serialized with other refreshes by the state row's lock. Returns {rolled_through,
    new_days, stale_days, rebuilt}.
    """
    now = now or timezone.now()
    last = day_of(now - ROLLUP_SETTLE) - timedelta(days=1)
    zone = str(local_zone())
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(pk=1)
        rebuilt = rebuild or state.rolled_through is None or state.time_zone != zone
        first: date | None = None if rebuilt else state.rolled_through + timedelta(days=1)
        # Only the marks read here are deleted: a verdict committing meanwhile keeps its mark, so its day
        # stays live until the next refresh even if the recomputation below did not see it.
        marks = list(StaleRollupDay.objects.filter(day__lte=last).values_list("pk", "output_type", "day"))
        StaleRollupDay.objects.filter(pk__in=[pk for pk, _, _ in marks]).delete()
        stale = {(t, day) for _, t, day in marks if first is not None and day < first}
        stale_decisions, stale_rollups = day_ranges(stale)
        new_decisions, new_rollups = Q(created_at__lt=day_start(last + timedelta(days=1))), Q(day__lte=last)
        if first is not None:
            new_decisions &= Q(created_at__gte=day_start(first))
            new_rollups &= Q(day__gte=first)
        if rebuilt or first <= last or stale:
            for model in ROLLUP_KEYS:
                (model.objects.all() if rebuilt else model.objects.filter(new_rollups | stale_rollups)).delete()
                _roll_up(model, GateDecision.objects.filter(new_decisions | stale_decisions))
        state.rolled_through = max(last, state.rolled_through) if not rebuilt else last
        state.time_zone = zone
        state.refreshed_at = now
        state.save()
    new_days = None if first is None else max((last - first).days + 1, 0)
    return {"rolled_through": last, "new_days": new_days, "stale_days": len(stale), "rebuilt": rebuilt}
