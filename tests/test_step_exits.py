"""A step that leaves by SystemExit, KeyboardInterrupt or another BaseException fails its run, not its worker.

Inline here (tasks run in the test process); tests/test_worker_step_exits.py runs the same flow under a real
qcluster, where the worker process must live on.
"""

import asyncio
import signal
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.exceptions import TimeoutException

from reviewconsole.engine import registry, runner, services
from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.step_guard import stops_the_process

pytestmark = pytest.mark.django_db(transaction=True)


class Abandon(BaseException):
    """Neither an Exception nor a way Python itself stops."""


@pytest.fixture
def unruly(flow_modules):
    """The unruly flow's class, as this test's registry loaded it."""
    flow_modules("tests.flows_unruly")
    return registry.get_flow("unruly").flow_class


@pytest.mark.parametrize(
    ("step", "how", "error"),
    [
        ("publish", "exit", "SystemExit(3) raised in step 'publish'"),
        ("publish", "sys_exit", "SystemExit() raised in step 'publish'"),
        ("publish", "keyboard", "KeyboardInterrupt() raised in step 'publish'"),
        ("publish", "base", "Abandon('abandon ship') raised in step 'publish'"),
        ("prepare", "exit", "SystemExit(3) raised in step 'prepare'"),
        ("announce", "exit", "SystemExit(3) raised in step 'announce'"),
        ("announce", "base", "Abandon('abandon ship') raised in step 'announce'"),
    ],
)
def test_a_step_leaving_by_a_base_exception_fails_the_run_naming_it_and_the_step(unruly, step, how, error):
    run = services.run_create(flow_name="unruly", inputs={"leave_in": step, "how": how})
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, error)
    assert "Traceback" in run.traceback
    failed_step = Step.objects.get(run=run, kind=StepKind.METHOD, method=step)
    assert failed_step.status == "failed"
    assert error in failed_step.error

    # The same process goes on to run the next one.
    after = services.run_create(flow_name="unruly", inputs={})
    after.refresh_from_db()
    assert (after.status, after.result) == (RunStatus.COMPLETED, ["prepare", "publish", "announce"])


def _claimed_unruly_run() -> FlowRun:
    run = services.run_create(flow_name="unruly", inputs={}, enqueue=False)
    assert services.run_claim(run_id=run.id, worker="test-worker")
    return run


def test_a_base_exception_outside_the_steps_fails_the_run_naming_the_flow(unruly, monkeypatch):
    def kickoff(self, inputs):
        raise SystemExit(5)

    monkeypatch.setattr(unruly, "kickoff", kickoff)
    run = _claimed_unruly_run()
    runner.execute(run.id, "test-worker")
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "SystemExit(5) raised while running flow 'unruly'")


def test_the_task_timeout_of_django_q2_still_stops_the_worker(unruly, monkeypatch):
    def kickoff(self, inputs):
        raise TimeoutException("Task exceeded maximum timeout value (600 seconds)")

    monkeypatch.setattr(unruly, "kickoff", kickoff)
    run = _claimed_unruly_run()
    with pytest.raises(TimeoutException):
        runner.execute(run.id, "test-worker")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # its lease runs out and the sweeper hands it on, as for a killed worker


def test_after_a_worker_died_each_step_start_is_written_once(unruly):
    """The second attempt writes each step's start before the step runs; CrewAI's own record of it adds no row."""
    run = _claimed_unruly_run()
    FlowRun.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.run_claim(run_id=run.id, worker="test-worker")  # taken over: attempt 2 of the stretch
    runner.execute(run.id, "test-worker")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    steps = Step.objects.filter(run=run, kind=StepKind.METHOD).order_by("started_at", "id")
    assert list(steps.values_list("method", "status", "attempt")) == [
        ("prepare", "finished", 2),
        ("publish", "finished", 2),
        ("announce", "finished", 2),
    ]


def _in_a_thread(function):
    results = []
    thread = threading.Thread(target=lambda: results.append(function()))
    thread.start()
    thread.join()
    return results[0]


def test_what_counts_as_the_process_being_stopped(monkeypatch):
    assert stops_the_process(TimeoutException("timeout"))
    assert not stops_the_process(SystemExit(3))
    assert not stops_the_process(Abandon())

    # Ctrl-C: in the main thread of a process with a Python SIGINT handler (pytest's is Python's default one).
    assert stops_the_process(KeyboardInterrupt())
    assert not _in_a_thread(lambda: stops_the_process(KeyboardInterrupt()))
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_IGN)  # as in a django-q2 worker
    assert not stops_the_process(KeyboardInterrupt())

    # Cancellation: in a coroutine, the event loop's; in a sync step's thread, the step's own.
    async def in_the_loop():
        return stops_the_process(asyncio.CancelledError())

    assert asyncio.run(in_the_loop())
    assert not _in_a_thread(lambda: stops_the_process(asyncio.CancelledError()))
