"""Replay keeps types: after a crash or a Retry, a listener gets the value its trigger returned, not its JSON.

The flows are in tests/typed_flows.py. A crash is simulated in process: the
listener fails, then the run is put back as a dead worker leaves it (running,
lease expired) for the sweeper to hand on; a Retry goes through `run_retry`.
Either way the next attempt replays the checkpointed start step.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus, Step, StepStatus
from reviewconsole.engine.services import run_create, run_retry, runs_sweep
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide
from tests.typed_flows import SAMPLES, UNREBUILDABLE, class_path

pytestmark = pytest.mark.django_db(transaction=True)

REBUILDABLE = [kind for kind in SAMPLES if kind not in UNREBUILDABLE]


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="pw")


def _crash_and_recover(run: FlowRun) -> None:
    """Leave the failed run as a killed worker would, and let the sweeper hand it to a fresh worker (inline)."""
    FlowRun.objects.filter(id=run.id).update(
        status=RunStatus.RUNNING, error="", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert runs_sweep() == 1


def _retry(run: FlowRun) -> None:
    run_retry(run_id=run.id, actor=None)


RECOVERIES = [pytest.param(_crash_and_recover, id="crash"), pytest.param(_retry, id="retry")]


def _fail_then_recover(monkeypatch, recover, flow_name: str, step: str, **inputs) -> FlowRun:
    monkeypatch.setenv("FAIL_STEP", step)
    run = run_create(flow_name=flow_name, inputs=inputs)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert f"injected failure in {step}" in run.error
    monkeypatch.delenv("FAIL_STEP")
    recover(run)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("kind", REBUILDABLE)
def test_a_listener_gets_its_triggers_value_uninterrupted(kind):
    # The reference: what the listener reports when nothing is replayed.
    run = run_create(flow_name="typed_handoff", inputs={"kind": kind})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    expected = class_path(SAMPLES[kind]())
    assert run.result == {"received": expected, "same": True, "first_output": expected}


@pytest.mark.parametrize("recover", RECOVERIES)
@pytest.mark.parametrize("kind", REBUILDABLE)
def test_a_replayed_step_hands_its_listener_the_type_it_returned(side_effects, monkeypatch, recover, kind):
    run = _fail_then_recover(monkeypatch, recover, "typed_handoff", "consume", kind=kind)
    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}"
    expected = class_path(SAMPLES[kind]())
    # `received` is what the listener was handed; `first_output` what the flow keeps in its method outputs.
    assert run.result == {"received": expected, "same": True, "first_output": expected}
    assert side_effects() == ["produce", "consume", "consume"], "the start step was replayed, not run again"
    replayed = Step.objects.filter(run=run, status=StepStatus.REPLAYED).values_list("method", flat=True)
    assert list(replayed) == ["produce"]


@pytest.mark.parametrize(
    ("kind", "type_name", "reason"),
    [
        (
            "local_model",
            "tests.typed_flows.local_model.<locals>.Local",
            "it is defined inside a function, so it cannot be imported by name",
        ),
        ("opaque_object", "tests.typed_flows.Opaque", "it is not a pydantic model, dataclass, enum"),
        ("invalid_model", "tests.typed_flows.Strict", "ValidationError: 1 validation error for Strict\ncount"),
    ],
)
@pytest.mark.parametrize("recover", RECOVERIES)
def test_a_value_that_cannot_be_rebuilt_fails_the_run_at_replay(
    side_effects, monkeypatch, recover, kind, type_name, reason
):
    run = _fail_then_recover(monkeypatch, recover, "typed_handoff", "consume", kind=kind)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith(f"ReplayError: step 'produce' returned a <{type_name}> that cannot be rebuilt: ")
    assert reason in run.error
    # It failed replaying the start step: the listener never saw a stand-in.
    assert side_effects() == ["produce", "consume"]


def test_checkpoints_of_plain_values_record_no_types():
    run = run_create(flow_name="counter", inputs={"loops": 1})
    assert set(Checkpoint.objects.filter(flow_uuid=str(run.id)).values_list("value_types", flat=True)) == {None}


def test_a_checkpoint_without_types_replays_its_json_as_before(side_effects, monkeypatch):
    # Rows written before types were recorded: the value comes back as JSON, as it always did.
    monkeypatch.setenv("FAIL_STEP", "consume")
    run = run_create(flow_name="typed_handoff", inputs={"kind": "model"})
    Checkpoint.objects.filter(flow_uuid=str(run.id)).update(value_types=None)
    monkeypatch.delenv("FAIL_STEP")
    _retry(run)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result == {"received": "builtins.dict", "same": False, "first_output": "builtins.dict"}


@pytest.mark.parametrize("recover", RECOVERIES)
def test_a_replayed_feedback_step_keeps_the_type_of_the_reviewed_output(reviewer, side_effects, monkeypatch, recover):
    paused = run_create(flow_name="typed_feedback_retry", inputs={"title": "Invoice 7", "amount": 120.0})
    item = ReviewItem.objects.get(run=paused)
    monkeypatch.setenv("FAIL_STEP", "publish")
    decide(item_id=item.id, user=reviewer, outcome="approved")
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.FAILED
    monkeypatch.delenv("FAIL_STEP")
    recover(run)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    draft = "tests.engine_flows.Draft"
    assert run.result == {"output": draft, "last_feedback_output": draft, "method_output": draft}
    assert side_effects() == ["draft", "publish", "publish"]


# --- async steps -------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "route"), [(500.0, "large"), (5.0, "small")])
def test_async_start_router_and_listener_route_like_crewai(side_effects, amount, route):
    run = run_create(flow_name="async_routing", inputs={"amount": amount})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"route": route, "line": "tests.typed_flows.Line"}
    listener = "escalate" if route == "large" else "settle"
    assert side_effects() == ["fetch", "size", listener]
    outcomes = dict(Checkpoint.objects.filter(flow_uuid=str(run.id)).values_list("method", "outcome"))
    assert outcomes == {"fetch": "", "size": route, listener: ""}


@pytest.mark.parametrize("recover", RECOVERIES)
def test_async_steps_replay_after_a_failure(side_effects, monkeypatch, recover):
    run = _fail_then_recover(monkeypatch, recover, "async_routing", "escalate", amount=500.0)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"route": "large", "line": "tests.typed_flows.Line"}
    assert side_effects() == ["fetch", "size", "escalate", "escalate"]
    replayed = Step.objects.filter(run=run, status=StepStatus.REPLAYED).values_list("method", flat=True)
    assert list(replayed) == ["fetch", "size"]


def test_an_async_router_returning_an_undeclared_label_fails_the_run():
    run = run_create(flow_name="async_bad_router", inputs={})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == (
        "UndeclaredRouterLabelError: Flow 'async_bad_router': router 'decide' returned undeclared label 'surprise' "
        "(declared: ok)"
    )


@pytest.mark.parametrize("recover", RECOVERIES)
def test_and_or_listeners_and_a_nested_kickoff_async_replay(side_effects, monkeypatch, recover):
    run = _fail_then_recover(monkeypatch, recover, "joins", "combine")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"summary": "all good", "invoice": "INV-7", "lines": 2}
    effects = side_effects()
    # Each start, the nested flow and the or_ listener ran once; only the failed and_ listener ran again.
    assert sorted(effects) == sorted(["delegate", "inner", "lookup", "first", "combine", "combine"])
    replayed = Step.objects.filter(run=run, status=StepStatus.REPLAYED).values_list("method", flat=True)
    assert sorted(replayed) == ["delegate", "first", "lookup"]
