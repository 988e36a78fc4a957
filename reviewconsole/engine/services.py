"""Writes for flow runs. Every status change goes through `run_transition`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviewconsole.engine.enqueue import enqueue_on_commit
from reviewconsole.engine.models import FlowRun, RunStatus, RunTransition, Step, StepStatus

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


def run_enqueue(run_id: Any) -> None:
    """Queue `run_flow` once the current transaction commits."""
    enqueue_on_commit("reviewconsole.engine.tasks.run_flow", str(run_id))


def run_create(
    *, flow_name: str, inputs: dict[str, Any], user: Any = None, trigger: str = "ui", enqueue: bool = True
) -> FlowRun:
    """Create a queued run from inputs already validated against the flow's input model.

    Side effects: a FlowRun row and a RunTransition row; `run_flow` is
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
        status, attempts = FlowRun.objects.filter(id=run_id).values_list("status", "attempts").first() or ("", 0)
        if status == RunStatus.QUEUED:
            note, extra_filter = f"claimed by {worker}", {}
        elif status == RunStatus.RUNNING:
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
        )
        if not claimed:
            transaction.set_rollback(True)
    if claimed:
        logger.info("run %s: %s -> %s %s", run_id, status, RunStatus.RUNNING, note)
    return claimed


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

    Side effects: status cancelled; pending review items of the run are cancelled. Refused (RunStateError,
    nothing written) while a decision on the run waits to be applied: the decision was accepted first.
    """
    from reviewconsole.reviews.services import review_items_cancel_for_run

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
        review_items_cancel_for_run(run_id=run_id)


def run_retry(*, run_id: Any, actor: Any) -> RunStatus:
    """Take a failed or cancelled run up again; returns the status it moved to.

    A run whose pause is still open with its review item cancelled (it was cancelled while it waited for
    review) goes back to waiting, the item back in the queue (see reviews.services.review_items_reopen_for_run):
    running it would only resume that pause, which has no decision. Any other run is queued, its error
    cleared, and `run_flow` enqueued on commit; finished steps are replayed, not repeated.
    """
    from reviewconsole.reviews.services import review_items_reopen_for_run

    with transaction.atomic():
        status = run_lock(run_id=run_id)
        if status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise RunStateError("Only a failed or cancelled run can be retried.")
        to = RunStatus.QUEUED
        if review_items_reopen_for_run(run_id=run_id):
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


def runs_reclaim_expired() -> list[str]:
    """Requeue running runs whose worker stopped renewing its lease (it died).

    Side effects: each such run goes back to queued and `run_flow` is
    enqueued; the new worker replays its finished steps.
    """
    expired = FlowRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=timezone.now())
    requeued = []
    for run_id in expired.values_list("id", flat=True):
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


def steps_interrupt_open(*, run_id: Any) -> int:
    """Close step rows a dead worker left as started."""
    return Step.objects.filter(run_id=run_id, status=StepStatus.STARTED).update(
        status=StepStatus.INTERRUPTED, finished_at=timezone.now(), error="worker stopped during this step"
    )
