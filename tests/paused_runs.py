"""Start a test flow up to its review pause, and read the finished run after the decision."""

from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem


def paused_item(flow_name: str) -> ReviewItem:
    """Run `flow_name` (a flow of tests/engine_flows.py taking ReviewInputs) to its pause; the review item."""
    run = run_create(flow_name=flow_name, inputs={"title": "Invoice 7", "amount": 120.0})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    return ReviewItem.objects.get(run=run)


def finished_run(item: ReviewItem) -> FlowRun:
    """The item's run, which the decision must have completed."""
    run = FlowRun.objects.get(id=item.run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    return run
