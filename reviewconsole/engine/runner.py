"""Executes a claimed run in this worker: first start, crash recovery, or resume after review."""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection

from reviewconsole.engine import replay, services
from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.encoding import to_json
from reviewconsole.engine.events import collector, register_collector
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.engine.persistence import DjangoFlowPersistence
from reviewconsole.engine.registry import get_flow, load_flows

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def bootstrap_worker() -> None:
    """Load flows (CrewAI, persistence factory, structure check) and the step collector."""
    load_flows()
    register_collector()


@contextmanager
def _lease(execution: Execution, worker: str) -> Iterator[None]:
    """Renew the run's lease while it executes; notice cancellation between renewals."""
    stop = threading.Event()
    interval = max(0.5, min(settings.RUN_LEASE_SECONDS / 3, 5.0))

    def heartbeat() -> None:
        try:
            while not stop.wait(interval):
                if not services.run_renew_lease(run_id=execution.run_id, worker=worker):
                    execution.cancelled = True
                    return
        finally:
            connection.close()

    thread = threading.Thread(target=heartbeat, name=f"lease-{execution.run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _open_pause(run: FlowRun) -> PendingFeedback | None:
    return PendingFeedback.objects.filter(flow_uuid=str(run.id), cleared_at__isnull=True).first()


def execute(run_id: Any, worker: str) -> None:
    """Run a claimed run to its next stop: paused, completed, failed or cancelled."""
    from crewai.flow.async_feedback.types import HumanFeedbackPending

    bootstrap_worker()
    run = FlowRun.objects.get(id=run_id)
    spec = get_flow(run.flow_name)
    execution = Execution(run_id=str(run.id), flow_name=spec.name, attempt=run.attempts)
    replay.load_recorded(execution)
    persistence = DjangoFlowPersistence()
    token = current_execution.set(execution)
    try:
        with _lease(execution, worker):
            pause = _open_pause(run)
            if pause is not None:
                from reviewconsole.reviews.resume import resume_paused_flow

                outcome = resume_paused_flow(spec.flow_class, run, pause, execution, persistence)
            else:
                flow = spec.flow_class(persistence=persistence)
                replay.install(flow, execution)
                # With checkpoints, state comes back whole from the latest one;
                # re-applying the inputs would undo changes the flow made to them.
                inputs = {"id": str(run.id)} if execution.recorded else {"id": str(run.id), **run.inputs}
                outcome = flow.kickoff(inputs=inputs)
        collector.flush()
        if isinstance(outcome, HumanFeedbackPending):
            return
        state = execution.flow._copy_and_serialize_state() if execution.flow is not None else {}
        services.run_complete(run_id=run.id, worker=worker, result=to_json(outcome), state=to_json(state))
    except replay.RunCancelledError:
        collector.flush()
        logger.info("run %s stopped: cancelled", run.id)
    except Exception as error:
        collector.flush()
        logger.exception("run %s failed", run.id)
        services.run_fail(
            run_id=run.id, worker=worker, error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc()
        )
    finally:
        current_execution.reset(token)
