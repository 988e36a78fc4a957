"""The conformance flows survive a kill -9 of their worker inside a step, under real `qcluster` processes.

For each row of tests/conformance/cases.py naming a step to kill in (`killed_in`, one of its `handoffs`, whose
input is the value the step before returned), a worker blocks inside that step and its whole process group is
killed with SIGKILL (tests/test_conformance.py fails and retries every handoff step). Reviews are decided as
the run pauses, so a worker may die after resuming a run. A fresh worker's sweep takes the run over
once its lease expires, replays the checkpointed steps and runs the rest: the run must end with the row's
expected result, and only the killed step may have run twice. tests/test_worker_crash_recovery.py checks
the engine's own bookkeeping of such a recovery in detail.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from tests.conformance.cases import KILLS, Review
from tests.conformance.harness import decide_pending
from tests.workers import wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def _effects(tmp_path: Path) -> Counter:
    log = tmp_path / "effects.log"
    return Counter(log.read_text().split() if log.exists() else [])


def _run_until(run: FlowRun, done: Callable[[], bool], reviews: Iterator[Review], reviewer, output) -> FlowRun:
    """Wait for `done` or the run's end, deciding each pause with the next review on the way."""

    def progressed() -> bool:
        decide_pending(run, reviews, reviewer)
        return done() or FlowRun.objects.get(id=run.id).is_finished

    wait_for(progressed, timeout=60, what=f"run {run.id} to get on", details=output)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in KILLS])
def test_a_worker_killed_inside_a_step_loses_nothing(case, start_cluster, tmp_path, django_user_model):
    reviewer = django_user_model.objects.create_user("conformance-reviewer", password="pw")
    step, marker, reviews = case.killed_in, tmp_path / "blocked", iter(case.reviews)
    doomed = start_cluster(BLOCK_STEP=step, BLOCK_MARKER=str(marker), BLOCK_SECONDS="60")
    run = _run_until(
        run_create(flow_name=case.flow, inputs=case.inputs), marker.exists, reviews, reviewer, start_cluster.output
    )
    assert marker.exists(), f"the run ended before the worker blocked in {step}: {run.status} {run.error}"
    before_kill = _effects(tmp_path)
    doomed.kill()

    start_cluster()
    run = _run_until(run, lambda: False, reviews, reviewer, start_cluster.output)
    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}"
    assert next(reviews, None) is None
    assert run.result == case.expected
    # The first claim, one per resume after a decision, and the fresh worker's.
    assert run.attempts == 2 + len(case.reviews)
    # The steps finished before the kill were replayed; the killed one ran again, once.
    rerun = _effects(tmp_path) - before_kill
    assert rerun[step] == 1
    assert all(before_kill[name] == 1 for name in before_kill)
    assert not set(rerun) & (set(before_kill) - {step})


def test_exit_in_a_step_fails_the_run_and_the_worker_lives_on(start_cluster, tmp_path):
    cluster = start_cluster()
    run = run_create(flow_name="conf_exit", inputs={})
    wait_for(
        lambda: FlowRun.objects.get(id=run.id).is_finished,
        timeout=60,
        what="the run to end",
        details=start_cluster.output,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "SystemExit" in run.error
    assert "no data to process" in run.error
    assert run.attempts == 1
    assert _effects(tmp_path) == Counter(["prepare", "bail_out"])

    # The same worker takes the next run.
    after = run_create(flow_name="conf_dict_state", inputs={"items": ["x"]})
    wait_for(lambda: FlowRun.objects.get(id=after.id).is_finished, timeout=30, what="the next run")
    assert FlowRun.objects.get(id=after.id).status == RunStatus.COMPLETED
    assert cluster.alive()
