"""Turns CrewAI events into Step rows, one collector per worker process.

CrewAI's event bus is global per process and every kickoff waits for all
pending handlers, so handlers only append a small record to a list. The
records reach the database inside the transaction of the run's next
checkpoint, or of the status change that ends the run (`StepCollector.writing`),
so a method costs one commit instead of three; a step's own checkpoint closes
its row, so a completion and its step row commit together. A background thread
writes records still waiting after `_LIVE_DELAY_SECONDS` (an LLM call's start,
say), and a method step's start after `_START_DELAY_SECONDS`: the step a killed
worker was in is on record, while a quick step's row is inserted once, closed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from reviewconsole.engine.context import Execution, current_execution, current_step
from reviewconsole.engine.models import Step, StepKind, StepStatus

logger = logging.getLogger(__name__)

_LIVE_DELAY_SECONDS = 0.5
_START_DELAY_SECONDS = 0.05
_OPENING_STATUSES = (StepStatus.STARTED, StepStatus.REPLAYED)
_CLOSING_FIELDS = ["status", "finished_at", "duration_ms", "error", "tokens_in", "tokens_out", "model"]

# Per run id: rows written as started and not closed yet, by their event key,
# rows a closing record wrote before its opener arrived, by the opener's key,
# and rows a checkpoint closed before CrewAI's close came, by _CHECKPOINTED + the opener's key.
RowsAwaiting = dict[str, dict[str, Step]]
_CHECKPOINTED = "checkpointed:"
# The row of a paused step, by _RESUMING + its method, while its run resumes.
_RESUMING = "resuming:"


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
    # A close written with the method's checkpoint, ahead of CrewAI's own (which is then dropped).
    checkpointed: bool = False


def _usage_tokens(usage: dict[str, Any] | None) -> tuple[int | None, int | None]:
    if not usage:
        return None, None
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens"))
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens"))
    return tokens_in, tokens_out


def _new_row(record: StepRecord, event_key: str) -> Step:
    replayed = record.status == StepStatus.REPLAYED
    return Step(
        run_id=str(record.run_id),
        kind=record.kind,
        method=record.method,
        status=StepStatus.REPLAYED if replayed else StepStatus.STARTED,
        attempt=record.attempt,
        event_key=event_key,
        started_at=record.at,
        finished_at=record.at if replayed else None,
        duration_ms=0.0 if replayed else None,
        model=record.model,
    )


def _awaits_close(record: StepRecord, closed: set[str]) -> bool:
    return record.status == StepStatus.STARTED and record.event_key not in closed


def _close(row: Step, record: StepRecord) -> None:
    row.status = record.status
    row.finished_at = record.at
    row.duration_ms = (record.at - row.started_at).total_seconds() * 1000
    row.error = record.error[:5000]
    row.tokens_in, row.tokens_out = _usage_tokens(record.usage)
    row.model = record.model or row.model


def _latest_open_key(awaiting: dict[str, Step], record: StepRecord) -> str:
    """The key of the newest open row of the record's method, for a closing record that names no opener."""
    candidates = [
        (row.started_at, key)
        for key, row in awaiting.items()
        if row.status == StepStatus.STARTED and row.kind == record.kind and row.method == record.method
    ]
    return max(candidates)[1] if candidates else ""


def _write_records(records: list[StepRecord], rows: RowsAwaiting) -> RowsAwaiting:
    """Write `records`: one insert for the new rows, one update per row closed; returns the new bookkeeping.

    Handlers run on CrewAI's handler pool, so a closing record can arrive
    before its opener; it then inserts the row already closed, and the opener
    is dropped when it comes. A step's checkpoint closes its row first (see
    `checkpoint_close`); CrewAI's own close of it is dropped when it comes.
    The bookkeeping replaces a lookup query per record.
    """
    rows = dict(rows)
    new_rows: list[Step] = []
    closed_rows: list[Step] = []
    for record in records:
        awaiting = rows[str(record.run_id)] = dict(rows.get(str(record.run_id), {}))
        opening = record.status in _OPENING_STATUSES
        if opening:
            paused = awaiting.pop(_RESUMING + record.method, None) if record.kind == StepKind.METHOD else None
            if paused is not None and record.status == StepStatus.STARTED:
                # The paused step goes on: its row is the one this start's close ends (see `resuming`).
                paused.status = StepStatus.STARTED
                awaiting[record.event_key] = paused
                continue
            earlier = awaiting.get(record.event_key)
            if earlier is not None:
                if earlier.status != StepStatus.STARTED:
                    del awaiting[record.event_key]  # closed already by a record that overtook this one
                continue  # or written already, as the step began (see `record_step_start`)
            row, key = None, record.event_key if record.status == StepStatus.STARTED else ""
        else:
            key = record.opener_key
            if key and awaiting.pop(_CHECKPOINTED + key, None) is not None:
                continue  # CrewAI's own close of a step that its checkpoint closed
            row = awaiting.pop(key or _latest_open_key(awaiting, record), None)
            if row is not None and row.pk is not None:
                closed_rows.append(row)  # inserted by an earlier write; a new row is closed before its insert
        if row is None:
            row = _new_row(record, key)
            new_rows.append(row)
            if key:
                awaiting[key] = row  # open, or closed already and awaiting its opener
        if not opening:
            _close(row, record)
            if record.checkpointed:
                awaiting[_CHECKPOINTED + key] = row
    Step.objects.bulk_create(new_rows)
    for row in closed_rows:
        row.save(update_fields=_CLOSING_FIELDS)
    return rows


class StepCollector:
    """Records from the handlers, written by whichever transaction comes next; one per worker process."""

    def __init__(self) -> None:
        self._pending: list[StepRecord] = []
        self._pending_lock = threading.Lock()
        # One writer at a time keeps `_rows` true to the database. It is taken
        # before the transaction begins, never while holding the database's
        # write lock, so two threads of a process cannot deadlock on the two.
        self._write_lock = threading.Lock()
        self._rows: RowsAwaiting = {}
        self._wake = threading.Event()
        # Set when a method step started: its row is written after the shorter delay.
        self._step_started = threading.Event()
        self._pid: int | None = None
        self._start_lock = threading.Lock()

    def enqueue(self, record: StepRecord) -> None:
        if _CHECKPOINTED + record.opener_key in self._rows.get(str(record.run_id), {}):
            return  # CrewAI's close of a step its checkpoint closed: nothing to write, no transaction to open
        self._ensure_late_writer()
        with self._pending_lock:
            self._pending.append(record)
        if record.kind == StepKind.METHOD and record.status == StepStatus.STARTED:
            self._step_started.set()
        self._wake.set()

    @contextmanager
    def writing(self, *, defer_starts: bool = False, closing: StepRecord | None = None) -> Iterator[None]:
        """A transaction that starts by writing the step records received so far.

        With `defer_starts`, a started record whose closing record has not come
        yet stays queued: a quick step's row is then written once, already
        closed, by the next checkpoint, instead of inserted and then updated;
        the late writer writes it if the step takes longer. `closing` is
        written in this transaction and no other (a checkpoint's close of its
        step, see `checkpoint_close`).

        Step rows are a record of the run, not its state: a record that cannot
        be written is logged and dropped rather than failing the caller's
        transaction, and a caller's failed transaction loses the records it took.
        The block holds the collector's lock: it must not wait for another
        thread that writes step rows.
        """
        with self._write_lock:
            records = self._take(defer_starts, closing)
            rows = self._rows
            with transaction.atomic():
                if records:
                    try:
                        with transaction.atomic():
                            rows = _write_records(records, rows)
                    except DatabaseError:
                        logger.exception("could not record %d step events (run %s)", len(records), records[0].run_id)
                yield
            self._rows = rows

    def _take(self, defer_starts: bool, closing: StepRecord | None = None) -> list[StepRecord]:
        with self._pending_lock:
            records, self._pending = [*self._pending, *([closing] if closing else [])], []
            if not defer_starts:
                return records
            closed = {record.opener_key for record in records if record.status not in _OPENING_STATUSES}
            if "" in closed:
                return records  # a closing record that names no opener is matched by method: keep its opener
            deferred = [record for record in records if _awaits_close(record, closed)]
            self._pending = deferred
        return [record for record in records if not _awaits_close(record, closed)]

    def resuming(self, run_id: Any, method: str) -> None:
        """Note that `method`, paused for review, is resuming: its restart continues the paused row.

        CrewAI runs the paused method again on resume, often in another worker process than the pause. Its
        start and finish then close the paused row, so a run shows the step once, spanning the wait, and a
        completed run shows no step still paused.
        """
        paused = (
            Step.objects.filter(run_id=run_id, kind=StepKind.METHOD, method=method, status=StepStatus.PAUSED)
            .order_by("-started_at", "-id")
            .first()
        )
        if paused is None:
            return
        with self._write_lock:
            awaiting = self._rows.setdefault(str(run_id), {})
            awaiting[_RESUMING + method] = paused

    def write_now(self, record: StepRecord) -> None:
        """Write `record`, and the records received so far, in a commit of its own."""
        with self.writing(closing=record):
            pass

    def flush(self) -> None:
        """Write the records received so far; no transaction when there are none."""
        with self._pending_lock:
            waiting = bool(self._pending)
        if waiting:
            with self.writing():
                pass

    def forget(self, run_id: Any) -> None:
        """Drop the bookkeeping of a run whose records are all written."""
        with self._write_lock:
            self._rows.pop(str(run_id), None)

    def _ensure_late_writer(self) -> None:
        # A thread does not survive fork: django-q2 forks workers from the
        # cluster process, so each process starts its own.
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            threading.Thread(target=self._write_late, name="step-writer", daemon=True).start()
            self._pid = os.getpid()

    def _write_late(self) -> None:
        while True:
            self._wake.wait()
            # A busy run's next checkpoint usually takes the records first; this writes what waits longer.
            # A method step's start waits only _START_DELAY_SECONDS, so a worker killed in a step leaves the
            # step it was in, while a quick step's row is still written once, with its checkpoint.
            if self._step_started.wait(_LIVE_DELAY_SECONDS):
                time.sleep(_START_DELAY_SECONDS)
            self._wake.clear()
            self._step_started.clear()
            try:
                close_old_connections()
                self.flush()
            except Exception:
                logger.exception("could not record step events")
                connection.close()
            finally:
                close_old_connections()


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
                method=current_step.get() or str(current_flow_method_name.get() or ""),
                at=event.timestamp,
                event_key=event.event_id,
                opener_key=event.started_event_id or "",
                error=str(getattr(event, "error", "") or ""),
                model=event.model or "",
                usage=getattr(event, "usage", None) or {},
            )
        )

    return handle


def checkpoint_close(execution: Execution, method: str) -> StepRecord | None:
    """The close of the step whose completion is being checkpointed, to be written with its checkpoint.

    CrewAI emits a step's finished event only after its checkpoint, so that
    close would reach the database with a later write, and a worker that dies
    first would leave a checkpointed step open (then marked interrupted) or
    missing. Call in the checkpoint's context, where CrewAI's innermost open
    event scope is the step's started event.
    """
    from crewai.events.event_context import get_current_parent_id

    opener = get_current_parent_id()
    if not opener:
        return None
    return StepRecord(
        run_id=execution.run_id,
        attempt=execution.attempt,
        status=StepStatus.FINISHED,
        method=method,
        at=timezone.now(),
        opener_key=opener,
        checkpointed=True,
    )


def record_step_start(execution: Execution, method: str) -> None:
    """Write the start of the step about to run, before it runs (the collector writes it only once the step has
    run `_START_DELAY_SECONDS`).

    For a run whose worker died: the next one may die as quickly, and the sweeper needs the step it died in
    (see `services._give_up_if_exhausted`). Call in the step's context, where CrewAI's innermost open event
    scope is the step's started event: CrewAI's own record of it then finds the row written.
    """
    from crewai.events.event_context import get_current_parent_id

    opener = get_current_parent_id()
    if opener:
        collector.write_now(
            StepRecord(
                run_id=execution.run_id,
                attempt=execution.attempt,
                status=StepStatus.STARTED,
                method=method,
                at=timezone.now(),
                event_key=opener,
            )
        )


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
