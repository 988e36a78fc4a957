"""Acceptance: three clusters under load, one killed with SIGKILL mid-load; every run ends, no finished step runs
again, and every decision is applied exactly once.

Three real `qcluster` processes (tests/workers.py) work through invoice runs on PostgreSQL and Redis while the
test decides each review item as it appears, through `decide()` as the pages and the API do. Once a third of
the runs have been decided and the doomed cluster's worker holds a running run, its whole process group
(sentinel, worker, monitor) is killed. The survivors' sweeps (twice a lease, 3 s in tests/workers.py) put the
runs and resumes it held or had taken off the queue back to work.

What "a finished step ran again" means here: a method's completion is checkpointed once per occurrence (a
unique constraint), its step row is marked finished in the same transaction, and a replayed method is recorded
as `replayed`. So every run, killed or not, has exactly as many `finished` rows per method as checkpoints; a
step that ran twice (its first run killed before its checkpoint) shows as `interrupted`, then `finished`.
"""

import time
import uuid
from collections import Counter

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker

from flows.invoice_samples import sample_invoices
from flows.invoices import OUTPUT_TYPE
from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus, RunTransition, Step, StepKind, StepStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.services import decide
from tests.people import user_in_role
from tests.workers import wait_for

pytestmark = [
    pytest.mark.workers,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL,
        reason="scale-out runs on PostgreSQL and Redis (set DATABASE_URL and REDIS_URL): SQLite takes one writer "
        "at a time, and the ORM broker hands a lost task out again only after `retry`",
    ),
]

RUNS = 36
CLUSTERS = 3
# Each reading takes this long in the demo model, so a step is in flight most of the time a worker is busy.
LLM_DELAY_MS = "150"
# What the flow's decision listeners return as their stage (flows/invoices.py).
STAGE_OF = {"approved": "approved", "rejected": "rejected"}
LOST_NOTES = ("worker lost: lease expired", "lost with its worker cluster")


def _decide_pending(reviewers: list, reason_code: str, decided: dict) -> int:
    """Decide every pending item: every third rejected, the others approved (by a second reviewer too where the
    item needs four eyes). Returns how many were decided."""
    pending = ReviewItem.objects.filter(status=ReviewStatus.PENDING).exclude(id__in=decided).order_by("created_at")
    for number, item_id in enumerate(pending.values_list("id", flat=True), start=len(decided)):
        outcome = "rejected" if number % 3 == 2 else "approved"
        reason = reason_code if outcome == "rejected" else ""
        if not isinstance(decide(item_id=item_id, user=reviewers[0], outcome=outcome, reason_code=reason), Decision):
            decide(item_id=item_id, user=reviewers[1], outcome=outcome)
        decided[item_id] = outcome
    return len(decided)


def _running_in(cluster) -> bool:
    """Whether a worker of `cluster` holds a running run (a step of it is in flight)."""
    workers = FlowRun.objects.filter(status=RunStatus.RUNNING).values_list("worker", flat=True)
    return any(worker and cluster.holds(int(worker.rsplit(":", 1)[1])) for worker in workers)


def _steps_finished_twice(run_ids: list) -> dict:
    """(run, method): finished rows minus checkpoints, where they differ (see the module's docstring)."""
    finished = Counter(
        Step.objects.filter(run_id__in=run_ids, kind=StepKind.METHOD, status=StepStatus.FINISHED).values_list(
            "run_id", "method"
        )
    )
    checkpoints = Checkpoint.objects.filter(flow_uuid__in=[str(run_id) for run_id in run_ids])
    checkpointed = Counter(
        (uuid.UUID(flow_uuid), method) for flow_uuid, method in checkpoints.values_list("flow_uuid", "method")
    )
    return {
        key: finished[key] - checkpointed[key] for key in finished | checkpointed if finished[key] != checkpointed[key]
    }


def test_killing_one_of_three_clusters_under_load_loses_nothing(start_cluster, capsys):
    get_broker().purge_queue()  # a Redis database outlives test databases
    reviewers = [user_in_role(f"scale-reviewer-{n}", "reviewer") for n in (1, 2)]
    reason_code = (policy_ensure(output_type=OUTPUT_TYPE).reject_reasons or [""])[0]
    clusters = [start_cluster(DEMO_LLM_DELAY_MS=LLM_DELAY_MS) for _ in range(CLUSTERS)]
    doomed = clusters[0]

    runs = [run_create(flow_name="invoice_processing", inputs={"raw_invoice": s.text}) for s in sample_invoices(RUNS)]
    run_ids = [run.id for run in runs]
    decided: dict = {}

    # Decisions are made while runs are still starting; the kill comes a third of the way in, inside a step.
    wait_for(
        lambda: _decide_pending(reviewers, reason_code, decided) >= RUNS // 3 and _running_in(doomed),
        timeout=60,
        what=f"{RUNS // 3} decisions and a run in flight in the doomed cluster",
        details=start_cluster.output,
    )
    at_kill = Counter(FlowRun.objects.filter(id__in=run_ids).values_list("status", flat=True))
    decided_at_kill = len(decided)
    doomed.kill()
    killed_at, killed_at_wall = time.monotonic(), timezone.now()

    def all_ended() -> bool:
        _decide_pending(reviewers, reason_code, decided)
        return not FlowRun.objects.filter(id__in=run_ids).exclude(status__in=[RunStatus.COMPLETED]).exists()

    wait_for(all_ended, timeout=90, what="every run to complete", details=start_cluster.output)
    all_done = time.monotonic() - killed_at

    # Every run ends, as the flow defines: its decision's stage.
    finished = {run.id: run for run in FlowRun.objects.filter(id__in=run_ids)}
    items = {item.run_id: item for item in ReviewItem.objects.filter(run_id__in=run_ids)}
    assert set(items) == set(run_ids), "every invoice is reviewed while the type has no autonomy"
    assert len(decided) == RUNS
    for run_id, run in finished.items():
        assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}"
        assert run.result["stage"] == STAGE_OF[decided[items[run_id].id]]

    # No decision is lost, and each is applied once: one resume claim per item, one completion of the listener
    # that takes the decision in.
    for run_id, item in items.items():
        item.refresh_from_db()
        assert item.resumed_at is not None, f"the decision on {item.id} was never resumed"
        claims = RunTransition.objects.filter(run_id=run_id, note=f"resuming after review {item.id}").count()
        assert claims == 1, f"the decision on {item.id} was claimed {claims} times"
    listeners = Counter(
        Checkpoint.objects.filter(flow_uuid__in=[str(r) for r in run_ids], method__in=["approve", "reject"])
        .values_list("flow_uuid", flat=True)
        .iterator()
    )
    assert sorted(listeners.values()) == [1] * RUNS

    # The kill was felt (the survivors recovered what the doomed cluster held), and no finished step ran again.
    lost = RunTransition.objects.filter(run_id__in=run_ids, note__regex="|".join(LOST_NOTES))
    killed = set(lost.values_list("run_id", flat=True))
    assert killed, "the doomed cluster held no run or task when it was killed"
    assert _steps_finished_twice(run_ids) == {}

    # How long after the kill the sweeps had queued again the last of what the doomed cluster held.
    recovery = (max(lost.values_list("at", flat=True)) - killed_at_wall).total_seconds()
    with capsys.disabled():
        print(
            f"\nscale-out: {RUNS} runs, {len(decided)} decisions ({decided_at_kill} before the kill), "
            f"{CLUSTERS} clusters, 1 killed with runs {dict(at_kill)}; {len(killed)} runs recovered "
            f"({lost.count()} requeues), every run completed {all_done:.1f}s after the kill; "
            f"the last requeued {recovery:.1f}s after it"
        )
