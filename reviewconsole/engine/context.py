"""The run a worker is executing, visible to persistence and event handlers.

CrewAI runs sync flow methods and persistence calls in worker threads with a
copy of the caller's context, and runs event handlers with one too, so a
ContextVar set before kickoff reaches all of them. `current_flow_id` from
CrewAI is not used: nested flows and resumes overwrite it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

current_execution: ContextVar[Execution | None] = ContextVar("review_console_execution", default=None)


@dataclass
class Execution:
    """What one worker knows about the run it is executing."""

    run_id: str
    flow_name: str = ""
    attempt: int = 1
    flow: Any = None
    # Completed-method checkpoints recorded earlier, keyed by (method, occurrence).
    recorded: dict[tuple[str, int], Any] = field(default_factory=dict)
    # How many times each method has been entered in this execution.
    occurrences: dict[str, int] = field(default_factory=dict)
    # Set by the lease heartbeat when the run stops being this worker's.
    cancelled: bool = False


def execution_for(flow_uuid: str) -> Execution | None:
    """The active execution if it belongs to this flow id."""
    execution = current_execution.get()
    if execution is not None and execution.run_id == str(flow_uuid):
        return execution
    return None
