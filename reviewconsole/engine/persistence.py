"""CrewAI's FlowPersistence contract on the Django ORM.

Checkpoints are append-only. When the flow is one of our runs (an active
Execution), each checkpoint also records the method's return value and routing
outcome, which is what lets a re-run replay finished steps instead of executing
them again (see replay.py).
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from crewai.flow.async_feedback.types import PendingFeedbackContext
from crewai.flow.human_feedback import HumanFeedbackResult
from crewai.flow.persistence.base import FlowPersistence
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone
from pydantic import BaseModel, Field

from reviewconsole.engine import typed_values
from reviewconsole.engine.context import CheckpointNumbers, Execution, execution_for, in_event_loop
from reviewconsole.engine.encoding import to_json
from reviewconsole.engine.events import checkpoint_close, collector
from reviewconsole.engine.models import Checkpoint, FlowRun, PendingFeedback
from reviewconsole.engine.pause_handler import pause_handler
from reviewconsole.inputs import UnsafeInputError, check_value

T = TypeVar("T")

# Two processes writing one flow's checkpoints (a worker whose lease was taken
# over, or a flow outside the engine resumed twice) race for the next sequence
# number; the unique constraint catches the loser, which retries with numbers
# read from the database.
_SEQUENCE_RETRIES = 5


def _state_json(state_data: dict[str, Any] | BaseModel) -> dict[str, Any]:
    if isinstance(state_data, BaseModel):
        return to_json(state_data.model_dump(mode="python"))
    if isinstance(state_data, dict):
        return to_json(state_data)
    raise ValueError(f"state_data must be a pydantic model or a dict, got {type(state_data).__name__}")


class UnstorableValueError(ValueError):
    """A step value or flow state that JSON, and so the database, cannot hold."""


def _storable(data: Any, what: str) -> Any:
    """`data` (JSON-ready), or UnstorableValueError naming `what` and where the NaN, Infinity or NUL is.

    JSON has no NaN or Infinity, and PostgreSQL refuses NUL characters: without this the INSERT would fail with
    a constraint error that names neither the step nor the value.
    """
    try:
        check_value(data)
    except UnsafeInputError as error:
        raise UnstorableValueError(f"{what} cannot be stored: {error}") from None
    return data


_DB_THREAD_PREFIX = "flow-db"
_db_thread: ThreadPoolExecutor | None = None
_db_thread_pid: int | None = None


def _database_thread() -> ThreadPoolExecutor:
    """One long-lived thread per process for the persistence's ORM calls.

    A thread (and so a connection) per call would cost a connect each time;
    django-q2 forks workers, so each process makes its own.
    """
    global _db_thread, _db_thread_pid
    if _db_thread_pid != os.getpid():
        _db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_DB_THREAD_PREFIX)
        _db_thread_pid = os.getpid()
    return _db_thread


def _on_database_thread(func: Callable[..., T]) -> Callable[..., T]:
    """Run an ORM call on the database thread unless called from the main thread.

    CrewAI calls load_state, save_pending_feedback and clear_pending_feedback
    directly inside `asyncio.run`, where Django refuses synchronous queries,
    and save_state from the event loop's executor threads, which live for one
    kickoff: each would open (and abandon) a connection of its own.
    """

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> T:
        if threading.current_thread() is threading.main_thread() and not in_event_loop():
            return func(*args, **kwargs)
        if threading.current_thread().name.startswith(_DB_THREAD_PREFIX):
            return func(*args, **kwargs)

        def in_thread() -> T:
            close_old_connections()
            try:
                return func(*args, **kwargs)
            finally:
                close_old_connections()

        return _database_thread().submit(contextvars.copy_context().run, in_thread).result()

    return call


def _run_id(flow_uuid: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(flow_uuid))
    except ValueError:
        return None


def _numbers_in_database(flow_uuid: str) -> CheckpointNumbers:
    return CheckpointNumbers.from_rows(Checkpoint.objects.filter(flow_uuid=flow_uuid).values_list("method", "sequence"))


def _completion_record(execution: Execution | None, method_name: str) -> dict[str, Any]:
    """The return value, routing outcome and feedback of the method that just completed.

    CrewAI calls save_state after appending the method's output (normal path),
    or, when resuming a paused method, after recording the human feedback but
    before appending the output; both cases are read off the flow here.
    """
    if execution is None or execution.flow is None:
        return {}
    flow = execution.flow
    pending = flow._pending_feedback_context
    if pending is not None and pending.method_name == method_name:
        feedback: HumanFeedbackResult | None = flow.last_human_feedback
        output = feedback.output if feedback else None
    else:
        # The latest entry of this method, not the latest entry: steps that run concurrently (two starts, say)
        # may append theirs between this one's append and its save_state.
        entry = next((entry for entry in reversed(flow._method_outputs) if entry.get("method") == method_name), {})
        feedback = entry.get("human_feedback")
        output = entry.get("output")
    outcome = ""
    if feedback is not None and feedback.outcome:
        outcome = str(feedback.outcome)
    elif flow._is_router(method_name) and output is not None:
        outcome = str(getattr(output, "value", output))
    output_json, output_type = typed_values.encode(output)
    feedback_json, feedback_type = None, None
    if feedback is not None:
        feedback_output_json, feedback_type = typed_values.encode(feedback.output)
        feedback_json = to_json(feedback) | {"output": feedback_output_json}
    value_types = {"output": output_type, "feedback_output": feedback_type}
    return {
        "output": output_json,
        "outcome": outcome,
        "feedback": feedback_json,
        "value_types": {part: node for part, node in value_types.items() if node is not None} or None,
    }


class DjangoFlowPersistence(FlowPersistence):
    """Flow state, checkpoints and pending feedback in the project's database."""

    persistence_type: str = Field(default="DjangoFlowPersistence")

    def init_db(self) -> None:
        """Nothing to do: migrations own the schema."""

    @_on_database_thread
    def save_state(self, flow_uuid: str, method_name: str, state_data: dict[str, Any] | BaseModel) -> None:
        """Append a checkpoint for a completed method.

        Side effects, in one transaction: one Checkpoint row; for our runs,
        FlowRun.state set to the same state, and the step rows of the methods
        finished since the last write, this method's included: a step row
        costs no commit of its own, and a completion is never checkpointed
        without its step row closed (nor the other way round).
        """
        flow_uuid = str(flow_uuid)
        state = _storable(_state_json(state_data), f"the flow state after step '{method_name}'")
        execution = execution_for(flow_uuid)
        record = _completion_record(execution, method_name)
        _storable(record.get("output"), f"the value step '{method_name}' returned")
        run_id = _run_id(flow_uuid)
        # The worker holding a run's lease is its only writer, so it numbers
        # checkpoints from memory; a flow run outside the engine, or a
        # collision, takes the numbers from the database.
        numbers = execution.checkpoints if execution is not None else _numbers_in_database(flow_uuid)
        # Not for CrewAI's own checkpoints inside a step (`_ask_checkpoint`): that step goes on.
        ours = execution is not None and execution.flow is not None and method_name in execution.flow._methods
        with collector.writing(defer_starts=True, closing=checkpoint_close(execution, method_name) if ours else None):
            for attempt in range(_SEQUENCE_RETRIES):
                sequence, occurrence = numbers.next_for(method_name)
                try:
                    # A savepoint: a number taken meanwhile rolls back only this insert, not the step rows
                    # the transaction began with.
                    with transaction.atomic():
                        Checkpoint.objects.create(
                            flow_uuid=flow_uuid,
                            sequence=sequence,
                            method=method_name,
                            occurrence=occurrence,
                            state=state,
                            output=record.get("output"),
                            outcome=record.get("outcome", ""),
                            feedback=record.get("feedback"),
                            value_types=record.get("value_types"),
                        )
                    break
                except IntegrityError:
                    if attempt == _SEQUENCE_RETRIES - 1:
                        raise
                    numbers = _numbers_in_database(flow_uuid)
                    if execution is not None:
                        execution.checkpoints = numbers
            if run_id is not None:
                FlowRun.objects.filter(id=run_id).update(state=state, updated_at=timezone.now())
        numbers.advance(method_name)

    def load_state(self, flow_uuid: str) -> dict[str, Any] | None:
        """The paused state if the flow waits for feedback, else the latest checkpoint's.

        A run this worker is starting or replaying has its checkpoints loaded
        already (and no open pause, or it would be resuming instead), so the
        answer needs no query.
        """
        execution = execution_for(str(flow_uuid))
        if execution is not None and execution.flow is not None and execution.flow.pending_feedback is None:
            latest = max(execution.recorded.values(), key=lambda row: row.sequence, default=None)
            return latest.state if latest is not None else None
        return self._load_state_from_database(str(flow_uuid))

    @_on_database_thread
    def _load_state_from_database(self, flow_uuid: str) -> dict[str, Any] | None:
        pending = self._open_pending(str(flow_uuid))
        if pending is not None:
            return pending.state
        latest = Checkpoint.objects.filter(flow_uuid=str(flow_uuid)).order_by("-sequence").values("state").first()
        return latest["state"] if latest else None

    @_on_database_thread
    def save_pending_feedback(
        self, flow_uuid: str, context: PendingFeedbackContext, state_data: dict[str, Any] | BaseModel
    ) -> None:
        """Record a pause.

        Side effects, in one transaction: a PendingFeedback row (or the open one
        replaced); for a new pause of our runs, whatever the pause handler
        does with it (the reviews app: the review item and the run's move to
        waiting_review).
        """
        flow_uuid = str(flow_uuid)
        state = _storable(_state_json(state_data), f"the flow state at the pause in step '{context.method_name}'")
        encoded = _storable(to_json(context.to_dict()), f"the output step '{context.method_name}' sends to review")
        with transaction.atomic():
            # A provider may save the pause itself before CrewAI saves it again:
            # the second save replaces the first, as in CrewAI's own backend.
            replaced = PendingFeedback.objects.filter(flow_uuid=flow_uuid, cleared_at__isnull=True).update(
                method=context.method_name, context=encoded, state=state
            )
            if replaced:
                return
            pending = PendingFeedback.objects.create(
                flow_uuid=flow_uuid, method=context.method_name, context=encoded, state=state
            )
            run_id = _run_id(flow_uuid)
            if run_id is not None and FlowRun.objects.filter(id=run_id).exists():
                pause_handler().pause_opened(run_id=run_id, pending=pending, context=context, state=state)

    @_on_database_thread
    def load_pending_feedback(self, flow_uuid: str) -> tuple[dict[str, Any], PendingFeedbackContext] | None:
        pending = self._open_pending(str(flow_uuid))
        if pending is None:
            return None
        return pending.state, PendingFeedbackContext.from_dict(pending.context)

    @_on_database_thread
    def clear_pending_feedback(self, flow_uuid: str) -> None:
        """Mark the open pause as answered; the row stays as a record."""
        PendingFeedback.objects.filter(flow_uuid=str(flow_uuid), cleared_at__isnull=True).update(
            cleared_at=timezone.now()
        )

    @staticmethod
    def _open_pending(flow_uuid: str) -> PendingFeedback | None:
        return PendingFeedback.objects.filter(flow_uuid=flow_uuid, cleared_at__isnull=True).first()
