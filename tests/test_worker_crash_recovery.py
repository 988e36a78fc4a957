"""Acceptance: a worker killed with SIGKILL in the middle of a step loses nothing and repeats only that step.

Real `manage.py qcluster` processes run the `counter` flow (tests/engine_flows.py)
against the test database and the configured broker (Redis when REDIS_URL is
set, otherwise the ORM). The first worker blocks inside a step and is killed;
once its lease has expired a fresh worker's own sweep (from its heartbeat,
twice a lease) requeues the run, and the fresh worker replays the checkpointed
steps and executes the rest.
"""

from collections import Counter
from pathlib import Path

import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf

from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus, RunTransition, Step, StepKind, StepStatus
from reviewconsole.engine.services import run_create
from tests.workers import QCluster, wait_for, worker_env

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

INPUTS = {"label": "crash", "loops": 3}
# What an uninterrupted run of `counter` with these inputs returns and checkpoints
# (tests/test_engine_runs.py checks the same shape for an inline run).
EXPECTED_RESULT = {"label": "crash", "count": 3, "log": ["prepare", "increment 1", "increment 2", "increment 3"]}
UNINTERRUPTED_CHECKPOINTS = [
    ("prepare", 1, ""),
    ("increment", 1, ""),
    ("check", 1, "again"),
    ("increment", 2, ""),
    ("check", 2, "again"),
    ("increment", 3, ""),
    ("check", 3, "done"),
    ("finish", 1, ""),
]
# Every step of an uninterrupted run, in order, as (method, occurrence).
ALL_STEPS = [(method, occurrence) for method, occurrence, _ in UNINTERRUPTED_CHECKPOINTS]


class Clusters:
    """Starts qcluster processes for one test; the fixture stops them all."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.effects_log = tmp_path / "effects.log"
        self.block_marker = tmp_path / "blocked"
        self.started: list[QCluster] = []

    def start(self, **env: str) -> QCluster:
        log_path = self.tmp_path / f"qcluster-{len(self.started) + 1}.log"
        cluster = QCluster(worker_env(SIDE_EFFECT_LOG=str(self.effects_log), **env), log_path)
        self.started.append(cluster)
        return cluster

    def start_blocking_in(self, step: str) -> QCluster:
        """A worker that sleeps inside `step` (e.g. "increment:2") after announcing it via the marker file."""
        return self.start(BLOCK_STEP=step, BLOCK_MARKER=str(self.block_marker), BLOCK_SECONDS="60")

    def effects(self) -> list[str]:
        return self.effects_log.read_text().split() if self.effects_log.exists() else []

    def output(self) -> str:
        return "\n".join(
            f"----- qcluster {number} (pgid {cluster.pgid}) -----\n{cluster.output()}"
            for number, cluster in enumerate(self.started, start=1)
        )


@pytest.fixture
def clusters(transactional_db, tmp_path, monkeypatch):
    # pytest-env's TASKS_SYNC=1 makes async_task run tasks inline in this
    # process; switch that off so run_create enqueues into the broker the
    # qcluster processes read.
    monkeypatch.setattr(Conf, "SYNC", False)
    managed = Clusters(tmp_path)
    # Depending on transactional_db makes this teardown run before the test
    # database is flushed, so no worker holds a connection or writes during it.
    yield managed
    for cluster in managed.started:
        cluster.stop()
    # Captured output is only shown when the test fails.
    print(managed.output())


def _checkpoints(run: FlowRun) -> list[tuple[str, int, str]]:
    rows = Checkpoint.objects.filter(flow_uuid=str(run.id)).order_by("sequence")
    return list(rows.values_list("method", "occurrence", "outcome"))


def _method_steps(run: FlowRun) -> list[Step]:
    return list(Step.objects.filter(run=run, kind=StepKind.METHOD).order_by("started_at", "id"))


def _crash_inside(clusters: Clusters, step: str, *, done_before: int) -> FlowRun:
    """Start a run, let a worker execute it up to `step`, and SIGKILL the worker's whole process group there.

    `done_before` is how many steps complete before `step` starts.
    """
    worker = clusters.start_blocking_in(step)
    run = run_create(flow_name="counter", inputs=INPUTS)
    wait_for(clusters.block_marker.exists, timeout=60, what=f"the worker to block in {step}", details=clusters.output)

    # Step rows are written by a background thread in the worker. Wait until
    # they show the finished steps and the blocked one as started, so the
    # record the killed attempt leaves behind is complete and the step
    # accounting below is deterministic.
    method = step.split(":")[0]
    expected = [(name, StepStatus.FINISHED) for name, _ in ALL_STEPS[:done_before]] + [(method, StepStatus.STARTED)]
    wait_for(
        lambda: [(s.method, s.status) for s in _method_steps(run)] == expected,
        timeout=15,
        what=f"the first attempt's step rows {expected}",
        details=clusters.output,
    )

    worker.kill()

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING, "nothing but the lease sweeper may notice the dead worker"
    assert _checkpoints(run) == UNINTERRUPTED_CHECKPOINTS[:done_before]
    return run


def _recover(clusters: Clusters, run: FlowRun) -> FlowRun:
    """Start a healthy worker and wait until it has swept the run up, once its lease ran out, and finished it."""
    clusters.start()

    # Nothing is queued: the fresh worker sweeps by itself, as every worker
    # does from the moment it starts. Successful tasks are not stored
    # (save_limit -1), so the sweep is seen by what it does: exactly this run
    # requeued because its worker was lost.
    wait_for(
        lambda: RunTransition.objects.filter(run=run, note="worker lost: lease expired").exists(),
        timeout=30,
        what="a worker's sweep to requeue the run",
        details=clusters.output,
    )
    assert RunTransition.objects.filter(note="worker lost: lease expired").count() == 1

    wait_for(
        lambda: FlowRun.objects.get(id=run.id).is_finished,
        timeout=90,
        what="the recovered run to finish",
        details=clusters.output,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}\n{clusters.output()}"
    return run


def _assert_recovered_like_an_uninterrupted_run(run: FlowRun, *, interrupted: str, replayed: int) -> None:
    assert run.result == EXPECTED_RESULT
    assert _checkpoints(run) == UNINTERRUPTED_CHECKPOINTS
    assert run.attempts == 2

    transitions = list(
        RunTransition.objects.filter(run=run).order_by("at", "id").values_list("from_status", "to_status")
    )
    assert transitions == [
        (RunStatus.QUEUED, RunStatus.QUEUED),  # created
        (RunStatus.QUEUED, RunStatus.RUNNING),  # claimed by the worker that dies
        (RunStatus.RUNNING, RunStatus.QUEUED),  # requeued by the sweeper
        (RunStatus.QUEUED, RunStatus.RUNNING),  # claimed by the fresh worker
        (RunStatus.RUNNING, RunStatus.COMPLETED),
    ]

    steps = _method_steps(run)
    # Each completion is recorded once: a method finished as often as it was checkpointed.
    finished = Counter(s.method for s in steps if s.status == StepStatus.FINISHED)
    checkpointed = Counter(method for method, _, _ in UNINTERRUPTED_CHECKPOINTS)
    assert finished == checkpointed
    assert [s.method for s in steps if s.status == StepStatus.INTERRUPTED] == [interrupted]
    assert not [s for s in steps if s.status == StepStatus.STARTED]

    # The second attempt replays the checkpointed prefix, then executes the rest.
    second_claim = RunTransition.objects.filter(run=run, to_status=RunStatus.RUNNING).order_by("at", "id")[1]
    second_attempt = [(s.method, s.status) for s in steps if s.started_at >= second_claim.at]
    assert second_attempt == [(name, StepStatus.REPLAYED) for name, _ in ALL_STEPS[:replayed]] + [
        (name, StepStatus.FINISHED) for name, _ in ALL_STEPS[replayed:]
    ]


def test_worker_killed_inside_a_step_repeats_only_that_step(clusters):
    run = _crash_inside(clusters, "increment:2", done_before=3)
    assert clusters.effects() == ["prepare", "increment:1", "check:1", "increment:2"]

    run = _recover(clusters, run)

    # increment#2 ran twice (killed, then again); every step before it ran once.
    assert clusters.effects() == [
        "prepare",
        "increment:1",
        "check:1",
        "increment:2",
        "increment:2",
        "check:2",
        "increment:3",
        "check:3",
        "finish",
    ]
    _assert_recovered_like_an_uninterrupted_run(run, interrupted="increment", replayed=3)


def test_worker_killed_in_the_last_step_replays_the_routers(clusters):
    run = _crash_inside(clusters, "finish", done_before=7)
    # The router's decisions are checkpointed before the crash ...
    assert [outcome for method, _, outcome in _checkpoints(run) if method == "check"] == ["again", "again", "done"]

    run = _recover(clusters, run)

    # ... so recovery takes the labels from the checkpoints: the router runs
    # once per loop in total, and only `finish` repeats.
    assert clusters.effects() == [
        "prepare",
        "increment:1",
        "check:1",
        "increment:2",
        "check:2",
        "increment:3",
        "check:3",
        "finish",
        "finish",
    ]
    _assert_recovered_like_an_uninterrupted_run(run, interrupted="finish", replayed=7)


def test_killing_the_whole_cluster_loses_no_queued_run(clusters):
    """Three runs queued; the cluster holds them all (one running, the others taken off the queue for its
    worker), and its whole process group is killed with SIGKILL. A new cluster finishes every run and repeats
    only the step the running one was killed in. With Redis the broker keeps no copy of the tasks it handed
    out; with the ORM broker it hands them out again only after `retry` (11 minutes)."""
    broker = get_broker()
    broker.purge_queue()  # a Redis database outlives test databases
    cluster = clusters.start_blocking_in("increment:2")
    warm = run_create(flow_name="counter", inputs={"label": "warm", "loops": 1})
    wait_for(lambda: FlowRun.objects.get(id=warm.id).is_finished, timeout=60, what="a warm worker")
    # The first run loops twice and blocks in its second increment; the others never get that far.
    runs = [run_create(flow_name="counter", inputs={"label": "run0", "loops": 2})]
    wait_for(clusters.block_marker.exists, timeout=15, what="the worker to block", details=clusters.output)
    runs += [run_create(flow_name="counter", inputs={"label": f"run{n}", "loops": 1}) for n in (1, 2)]
    # Killed well within a lease of queueing them, before the cluster's own sweep would queue again what it holds.
    wait_for(lambda: broker.queue_size() == 0, timeout=2, what="the cluster to hold every task")
    cluster.kill()
    assert [run.status for run in FlowRun.objects.filter(id__in=[r.id for r in runs]).order_by("created_at")] == [
        RunStatus.RUNNING,
        RunStatus.QUEUED,
        RunStatus.QUEUED,
    ]
    assert not RunTransition.objects.filter(note__contains="lost with its worker cluster").exists()
    clusters.start()

    wait_for(
        lambda: all(run.is_finished for run in FlowRun.objects.filter(id__in=[r.id for r in runs])),
        timeout=45,
        what="every run to finish",
        details=clusters.output,
    )
    for number, run in enumerate(runs):
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED, f"{run.error}\n{clusters.output()}"
        loops = 2 if number == 0 else 1
        log = ["prepare"] + [f"increment {count}" for count in range(1, loops + 1)]
        assert run.result == {"label": f"run{number}", "count": loops, "log": log}
        checks = [("check", count, "again" if count < loops else "done") for count in range(1, loops + 1)]
        increments = [("increment", count, "") for count in range(1, loops + 1)]
        assert sorted(_checkpoints(run)) == sorted([("prepare", 1, ""), *increments, *checks, ("finish", 1, "")])
    assert [run.attempts for run in runs] == [2, 1, 1]
    # Only the step the first run was killed in ran twice.
    effects = Counter(clusters.effects()) - Counter(["prepare", "increment:1", "check:1", "finish"])  # the warm run
    assert effects == {"prepare": 3, "increment:1": 3, "check:1": 3, "increment:2": 2, "check:2": 1, "finish": 3}
