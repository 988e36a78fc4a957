"""Per-output-type autonomy: the policy, its change history, and every gate decision."""

import os

from django.conf import settings
from django.db import models

DEFAULT_REJECT_REASONS = ["wrong_data", "incomplete", "not_applicable", "other"]


def default_reject_reasons() -> list[str]:
    return list(DEFAULT_REJECT_REASONS)


def starting_threshold() -> float | None:
    """A new type reviews everything, unless the operator set AUTONOMY_THRESHOLD."""
    value = os.environ.get("AUTONOMY_THRESHOLD", "").strip()
    return float(value) if value else None


class PolicyMode(models.TextChoices):
    MANUAL = "manual", "Manual"
    RECOMMEND = "recommend", "Recommend"
    AUTO = "auto", "Automatic within bounds"


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
    # Items older than this are flagged overdue in the queue.
    sla_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Items still pending after this long are decided with `expiry_outcome`
    # (recorded as expired, not as a human verdict).
    expiry_minutes = models.PositiveIntegerField(null=True, blank=True)
    expiry_outcome = models.CharField(max_length=100, blank=True)
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
    """

    output_type = models.CharField(max_length=100)
    # Null when a flow sent an output to review without a confidence.
    confidence = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    route = models.CharField(max_length=20, choices=Route.choices)
    reason = models.CharField(max_length=20, blank=True)
    audit = models.BooleanField(default=False)
    review_probability = models.FloatField(default=1.0)
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
            # Statistics and recommendations: a type's verdicts by confidence.
            models.Index(fields=["output_type", "verdict", "confidence"], name="gate_type_verdict_conf_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.output_type} {self.confidence} → {self.route}"


class FieldError(models.Model):
    """One field a reviewer corrected, so per-field error rates are a GROUP BY."""

    gate_decision = models.ForeignKey(GateDecision, on_delete=models.CASCADE, related_name="field_errors")
    output_type = models.CharField(max_length=100)
    field = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["output_type", "field"], name="field_error_type_field_idx")]

    def __str__(self) -> str:
        return f"{self.output_type}.{self.field}"
