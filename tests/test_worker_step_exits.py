"""Under a real qcluster: a step's exit() fails its run and the worker lives on; a step that kills its worker
on every attempt fails the run naming the step; a broken flow module is logged once and its runs fail at once.

The flows are tests/flows_unruly.py (steps log `step:pid`) and tests/flows_broken_import.py.
"""

import os
from pathlib import Path

import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from tests.workers import QCluster, wait_for, worker_env

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

BROKEN_MODULE_LOGGED = "flow module tests.flows_broken_import could not be loaded"


class Cluster:
    """One qcluster with one worker, running the unruly flows; `effects()` reads what its steps logged."""

    def __init__(self, tmp_path: Path) -> None:
        self.effects_log = tmp_path / "effects.log"
        modules = "flows,tests.engine_flows,tests.flows_unruly,tests.flows_broken_import"
        env = worker_env(FLOW_MODULES=modules, SIDE_EFFECT_LOG=str(self.effects_log))
        self.qcluster = QCluster(env, tmp_path / "qcluster.log")

    def effects(self) -> list[str]:
        return self.effects_log.read_text().split() if self.effects_log.exists() else []

    def pids_of(self, step: str) -> list[int]:
        return [int(line.split(":")[1]) for line in self.effects() if line.startswith(f"{step}:")]

    def finish(self, flow: str, inputs: dict[str, str], *, timeout: float = 60) -> FlowRun:
        run = run_create(flow_name=flow, inputs=inputs)
        wait_for(
            lambda: FlowRun.objects.get(id=run.id).is_finished,
            timeout=timeout,
            what=f"the run of {flow} {inputs} to finish",
            details=self.qcluster.output,
        )
        run.refresh_from_db()
        return run


@pytest.fixture
def cluster(transactional_db, tmp_path, monkeypatch):
    # Real (async) tasks, into the broker the cluster reads (pytest-env runs them inline otherwise).
    monkeypatch.setattr(Conf, "SYNC", False)
    get_broker().purge_queue()  # a Redis database outlives test databases
    started = Cluster(tmp_path)
    yield started
    started.qcluster.stop()
    print(started.qcluster.output())  # shown when the test fails


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_exit_in_a_step_fails_the_run_and_the_worker_takes_the_next_task(cluster):
    cases = [
        ({"leave_in": "publish", "how": "exit"}, "SystemExit(3) raised in step 'publish'"),
        ({"leave_in": "publish", "how": "keyboard"}, "KeyboardInterrupt() raised in step 'publish'"),
        ({"leave_in": "publish", "how": "base"}, "Abandon('abandon ship') raised in step 'publish'"),
        ({"leave_in": "announce", "how": "exit"}, "SystemExit(3) raised in step 'announce'"),
        ({"leave_in": "announce", "how": "keyboard"}, "KeyboardInterrupt() raised in step 'announce'"),
    ]
    for inputs, error in cases:
        run = cluster.finish("unruly", inputs)
        assert (run.status, run.error, run.attempts) == (RunStatus.FAILED, error, 1), cluster.qcluster.output()

    after = cluster.finish("unruly", {})
    assert (after.status, after.result) == (RunStatus.COMPLETED, ["prepare", "publish", "announce"])
    # One worker process ran every run, and still runs.
    pids = set(cluster.pids_of("prepare"))
    assert len(pids) == 1 and len(cluster.pids_of("prepare")) == len(cases) + 1
    assert _alive(pids.pop())
    assert "reincarnated worker" not in cluster.qcluster.output()


def test_a_broken_flow_module_is_logged_once_and_its_runs_fail_at_once(cluster):
    for _ in range(3):
        run = cluster.finish("half_loaded", {})
        assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
        assert run.error == (
            "Flow 'half_loaded' cannot be loaded: "
            "ModuleNotFoundError: No module named 'reviewconsole_no_such_dependency'"
        )
    assert cluster.finish("unruly", {}).status == RunStatus.COMPLETED
    assert cluster.qcluster.output().count(BROKEN_MODULE_LOGGED) == 1


def test_a_step_that_kills_its_worker_on_every_attempt_fails_the_run_naming_the_step(cluster):
    # os._exit at once: no step row of the first attempt can be on record before it dies.
    run = cluster.finish("unruly", {"leave_in": "publish", "how": "os_exit"}, timeout=120)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("worker died 3 times while running step 'publish': "), run.error
    assert run.attempts == 3
    # Three worker processes died in it; `prepare` ran once and was replayed after.
    assert len(set(cluster.pids_of("publish"))) == 3
    assert len(cluster.pids_of("prepare")) == 1
