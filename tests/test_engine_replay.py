"""Recovery by replay, in process: a failed run retried continues from its last checkpoint."""

import pytest

from reviewconsole.engine.models import Checkpoint, RunStatus, Step, StepStatus
from reviewconsole.engine.services import run_create, run_retry

pytestmark = pytest.mark.django_db(transaction=True)


def test_retry_replays_finished_steps_and_routers(side_effects, monkeypatch):
    # Step "increment" fails on its third execution; everything before it is checkpointed.
    monkeypatch.setenv("FAIL_STEP", "increment:3")
    run = run_create(flow_name="counter", inputs={"label": "r", "loops": 3})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "RuntimeError: injected failure in increment:3" in run.error

    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=run.id, actor=None)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"label": "r", "count": 3, "log": ["prepare", "increment 1", "increment 2", "increment 3"]}
    # Before the failure point each step ran once; the failed step ran twice.
    assert side_effects() == [
        "prepare",
        "increment:1",
        "check:1",
        "increment:2",
        "check:2",
        "increment:3",
        "increment:3",
        "check:3",
        "finish",
    ]
    replayed = list(Step.objects.filter(run=run, status=StepStatus.REPLAYED).values_list("method", flat=True))
    assert replayed == ["prepare", "increment", "check", "increment", "check"]
    finished = Step.objects.filter(run=run, kind="method", status=StepStatus.FINISHED).count()
    assert finished == Checkpoint.objects.filter(flow_uuid=str(run.id)).count() == 8
    assert run.attempts == 2


def test_replayed_router_label_routes_like_the_original(side_effects, monkeypatch):
    monkeypatch.setenv("FAIL_STEP", "finish")
    run = run_create(flow_name="counter", inputs={"label": "f", "loops": 2})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=run.id, actor=None)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result["count"] == 2
    assert side_effects().count("check:1") == 1
    assert side_effects().count("check:2") == 1
    assert side_effects().count("finish") == 2


def test_steps_record_the_attempt_that_ran_them(monkeypatch):
    monkeypatch.setenv("FAIL_STEP", "finish")
    run = run_create(flow_name="counter", inputs={"loops": 1})
    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=run.id, actor=None)
    attempts = dict(Step.objects.filter(run=run, kind="method", method="finish").values_list("status", "attempt"))
    assert attempts == {StepStatus.FAILED: 1, StepStatus.FINISHED: 2}
    assert set(Step.objects.filter(run=run, status=StepStatus.REPLAYED).values_list("attempt", flat=True)) == {2}
