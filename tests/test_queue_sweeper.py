"""The task queue: resumes go first, tasks lost with a worker cluster are queued again, attempts are finite.

Tasks go to the configured broker (the ORM, or Redis when REDIS_URL is set) as from a web process, and this
test takes them off it as a cluster's pusher would; a cluster that dies with them is simply a test that
drops them. Nothing runs unless a test calls a task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.db.models import F
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage

from reviewconsole.engine import enqueue
from reviewconsole.engine.models import FlowRun, RunStatus, RunTransition, Step
from reviewconsole.engine.services import (
    run_claim,
    run_claim_for_resume,
    run_create,
    run_pause,
    runs_reclaim_expired,
    runs_sweep,
)
from reviewconsole.engine.tasks import resume_flow
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide

pytestmark = pytest.mark.django_db(transaction=True)


class Broker:
    """The broker's two queues, seen from outside."""

    def purge(self) -> None:
        for first in (False, True):
            enqueue._broker(first).purge_queue()

    def take(self, count: int) -> list[tuple[str, tuple]]:
        """Take `count` tasks off the queues, first-served queue first, as a cluster does: (task name, args)."""
        taken: list[tuple[str, tuple]] = []
        while len(taken) < count:
            for _, payload in enqueue._broker().dequeue() or []:
                task = SignedPackage.loads(payload)
                taken.append((task["func"].rsplit(".", 1)[-1], task["args"]))
        return taken

    def sizes(self) -> tuple[int, int]:
        """Tasks waiting: (on the first-served queue, on the other)."""
        return enqueue.queue_size(first=True), enqueue.queue_size()


@pytest.fixture
def broker(monkeypatch) -> Iterator[Broker]:
    monkeypatch.setattr(Conf, "SYNC", False)
    queues = Broker()
    queues.purge()  # a Redis database outlives test databases
    yield queues
    queues.purge()


@contextlib.contextmanager
def inline_tasks() -> Iterator[None]:
    previous, Conf.SYNC = Conf.SYNC, True
    try:
        yield
    finally:
        Conf.SYNC = previous


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="pw")


def paused_item() -> ReviewItem:
    with inline_tasks():
        run = run_create(flow_name="emit_review", inputs={})
    return ReviewItem.objects.get(run=run)


def handed_out_over_a_lease_ago(*runs: FlowRun) -> None:
    """Move the runs' task hand-out back past the lease, as if that much time had gone by."""
    FlowRun.objects.filter(id__in=[run.id for run in runs]).update(enqueued_at=F("enqueued_at") - timedelta(seconds=61))


@pytest.fixture
def no_tasks():
    """Tasks are neither queued nor run: the test plays the workers."""
    with patch("django_q.tasks.async_task"):
        yield


def lease_expired(run: FlowRun) -> None:
    FlowRun.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


# --------------------------------------------------------------------------- resumes first (item 12)


def test_a_decision_resumes_its_flow_ahead_of_queued_new_runs(broker, reviewer):
    item = paused_item()
    backlog = [run_create(flow_name="counter", inputs={}) for _ in range(3)]

    decide(item_id=item.id, user=reviewer, outcome="approved")

    assert broker.take(2) == [("resume_flow", (str(item.id),)), ("run_flow", (str(backlog[0].id),))]


# --------------------------------------------------------------------------- lost tasks (item 3)


def test_queued_runs_whose_tasks_a_killed_cluster_held_are_queued_again_once(broker):
    runs = [run_create(flow_name="counter", inputs={}) for _ in range(3)]
    # A cluster takes the two oldest off the queue and is killed before it claims them.
    assert broker.take(2) == [("run_flow", (str(runs[0].id),)), ("run_flow", (str(runs[1].id),))]
    assert runs_sweep() == 0, "within a lease, a cluster may still be about to claim them"

    handed_out_over_a_lease_ago(*runs)
    assert runs_sweep() == 2
    # The third is still in the broker and is not queued twice; the lost two go in behind it.
    assert broker.sizes() == (0, 3)
    assert runs_sweep() == 0, "queued again just now: not lost a second time"
    assert [args[0] for _, args in broker.take(3)] == [str(runs[2].id), str(runs[0].id), str(runs[1].id)]
    assert all(run.status == RunStatus.QUEUED for run in FlowRun.objects.filter(id__in=[r.id for r in runs]))
    notes = RunTransition.objects.filter(run=runs[0]).values_list("note", flat=True)
    assert "run_flow lost with its worker cluster: queued again" in notes


def test_a_backlog_still_in_the_broker_is_never_queued_twice(broker):
    runs = [run_create(flow_name="counter", inputs={}) for _ in range(5)]
    handed_out_over_a_lease_ago(*runs)
    assert runs_sweep() == 0
    assert broker.sizes() == (0, 5)


def test_a_decision_whose_resume_a_killed_cluster_held_is_resumed(broker, reviewer, side_effects):
    item = paused_item()
    decide(item_id=item.id, user=reviewer, outcome="approved")
    assert broker.take(1) == [("resume_flow", (str(item.id),))]  # and lost with its cluster
    assert runs_sweep() == 0

    handed_out_over_a_lease_ago(item.run)
    assert runs_sweep() == 1
    assert broker.sizes() == (1, 1)  # the resume again; the autonomy check never left
    assert runs_sweep() == 0

    ((_, args),) = broker.take(1)
    with inline_tasks():
        resume_flow(*args)
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert side_effects() == ["draft", "publish"]


# --------------------------------------------------------------------------- finite attempts (item 6)


def test_a_run_whose_worker_keeps_dying_fails_after_the_attempt_limit(no_tasks, settings):
    """As a run past the task timeout does: django-q2 kills its worker, the lease runs out, it is taken over."""
    settings.RUN_MAX_ATTEMPTS = 3
    run = run_create(flow_name="counter", inputs={})
    for attempt in (1, 2, 3):
        assert run_claim(run_id=run.id, worker=f"w{attempt}")
        lease_expired(run)
        requeued = runs_reclaim_expired()
        assert requeued == ([str(run.id)] if attempt < 3 else [])

    run.refresh_from_db()
    assert (run.status, run.attempts, run.lease_expires_at) == (RunStatus.FAILED, 3, None)
    assert run.error == (
        "gave up after 3 attempts: each time its worker stopped before finishing "
        f"(killed, or past the task timeout of {settings.TASK_TIMEOUT_SECONDS} s)"
    )
    assert not run_claim(run_id=run.id, worker="w4")


def _died_in(run: FlowRun, method: str) -> None:
    """The step row a worker that dies in `method` during the run's current attempt leaves behind."""
    run.refresh_from_db()
    Step.objects.create(run=run, method=method, attempt=run.attempts, started_at=timezone.now())


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        (["increment", "increment", "increment"], "worker died 3 times while running step 'increment': "),
        ([None, "increment", "increment"], "worker died 3 times while running step 'increment': "),
        (["increment", "check", "check"], "gave up after 3 attempts: "),
        (["increment", "increment", None], "gave up after 3 attempts: "),
    ],
    ids=["same-step", "first-death-too-quick-to-record", "different-steps", "last-step-unknown"],
)
def test_a_run_whose_worker_died_in_the_same_step_each_time_names_it(no_tasks, settings, steps, error):
    settings.RUN_MAX_ATTEMPTS = 3
    run = run_create(flow_name="counter", inputs={})
    for attempt, step in enumerate(steps, start=1):
        assert run_claim(run_id=run.id, worker=f"w{attempt}")
        if step:
            _died_in(run, step)
        lease_expired(run)
        runs_reclaim_expired()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith(error), run.error


def test_a_redelivered_task_gives_up_too(no_tasks, settings):
    settings.RUN_MAX_ATTEMPTS = 2
    run = run_create(flow_name="counter", inputs={})
    assert run_claim(run_id=run.id, worker="w1")
    lease_expired(run)
    assert run_claim(run_id=run.id, worker="w2"), "a second attempt"
    lease_expired(run)
    assert not run_claim(run_id=run.id, worker="w3")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("gave up after 2 attempts: ")


def test_pauses_for_review_start_a_new_count(no_tasks, settings):
    settings.RUN_MAX_ATTEMPTS = 2
    run = run_create(flow_name="counter", inputs={})
    assert run_claim(run_id=run.id, worker="w1")
    lease_expired(run)
    assert runs_reclaim_expired() == [str(run.id)]
    assert run_claim(run_id=run.id, worker="w2")
    assert run_pause(run_id=run.id, note="paused", state={})
    assert run_claim_for_resume(run_id=run.id, worker="w3", note="resuming")
    lease_expired(run)

    assert runs_reclaim_expired() == [str(run.id)], "the resumed stretch has had one attempt"
    run.refresh_from_db()
    assert (run.status, run.attempts) == (RunStatus.QUEUED, 3)
