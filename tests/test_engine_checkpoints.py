"""Checkpoint numbering and run claims: the writes a worker makes around each step."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.events import StepRecord, collector
from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus, RunTransition, Step, StepStatus
from reviewconsole.engine.persistence import DjangoFlowPersistence
from reviewconsole.engine.services import run_claim

pytestmark = pytest.mark.django_db(transaction=True)


def _numbers(run: FlowRun) -> list[tuple[int, str, int]]:
    rows = Checkpoint.objects.filter(flow_uuid=str(run.id)).order_by("sequence")
    return list(rows.values_list("sequence", "method", "occurrence"))


def test_a_checkpoint_numbered_from_memory_continues_after_a_row_it_did_not_know():
    run = FlowRun.objects.create(flow_name="counter")
    Checkpoint.objects.create(flow_uuid=str(run.id), sequence=1, method="prepare", occurrence=1, state={})
    # This execution believes the run has no checkpoints, as a worker would whose lease was taken over.
    execution = Execution(run_id=str(run.id))
    token = current_execution.set(execution)
    try:
        DjangoFlowPersistence().save_state(str(run.id), "prepare", {"id": str(run.id)})
        # After the collision the numbers are right again, and kept in memory: no read.
        with CaptureQueriesContext(connection) as queries:
            DjangoFlowPersistence().save_state(str(run.id), "increment", {"id": str(run.id)})
    finally:
        current_execution.reset(token)
    assert _numbers(run) == [(1, "prepare", 1), (2, "prepare", 2), (3, "increment", 1)]
    assert [q["sql"].split()[0] for q in queries if q["sql"].split()[0] in ("SELECT", "INSERT", "UPDATE")] == [
        "INSERT",
        "UPDATE",
    ]


def test_step_records_written_with_a_colliding_checkpoint_are_kept():
    run = FlowRun.objects.create(flow_name="counter")
    Checkpoint.objects.create(flow_uuid=str(run.id), sequence=1, method="prepare", occurrence=1, state={})
    now = timezone.now()
    collector.enqueue(
        StepRecord(run_id=str(run.id), status=StepStatus.STARTED, method="prepare", at=now, event_key="e1")
    )
    collector.enqueue(
        StepRecord(run_id=str(run.id), status=StepStatus.FINISHED, method="prepare", at=now, opener_key="e1")
    )
    execution = Execution(run_id=str(run.id))  # numbers from memory that collide with the row above
    token = current_execution.set(execution)
    try:
        DjangoFlowPersistence().save_state(str(run.id), "prepare", {"id": str(run.id)})
    finally:
        current_execution.reset(token)
    assert _numbers(run) == [(1, "prepare", 1), (2, "prepare", 2)]
    assert list(Step.objects.filter(run=run).values_list("method", "status")) == [("prepare", StepStatus.FINISHED)]


def test_a_flow_outside_the_engine_numbers_its_checkpoints_from_the_database():
    persistence = DjangoFlowPersistence()
    run = FlowRun.objects.create(flow_name="counter")
    for method in ("prepare", "increment", "increment"):
        persistence.save_state(str(run.id), method, {"id": str(run.id)})
    assert _numbers(run) == [(1, "prepare", 1), (2, "increment", 1), (3, "increment", 2)]


def test_first_claim_starts_the_run_and_a_reclaim_keeps_its_start_and_closes_open_steps():
    run = FlowRun.objects.create(flow_name="counter")
    assert run_claim(run_id=run.id, worker="w1")
    run.refresh_from_db()
    started_at = run.started_at
    assert (run.status, run.attempts, run.worker, started_at is not None) == (RunStatus.RUNNING, 1, "w1", True)
    Step.objects.create(run=run, method="prepare", started_at=timezone.now())

    assert not run_claim(run_id=run.id, worker="w2"), "the lease of w1 has not expired"
    assert list(Step.objects.filter(run=run).values_list("status", flat=True)) == [StepStatus.STARTED]
    FlowRun.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert run_claim(run_id=run.id, worker="w2")

    run.refresh_from_db()
    assert (run.attempts, run.worker, run.started_at) == (2, "w2", started_at)
    assert list(Step.objects.filter(run=run).values_list("status", flat=True)) == [StepStatus.INTERRUPTED]
    notes = list(RunTransition.objects.filter(run=run).order_by("at", "id").values_list("note", flat=True))
    assert notes == ["claimed by w1", "reclaimed by w2 after the previous lease expired"]


def test_a_finished_run_is_not_claimed():
    run = FlowRun.objects.create(flow_name="counter", status=RunStatus.COMPLETED)
    assert not run_claim(run_id=run.id, worker="w1")
    assert not RunTransition.objects.filter(run=run).exists()


def test_a_step_checkpoints_its_own_output_when_a_concurrent_step_appended_after_it():
    """Two starts run concurrently: the other may append its output between this step's append and its save."""
    from types import SimpleNamespace

    run = FlowRun.objects.create(flow_name="joins")
    flow = SimpleNamespace(
        _pending_feedback_context=None,
        last_human_feedback=None,
        _methods={"delegate": None, "lookup": None},
        _method_outputs=[{"method": "delegate", "output": {"text": "all good"}}, {"method": "lookup", "output": 7}],
        _is_router=lambda name: False,
    )
    execution = Execution(run_id=str(run.id))
    execution.flow = flow
    token = current_execution.set(execution)
    try:
        DjangoFlowPersistence().save_state(str(run.id), "delegate", {"id": str(run.id)})
    finally:
        current_execution.reset(token)
    assert Checkpoint.objects.get(flow_uuid=str(run.id), method="delegate").output == {"text": "all good"}
