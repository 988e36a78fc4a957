"""The run a worker is executing, visible to persistence and event handlers.

CrewAI runs sync flow methods and persistence calls in worker threads with a
copy of the caller's context, and runs event handlers with one too, so a
ContextVar set before kickoff reaches all of them. `current_flow_id` from
CrewAI is not used: nested flows and resumes overwrite it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

current_execution: ContextVar[Execution | None] = ContextVar("review_console_execution", default=None)
# The flow method being executed. CrewAI's own `current_flow_method_name` is
# overwritten by the agent executor (itself a flow) inside a crew, so an LLM
# call would be booked to the executor's internals instead of the step.
current_step: ContextVar[str] = ContextVar("review_console_step", default="")


@dataclass
class CheckpointNumbers:
    """The sequence and per-method occurrence the next checkpoint of a flow gets.

    Kept in memory while a worker owns the run, so appending a checkpoint needs
    no max()/count() query: the worker holding the lease is the only writer.
    """

    last_sequence: int = 0
    # How many completions of each method are checkpointed.
    completions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int]]) -> CheckpointNumbers:
        """From the (method, sequence) pairs of a flow's checkpoints."""
        numbers = cls()
        for method, sequence in rows:
            numbers.last_sequence = max(numbers.last_sequence, sequence)
            numbers.completions[method] = numbers.completions.get(method, 0) + 1
        return numbers

    def next_for(self, method: str) -> tuple[int, int]:
        """(sequence, occurrence) for the next completion of `method`."""
        return self.last_sequence + 1, self.completions.get(method, 0) + 1

    def advance(self, method: str) -> None:
        """Count a checkpoint of `method` once it is committed."""
        self.last_sequence, self.completions[method] = self.next_for(method)


@dataclass
class Execution:
    """What one worker knows about the run it is executing."""

    run_id: str
    flow_name: str = ""
    attempt: int = 1
    flow: Any = None
    # Completed-method checkpoints recorded earlier, keyed by (method, occurrence).
    recorded: dict[tuple[str, int], Any] = field(default_factory=dict)
    # Numbers for the checkpoints this execution appends, continuing `recorded`.
    checkpoints: CheckpointNumbers = field(default_factory=CheckpointNumbers)
    # How many times each method has been entered in this execution.
    occurrences: dict[str, int] = field(default_factory=dict)
    # Set by the lease heartbeat when the run stops being this worker's.
    cancelled: bool = False
    # A worker died earlier in this stretch of the run: each step's start is written before the step runs.
    after_worker_death: bool = False


def execution_for(flow_uuid: str) -> Execution | None:
    """The active execution if it belongs to this flow id."""
    execution = current_execution.get()
    if execution is not None and execution.run_id == str(flow_uuid):
        return execution
    return None


def in_event_loop() -> bool:
    """Whether this thread is running an asyncio event loop (where Django refuses synchronous queries)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def is_async_step(bound: Any) -> bool:
    """Whether CrewAI awaits this step on its event loop rather than running it in a thread.

    The same test as CrewAI's `_execute_method`. On Python 3.11 CrewAI's
    decorator wrappers mark an `async def` step for asyncio only (there is no
    `inspect.markcoroutinefunction` before 3.12), so `inspect` says "sync".
    """
    return asyncio.iscoroutinefunction(bound)
