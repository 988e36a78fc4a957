"""Acceptance: a worker killed with SIGKILL after a step returned a crew result; the next worker's listener gets
the crew result, not its JSON.

Real `manage.py qcluster` processes run `typed_handoff` (tests/typed_flows.py); see
tests/test_worker_crash_recovery.py for the harness and how recovery is seen.
"""

import pytest

from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from tests.test_worker_crash_recovery import clusters  # noqa: F401 (the fixture)
from tests.workers import wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def test_a_crew_result_reaches_its_listener_across_a_kill_9(clusters):  # noqa: F811
    worker = clusters.start_blocking_in("consume")
    run = run_create(flow_name="typed_handoff", inputs={"kind": "crew_output"})
    wait_for(clusters.block_marker.exists, timeout=60, what="the worker to block in consume", details=clusters.output)
    # The start step's checkpoint is committed before its listener starts.
    produced = Checkpoint.objects.get(flow_uuid=str(run.id), method="produce")
    assert produced.value_types["output"]["class"] == "crewai.crews.crew_output:CrewOutput"

    worker.kill()
    clusters.start()
    wait_for(
        lambda: FlowRun.objects.get(id=run.id).is_finished,
        timeout=90,
        what="the recovered run to finish",
        details=clusters.output,
    )

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}\n{clusters.output()}"
    crew_output = "crewai.crews.crew_output.CrewOutput"
    assert run.result == {"received": crew_output, "same": True, "first_output": crew_output}
    assert clusters.effects() == ["produce", "consume", "consume"]
    assert run.attempts == 2
