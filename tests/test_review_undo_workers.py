"""A decision held back for undo, in real workers: released after its window by a worker's heartbeat, even
when the cluster that first took the resume task was killed with SIGKILL inside the window."""

from pathlib import Path

import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf

from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide
from tests.people import user_in_role
from tests.workers import QCluster, wait_for, worker_env

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

WINDOW = "2"


@pytest.fixture
def start_cluster(transactional_db, tmp_path: Path, monkeypatch, settings):
    # Tasks go to the broker the clusters read, not inline; this process decides with the workers' window.
    monkeypatch.setattr(Conf, "SYNC", False)
    settings.UNDO_SECONDS = int(WINDOW)
    started: list[QCluster] = []

    def start() -> QCluster:
        cluster = QCluster(worker_env(UNDO_SECONDS=WINDOW), tmp_path / f"qcluster-{len(started) + 1}.log")
        started.append(cluster)
        return cluster

    start.output = lambda: "\n".join(cluster.output() for cluster in started)  # type: ignore[attr-defined]
    yield start
    for cluster in started:
        cluster.stop()


def test_a_held_resume_survives_its_cluster_killed_in_the_window(start_cluster):
    get_broker().purge_queue()  # a Redis database outlives test databases
    rita = user_in_role("rita", "reviewer")
    first = start_cluster()
    run = run_create(flow_name="emit_review", inputs={"title": "Undo", "amount": 12.0})
    wait_for(
        lambda: FlowRun.objects.get(id=run.id).status == RunStatus.WAITING_REVIEW,
        timeout=120,
        what="the draft to pause",
        details=start_cluster.output,
    )
    item = ReviewItem.objects.get(run=run)

    decide(item_id=item.id, user=rita, outcome="approved")
    first.kill()  # inside the window: whatever it held of the resume is gone with it
    assert FlowRun.objects.get(id=run.id).status == RunStatus.WAITING_REVIEW
    start_cluster()

    wait_for(
        lambda: FlowRun.objects.get(id=run.id).is_finished,
        timeout=120,
        what="a live worker to resume the flow after the window",
        details=start_cluster.output,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{start_cluster.output()}"
    item.refresh_from_db()
    assert item.resumed_at >= item.resume_not_before
    steps = Step.objects.filter(run_id=run.id, kind=StepKind.METHOD, method__in=["publish", "discard"])
    assert steps.count() == 1
