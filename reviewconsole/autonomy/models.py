"""Per-output-type policy: how outputs of one type are reviewed."""

from django.db import models

DEFAULT_REJECT_REASONS = ["wrong_data", "incomplete", "not_applicable", "other"]


def default_reject_reasons() -> list[str]:
    return list(DEFAULT_REJECT_REASONS)


class AutonomyPolicy(models.Model):
    """One row per output type; created the first time a flow sends that type to review."""

    output_type = models.CharField(max_length=100, unique=True)
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

    def __str__(self) -> str:
        return self.output_type
