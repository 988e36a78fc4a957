"""A run end to end through the task path (tasks execute inline in tests)."""

from contextlib import ExitStack
from datetime import timedelta

import pytest
from django.utils import timezone
from pydantic import ValidationError

from reviewconsole.engine import runner
from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.events import StepRecord, collector
from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus, Step, StepKind, StepStatus
from reviewconsole.engine.services import run_create
from reviewconsole.engine.tasks import start_scheduled_run
from tests import engine_flows

pytestmark = pytest.mark.django_db(transaction=True)


def test_counter_flow_completes_with_checkpoints_and_steps(side_effects):
    run = run_create(flow_name="counter", inputs={"label": "x", "loops": 2})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"label": "x", "count": 2, "log": ["prepare", "increment 1", "increment 2"]}
    assert side_effects() == ["prepare", "increment:1", "check:1", "increment:2", "check:2", "finish"]
    methods = list(Checkpoint.objects.filter(flow_uuid=str(run.id)).values_list("method", "occurrence", "outcome"))
    assert methods == [
        ("prepare", 1, ""),
        ("increment", 1, ""),
        ("check", 1, "again"),
        ("increment", 2, ""),
        ("check", 2, "done"),
        ("finish", 1, ""),
    ]
    steps = list(Step.objects.filter(run=run, kind="method").values_list("method", "status"))
    assert steps == [(m, StepStatus.FINISHED) for m, _, _ in methods]
    assert run.attempts == 1


def test_undeclared_router_label_fails_the_run():
    run = run_create(flow_name="bad_router", inputs={})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Flow 'bad_router': router 'decide' returned undeclared label 'surprise' (declared: ok)" in run.error
    assert "Traceback" in run.traceback


@pytest.mark.parametrize(
    ("amount", "effects"), [(250, ["escalate", "note"]), (3, ["file", "note"])], ids=["large", "small"]
)
def test_routers_without_declared_labels_route_as_crewai_routes_them(amount, effects, side_effects):
    run = run_create(flow_name="docs_router", inputs={"amount": amount})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert sorted(side_effects()) == effects


def test_a_router_without_declared_labels_returning_a_label_nobody_listens_to_fails_the_run(side_effects):
    run = run_create(flow_name="docs_router", inputs={"amount": -1})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Flow 'docs_router': router 'size' returned label 'nowhere' that no method listens to" in run.error
    assert "listened: even, large, odd, small" in run.error


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "nan",
            "the value step 'measure' returned cannot be stored: Numbers must be finite: NaN, Infinity and "
            "out-of-range values like 1e309 are not allowed (at score)",
        ),
        ("state_inf", "the flow state after step 'measure' cannot be stored: Numbers must be finite"),
        (
            "nul",
            "the value step 'measure' returned cannot be stored: NUL characters (\\u0000) are not allowed (at lines.1)",
        ),
    ],
)
def test_a_value_json_cannot_hold_fails_the_run_naming_the_step_and_the_place(kind, message):
    run = run_create(flow_name="unstorable", inputs={"kind": kind})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert message in run.error


def test_scheduled_task_starts_a_validated_run():
    run_id = start_scheduled_run("counter", '{"label": "nightly", "loops": 1}')
    run = FlowRun.objects.get(id=run_id)
    assert run.trigger == "schedule"
    assert run.status == RunStatus.COMPLETED
    with pytest.raises(ValidationError, match="loops"):
        start_scheduled_run("counter", '{"loops": "many"}')


@pytest.mark.parametrize("separate_writes", [False, True], ids=["same-write", "separate-writes"])
def test_a_closing_event_that_overtakes_its_opener_still_makes_one_row(separate_writes):
    run = FlowRun.objects.create(flow_name="counter")
    at = timezone.now()
    collector.enqueue(StepRecord(run_id=run.id, status=StepStatus.FINISHED, method="m", at=at, opener_key="e1"))
    if separate_writes:
        collector.flush()
    collector.enqueue(StepRecord(run_id=run.id, status=StepStatus.STARTED, method="m", at=at, event_key="e1"))
    collector.flush()
    collector.forget(run.id)
    assert list(Step.objects.filter(run=run).values_list("status", flat=True)) == [StepStatus.FINISHED]


@pytest.mark.parametrize(
    "order",
    [("opened", "checkpointed", "closed"), ("checkpointed", "opened", "closed"), ("checkpointed", "closed", "opened")],
)
@pytest.mark.parametrize("separate_writes", [False, True], ids=["same-write", "separate-writes"])
def test_a_step_closed_by_its_checkpoint_stays_one_finished_row(order, separate_writes):
    run = FlowRun.objects.create(flow_name="counter")
    started = timezone.now()
    checkpointed = started + timedelta(milliseconds=40)
    records = {
        "opened": StepRecord(run_id=run.id, status=StepStatus.STARTED, method="m", at=started, event_key="e1"),
        "checkpointed": StepRecord(
            run_id=run.id, status=StepStatus.FINISHED, method="m", at=checkpointed, opener_key="e1", checkpointed=True
        ),
        # CrewAI's own close comes after the checkpoint: the row keeps the checkpoint's time.
        "closed": StepRecord(
            run_id=run.id, status=StepStatus.FINISHED, method="m", at=checkpointed + timedelta(1), opener_key="e1"
        ),
    }
    for name in order:
        collector.enqueue(records[name])
        if separate_writes:
            collector.flush()
    collector.flush()
    collector.forget(run.id)
    step = Step.objects.get(run=run)
    assert (step.status, step.finished_at) == (StepStatus.FINISHED, checkpointed)


def test_a_step_started_in_one_write_is_closed_by_a_later_one():
    run = FlowRun.objects.create(flow_name="counter")
    started = timezone.now()
    collector.enqueue(StepRecord(run_id=run.id, status=StepStatus.STARTED, method="m", at=started, event_key="e1"))
    collector.flush()
    assert list(Step.objects.filter(run=run).values_list("status", flat=True)) == [StepStatus.STARTED]
    finished = started + timedelta(milliseconds=250)
    collector.enqueue(
        StepRecord(run_id=run.id, status=StepStatus.FAILED, method="m", at=finished, opener_key="e1", error="boom")
    )
    collector.flush()
    collector.forget(run.id)
    step = Step.objects.get(run=run)
    assert (step.status, step.error, step.duration_ms) == (StepStatus.FAILED, "boom", 250.0)


def test_lease_heartbeat_stops_renewing_each_run_when_its_own_execution_ends(monkeypatch):
    heartbeat = runner._Heartbeat()
    monkeypatch.setattr(heartbeat, "_ensure_thread", lambda: None)
    first, second = Execution(run_id="first"), Execution(run_id="second")

    def watched():
        return sorted(execution.run_id for execution, _ in heartbeat._current.values())

    with ExitStack() as first_block:
        first_block.enter_context(heartbeat.watching(first, "w:1"))
        second_block = heartbeat.watching(second, "w:1")
        second_block.__enter__()
        assert watched() == ["first", "second"]
    # Overlapping blocks (threads running tasks inline) end in any order.
    assert watched() == ["second"]
    second_block.__exit__(None, None, None)
    assert watched() == []


def test_a_step_is_recorded_finished_by_its_checkpoint(monkeypatch):
    """What the database holds while a step runs is what a worker killed there leaves behind."""
    record, seen = engine_flows.side_effect, {}

    def look(step):
        record(step)
        if step == "increment:2":
            run_id = current_execution.get().run_id
            steps = Step.objects.filter(run_id=run_id, kind=StepKind.METHOD).order_by("started_at", "id")
            seen["steps"] = list(steps.values_list("method", "status"))
            seen["checkpoints"] = list(
                Checkpoint.objects.filter(flow_uuid=run_id).order_by("sequence").values_list("method", flat=True)
            )

    monkeypatch.setattr(engine_flows, "side_effect", look)
    run = run_create(flow_name="counter", inputs={"label": "x", "loops": 2})

    # Every checkpointed step is there, finished: none open (to be marked interrupted), none missing.
    assert seen["checkpoints"] == ["prepare", "increment", "check"]
    assert seen["steps"][:3] == [(method, StepStatus.FINISHED) for method in seen["checkpoints"]]
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    # CrewAI's own close of each step, which comes later, adds nothing.
    steps = list(Step.objects.filter(run=run, kind=StepKind.METHOD).values_list("method", "status"))
    methods = ["prepare", "increment", "check", "increment", "check", "finish"]
    assert steps == [(method, StepStatus.FINISHED) for method in methods]
