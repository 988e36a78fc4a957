"""Durable flow runs: the run itself, its status log, checkpoints and step record."""

import uuid

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING_REVIEW = "waiting_review", "Waiting for review"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class FlowRun(models.Model):
    """One execution of a registered flow; its id is also the CrewAI state id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    flow_name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    inputs = models.JSONField(default=dict)
    state = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A running run belongs to the worker whose lease has not expired; the
    # sweeper reclaims runs whose worker died without finishing them.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # When the task that moves this run on was handed to the broker: `run_flow` for a queued run,
    # `resume_flow` for one waiting after a decision. None while no task is out (running, waiting for a
    # person, finished). The sweeper queues again a task a dead worker cluster took with it.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=20, default="ui")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When retention (RETENTION_DAYS) removed the run's inputs, state, output and files; null while kept.
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Run list: newest first, optionally filtered by status or flow.
            models.Index(fields=["status", "-created_at"], name="run_status_created_idx"),
            models.Index(fields=["flow_name", "-created_at"], name="run_flow_created_idx"),
            models.Index(fields=["-created_at"], name="run_created_idx"),
            # Sweeper: running runs whose lease has expired.
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease_idx"),
            # Sweeper: queued or decided runs whose task was handed out longest ago.
            models.Index(
                fields=["status", "enqueued_at"],
                condition=models.Q(enqueued_at__isnull=False),
                name="run_status_enqueued_idx",
            ),
            # Retention: the finished runs not purged yet, oldest first (the rest stay out of the index).
            models.Index(
                fields=["finished_at"],
                condition=models.Q(purged_at__isnull=True, finished_at__isnull=False),
                name="run_unpurged_finished_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow_name} {self.id}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES

    @property
    def purged_after_days(self) -> int | None:
        """How many days after it finished retention removed the run's data; None while it is kept."""
        if self.purged_at is None or self.finished_at is None:
            return None
        return (self.purged_at - self.finished_at).days


class RunTransition(models.Model):
    """Append-only log of every status change of a run."""

    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=RunStatus.choices)
    to_status = models.CharField(max_length=20, choices=RunStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.from_status} → {self.to_status}"


class Checkpoint(models.Model):
    """State after one completed flow method, appended by the CrewAI persistence.

    Keyed by the CrewAI flow id (a FlowRun's id for runs started here), so the
    persistence also works for flows run outside the engine. `output` and
    `outcome` let a re-run replay the method instead of executing it again;
    `value_types` says how to rebuild `output` and the feedback's output as the
    types the method returned (see typed_values.py).
    """

    flow_uuid = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    method = models.CharField(max_length=200)
    # Nth completion of this method in the run: loops replay by occurrence.
    occurrence = models.PositiveIntegerField()
    state = models.JSONField()
    output = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    feedback = models.JSONField(null=True, blank=True)
    # {"output": descriptor, "feedback_output": descriptor}, each present only when its value is not plain
    # JSON; null for plain values and for rows written before types were recorded (those replay as JSON).
    value_types = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["flow_uuid", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["flow_uuid", "sequence"], name="checkpoint_flow_sequence_uniq"),
            models.UniqueConstraint(
                fields=["flow_uuid", "method", "occurrence"], name="checkpoint_flow_method_occurrence_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow_uuid} #{self.sequence} {self.method}"


class PendingFeedback(models.Model):
    """A flow paused for human feedback: CrewAI's context and the state to resume from.

    Rows are marked cleared, never deleted, so the record of each pause stays.
    """

    flow_uuid = models.CharField(max_length=64)
    method = models.CharField(max_length=200)
    context = models.JSONField()
    state = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A flow waits on at most one feedback request at a time.
            models.UniqueConstraint(
                fields=["flow_uuid"], condition=models.Q(cleared_at__isnull=True), name="pending_feedback_open_uniq"
            ),
        ]
        indexes = [models.Index(fields=["flow_uuid", "-created_at"], name="pending_flow_created_idx")]

    def __str__(self) -> str:
        return f"{self.flow_uuid} paused at {self.method}"


class StepStatus(models.TextChoices):
    STARTED = "started", "Started"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    PAUSED = "paused", "Paused for review"
    REPLAYED = "replayed", "Replayed"
    INTERRUPTED = "interrupted", "Interrupted"


class StepKind(models.TextChoices):
    METHOD = "method", "Method"
    LLM = "llm", "LLM call"


class Step(models.Model):
    """One execution of a flow method, or one LLM call inside it."""

    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=10, choices=StepKind.choices, default=StepKind.METHOD)
    method = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.STARTED)
    # Correlates the finished/failed event with the row its started event made.
    event_key = models.CharField(max_length=100, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            # Run timeline and API: a run's steps in order.
            models.Index(fields=["run", "started_at"], name="step_run_started_idx"),
            models.Index(fields=["run", "event_key"], name="step_run_event_idx"),
            # The step-duration histogram of /metrics: the steps finished in its window.
            models.Index(fields=["finished_at"], name="step_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.status}"


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its SHA-256 digest is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Null: valid until revoked. An expired token answers 401 like an unknown one.
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class WorkerHeartbeat(models.Model):
    """The last sign of life of one qcluster worker process, written every half lease by its sweeping thread.

    /readyz and the metrics read the newest beat: the web process cannot see django-q2's own cluster stats
    without Redis (they live in each process's cache), but every process shares the database.
    """

    worker = models.CharField(max_length=200, primary_key=True)  # runner.worker_name(): host:pid
    beat_at = models.DateTimeField()

    class Meta:
        # The newest beat (readiness, metrics) and the pruning of old ones.
        indexes = [models.Index(fields=["beat_at"], name="worker_heartbeat_beat_idx")]

    def __str__(self) -> str:
        return f"{self.worker} at {self.beat_at}"


class _DocumentsStorage(LazyObject):
    """The storage named "documents" in `settings.STORAGES`, looked up on first use.

    A FileField keeps the storage it is given when the model class is built; this stand-in lets the setting
    change after that (a test's own directory) as Django's `default_storage` does.
    """

    def _setup(self) -> None:
        self._wrapped = storages["documents"]


_documents_storage = _DocumentsStorage()


@receiver(setting_changed)
def _documents_storage_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "STORAGES":
        _documents_storage._wrapped = empty


def documents_storage() -> Storage:
    """Where run documents are kept (see `RunDocument`)."""
    return _documents_storage  # type: ignore[return-value]


class RunDocument(models.Model):
    """The original file a run input was read from (an invoice's PDF), kept as it was uploaded.

    The flow sees only the input's text; the file stays for the people who check that text's reading. It lives in
    the "documents" storage, so a deployment with many web machines can keep it in object storage.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="documents")
    # The run input whose text was read from this file.
    input_name = models.CharField(max_length=100)
    file = models.FileField(storage=documents_storage, upload_to="originals/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    pages = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "input_name"], name="rundocument_one_per_input"),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.input_name} of run {self.run_id})"

    @property
    def page_numbers(self) -> range:
        return range(1, self.pages + 1)
