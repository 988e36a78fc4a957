"""Writes for flow runs. Every status change goes through `run_transition`."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Max, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviewconsole.engine.documents import document_store
from reviewconsole.engine.enqueue import enqueue_on_commit, queue_size
from reviewconsole.engine.models import FlowRun, RunStatus, RunTransition, Step, StepKind, StepStatus, WorkerHeartbeat
from reviewconsole.engine.pause_handler import pause_handler

logger = logging.getLogger(__name__)


class RunStateError(Exception):
    """The run is not in a status that allows the requested change."""


def run_transition(
    *,
    run_id: Any,
    to: RunStatus,
    allowed_from: Iterable[RunStatus],
    actor: Any = None,
    note: str = "",
    extra_filter: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move a run to `to` if it is currently in one of `allowed_from`.

    Side effects: a conditional UPDATE on the run (so of two concurrent callers
    exactly one wins), the given extra `fields` written in the same statement,
    and a RunTransition row naming who and why. Returns False, writing
    nothing, when the run has moved on.
    """
    allowed = [str(status) for status in allowed_from]
    with transaction.atomic():
        if len(allowed) == 1:
            # Only one status can precede: the conditional update alone decides, no read needed.
            current = allowed[0]
        else:
            current = FlowRun.objects.filter(id=run_id).values_list("status", flat=True).first()
            if current is None or current not in allowed:
                return False
        if not _transition_from(run_id, current, to, actor=actor, note=note, extra_filter=extra_filter, **fields):
            return False
    logger.info("run %s: %s -> %s %s", run_id, current, to, note)
    return True


def _transition_from(
    run_id: Any,
    current: str,
    to: RunStatus,
    *,
    actor: Any = None,
    note: str = "",
    extra_filter: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """The conditional update and log row of a transition whose current status the caller has read."""
    updated = FlowRun.objects.filter(id=run_id, status=current, **(extra_filter or {})).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if updated:
        RunTransition.objects.create(
            run_id=run_id,
            from_status=current,
            to_status=to,
            actor=actor if getattr(actor, "pk", None) else None,
            note=note,
        )
    return bool(updated)


RUN_FLOW = "reviewconsole.engine.tasks.run_flow"
RESUME_FLOW = "reviewconsole.engine.tasks.resume_flow"


def _task_enqueue(run_id: Any, task: str, arg: Any, *, first: bool, requeue_of: datetime | None) -> bool:
    """Stamp the run's `enqueued_at` and queue `task(arg)` on commit.

    With `requeue_of`, only if the stamp is still that one: of several sweepers re-enqueueing the same lost
    task, one does.
    """
    runs = FlowRun.objects.filter(id=run_id)
    if requeue_of is not None:
        runs = runs.filter(enqueued_at=requeue_of)
    if not runs.update(enqueued_at=timezone.now()):
        return False
    enqueue_on_commit(task, str(arg), first=first)
    return True


def run_enqueue(run_id: Any, *, requeue_of: datetime | None = None) -> bool:
    """Queue `run_flow` once the current transaction commits.

    Side effects: the run's `enqueued_at` set to now (see `_task_enqueue` for `requeue_of`).
    """
    return _task_enqueue(run_id, RUN_FLOW, run_id, first=False, requeue_of=requeue_of)


def run_enqueue_resume(*, run_id: Any, item_id: Any, requeue_of: datetime | None = None) -> bool:
    """Queue `resume_flow(item_id)` for a run waiting on that decided item, ahead of new runs, on commit.

    Side effects: the run's `enqueued_at` set to now (see `_task_enqueue` for `requeue_of`). A decision
    calls it before it writes the item: the run's row first, then the item's, the order `run_cancel` takes
    them in, so the two cannot deadlock on PostgreSQL.
    """
    return _task_enqueue(run_id, RESUME_FLOW, item_id, first=True, requeue_of=requeue_of)


def run_create(
    *,
    flow_name: str,
    inputs: dict[str, Any],
    user: Any = None,
    trigger: str = "ui",
    enqueue: bool = True,
    documents: Mapping[str, tuple[UploadedFile, int | None]] | None = None,
) -> FlowRun:
    """Create a queued run from inputs already validated against the flow's input model.

    Side effects: a FlowRun row and a RunTransition row; each of `documents` (input name -> the uploaded file
    its text was read from, and its pages) kept in the documents storage with a RunDocument row; `run_flow` is
    enqueued on commit unless the caller executes the run itself (`enqueue=False`).
    """
    with transaction.atomic():
        run = FlowRun.objects.create(
            flow_name=flow_name,
            inputs=inputs,
            created_by=user if getattr(user, "pk", None) else None,
            trigger=trigger,
        )
        RunTransition.objects.create(
            run=run,
            from_status=RunStatus.QUEUED,
            to_status=RunStatus.QUEUED,
            actor=run.created_by,
            note=f"created via {trigger}",
        )
        for input_name, (upload, pages) in (documents or {}).items():
            document_store(run=run, input_name=input_name, upload=upload, pages=pages or 0)
        if enqueue:
            run_enqueue(run.id)
    return run


def _lease_until() -> Any:
    return timezone.now() + timedelta(seconds=settings.RUN_LEASE_SECONDS)


def run_claim(*, run_id: Any, worker: str) -> bool:
    """Take a queued run, or a running run whose worker's lease expired.

    Side effects, in one transaction: status running, attempts + 1, a fresh
    lease for `worker`, started_at on the first claim; steps a dead worker
    left open are marked interrupted (only an earlier attempt can leave any).
    """
    now = timezone.now()
    with transaction.atomic():
        status, attempts, lease = FlowRun.objects.filter(id=run_id).values_list(
            "status", "attempts", "lease_expires_at"
        ).first() or ("", 0, None)
        if status == RunStatus.QUEUED:
            note, extra_filter = f"claimed by {worker}", {}
        elif status == RunStatus.RUNNING and lease is not None and lease < now:
            if _give_up_if_exhausted(run_id):
                return False
            note = f"reclaimed by {worker} after the previous lease expired"
            extra_filter = {"lease_expires_at__lt": now}
        else:
            return False
        if attempts:
            # Step rows before the run row, the order a checkpoint takes them in: a dead worker's last
            # checkpoint and this claim then cannot deadlock on PostgreSQL. Undone below if the claim fails.
            steps_interrupt_open(run_id=run_id)
        claimed = _transition_from(
            run_id,
            status,
            RunStatus.RUNNING,
            note=note,
            extra_filter=extra_filter,
            attempts=F("attempts") + 1,
            lease_expires_at=_lease_until(),
            worker=worker,
            started_at=Coalesce("started_at", Value(now)),
            enqueued_at=None,
        )
        if not claimed:
            transaction.set_rollback(True)
    if claimed:
        logger.info("run %s: %s -> %s %s", run_id, status, RunStatus.RUNNING, note)
    return claimed


def run_attempts_at_this_stretch(run_id: Any) -> int:
    """Claims since the run started, was retried or last paused for review: attempts at the same work.

    Read from the run's transition log, so resumes after review do not count against a flow that pauses often.
    """
    transitions = RunTransition.objects.filter(run_id=run_id)
    stretch_start = transitions.filter(
        Q(to_status=RunStatus.WAITING_REVIEW) | Q(from_status__in=[RunStatus.FAILED, RunStatus.CANCELLED])
    ).aggregate(last=Max("id"))["last"]
    return transitions.filter(id__gt=stretch_start or 0, to_status=RunStatus.RUNNING).count()


def _give_up_if_exhausted(run_id: Any) -> bool:
    """Fail a running run whose lease expired, if its stretch has had `RUN_MAX_ATTEMPTS` attempts; True if so.

    Every such attempt ended with its worker gone (killed, or stopped by django-q2 past the task timeout):
    a run that outlasts the timeout would otherwise be taken over for ever. Side effects, in one
    transaction: the dead worker's open steps interrupted; running → failed with the reason.
    """
    attempts = run_attempts_at_this_stretch(run_id)
    if attempts < settings.RUN_MAX_ATTEMPTS:
        return False
    with transaction.atomic():
        # Step rows first, as in `run_claim`; undone if the run has moved on meanwhile.
        steps_interrupt_open(run_id=run_id)
        steps = _steps_died_in(run_id=run_id, attempts=attempts)
        died = f"worker died {attempts} times while running {steps}" if steps else f"gave up after {attempts} attempts"
        error = (
            f"{died}: each time its worker stopped before finishing "
            f"(killed, or past the task timeout of {settings.TASK_TIMEOUT_SECONDS} s)"
        )
        if not _transition_from(
            run_id,
            RunStatus.RUNNING,
            RunStatus.FAILED,
            note=error,
            extra_filter={"lease_expires_at__lt": timezone.now()},
            error=error,
            traceback="",
            finished_at=timezone.now(),
            lease_expires_at=None,
        ):
            transaction.set_rollback(True)
            return True  # the run is not ours to continue either: it moved on or another sweeper took it
    logger.warning("run %s: %s", run_id, error)
    return True


def _steps_died_in(*, run_id: Any, attempts: int) -> str:
    """The step(s) the run's last `attempts` attempts were all in when their workers died, e.g. "step 'publish'";
    "" unless the latest attempt's step is on record and no earlier one's differs.

    Read from the steps their claims marked interrupted. The first attempt's quickest deaths may have left no
    row (a start is written once the step has run a moment), but every later attempt writes each step's start
    before the step runs (`Execution.after_worker_death`), and it replays the steps the first checkpointed, so it
    runs the step the first one reached next.
    """
    latest = FlowRun.objects.filter(id=run_id).values_list("attempts", flat=True).first() or 0
    died_in: dict[int, set[str]] = {}
    for attempt, method in Step.objects.filter(
        run_id=run_id, kind=StepKind.METHOD, status=StepStatus.INTERRUPTED, attempt__gt=latest - attempts
    ).values_list("attempt", "method"):
        died_in.setdefault(attempt, set()).add(method)
    if latest not in died_in:
        return ""
    common = sorted(set.intersection(*died_in.values()))
    if not common:
        return ""
    return ("step " if len(common) == 1 else "steps ") + ", ".join(f"'{method}'" for method in common)


def run_claim_for_resume(*, run_id: Any, worker: str, note: str) -> bool:
    """Take a run waiting for review so a decision can be applied to it."""
    return run_transition(
        run_id=run_id,
        to=RunStatus.RUNNING,
        allowed_from=[RunStatus.WAITING_REVIEW],
        note=note,
        attempts=F("attempts") + 1,
        lease_expires_at=_lease_until(),
        worker=worker,
        enqueued_at=None,
    )


def run_renew_lease(*, run_id: Any, worker: str) -> bool:
    """Extend the lease; False when the run is no longer this worker's (cancelled, reclaimed)."""
    return bool(
        FlowRun.objects.filter(id=run_id, status=RunStatus.RUNNING, worker=worker).update(
            lease_expires_at=_lease_until()
        )
    )


def run_pause(*, run_id: Any, note: str, state: dict[str, Any]) -> bool:
    """Running → waiting_review, releasing the lease; `state` is the flow's state as it paused, shown on the
    run's page while it waits (the step that paused has no checkpoint yet)."""
    return run_transition(
        run_id=run_id,
        to=RunStatus.WAITING_REVIEW,
        allowed_from=[RunStatus.RUNNING],
        note=note,
        state=state,
        lease_expires_at=None,
        worker="",
    )


def run_complete(*, run_id: Any, worker: str, result: Any, state: dict[str, Any]) -> bool:
    return run_transition(
        run_id=run_id,
        to=RunStatus.COMPLETED,
        allowed_from=[RunStatus.RUNNING],
        extra_filter={"worker": worker},
        result=result,
        state=state,
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def run_fail(*, run_id: Any, worker: str, error: str, traceback: str) -> bool:
    return run_transition(
        run_id=run_id,
        to=RunStatus.FAILED,
        allowed_from=[RunStatus.RUNNING],
        extra_filter={"worker": worker},
        note=error[:500],
        error=error,
        traceback=traceback,
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def run_lock(*, run_id: Any) -> str | None:
    """Lock the run's row until the transaction ends; its status, None if there is no such run.

    Call inside a transaction, before touching the run's review items: every writer that changes a run and
    its items takes the run first (cancel, retry, decide, expiry, resume), so they serialize on it and
    cannot deadlock. On SQLite, where the IMMEDIATE transaction already holds the write lock, it is a read.
    """
    return FlowRun.objects.select_for_update().filter(id=run_id).values_list("status", flat=True).first()


def run_cancel(*, run_id: Any, actor: Any) -> None:
    """Stop a run. A running worker notices at its next step or lease renewal.

    Side effects: status cancelled; the pause handler withdraws the run's open pauses (the reviews app cancels
    its pending review items). Refused (RunStateError, nothing written) while a decision on the run waits to
    be applied: the decision was accepted first.
    """
    with transaction.atomic():
        status = run_lock(run_id=run_id)
        cancellable = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_REVIEW]
        if status not in cancellable or not run_transition(
            run_id=run_id,
            to=RunStatus.CANCELLED,
            allowed_from=[status],
            actor=actor,
            note="cancelled",
            finished_at=timezone.now(),
            lease_expires_at=None,
        ):
            raise RunStateError("Only a queued, running or waiting run can be cancelled.")
        pause_handler().run_cancelled(run_id=run_id)


def run_retry(*, run_id: Any, actor: Any) -> RunStatus:
    """Take a failed or cancelled run up again; returns the status it moved to.

    A run purged by retention has nothing to run on and is refused. A run whose pause is still open with its
    review item cancelled (it was cancelled while it waited for review) goes back to waiting, the item back
    in the queue (the pause handler's `run_reopened`): running it would only resume that pause, which has no
    decision. Any other run is queued, its error cleared, and
    `run_flow` enqueued on commit; finished steps are replayed, not repeated.
    """
    with transaction.atomic():
        status = run_lock(run_id=run_id)
        if status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise RunStateError("Only a failed or cancelled run can be retried.")
        if FlowRun.objects.filter(id=run_id, purged_at__isnull=False).exists():
            raise RunStateError("Its inputs were removed by retention; start a new run instead.")
        to = RunStatus.QUEUED
        if pause_handler().run_reopened(run_id=run_id):
            to = RunStatus.WAITING_REVIEW
        run_transition(
            run_id=run_id,
            to=to,
            allowed_from=[status],
            actor=actor,
            note="retry",
            error="",
            traceback="",
            finished_at=None,
        )
        if to == RunStatus.QUEUED:
            run_enqueue(run_id)
    return to


def runs_sweep() -> int:
    """Put back to work the runs whose worker or task was lost; every worker runs it twice a lease.

    Cheap when there is nothing to do (one indexed query each), and harmless when several workers sweep at
    once: each change is a conditional update that one of them wins. Returns how many runs it moved on.
    """
    # The resume task names the answer (a review item), so the pause handler finds those runs' answers.
    return len(runs_reclaim_expired()) + len(runs_requeue_lost()) + pause_handler().lost_resumes_requeue()


def runs_reclaim_expired() -> list[str]:
    """Requeue running runs whose worker stopped renewing its lease (it died), or fail them after too many tries.

    Side effects: each such run goes back to queued and `run_flow` is enqueued; the new worker replays its
    finished steps. A run whose stretch has had `RUN_MAX_ATTEMPTS` attempts fails instead.
    """
    expired = FlowRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=timezone.now())
    requeued = []
    for run_id in expired.values_list("id", flat=True):
        if _give_up_if_exhausted(run_id):
            continue
        with transaction.atomic():
            if run_transition(
                run_id=run_id,
                to=RunStatus.QUEUED,
                allowed_from=[RunStatus.RUNNING],
                note="worker lost: lease expired",
                extra_filter={"lease_expires_at__lt": timezone.now()},
                lease_expires_at=None,
                worker="",
            ):
                steps_interrupt_open(run_id=run_id)
                run_enqueue(run_id)
                requeued.append(str(run_id))
    return requeued


def runs_with_lost_task(status: RunStatus, *, first: bool) -> list[tuple[Any, datetime]]:
    """Runs in `status` whose task (on the first-served queue or not) was lost: (id, enqueued_at), oldest first.

    A cluster takes tasks off the queue before it runs them (django-q2 prefetches them; Redis keeps no copy),
    so a cluster killed with such tasks loses them. The broker hands tasks out oldest first: those it still
    holds belong to the newest runs waiting on that queue, and the others' tasks have left it. Of those, one
    handed out over a lease ago and still not claimed is counted lost. It may instead still wait in a busy
    cluster; queueing it again then costs one task that finds its run taken and returns. So a backlog still
    in the broker is never queued twice, and each sweep re-enqueues at most what clusters hold or lost.
    """
    waiting = FlowRun.objects.filter(status=status, enqueued_at__isnull=False)
    stale = waiting.filter(enqueued_at__lt=timezone.now() - timedelta(seconds=settings.RUN_LEASE_SECONDS))
    if not stale.exists():
        return []
    left_the_broker = waiting.count() - queue_size(first=first)
    if left_the_broker <= 0:
        return []
    return list(stale.order_by("enqueued_at", "id").values_list("id", "enqueued_at")[:left_the_broker])


def run_log_requeue(*, run_id: Any, status: RunStatus, task: str) -> None:
    """Record on the run's timeline that its lost task was queued again."""
    note = f"{task} lost with its worker cluster: queued again"
    RunTransition.objects.create(run_id=run_id, from_status=status, to_status=status, note=note)
    logger.warning("run %s: %s", run_id, note)


def runs_requeue_lost() -> list[str]:
    """Queue `run_flow` again for queued runs whose task was lost (see `runs_with_lost_task`).

    Side effects per run: `enqueued_at` restamped (a conditional update: one sweeper wins), a note on its
    timeline, `run_flow` enqueued on commit.
    """
    requeued = []
    for run_id, enqueued_at in runs_with_lost_task(RunStatus.QUEUED, first=False):
        with transaction.atomic():
            if run_enqueue(run_id, requeue_of=enqueued_at):
                run_log_requeue(run_id=run_id, status=RunStatus.QUEUED, task="run_flow")
                requeued.append(str(run_id))
    return requeued


def steps_interrupt_open(*, run_id: Any) -> int:
    """Close step rows a dead worker left as started."""
    return Step.objects.filter(run_id=run_id, status=StepStatus.STARTED).update(
        status=StepStatus.INTERRUPTED, finished_at=timezone.now(), error="worker stopped during this step"
    )


# A worker process's beat older than this is of a process long gone (every restart is a new host:pid).
HEARTBEAT_KEPT = timedelta(days=1)


def worker_heartbeat_record(*, worker: str) -> None:
    """Record that this qcluster worker process is alive now (its sweeping thread, every half lease).

    Side effects: upserts the worker's WorkerHeartbeat row, and deletes beats older than a day.
    """
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(worker=worker, defaults={"beat_at": now})
    WorkerHeartbeat.objects.filter(beat_at__lt=now - HEARTBEAT_KEPT).delete()


# Runs purged per transaction: small enough that a purge never holds many rows locked or loads many ids.
PURGE_BATCH_SIZE = 500


def runs_purge_expired(*, days: int, batch_size: int = PURGE_BATCH_SIZE) -> Counter[str]:
    """Remove the inputs, state, output and uploaded files of runs that finished over `days` days ago.

    What stays: the run itself (status, times, error message, steps, transitions) and everything the pause
    handler keeps of its pauses' answers (decisions and their verdicts); the autonomy figures read only those.
    Works in batches of `batch_size` runs, each in a transaction of its own, so a million old runs never sit
    in memory or in one lock. Several workers may purge at once: each batch takes its rows with
    `SKIP LOCKED` and sets `purged_at` only where it is still null, so no run is purged twice.

    Side effects per run: `inputs`, `state`, `result` and `traceback` emptied and `purged_at` stamped; its
    checkpoints deleted; its pauses' context and state emptied; the pause handler's `runs_purged` for its
    pauses' copies; its uploaded documents deleted, their files and page images from the storage once the
    batch has committed. Returns the counts per kind removed (logged).
    """
    removed: Counter[str] = Counter()
    if days <= 0:
        return removed
    cutoff = timezone.now() - timedelta(days=days)
    while (batch := _runs_purge_batch(cutoff=cutoff, limit=batch_size)) is not None:
        removed.update(batch)
    if removed:
        logger.info(
            "retention (%d days): removed %s", days, ", ".join(f"{count} {kind}" for kind, count in removed.items())
        )
    return removed


def _runs_purge_batch(*, cutoff: datetime, limit: int) -> Counter[str] | None:
    """Purge up to `limit` of the oldest runs that finished before `cutoff`; the counts removed, None if none."""
    from reviewconsole.engine.documents import documents_files_delete
    from reviewconsole.engine.models import Checkpoint, PendingFeedback, RunDocument

    removed: Counter[str] = Counter()
    with transaction.atomic():
        due = FlowRun.objects.filter(finished_at__lt=cutoff, purged_at__isnull=True).order_by("finished_at")
        # Rows another purge holds are skipped, not waited for: it purges them.
        run_ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        if not run_ids:
            return None
        removed["runs"] = FlowRun.objects.filter(id__in=run_ids, purged_at__isnull=True).update(
            inputs={}, state={}, result=None, traceback="", purged_at=timezone.now()
        )
        flow_uuids = [str(run_id) for run_id in run_ids]
        removed["checkpoints"] = Checkpoint.objects.filter(flow_uuid__in=flow_uuids).delete()[0]
        removed["pauses"] = PendingFeedback.objects.filter(flow_uuid__in=flow_uuids).update(context={}, state={})
        removed.update(pause_handler().runs_purged(run_ids=run_ids))
        documents = RunDocument.objects.filter(run_id__in=run_ids)
        files = list(documents.values_list("id", "file"))
        removed["uploaded documents"] = documents.delete()[0]
        # Only once the rows no longer name them: a rollback must not leave a run pointing at a deleted file.
        transaction.on_commit(lambda: documents_files_delete(files))
    return removed
