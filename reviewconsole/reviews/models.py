"""Review items created when a flow pauses, and the decisions that resume them."""

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.engine.registry import REVIEW_REASON_MAX_LENGTH


class ReviewReason(models.TextChoices):
    """The built-in review reasons; flows declare their own (see `reviews.reasons`)."""

    LOW_CONFIDENCE = "low_confidence", "Low confidence"
    HIGH_VALUE = "high_value", "High value"
    ALWAYS_REVIEW = "always_review", "Always reviewed"
    AUDIT_SAMPLE = "audit_sample", "Audit sample"
    FLOW_REQUESTED = "flow_requested", "Requested by the flow"
    CHECK_FAILED = "check_failed", "Failed a check"


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DECIDED = "decided", "Decided"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ReviewItem(models.Model):
    """One paused flow step waiting for a person."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="review_items")
    pending = models.OneToOneField(PendingFeedback, on_delete=models.PROTECT, related_name="review_item")
    method = models.CharField(max_length=200)
    output_type = models.CharField(max_length=100)
    # An open code: a built-in ReviewReason or one the flow declares; `reasons.reason_label` gives its label.
    reason = models.CharField(max_length=REVIEW_REASON_MAX_LENGTH, default=ReviewReason.FLOW_REQUESTED)
    confidence = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    output = models.JSONField(null=True, blank=True)
    schema = models.JSONField(null=True, blank=True)
    outcomes = models.JSONField(default=list)
    # What the output type's checks found in the output: [{"check", "severity", "field", "message", ...}], the
    # severities error, warning and info. Set when the item is created; an edit is checked again before it is saved.
    findings = models.JSONField(default=list, blank=True)
    # Counts of `findings` (all, and error-level), kept with them (`set_findings`): the queue shows and filters
    # on them without reading the JSON.
    finding_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # What a queue row shows of the output (`engine.summaries.summarize`): [{"label", "value", "found"}], kept
    # with the findings so the queue neither loads the flows nor reads the output JSON per row.
    summary = models.JSONField(default=list, blank=True)
    # The summary, the output's text and the run's input text, folded to lower case (`search.search_text`): the
    # queue's search matches words in this one column.
    search_text = models.TextField(blank=True, default="")
    # Where the flow read each field: {"input": run input name, "lines": {field path: [1-based line, ...]}}, or {}.
    source_spans = models.JSONField(default=dict, blank=True)
    # True when the flow routes on the decision through CrewAI's `emit`;
    # False when it reads the decision from the HumanFeedbackResult itself.
    uses_emit = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    # Advisory lock while someone has the item open; others see who and until when.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # From the output type's policy when the item is created.
    due_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker takes the decision back into the flow; the resume task
    # is idempotent on it.
    resumed_at = models.DateTimeField(null=True, blank=True)
    # Until when the decision's reviewer may undo it (`settings.UNDO_SECONDS` after it); no worker resumes the
    # flow before. Null when the decision could not be undone (undo off, an expiry).
    resume_not_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # Queue: pending items of some types, oldest first.
            models.Index(fields=["status", "output_type", "created_at"], name="review_status_type_created_idx"),
            models.Index(fields=["status", "created_at"], name="review_status_created_idx"),
            models.Index(fields=["run", "created_at"], name="review_run_created_idx"),
            # The queue reads only pending rows, scattered among many more decided ones: partial indexes keep
            # its pages, counts and sorts to the pending. Each covers the columns the queue filters on, so a
            # page's ids (and the rows an OFFSET skips) come from the index alone; see `selectors.queue_page`.
            models.Index(
                fields=["created_at", "id"],
                include=["output_type", "reason", "confidence"],
                condition=models.Q(status="pending"),
                name="review_pending_age_idx",
            ),
            # Also the oldest pending item of each type, for the queue tabs.
            models.Index(
                fields=["output_type", "created_at", "id"],
                include=["reason", "confidence", "due_at"],
                condition=models.Q(status="pending"),
                name="review_pending_type_age_idx",
            ),
            # The lowest-confidence sort; the highest-confidence one has its own index on PostgreSQL (made in
            # migration 0005: SQLite cannot declare NULLS LAST in an index, and this one read backwards
            # would put the items without a confidence first).
            models.Index(
                fields=["confidence", "created_at", "id"],
                include=["output_type", "reason"],
                condition=models.Q(status="pending"),
                name="review_pending_conf_asc_idx",
            ),
            # The queue tabs' overdue counts: a type's pending items past their SLA, read from the index alone.
            models.Index(
                fields=["output_type", "due_at"],
                condition=models.Q(status="pending", due_at__isnull=False),
                name="review_pending_type_due_idx",
            ),
            # The queue filtered to items with error findings: few among the pending, oldest first.
            models.Index(
                fields=["created_at", "id"],
                include=["output_type"],
                condition=models.Q(status="pending", error_count__gt=0),
                name="review_pending_errors_idx",
            ),
            # Held-back resumes whose undo window has ended (`services.review_items_release_held_resumes`, every
            # worker's heartbeat): the few decided items not resumed yet, among every decided one.
            models.Index(
                fields=["resume_not_before"],
                condition=models.Q(status="decided", resumed_at__isnull=True, resume_not_before__isnull=False),
                name="review_held_resume_idx",
            ),
            # Expiry sweep: pending items past their deadline.
            models.Index(fields=["status", "expires_at"], name="review_status_expires_idx"),
            # Time to decision and reviewer throughput on the autonomy pages: a type's recent decisions, read from
            # the index alone (`id` for the join to their Decision rows).
            models.Index(
                fields=["output_type", "decided_at"],
                include=["created_at", "id"],
                condition=models.Q(status="decided"),
                name="review_decided_type_idx",
            ),
            # The same over every type (`queue_health()` and `reviewer_throughput()` without a type).
            models.Index(
                fields=["decided_at"],
                include=["created_at", "id"],
                condition=models.Q(status="decided"),
                name="review_decided_idx",
            ),
        ]
        permissions = [("review_item", "Can decide review items")]

    def __str__(self) -> str:
        return f"{self.output_type} review {self.id}"

    def set_findings(self, findings: list[dict[str, Any]]) -> None:
        """Keep the findings and their counts together (the caller saves)."""
        self.findings = findings
        self.finding_count = len(findings)
        self.error_count = sum(1 for item in findings if item.get("severity") == "error")


class ReviewItemKey(models.Model):
    """A key identifying an output for duplicate lookups (`engine.checks.register_match_keys`).

    Written with a review item, or by the gate for an output it lets through without review (`item` null):
    a copy of an invoice that was paid without review is still a copy. A duplicate check finds the earlier
    outputs sharing a key through the index below, one seek per key, however many there are.
    """

    item = models.ForeignKey(ReviewItem, null=True, blank=True, on_delete=models.CASCADE, related_name="match_keys")
    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="+")
    output_type = models.CharField(max_length=100)
    key = models.CharField(max_length=300)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Duplicate lookups: the earliest items of a type with this key (`selectors.items_sharing_keys`).
            models.Index(fields=["output_type", "key", "created_at"], name="review_item_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.output_type} {self.key}"


class PendingCount(models.Model):
    """How many items of one output type are pending.

    Kept by the services that move an item into or out of `pending`, in the same transaction, so the
    queue's tabs read a row per type instead of counting the pending items on every page.
    `pending_counts.pending_counts_recount` sets them from the items again.
    """

    output_type = models.CharField(max_length=100, primary_key=True)
    pending = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.output_type}: {self.pending} pending"


class DecisionMark(models.TextChoices):
    """Why an approval may not be a check: given in bulk, or faster than `FAST_APPROVAL_SECONDS` after opening."""

    BULK = "bulk", "Bulk approval"
    FAST = "fast", "Fast approval"


class Decision(models.Model):
    """The one decision on a review item."""

    item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="decision")
    outcome = models.CharField(max_length=100)
    edited_output = models.JSONField(null=True, blank=True)
    diff = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    reason_code = models.CharField(max_length=100, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    # Copies of the item's type and creation time, which never change once the item exists (`save` fills them):
    # reviewer throughput groups a type's recent decisions and their time to decision from an index on this
    # table alone, instead of joining every recent decision to its item.
    output_type = models.CharField(max_length=100, editable=False)
    item_created_at = models.DateTimeField(editable=False)
    # Kept by the database from `edited_output`, so the same index can count edits without reading the JSON.
    edited = models.GeneratedField(
        expression=models.Q(edited_output__isnull=False), output_field=models.BooleanField(), db_persist=True
    )
    # Seconds from the reviewer opening (claiming) the item to this decision; null when they decided without
    # opening it (bulk approval from the queue, the API) or nobody decided (expiry). See `reliability`.
    handling_seconds = models.FloatField(null=True, blank=True)
    # An approval that may be a rubber stamp (`DecisionMark`); blank for every other decision.
    mark = models.CharField(max_length=10, choices=DecisionMark.choices, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "at"], name="decision_user_at_idx"),
            # Reviewer throughput of a type (`selectors.reviewer_throughput`): its reviewers' decisions of a recent
            # period and every figure the aggregate needs, read from the index alone.
            models.Index(
                fields=["output_type", "at"],
                include=["user", "item_created_at", "outcome", "edited"],
                condition=models.Q(user__isnull=False),
                name="decision_type_at_idx",
            ),
            # The same over every type.
            models.Index(
                fields=["at"],
                include=["user", "item_created_at", "outcome", "edited"],
                condition=models.Q(user__isnull=False),
                name="decision_reviewer_at_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} on {self.item_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every writer (a decision, a bulk decision, an expiry) saves through here: the copies cannot be forgotten.
        if not self.output_type:
            self.output_type = self.item.output_type
        if self.item_created_at is None:
            self.item_created_at = self.item.created_at
        super().save(*args, **kwargs)


class FirstApproval(models.Model):
    """The first of two approvals an item needs when its policy asks for four eyes (`reviews.four_eyes`).

    While it exists and the item is pending, the item awaits a second approver; the final Decision is the
    second person's. It stays after the decision, as the record of who approved first and with what edit.
    """

    item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="first_approval")
    outcome = models.CharField(max_length=100)
    # The first approver's corrected output, which a second approval "as is" confirms; null when approved as is.
    edited_output = models.JSONField(null=True, blank=True)
    diff = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"first {self.outcome} on {self.item_id}"


class ReviewEventKind(models.TextChoices):
    CREATED = "created", "Created"
    CLAIMED = "claimed", "Opened and claimed"
    RELEASED = "released", "Claim released"
    FIRST_APPROVED = "first_approved", "First approval, awaiting a second approver"
    DECIDED = "decided", "Decided"
    UNDONE = "undone", "Decision undone by its reviewer"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    REOPENED = "reopened", "Reopened by a retry of its run"
    NOTIFIED = "notified", "Notification sent"


class ReviewEvent(models.Model):
    """Audit trail of an item: every claim, decision and notification."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=ReviewEventKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["item", "at"], name="review_event_item_at_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.item_id}"


class ReviewerScope(models.Model):
    """Output types a reviewer may decide. A reviewer with no rows may decide every type."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_scopes")
    output_type = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "output_type"], name="reviewer_scope_uniq")]

    def __str__(self) -> str:
        return f"{self.user} → {self.output_type}"


class SecondReviewStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a second reviewer"
    AGREED = "agreed", "Agreed"
    DISAGREED = "disagreed", "Disagreed: waiting for a manager"
    ADJUDICATED = "adjudicated", "Adjudicated"


class SecondReview(models.Model):
    """A blind second review of a decided item: another reviewer decides it again, without seeing the first.

    It changes no run (the flow resumed with the first decision); it measures whether reviewers agree. A
    disagreement waits for a manager, whose adjudicated verdict replaces the first on the item's gate decision.
    """

    item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="second_review")
    # A copy of the item's type: the queues and the agreement figures filter on it.
    output_type = models.CharField(max_length=100)
    # The first reviewer, who may not take the second review.
    first_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=20, choices=SecondReviewStatus.choices, default=SecondReviewStatus.PENDING)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=100, blank=True)
    edited_output = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(null=True, blank=True)
    # Same outcome and same output as the first decision; null until the second review is given.
    agreed = models.BooleanField(null=True)
    # The manager's ruling on a disagreement: which of the two decisions was right.
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    adjudicated_for = models.CharField(max_length=10, blank=True)
    adjudication_note = models.TextField(blank=True)
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The second-review queue and the managers' list of disagreements: one status of some types.
            models.Index(fields=["status", "output_type", "created_at"], name="second_review_status_idx"),
            # Agreement per type and per reviewer over a period.
            models.Index(fields=["output_type", "at"], name="second_review_type_at_idx"),
        ]

    def __str__(self) -> str:
        return f"second review of {self.item_id} ({self.status})"


class ReviewerPreference(models.Model):
    """A reviewer's settings of the review pages; a user without a row has the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_preference")
    # Single-key shortcuts can be turned off (WCAG 2.1.4): speech input and stray key presses must not decide items.
    shortcuts_enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"
