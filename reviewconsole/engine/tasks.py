"""django-q2 tasks. They take ids, claim their run by a conditional update, and
return quietly when a redelivered task finds the work already taken or done."""

from __future__ import annotations

import logging

from reviewconsole.engine import runner, services
from reviewconsole.engine.pause_handler import pause_handler
from reviewconsole.logs import log_ids

logger = logging.getLogger(__name__)


def run_flow(run_id: str) -> None:
    """Execute a queued run (or one whose previous worker died) to its next stop."""
    worker = runner.worker_name()
    with log_ids(run_id=run_id):
        if not services.run_claim(run_id=run_id, worker=worker):
            logger.info("run %s not claimable (already taken or finished)", run_id)
            return
        runner.execute(run_id, worker)


def resume_flow(answer_id: str) -> None:
    """Apply an answer to a pause (a decided review item) to its paused run and continue the flow."""
    worker = runner.worker_name()
    # The answer to a pause is the review item that asked for it: its id goes on the lines as the item's.
    with log_ids(item_id=answer_id):
        run_id = pause_handler().resume_claim(answer_id=answer_id, worker=worker)
        if run_id is None:
            logger.info("answer %s: resume already taken or not decided", answer_id)
            return
        runner.execute(run_id, worker)


def start_scheduled_run(flow_name: str, inputs_json: str = "{}") -> str:
    """Entry point for django-q2 schedules: validate the inputs and queue a run."""
    from reviewconsole.engine.registry import get_flow

    spec = get_flow(flow_name)
    inputs = spec.input_model.model_validate_json(inputs_json)
    return str(services.run_create(flow_name=spec.name, inputs=inputs.model_dump(mode="json"), trigger="schedule").id)


def purge_expired_runs() -> dict[str, int]:
    """The retention schedule: remove run data older than RETENTION_DAYS (nothing when it is 0)."""
    from django.conf import settings

    return dict(services.runs_purge_expired(days=settings.RETENTION_DAYS))
