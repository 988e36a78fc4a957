"""Recovery by replay: a re-run skips every method whose completion is checkpointed.

CrewAI's own resume by id re-executes every method, and its checkpoint
skipping ends a flow at the first router it skips. So on each (re-)run the
engine wraps the flow instance: the Nth call of a method whose Nth completion
is checkpointed returns the recorded value without running, routers return
their recorded label, and execution continues from the first unfinished step.
Flow state itself is restored from the latest checkpoint, so replayed methods
need not run to rebuild it; values kept outside `self.state` are not restored.
"""

from __future__ import annotations

import functools
import threading
from datetime import datetime
from typing import Any

from crewai.flow.human_feedback import HumanFeedbackResult
from django.db import connections

from reviewconsole.engine import step_guard, typed_values
from reviewconsole.engine.context import CheckpointNumbers, Execution, current_step, is_async_step
from reviewconsole.engine.events import record_replayed
from reviewconsole.engine.models import Checkpoint


class RunCancelledError(Exception):
    """The run was cancelled while a worker executed it."""


class UndeclaredRouterLabelError(RuntimeError):
    """A router returned a label its declaration does not list."""


def load_recorded(execution: Execution) -> None:
    """Read the run's checkpoints once, before execution starts."""
    rows = list(Checkpoint.objects.filter(flow_uuid=execution.run_id).order_by("sequence"))
    execution.recorded = {(row.method, row.occurrence): row for row in rows}
    execution.checkpoints = CheckpointNumbers.from_rows((row.method, row.sequence) for row in rows)


def _feedback_result(data: dict[str, Any], output: Any) -> HumanFeedbackResult:
    timestamp = data.get("timestamp")
    return HumanFeedbackResult(
        output=output,
        feedback=data.get("feedback", ""),
        outcome=data.get("outcome"),
        timestamp=datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else datetime.now(),
        method_name=data.get("method_name", ""),
        metadata=data.get("metadata") or {},
    )


def _replay(flow: Any, method: str, checkpoint: Checkpoint) -> Any:
    """Reproduce what CrewAI's `_execute_method` leaves behind, without running the method.

    Values come back as the types the method returned (typed_values.py); one
    that cannot be rebuilt fails the run here, naming the step and the type.
    """
    definition = flow._definition.methods[method]
    # Rows written before types were recorded have none: their values replay as JSON.
    value_types = checkpoint.value_types or {}
    output = typed_values.decode(checkpoint.output, value_types.get("output"), step=method)
    entry: dict[str, Any] = {"method": method, "output": output}
    feedback = None
    if checkpoint.feedback:
        feedback_output = typed_values.decode(
            checkpoint.feedback.get("output"), value_types.get("feedback_output"), step=method
        )
        feedback = _feedback_result(checkpoint.feedback, feedback_output)
        entry["human_feedback"] = feedback
        flow.human_feedback_history.append(feedback)
        flow.last_human_feedback = feedback
    flow._method_outputs.append(entry)
    flow._method_execution_counts[method] = flow._method_execution_counts.get(method, 0) + 1
    flow._completed_methods.add(method)
    if definition.human_feedback is not None and definition.human_feedback.emit:
        return checkpoint.outcome
    if feedback is not None:
        return feedback
    if definition.router:
        return checkpoint.outcome
    return output


def _guard_labels(flow_name: str, method: str, allowed: list[str], declared: bool, bound: Any) -> Any:
    """Wrap a router so a label it may not return fails the run instead of silently ending it.

    `allowed` is what the router declares or, for a router that declares nothing, every label the flow
    listens to (see structure.router_returnable_labels).
    """

    def check(label: Any) -> Any:
        value = getattr(label, "value", label)
        if value is not None and str(value) not in allowed:
            problem = (
                f"returned undeclared label '{value}' (declared: {', '.join(allowed)})"
                if declared
                else f"returned label '{value}' that no method listens to (listened: {', '.join(allowed) or 'none'})"
            )
            raise UndeclaredRouterLabelError(f"Flow '{flow_name}': router '{method}' {problem}")
        return label

    if is_async_step(bound):

        @functools.wraps(bound)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            return check(await bound(*args, **kwargs))

        return guarded_async

    @functools.wraps(bound)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        return check(bound(*args, **kwargs))

    return guarded


def _closing_connections(bound: Any) -> Any:
    """Close database connections a step opened in CrewAI's per-kickoff thread.

    CrewAI runs sync steps on the event loop's executor, whose threads end with
    the kickoff; a connection a step opened there (the gate's, say) would
    otherwise be abandoned open.
    """

    @functools.wraps(bound)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return bound(*args, **kwargs)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connections.close_all()

    return run


def install(flow: Any, execution: Execution) -> None:
    """Make this flow instance durable: replay recorded steps, guard router labels, close step connections."""
    execution.flow = flow
    step_guard.install(flow, execution)
    for method, bound in list(flow._methods.items()):
        if not is_async_step(bound):
            flow._methods[method] = _closing_connections(bound)
    for method, (allowed, declared) in _router_labels(type(flow)).items():
        definition = flow._definition.methods[method]
        if definition.human_feedback is None:
            flow._methods[method] = _guard_labels(
                execution.flow_name or flow._definition.name, method, allowed, declared, flow._methods[method]
            )

    original = flow._execute_method

    async def durable_execute(method_name: Any, method: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
        name = str(method_name)
        occurrence = execution.occurrences.get(name, 0) + 1
        execution.occurrences[name] = occurrence
        checkpoint = execution.recorded.get((name, occurrence))
        if checkpoint is not None:
            record_replayed(execution.run_id, name, execution.attempt)
            return _replay(flow, name, checkpoint), None
        if execution.cancelled:
            raise RunCancelledError(f"Run {execution.run_id} was cancelled before step '{name}'")
        token = current_step.set(name)
        try:
            return await original(method_name, method, *args, **kwargs)
        finally:
            current_step.reset(token)

    # The flow is a pydantic model; object.__setattr__ puts the wrapper on this
    # instance only, shadowing the class's method for this run.
    object.__setattr__(flow, "_execute_method", durable_execute)


@functools.cache
def _router_labels(flow_class: type) -> dict[str, tuple[list[str], bool]]:
    # A class's routing never changes, and building its structure walks every
    # method: once per class and process instead of once per run.
    from reviewconsole.engine.structure import router_returnable_labels

    return router_returnable_labels(flow_class)
