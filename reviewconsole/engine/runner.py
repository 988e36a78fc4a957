"""Executes a claimed run in this worker: first start, crash recovery, or resume after review."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from reviewconsole.crewai_env import install_worker_defaults
from reviewconsole.engine import replay, services, step_guard
from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.default_feedback import install_default_feedback_provider
from reviewconsole.engine.encoding import to_json
from reviewconsole.engine.events import collector, register_collector
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.engine.pause_handler import pause_handler
from reviewconsole.engine.persistence import DjangoFlowPersistence
from reviewconsole.engine.registry import FlowUnavailableError, UnknownFlowError, get_flow, load_failures, load_flows
from reviewconsole.logs import log_ids

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def bootstrap_worker() -> None:
    """Load flows (CrewAI, persistence factory, structure check), the step collector and CrewAI's defaults."""
    load_flows()
    register_collector()
    install_worker_defaults()
    install_default_feedback_provider()


class _Heartbeat:
    """Renews the lease of the run this process executes; one thread per process, not one per run.

    django-q2 runs one task at a time in each worker process, and a thread
    does not survive the fork that makes one, so each process starts its own.
    In a qcluster worker it also sweeps (`sweep_from_now_on`), busy or idle.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Keyed by the watching block: a worker runs one at a time, but threads in one process (tasks run
        # inline, as in tests) may overlap, and each must stop being renewed when its own block ends.
        self._current: dict[int, tuple[Execution, str]] = {}
        self._pid: int | None = None
        self._sweeps = False

    @contextmanager
    def watching(self, execution: Execution, worker: str) -> Iterator[None]:
        """Renew the run's lease while the block runs; a failed renewal marks it cancelled."""
        self._ensure_thread()
        key = id(execution)
        with self._lock:
            self._current[key] = (execution, worker)
        try:
            yield
        finally:
            with self._lock:
                del self._current[key]

    def sweep_from_now_on(self) -> None:
        """Also run the sweeper from this process's thread, starting it now rather than at the first task.

        So recovery follows the lease, not a schedule: a run whose worker died is taken over within half a
        lease of its lease running out, by any live worker, even one with nothing else to do.
        """
        self._sweeps = True
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                threading.Thread(target=self._beat_forever, name="lease-heartbeat", daemon=True).start()
                self._pid = os.getpid()

    def _beat_forever(self) -> None:
        lease = settings.RUN_LEASE_SECONDS
        # A third of the lease, so two renewals can fail before it runs out.
        beat = max(0.5, min(lease / 3, 5.0))
        next_sweep = time.monotonic()
        if self._sweeps:
            # A new worker reports at once (/readyz), but sweeps only after a beat: a sweep at start-up would find
            # the runs queued for it not yet claimed, and queue them again.
            self._report()
        while True:
            time.sleep(beat)
            with self._lock:
                current = list(self._current.values())
            for execution, worker in current:
                self._guarded(lambda e=execution, w=worker: self._renew(e, w), f"renew the lease of {execution.run_id}")
            if self._sweeps and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + lease / 2
                # Beside the sweep, which only a qcluster worker runs: the beat says a worker is there (/readyz).
                self._report()
                self._guarded(services.runs_sweep, "sweep")
            if self._sweeps:
                # Every beat, not every sweep: a resume held back for an undo window waits at most one beat more.
                self._guarded(pause_handler().held_resumes_release, "release held resumes")
            if not current:
                # Idle: give the connection back rather than hold one per worker process.
                connection.close()

    def _report(self) -> None:
        self._guarded(lambda: services.worker_heartbeat_record(worker=worker_name()), "record a heartbeat")

    @staticmethod
    def _renew(execution: Execution, worker: str) -> None:
        if not services.run_renew_lease(run_id=execution.run_id, worker=worker):
            execution.cancelled = True

    @staticmethod
    def _guarded(action: Any, what: str) -> None:
        """Run `action` on a usable connection; log a failure, and drop the connection, rather than stop beating."""
        try:
            close_old_connections()
            action()
        except Exception:
            logger.exception("could not %s", what)
            connection.close()
        finally:
            close_old_connections()


_heartbeat = _Heartbeat()


def start_sweeping() -> None:
    """In a new qcluster worker process: sweep from its heartbeat thread (see `_Heartbeat.sweep_from_now_on`)."""
    _heartbeat.sweep_from_now_on()


def _open_pause(run: FlowRun) -> PendingFeedback | None:
    return PendingFeedback.objects.filter(flow_uuid=str(run.id), cleared_at__isnull=True).first()


def _unloadable(error: UnknownFlowError) -> tuple[str, str]:
    """Why a run's flow cannot be loaded, and the traceback; for a flow nobody registered, the modules that
    failed to load too (one of them may have been meant to register it)."""
    if isinstance(error, FlowUnavailableError):
        return str(error), error.failure.traceback
    broken = "; ".join(f"{failure.module} ({failure.error})" for failure in load_failures())
    return (f"{error}; flow modules that failed to load: {broken}" if broken else str(error)), ""


def _fail(run: FlowRun, worker: str, error: str, trace: str) -> None:
    """Fail the run, its last step rows written with it."""
    with collector.writing():
        services.run_fail(run_id=run.id, worker=worker, error=error, traceback=trace)


def execute(run_id: Any, worker: str) -> None:
    """Run a claimed run to its next stop: paused, completed, failed or cancelled."""
    with log_ids(run_id=run_id):
        _execute(run_id, worker)


def _execute(run_id: Any, worker: str) -> None:
    from crewai.flow.async_feedback.types import HumanFeedbackPending

    bootstrap_worker()
    run = FlowRun.objects.get(id=run_id)
    try:
        spec = get_flow(run.flow_name)
    except UnknownFlowError as error:
        # Fail now: every worker would fail to load it alike, and the sweeper would hand it on for ever.
        logger.error("run %s failed: %s", run.id, error)
        _fail(run, worker, *_unloadable(error))
        return
    execution = Execution(
        run_id=str(run.id),
        flow_name=spec.name,
        attempt=run.attempts,
        after_worker_death=run.attempts > 1 and services.run_attempts_at_this_stretch(run.id) > 1,
    )
    replay.load_recorded(execution)
    persistence = DjangoFlowPersistence()
    token = current_execution.set(execution)
    try:
        with _heartbeat.watching(execution, worker):
            pause = _open_pause(run)
            if pause is not None:
                collector.resuming(run.id, pause.method)
                outcome = pause_handler().resume(
                    flow_class=spec.flow_class, run=run, pause=pause, execution=execution, persistence=persistence
                )
            else:
                flow = spec.flow_class(persistence=persistence)
                replay.install(flow, execution)
                # With checkpoints, state comes back whole from the latest one;
                # re-applying the inputs would undo changes the flow made to them.
                inputs = {"id": str(run.id)} if execution.recorded else {"id": str(run.id), **run.inputs}
                outcome = flow.kickoff(inputs=inputs)
        if isinstance(outcome, HumanFeedbackPending):
            collector.flush()
            return
        state = execution.flow._copy_and_serialize_state() if execution.flow is not None else {}
        # The last step's rows go in with the completion: one commit, and a
        # completed run never lacks them.
        with collector.writing():
            services.run_complete(run_id=run.id, worker=worker, result=to_json(outcome), state=to_json(state))
    except replay.RunCancelledError:
        collector.flush()
        logger.info("run %s stopped: cancelled", run.id)
    except Exception as error:
        logger.exception("run %s failed", run.id)
        # A StepAbortedError's message names what the step raised, and is the whole story.
        message = str(error) if isinstance(error, step_guard.StepAbortedError) else f"{type(error).__name__}: {error}"
        _fail(run, worker, message, traceback.format_exc())
    except BaseException as error:
        # Raised outside the steps' own code (a review provider, the flow's constructor): the worker lives on
        # all the same, unless this is the process being stopped.
        if step_guard.stops_the_process(error):
            raise
        logger.exception("run %s failed", run.id)
        _fail(run, worker, f"{error!r} raised while running flow '{spec.name}'", traceback.format_exc())
    finally:
        current_execution.reset(token)
        collector.forget(run.id)
