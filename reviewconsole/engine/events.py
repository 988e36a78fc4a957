"""Turns CrewAI events into Step rows, one collector per worker process.

CrewAI's event bus is global per process and every kickoff waits for all
pending handlers, so handlers only put a small record on a queue; one writer
thread turns the records into rows. `flush()` waits for the queue to drain,
so a run's steps are written before the run is marked finished.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.models import Step, StepKind, StepStatus

logger = logging.getLogger(__name__)

_MAX_BATCH = 200


@dataclass
class StepRecord:
    """What a handler hands to the writer: everything needed, nothing live."""

    run_id: str
    status: str
    method: str
    at: datetime
    attempt: int = 1
    kind: str = StepKind.METHOD
    event_key: str = ""
    opener_key: str = ""
    error: str = ""
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)


def _usage_tokens(usage: dict[str, Any] | None) -> tuple[int | None, int | None]:
    if not usage:
        return None, None
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens"))
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens"))
    return tokens_in, tokens_out


def write_record(record: StepRecord) -> None:
    """Apply one record: a started record inserts a row; the others close it.

    Handlers run on CrewAI's handler pool, so a closing record can arrive
    before its opener; it then inserts the row already closed.
    """
    if record.status in (StepStatus.STARTED, StepStatus.REPLAYED):
        if record.event_key and Step.objects.filter(run_id=record.run_id, event_key=record.event_key).exists():
            return  # closed already by a record that overtook this one
        Step.objects.create(
            run_id=record.run_id,
            kind=record.kind,
            method=record.method,
            status=record.status,
            attempt=record.attempt,
            event_key=record.event_key,
            started_at=record.at,
            finished_at=record.at if record.status == StepStatus.REPLAYED else None,
            duration_ms=0.0 if record.status == StepStatus.REPLAYED else None,
            model=record.model,
        )
        return
    open_rows = Step.objects.filter(run_id=record.run_id, kind=record.kind, status=StepStatus.STARTED)
    row = None
    if record.opener_key:
        row = open_rows.filter(event_key=record.opener_key).first()
    if row is None and not record.opener_key:
        row = open_rows.filter(method=record.method).order_by("-started_at", "-id").first()
    if row is None:
        row = Step(
            run_id=record.run_id,
            kind=record.kind,
            method=record.method,
            attempt=record.attempt,
            event_key=record.opener_key,
            started_at=record.at,
        )
    row.status = record.status
    row.finished_at = record.at
    row.duration_ms = (record.at - row.started_at).total_seconds() * 1000
    row.error = record.error[:5000]
    row.tokens_in, row.tokens_out = _usage_tokens(record.usage)
    row.model = record.model or row.model
    row.save()


class StepCollector:
    """Queue plus writer thread; started lazily in each worker process."""

    def __init__(self) -> None:
        self._queue: queue.Queue[StepRecord] = queue.Queue()
        self._pid: int | None = None
        self._lock = threading.Lock()

    def enqueue(self, record: StepRecord) -> None:
        self._ensure_writer()
        self._queue.put(record)

    def flush(self) -> None:
        """Block until every record enqueued so far is written."""
        if self._pid == os.getpid():
            self._queue.join()

    def _ensure_writer(self) -> None:
        # A writer thread does not survive fork: django-q2 forks workers from
        # the cluster process, so each process starts its own.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.Queue()
            threading.Thread(target=self._write_forever, name="step-writer", daemon=True).start()
            self._pid = os.getpid()

    def _write_forever(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Whatever else is waiting goes into the same transaction: one
            # commit per burst of events instead of one per event.
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                close_old_connections()
                with transaction.atomic():
                    for record in batch:
                        write_record(record)
            except Exception:
                logger.exception("could not record %d step events (run %s)", len(batch), batch[0].run_id)
                connection.close()
            finally:
                close_old_connections()
                for _ in batch:
                    self._queue.task_done()


collector = StepCollector()
_registered = False


def _flow_execution(source: Any) -> Execution | None:
    """The run this flow event belongs to, matched on the emitting flow's id."""
    execution = current_execution.get()
    flow_id = getattr(source, "flow_id", None)
    if execution is not None and flow_id and str(flow_id) == execution.run_id:
        return execution
    return None


def _method_handler(status: StepStatus):
    def handle(source: Any, event: Any) -> None:
        execution = _flow_execution(source)
        if execution is None:
            return
        error = getattr(event, "error", "")
        collector.enqueue(
            StepRecord(
                run_id=execution.run_id,
                attempt=execution.attempt,
                status=status,
                method=event.method_name,
                at=event.timestamp,
                event_key=event.event_id,
                opener_key=event.started_event_id or "",
                error=f"{type(error).__name__}: {error}" if error else "",
            )
        )

    return handle


def _llm_handler(status: StepStatus):
    from crewai.flow.flow_context import current_flow_method_name

    def handle(source: Any, event: Any) -> None:
        execution = current_execution.get()
        if execution is None:
            return
        collector.enqueue(
            StepRecord(
                run_id=execution.run_id,
                attempt=execution.attempt,
                kind=StepKind.LLM,
                status=status,
                method=str(current_flow_method_name.get() or ""),
                at=event.timestamp,
                event_key=event.event_id,
                opener_key=event.started_event_id or "",
                error=str(getattr(event, "error", "") or ""),
                model=event.model or "",
                usage=getattr(event, "usage", None) or {},
            )
        )

    return handle


def record_replayed(run_id: str, method: str, attempt: int) -> None:
    """A step recovery skipped because its completion was already checkpointed."""
    collector.enqueue(
        StepRecord(run_id=run_id, attempt=attempt, status=StepStatus.REPLAYED, method=method, at=timezone.now())
    )


def register_collector() -> None:
    """Subscribe the handlers on CrewAI's global bus, once per process."""
    global _registered
    if _registered:
        return
    from crewai.events.event_bus import crewai_event_bus
    from crewai.events.types.flow_events import (
        MethodExecutionFailedEvent,
        MethodExecutionFinishedEvent,
        MethodExecutionPausedEvent,
        MethodExecutionStartedEvent,
    )
    from crewai.events.types.llm_events import LLMCallCompletedEvent, LLMCallFailedEvent, LLMCallStartedEvent

    handlers = {
        MethodExecutionStartedEvent: _method_handler(StepStatus.STARTED),
        MethodExecutionFinishedEvent: _method_handler(StepStatus.FINISHED),
        MethodExecutionFailedEvent: _method_handler(StepStatus.FAILED),
        MethodExecutionPausedEvent: _method_handler(StepStatus.PAUSED),
        LLMCallStartedEvent: _llm_handler(StepStatus.STARTED),
        LLMCallCompletedEvent: _llm_handler(StepStatus.FINISHED),
        LLMCallFailedEvent: _llm_handler(StepStatus.FAILED),
    }
    for event_type, handler in handlers.items():
        crewai_event_bus.register_handler(event_type, handler)
    _registered = True
