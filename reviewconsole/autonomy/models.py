"""Per-output-type autonomy: the policy, its change history, and every gate decision."""

import os

from django.conf import settings
from django.db import models

DEFAULT_REJECT_REASONS = ["wrong_data", "incomplete", "not_applicable", "other"]


def default_reject_reasons() -> list[str]:
    return list(DEFAULT_REJECT_REASONS)


# Review reasons whose approval needs two different people (maker-checker): a high-value output would be paid
# or sent on one person's say otherwise.
DEFAULT_FOUR_EYES_REASONS = ["high_value"]


def default_four_eyes_reasons() -> list[str]:
    return list(DEFAULT_FOUR_EYES_REASONS)


def starting_threshold() -> float | None:
    """A new type reviews everything, unless the operator set AUTONOMY_THRESHOLD."""
    value = os.environ.get("AUTONOMY_THRESHOLD", "").strip()
    return float(value) if value else None


class PolicyMode(models.TextChoices):
    MANUAL = "manual", "Manual"
    RECOMMEND = "recommend", "Recommend"
    AUTO = "auto", "Automatic within bounds"


# The largest count a policy's integer fields hold: PostgreSQL's `integer`, which PositiveIntegerField uses.
POLICY_INT_MAX = 2_147_483_647
# The length of a flow version (engine.registry.FLOW_VERSION_MAX_LENGTH) and of a model id.
FLOW_VERSION_LENGTH = 40
MODEL_LENGTH = 200


def default_evidence_versions() -> list[str]:
    """A new policy counts the decisions of no recorded version (see `AutonomyPolicy.evidence_versions`)."""
    return [""]


class AutonomyPolicy(models.Model):
    """How outputs of one type are routed: to a person, or straight through."""

    output_type = models.CharField(max_length=100, unique=True)
    # Outputs with confidence >= threshold skip review; null means review everything.
    threshold = models.FloatField(null=True, blank=True, default=starting_threshold)
    always_review = models.BooleanField(default=False)
    # Share of above-threshold outputs still reviewed, so their accuracy stays measured.
    audit_rate = models.FloatField(default=0.05)
    target_accuracy = models.FloatField(default=0.95)
    min_samples = models.PositiveIntegerField(default=50)
    mode = models.CharField(max_length=10, choices=PolicyMode.choices, default=PolicyMode.MANUAL)
    # In auto mode, recommendations are applied only inside these bounds.
    auto_min_threshold = models.FloatField(default=0.5)
    auto_max_threshold = models.FloatField(default=1.0)
    reject_reasons = models.JSONField(default=default_reject_reasons, blank=True)
    # Items sent to review for one of these reasons need a second approver (see `reviews.four_eyes`).
    four_eyes_reasons = models.JSONField(default=default_four_eyes_reasons, blank=True)
    # Items older than this are flagged overdue in the queue.
    sla_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Items still pending after this long are decided with `expiry_outcome`
    # (recorded as expired, not as a human verdict).
    expiry_minutes = models.PositiveIntegerField(null=True, blank=True)
    expiry_outcome = models.CharField(max_length=100, blank=True)
    # An output failing an error-level check of its type goes to a person (reason `check_failed`), whatever
    # its confidence; see `services.gate`.
    review_failed_checks = models.BooleanField(default=True)
    # Leave marked approvals (bulk, or faster than FAST_APPROVAL_SECONDS) out of every accuracy figure.
    exclude_marked_approvals = models.BooleanField(default=False)
    # Share of decided items sent, blind, to a second reviewer, to measure agreement (0 to 1).
    second_review_rate = models.FloatField(default=0.0)
    # The version of the type's flow the threshold and the evidence are about; "" until the gate or a page first
    # sees the flow. A new version starts again at full review (`services.policy_version_observe`).
    flow_version = models.CharField(max_length=FLOW_VERSION_LENGTH, blank=True)
    # The versions whose gate decisions are evidence for `flow_version`: its own, those a manager carried over
    # to it, and "" (decisions made before versions were recorded) for the version the policy first saw.
    evidence_versions = models.JSONField(default=default_evidence_versions, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "autonomy policies"
        permissions = [("manage_autonomy", "Can change autonomy policies")]

    def __str__(self) -> str:
        return self.output_type


class PolicyChange(models.Model):
    """Who changed a policy, when, from what to what, and why."""

    policy = models.ForeignKey(AutonomyPolicy, on_delete=models.CASCADE, related_name="changes")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    automatic = models.BooleanField(default=False)
    # {"field": [from, to], ...}
    changes = models.JSONField()
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["policy", "-at"], name="policy_change_policy_at_idx")]

    def __str__(self) -> str:
        return f"{self.policy} {self.at:%Y-%m-%d %H:%M}"


class Route(models.TextChoices):
    AUTO_APPROVED = "auto_approved", "Auto-approved"
    HUMAN_REVIEW = "human_review", "Human review"


class Verdict(models.TextChoices):
    CORRECT = "correct", "Correct"
    INCORRECT = "incorrect", "Incorrect"


class GateDecision(models.Model):
    """One output passing the gate, and later the reviewer's verdict on it.

    `review_probability` is the chance this output had of being reviewed given
    its confidence and the policy at the time: 1 below the threshold, the audit
    rate above it. Weighting reviewed outcomes by its inverse keeps accuracy
    estimates for above-threshold outputs unbiased.

    `forced` is True when a rule forced the review (a flow's `force_review`, or a
    flow sending the output to review without asking the gate): such outputs are
    never auto-processed, so their verdicts say nothing about what a threshold
    would let through. The gate's own routing (below threshold, audit sample,
    full review) is not forced.
    """

    output_type = models.CharField(max_length=100)
    # Null when a flow sent an output to review without a confidence.
    confidence = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    route = models.CharField(max_length=20, choices=Route.choices)
    reason = models.CharField(max_length=20, blank=True)
    forced = models.BooleanField(default=False)
    audit = models.BooleanField(default=False)
    review_probability = models.FloatField(default=1.0)
    # The version of the flow that produced the output ("" when unknown: no flow declares the type, or the
    # decision predates versions), and the model it ran on ("" outside a run).
    flow_version = models.CharField(max_length=FLOW_VERSION_LENGTH, blank=True)
    model = models.CharField(max_length=MODEL_LENGTH, blank=True)
    run = models.ForeignKey("engine.FlowRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Where in the run the gate was asked, so a re-executed step reuses its decision.
    step_key = models.CharField(max_length=300, blank=True)
    review_item = models.OneToOneField(
        "reviews.ReviewItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="gate_decision"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    error_fields = models.JSONField(default=list, blank=True)
    reject_reason = models.CharField(max_length=100, blank=True)
    verdict_at = models.DateTimeField(null=True, blank=True)
    # The verdict's mark (`reviews.DecisionMark`: bulk or fast approval), blank for any other verdict, and
    # whether the type's policy leaves it out of the evidence (`exclude_marked_approvals`); see
    # `rollup.COUNTED`, the one filter every accuracy figure applies.
    marked = models.CharField(max_length=10, blank=True)
    excluded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_key"], condition=~models.Q(step_key=""), name="gate_decision_run_step_uniq"
            )
        ]
        indexes = [
            # Dashboards: a type's decisions over a period.
            models.Index(fields=["output_type", "created_at"], name="gate_type_created_idx"),
            # Dashboards over every type: today's decisions, read live beside the rollups.
            models.Index(fields=["created_at"], name="gate_created_idx"),
            # Statistics and recommendations: a type's verdicts by confidence.
            models.Index(fields=["output_type", "verdict", "confidence"], name="gate_type_verdict_conf_idx"),
            # What-if: a type's decisions, verdict or not, in the one confidence bucket the rollup cannot split.
            models.Index(fields=["output_type", "confidence"], name="gate_type_conf_idx"),
            # Field error and reject reason rates since a moment: a type's verdicts by when they were given, which
            # no rollup is keyed by (`selectors._verdict_counts`), read from the index alone.
            models.Index(
                fields=["output_type", "verdict_at"],
                include=["reject_reason"],
                condition=models.Q(verdict__in=["correct", "incorrect"]),
                name="gate_type_verdict_at_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.output_type} {self.confidence} → {self.route}"


class FieldError(models.Model):
    """One field a reviewer corrected, so per-field error rates are a GROUP BY."""

    gate_decision = models.ForeignKey(GateDecision, on_delete=models.CASCADE, related_name="field_errors")
    output_type = models.CharField(max_length=100)
    # The gate decision's, copied so a version's field error rates need no join (`versions.evidence_filter`).
    flow_version = models.CharField(max_length=FLOW_VERSION_LENGTH, blank=True)
    field = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["output_type", "field"], name="field_error_type_field_idx"),
            # Field error rates since a moment: a type's recent corrections, read from the index alone.
            models.Index(
                fields=["output_type", "created_at"],
                include=["field", "gate_decision", "flow_version"],
                name="field_error_type_created_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.output_type}.{self.field}"


# --------------------------------------------------------------------------- daily rollups
#
# Gate decisions of past days, pre-aggregated per type and day (the day of `created_at` in the default time zone),
# so the dashboards read a few thousand rows instead of a million. `services.rollup_refresh` writes them; the
# reads in `rollup.py` take every day the rollup covers from here and everything else (today, days not rolled up
# yet, days a late verdict made stale) live from GateDecision. The columns are the sums the statistics need:
# `n` counts decisions; the weighted columns cover only decisions with a review probability above zero, as the
# inverse-probability weights (1 / review_probability) do in `recommendation.weight_expression`.
# Both group by `forced`, so every sum splits into the forced reviews and the outputs a threshold could decide,
# and by `flow_version`, so a type's evidence can be read for one version of its flow (`versions.evidence_filter`).


class GateRollup(models.Model):
    """Gate decisions of one type and day, grouped by what the headline figures count (summary, trend, overview)."""

    output_type = models.CharField(max_length=100)
    day = models.DateField()
    flow_version = models.CharField(max_length=FLOW_VERSION_LENGTH, blank=True)
    route = models.CharField(max_length=20, choices=Route.choices)
    forced = models.BooleanField()
    audit = models.BooleanField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    reject_reason = models.CharField(max_length=100, blank=True)
    marked = models.CharField(max_length=10, blank=True, default="")
    excluded = models.BooleanField(default=False)
    n = models.IntegerField()
    n_weighted = models.IntegerField()
    weight = models.FloatField()
    weight_square = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["output_type", "day"], name="gate_rollup_type_day_idx")]

    def __str__(self) -> str:
        return f"{self.output_type} {self.day} {self.route} {self.verdict or '-'}: {self.n}"


class GateBucketRollup(models.Model):
    """Gate decisions of one type and day per whole percent of confidence (calibration, recommendation, what-if).

    `bucket` is the SQL expression of `rollup.bucket_expression`, unclamped; null without a confidence.
    """

    output_type = models.CharField(max_length=100)
    day = models.DateField()
    flow_version = models.CharField(max_length=FLOW_VERSION_LENGTH, blank=True)
    bucket = models.IntegerField(null=True)
    forced = models.BooleanField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    excluded = models.BooleanField(default=False)
    n = models.IntegerField()
    n_weighted = models.IntegerField()
    weight = models.FloatField()
    weight_square = models.FloatField()
    confidence_sum = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["output_type", "day"], name="gate_bucket_type_day_idx")]

    def __str__(self) -> str:
        return f"{self.output_type} {self.day} {self.bucket}% {self.verdict or '-'}: {self.n}"


class RollupState(models.Model):
    """The one row saying how far the rollups go: every day up to `rolled_through`, in `time_zone`."""

    rolled_through = models.DateField(null=True)
    # Days are local days; rollups made in another zone cannot be read (and are rebuilt).
    time_zone = models.CharField(max_length=100, blank=True)
    refreshed_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"rolled through {self.rolled_through} ({self.time_zone})"


class StaleRollupDay(models.Model):
    """A rolled-up day that changed after it was rolled up (a late verdict): read live until refreshed.

    One row per change, never updated, so concurrent verdicts insert without waiting on each other; the
    refresh deletes the rows it read and recomputes their days.
    """

    output_type = models.CharField(max_length=100)
    day = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="stale_rollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.output_type} {self.day}"
